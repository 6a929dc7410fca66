"""The PySD engine runs without xarray's coordinate alignment and bookkeeping, and gives what PySD itself gives."""

from __future__ import annotations

import pandas as pd
import pytest
import xarray as xr
from paths import MODELS

from sdmodel.engines import pysd as pysd_engine
from sdmodel.locations import default_model
from sdmodel.scenario import RunSpec, load_scenario, validate


def test_a_run_without_alignment_is_bit_for_bit_the_default_run(monkeypatch):
    """Three years of the bundled model, through the engine (exact join, sdmodel.engines.fast_arrays'
    arithmetic) and through PySD with xarray's defaults (and its saved values joined by ``xr.concat``,
    which the engine's ``np.stack`` replaces). bench/pysd_run.py checks whole runs the same way."""
    xarray_methods = (xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename)
    scenario = load_scenario("data-strike").with_overrides({}, {"final_time": 2023}, "test")
    spec = validate(scenario, pysd_engine.model_info(default_model()), pysd_engine.time_defaults(default_model()))
    engine_run = pysd_engine.run(default_model(), spec)
    model = pysd_engine.load(default_model())
    model.reload()
    frame = model.run(params=pysd_engine._params(model, spec.settings), final_time=2023, flatten_output=False)
    monkeypatch.setattr(pysd_engine, "_stack", lambda values, time: xr.concat(values, dim=pd.Index(time, name="time")))
    plain = pysd_engine._to_dataset(frame, pysd_engine.model_info(default_model()), spec.name)
    assert xr.get_options()["arithmetic_join"] == "inner", "the engine left the exact join switched on"
    assert (xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename) == xarray_methods
    assert sorted(engine_run.data_vars) == sorted(plain.data_vars)
    for name in plain.data_vars:
        xr.testing.assert_identical(engine_run[name], plain[name])


class _NeedsAlignment:
    """A stand-in for a PySD model whose arrays differ in coordinates: it fails under the exact join, as xarray does."""

    def __init__(self, message: str = "cannot align objects with join='exact' where index/labels/sizes are not equal"):
        self.message = message
        self.runs: list[str] = []
        self.reloads = 0

    def run(self, **options):
        join = xr.get_options()["arithmetic_join"]
        self.runs.append(join)
        if join == "exact":
            raise ValueError(self.message)
        return options

    def reload(self):
        self.reloads += 1


def test_a_model_that_needs_alignment_runs_again_with_it():
    model = _NeedsAlignment()
    assert pysd_engine._simulate(model, {"params": {}, "final_time": 3}) == {"params": {}, "final_time": 3}
    assert model.runs == ["exact", "inner"] and model.reloads == 1


def test_another_value_error_is_not_taken_for_alignment():
    model = _NeedsAlignment("math domain error")
    with pytest.raises(ValueError, match="math domain"):
        pysd_engine._simulate(model, {"params": {}})
    assert model.runs == ["exact"]


@pytest.mark.parametrize("start, level", [(None, 0.0), (6.0, 10.0)])
def test_a_run_moved_to_a_later_start_initialises_its_stocks_there(start, level):
    """PySD's own (time, {}) start would keep the value computed at time 0 (here 0, not 10)."""
    time = {"final_time": 8.0} if start is None else {"initial_time": start, "final_time": 8.0}
    results = pysd_engine.run(MODELS / "started_late.mdl", RunSpec("late", (), time))
    assert results["level"].values.tolist() == [level] * len(results["time"])


def test_two_copies_of_one_model_under_different_names_both_load(tmp_path, monkeypatch):
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "first.mdl", tmp_path / "second.mdl"
    for copy in (first, second):
        copy.write_bytes((MODELS / "decay.mdl").read_bytes())
    runs = [pysd_engine.model_info(path) for path in (first, second)]
    assert pysd_engine.translate(first) == pysd_engine.translate(second)  # one translation per content
    assert [info.path for info in runs] == [first, second]


def test_a_cache_folder_without_its_translation_is_translated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "decay.mdl"
    model.write_bytes((MODELS / "decay.mdl").read_bytes())
    translated = pysd_engine.translate(model)
    translated.unlink()  # a damaged cache, or one written by an older layout
    assert pysd_engine.translate(model) == translated and translated.is_file()
