"""`sdmodel run --model` runs every model bare PySD runs, and saves what PySD computes.

One small model of our own per kind of model sdmodel's PySD engine once lost (issue 18):
only constants, data read from files beside the model or given with ``--data``, NaN
the model means, and time controls computed by the model. Each runs through the CLI and
its saved results are compared with bare PySD's on a copy of the same files (rtol 1e-6).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pysd
import pytest
import xarray as xr
from click.testing import CliRunner
from paths import MODELS

import sdmodel
from sdmodel.cli import main

RTOL = 1e-6
EXTERNAL = MODELS / "external"
CONTROLS = {"initial_time": "INITIAL TIME", "final_time": "FINAL TIME", "time_step": "TIME STEP", "saveper": "SAVEPER"}


def bare_pysd(model: Path, folder: Path, data_files: tuple[str, ...] = ()) -> pd.DataFrame:
    """PySD's own results for a model, translated in a copy of its folder (PySD writes its .py beside the model)."""
    copy = folder / "bare"
    shutil.copytree(model.parent, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = pysd.read_vensim(str(copy / model.name), data_files=[str(copy / name) for name in data_files] or None)
        return loaded.run(flatten_output=False)


def cli_run(*args: str) -> xr.Dataset:
    """`sdmodel run ARGS --json`, and the run it saved, read back from the store."""
    ran = CliRunner().invoke(main, ["run", *args, "--json"])
    assert ran.exit_code == 0, ran.output
    return sdmodel.open_run(json.loads(ran.stdout)["run"]).sel(scenario="baseline")


def column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column of PySD's results as numbers, time first (a subscripted variable's arrays stacked)."""
    values = frame[name].to_list()
    if isinstance(values[0], xr.DataArray):
        return np.stack([value.values for value in values]).astype(float)
    return np.asarray(values, dtype=float)


def assert_like_pysd(saved: xr.Dataset, frame: pd.DataFrame) -> None:
    """Every column of PySD's results is a saved variable with the same values (NaN where PySD has NaN)."""
    np.testing.assert_allclose(saved["time"].values, frame.index.to_numpy(dtype=float), rtol=RTOL)
    by_long_name = {str(array.attrs["long_name"]): name for name, array in saved.data_vars.items()}
    for real_name in frame.columns:
        assert real_name in by_long_name, f"'{real_name}' is not saved"
        expected = column(frame, real_name)
        array = saved[by_long_name[real_name]]
        if "time" not in array.dims:  # a constant is saved once
            array = array.expand_dims(time=saved["time"])
        actual = array.transpose("time", ...).values
        np.testing.assert_allclose(actual, expected, rtol=RTOL, equal_nan=True, err_msg=real_name)


def test_a_model_of_constants_only_runs_like_pysd(tmp_path):
    model = MODELS / "constants.mdl"
    frame = bare_pysd(model, tmp_path)
    for engine in ("pysd", "simlin"):
        saved = cli_run("--model", str(model), "--engine", engine)
        assert_like_pysd(saved, frame)
        assert saved.sizes["time"] == 5 and "time" not in saved["price"].dims


def test_data_read_from_files_beside_the_model_runs_like_pysd(tmp_path):
    model = EXTERNAL / "inputs.mdl"
    saved = cli_run("--model", str(model))
    assert_like_pysd(saved, bare_pysd(model, tmp_path))
    assert float(saved["growth"]) == 0.1  # GET DIRECT CONSTANTS, from rates.csv


def test_data_variables_from_data_files_run_like_pysd(tmp_path):
    model = EXTERNAL / "history.mdl"
    saved = cli_run("--model", str(model), "--data", str(EXTERNAL / "prices.tab"))
    assert_like_pysd(saved, bare_pysd(model, tmp_path, ("prices.tab",)))
    assert saved["price_history"].values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # interpolated between the file's years 0, 2, 4


def test_a_changed_data_file_is_read_again(tmp_path):
    """The translation's cache key covers the data files' content, so a changed spreadsheet is not answered from the cache."""
    folder = tmp_path / "model"
    shutil.copytree(EXTERNAL, folder)
    before = cli_run("--model", str(folder / "inputs.mdl"), "--engine", "pysd")
    (folder / "rates.csv").write_text("name,value\ngrowth,0.2\n")
    after = cli_run("--model", str(folder / "inputs.mdl"), "--engine", "pysd")
    assert float(before["growth"]) == 0.1 and float(after["growth"]) == 0.2
    assert_like_pysd(after, bare_pysd(folder / "inputs.mdl", tmp_path))


def test_a_missing_data_file_is_named(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(EXTERNAL, folder)
    (folder / "inputs.xlsx").unlink()
    ran = CliRunner().invoke(main, ["run", "--model", str(folder / "inputs.mdl")])
    assert ran.exit_code == 2
    assert "inputs.xlsx" in ran.stderr and "Traceback" not in ran.output and "\n" not in ran.stderr.strip()
    missing = CliRunner().invoke(main, ["run", "--model", str(EXTERNAL / "history.mdl"), "--data", str(tmp_path / "prices.tab")])
    assert missing.exit_code == 2 and "prices.tab" in missing.stderr


def test_the_simlin_engine_refuses_what_it_would_get_wrong(tmp_path):
    """Simlin 0.8.5 reads :NA: as a number, makes an undefined element 0, ignores computed time controls and cannot
    read data: each refused in one line that names the fix."""
    undefined = tmp_path / "undefined.mdl"  # missing.mdl without its :NA:, so only the undefined east is left
    undefined.write_text((MODELS / "missing.mdl").read_text().replace(":NA:", "4"))
    models = [MODELS / name for name in ("missing.mdl", "timecontrols.mdl", "external/inputs.mdl", "external/history.mdl")]
    for model, problem in zip(
        [*models, undefined], [":NA:", "FINAL TIME|INITIAL TIME", "data files", "data variables", "undefined"]
    ):
        ran = CliRunner().invoke(main, ["run", "--model", str(model), "--engine", "simlin"])
        assert ran.exit_code == 2, (model, ran.output)
        assert "--engine pysd" in ran.stderr and re.search(problem, ran.stderr), ran.stderr
        assert len(ran.stderr.strip().splitlines()) == 1


def test_nan_the_model_means_is_saved_with_a_warning(tmp_path):
    model = MODELS / "missing.mdl"
    ran = CliRunner().invoke(main, ["run", "--model", str(model), "--json"])
    assert ran.exit_code == 0, ran.output
    assert "sdmodel: warning:" in ran.stderr and "'measured'" in ran.stderr and "'unknown'" in ran.stderr
    saved = sdmodel.open_run(json.loads(ran.stdout)["run"]).sel(scenario="baseline")
    assert_like_pysd(saved, bare_pysd(model, tmp_path))
    assert np.isnan(saved["measured"].sel(Region=["south", "east"])).all() and float(saved["measured"].sel(Region="north")) == 3


def test_nan_in_the_bundled_model_stays_an_error(monkeypatch):
    """NaN in the bundled model breaks its promises: were missing.mdl the bundled model, its run would fail."""
    import sdmodel.simulate
    from sdmodel.errors import ModelRunError

    monkeypatch.setattr(sdmodel.simulate, "default_model", lambda: MODELS / "missing.mdl")
    with pytest.raises(ModelRunError, match="'measured' became NaN or infinite"):
        sdmodel.run(jobs=1)


def test_time_controls_are_saved_as_the_model_computes_them(tmp_path):
    model = MODELS / "timecontrols.mdl"
    saved = cli_run("--model", str(model))
    assert_like_pysd(saved, bare_pysd(model, tmp_path))
    assert float(saved["final_time"].isel(time=0)) == 8 and saved["saveper"].values.tolist()[-2:] == [0.5, 0.5]
    assert saved["time_step"].attrs["long_name"] == "TIME STEP"


def test_exported_tab_holds_the_time_controls(tmp_path):
    model = MODELS / "decay.mdl"
    ran = CliRunner().invoke(main, ["export", "baseline", "--model", str(model), "--to", "tab", "--out", str(tmp_path)])
    assert ran.exit_code == 0, ran.output
    header, first = (tmp_path / "baseline.tab").read_text().splitlines()[:2]
    columns = dict(zip(header.split("\t"), first.split("\t")))
    for name in CONTROLS.values():
        assert name in columns, name
    frame = bare_pysd(model, tmp_path)
    for name in CONTROLS.values():
        assert float(columns[name]) == pytest.approx(float(frame[name].iloc[0]), rel=RTOL)


DESCRIBED = ["constants.mdl", "decay.mdl", "logistic.mdl", "regions.mdl", "shipping.mdl", "missing.mdl", "timecontrols.mdl"]


@pytest.mark.parametrize("model", [*DESCRIBED, "bundled"])
def test_simlin_describes_a_model_as_pysd_does(model):
    """Names, kinds, units, comments, ranges, subscripts and order, from Simlin and the file's text: PySD's, exactly."""
    from sdmodel.engines import pysd as pysd_engine
    from sdmodel.engines import simlin as simlin_engine
    from sdmodel.locations import default_model

    path = default_model() if model == "bundled" else MODELS / model
    described = simlin_engine.describe(path)
    assert described is not None, f"Simlin could not describe {model}"
    info, order = described
    reference = pysd_engine.model_info(path)
    assert list(info.variables) == list(reference.variables)
    for name, variable in reference.variables.items():
        assert info.variables[name] == variable, name
    assert info.subscripts == reference.subscripts
    assert order == tuple(pysd_engine.load(path).namespace.values())


def test_python_names_avoid_the_words_pysd_reserves():
    import builtins
    import keyword

    from pysd.builders.python.namespace import NamespaceManager

    from sdmodel.engines.vensim_text import PYSD_RESERVED, python_names

    reserved = {w for w in NamespaceManager._reserved_words if w == w.lower() and not w.startswith("_")}
    assert reserved - set(keyword.kwlist) - set(dir(builtins)) == PYSD_RESERVED
    names = ["Step", "p", "integer", "Capital Stock", "capital_stock"]
    manager = NamespaceManager()
    assert list(python_names(names).values()) == [manager.make_python_identifier(name) for name in names]


def test_the_fast_engine_runs_a_new_model_without_importing_pysd(tmp_path):
    """A cold cache: `run --model X --engine simlin` takes names, units and ranges from Simlin and the file, not PySD."""
    import subprocess
    import sys

    model = tmp_path / "regions.mdl"
    shutil.copyfile(MODELS / "regions.mdl", model)
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(tmp_path / "cache"), "SDMODEL_RUNS_DIR": str(tmp_path / "runs")}
    argv = ["sdmodel", "run", "--model", str(model), "--engine", "simlin", "--json"]
    code = (
        f"import sys; sys.argv = {argv!r}; from sdmodel.cli import program\ntry: program()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pysd'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    ran, modules = result.stdout.strip().splitlines()
    assert modules == "[]", result.stdout + result.stderr
    saved = sdmodel.open_run(json.loads(ran)["run"])
    from sdmodel.engines import pysd as pysd_engine

    reference = pysd_engine.model_info(model)
    for name, array in saved.data_vars.items():
        variable = reference.variables[name]
        assert (array.attrs["long_name"], array.attrs["units"], array.attrs["description"]) == (
            variable.name,
            variable.units,
            variable.comment,
        )
    assert saved["stock"].attrs["units"] == "widget" and saved["initial_stock"].attrs["long_name"] == "initial stock"


def test_a_model_simlin_cannot_read_is_described_and_its_loops_refused_in_one_line(tmp_path):
    """Simlin cannot read subscripts from a file (GET DIRECT SUBSCRIPT): `describe` was a SimlinRuntimeError traceback.
    It now lists the variables PySD reads, says in a note that equations and links are not shown, and reads a changed
    subscripts file again; Simlin's loop analysis is refused in one line."""
    folder = tmp_path / "model"
    shutil.copytree(EXTERNAL, folder)
    model = folder / "regions_from_file.mdl"
    described = CliRunner().invoke(main, ["describe", "--model", str(model)])
    assert described.exit_code == 0, described.output
    assert re.search(r"^stock\[Region\]\s+stock", described.stdout, re.MULTILINE)
    assert described.stderr.startswith("sdmodel: note: Simlin cannot read this model's structure")
    assert len(described.stderr.strip().splitlines()) == 1
    before = sdmodel.simulate.model_info(model).subscripts["Region"]
    (folder / "regions.csv").write_text("north,south,west\n")
    assert CliRunner().invoke(main, ["describe", "--model", str(model)]).exit_code == 0
    assert before == ("north", "south", "east") and sdmodel.simulate.model_info(model).subscripts["Region"][-1] == "west"
    loops = CliRunner().invoke(main, ["loops", "--model", str(model)])
    assert loops.exit_code == 2 and len(loops.stderr.strip().splitlines()) == 1 and "Traceback" not in loops.output
