"""The PySD engine runs without xarray's coordinate alignment and bookkeeping, and gives what PySD itself gives."""

from __future__ import annotations

import contextlib

import pandas as pd
import pytest
import xarray as xr
from paths import MODELS

from sdmodel.engines import pysd as pysd_engine
from sdmodel.engines import simlin as simlin_engine
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


def test_a_run_leaves_its_cost_for_the_next_estimate_of_how_long_runs_take(tmp_path, monkeypatch):
    """A cold compare said "about 10 s per scenario", measured elsewhere: the estimate is this machine's last run of the
    model, per time step, so none before a run, and twice the steps (or twice the scenarios) take twice as long."""
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    model = MODELS / "decay.mdl"
    short, long = RunSpec("short", (), {"final_time": 5.0}), RunSpec("long", (), {"final_time": 10.0})
    assert pysd_engine.expected_seconds(model, [short]) is None
    pysd_engine.run(model, short)
    one = pysd_engine.expected_seconds(model, [short])
    assert one is not None and one > 0
    assert pysd_engine.expected_seconds(model, [long]) == pytest.approx(2 * one)
    assert pysd_engine.expected_seconds(model, [short, short]) == pytest.approx(2 * one)
    assert simlin_engine.expected_seconds(model, [short]) is None  # a Simlin run takes a fraction of a second


def test_a_pysd_progress_bar_says_how_long_the_runs_should_take(tmp_path, monkeypatch):
    """On a terminal the bar's label gives the estimate once a run was measured here; Simlin's says none."""
    from sdmodel import progress, simulate

    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    labels = []

    class Bar:
        def update(self, steps):
            pass

        def relabel(self, label):
            labels.append(label)

    @contextlib.contextmanager
    def bar(total, label, show=None):
        yield Bar()

    monkeypatch.setattr(simulate, "progress_bar", bar)
    model = MODELS / "decay.mdl"
    simulate.run(["baseline"], model=model, engine="pysd", jobs=1)  # cold: nothing measured yet
    assert labels == []
    simulate.run(["baseline"], model=model, engine="pysd", jobs=1)
    assert len(labels) == 1 and labels[0].startswith("1 scenario on pysd, 1 at a time: about ") and " s here" in labels[0]
    simulate.run(["baseline"], model=model, engine="simlin", jobs=1)
    assert len(labels) == 1
    assert progress.duration(700) == "12 min"
