"""The compiled engine (SDEverywhere's C, sdmodel/engines/compiled.py) held to Simlin: same Datasets, same numbers.

Simlin is held to PySD by tests/test_engine_parity.py; the compiled engine runs the same Euler steps in
C, so it must agree with Simlin to rounding: RTOL relative to each series' largest magnitude (a flow
crossing zero differs by ~1e-10 of itself where the two sum in different orders), and the metrics'
variables pointwise. Skipped where node, npm or a C compiler is missing, or npm cannot reach its registry
to install SDEverywhere's compiler the first time; the one-line errors for those cases are tested anyway.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from paths import MODELS

from sdmodel.engines import compiled
from sdmodel.engines import simlin as simlin_engine
from sdmodel.errors import InputError, ModelRunError
from sdmodel.locations import default_model
from sdmodel.model import file_sha256
from sdmodel.scenario import RunSpec, Scenario, Setting
from sdmodel.simulate import prepare

RTOL = 1e-9
FINAL_TIME = 2035.0
STRIKE_SERIES = ((2022.0, 0.0), (2027.3, 0.4), (2031.0, 0.2))  # knots off the time grid, to test interpolation
METRIC_VARIABLES = ("revenue_concentration_index", "labour_share", "model_capability", "ai_capital", "data_payments")


@functools.cache
def _ready() -> str | None:
    """Why the engine cannot be tested here, or None: the tools are there and the bundled model compiles."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not any(shutil.which(cc) for cc in ("gcc", "cc", "clang")):
        missing.append("a C compiler")
    if missing:
        return f"no {', '.join(missing)}"
    try:
        compiled.load(default_model())
    except InputError as error:
        if "npm cannot install" in str(error):
            return str(error)
        raise
    return None


@pytest.fixture
def needs_compiler():
    reason = _ready()
    if reason:
        pytest.skip(f"the compiled engine cannot be built here: {reason}")


def assert_matches(fast: xr.Dataset, compiled_run: xr.Dataset) -> None:
    """Same variables, dims, coords and attrs; values within RTOL of each series' largest magnitude."""
    assert list(compiled_run.data_vars) == list(fast.data_vars)
    for name in fast.data_vars:
        a, b = fast[name], compiled_run[name]
        assert a.dims == b.dims, name
        assert a.attrs == b.attrs, name
        scale = np.abs(a).max("time") if "time" in a.dims else np.abs(a)
        assert (np.abs(a - b) <= RTOL * scale).all(), name
    for name in fast.coords:
        assert np.array_equal(fast[name].values, compiled_run[name].values), name
    for name in METRIC_VARIABLES:
        np.testing.assert_allclose(compiled_run[name], fast[name], rtol=RTOL, atol=0, err_msg=name)


def run_both(*scenarios, **options) -> tuple[xr.Dataset, xr.Dataset]:
    prepared = prepare(list(scenarios), final_time=options.pop("final_time", FINAL_TIME), engine="compiled", **options)
    model, specs = prepared.model_path, prepared.specs
    return simlin_engine.run_scenarios(model, specs), compiled.run_scenarios(model, specs)


@pytest.mark.usefixtures("needs_compiler")
def test_bundled_scenarios_match_simlin_over_the_whole_horizon():
    from sdmodel.scenario import bundled_scenarios

    fast, compiled_run = run_both(*bundled_scenarios(), final_time=None)  # every one: about a second on each engine
    assert float(compiled_run["time"][-1]) == simlin_engine.time_defaults(default_model())["final_time"]
    assert_matches(fast, compiled_run)
    effect = compiled_run["labour_share"].sel(scenario="windfall-tax") - compiled_run["labour_share"].sel(scenario="baseline")
    assert float(np.abs(effect).max()) > 0  # a lever moved the compiled run


@pytest.mark.usefixtures("needs_compiler")
@pytest.mark.parametrize(
    "overrides",
    [
        {"data strike fraction": 0.5, "data strike start": 2025},
        {"initial_users[challenger]": 5e7},
        {"initial compute capacity": 1e18},
    ],
    ids=["scalars", "one-element", "whole-array"],
)
def test_settings_move_the_compiled_run_as_simlin(overrides):
    assert_matches(*run_both("baseline", overrides=overrides))


@pytest.mark.usefixtures("needs_compiler")
def test_time_series_settings_match_simlin():
    whole = Scenario(name="strike-ramp", params={"data strike fraction": STRIKE_SERIES, "data strike start": 2021.0})
    one = Scenario(name="ramp-one", params={"strike target[challenger]": STRIKE_SERIES, "data strike fraction": 0.3})
    fast, compiled_run = run_both(whole, one)
    assert_matches(fast, compiled_run)
    series = compiled_run["data_strike_fraction"].sel(scenario="strike-ramp")
    assert float(series.sel(time=2030)) == pytest.approx(np.interp(2030, *zip(*STRIKE_SERIES)))


@pytest.mark.usefixtures("needs_compiler")
def test_time_controls_match_simlin():
    grid = {"initial_time": 2024.0, "final_time": 2031.0, "time_step": 0.125, "saveper": 0.5}
    spec = RunSpec("grid", (Setting("data_strike_fraction", 0.33),), grid)
    fast, compiled_run = simlin_engine.run(default_model(), spec), compiled.run(default_model(), spec)
    assert compiled_run["time"].values.tolist() == np.arange(2024.0, 2031.25, 0.5).tolist()
    assert_matches(fast.expand_dims(scenario=["grid"]), compiled_run.expand_dims(scenario=["grid"]))


@pytest.mark.usefixtures("needs_compiler")
def test_member_runner_matches_simlins():
    prepared = prepare(["collective-licensing"], engine="compiled")
    model, (spec,) = prepared.model_path, prepared.specs
    params = [Setting("share_sensitivity", 0.0), Setting("initial_users", 0.0, ("Firm", "open"))]
    outputs = ["labour_share", "revenue_share", "ai_capital"]
    fast = simlin_engine.member_runner(model, spec, params, outputs)
    runner = compiled.member_runner(model, spec, params, outputs)
    assert runner.slots == fast.slots
    assert runner.coords == fast.coords
    for values in ([2.5, 1e7], [7.0, 2e8]):
        np.testing.assert_allclose(runner.run(values), fast.run(values), rtol=RTOL, atol=0)
    assert np.array_equal(runner.time, fast.time)


@pytest.mark.usefixtures("needs_compiler")
def test_settings_do_not_persist_between_runs():
    baseline = RunSpec("baseline", (), {"final_time": 2030.0})
    before = compiled.run(default_model(), baseline)
    strike = (Setting("data_strike_fraction", 0.9), Setting("data_strike_start", 2021.0))
    compiled.run(default_model(), RunSpec("strike", strike, {"final_time": 2030.0}))
    xr.testing.assert_identical(compiled.run(default_model(), baseline), before)


@pytest.mark.usefixtures("needs_compiler")
def test_non_finite_values_raise_model_run_error():
    spec = RunSpec("broken", (Setting("hardware_life", 0.0),), {"final_time": 2022.0})
    with pytest.raises(ModelRunError, match=r"scenario 'broken': .* became NaN or infinite at time 2020\.25"):
        compiled.run(default_model(), spec)


@pytest.mark.usefixtures("needs_compiler")
def test_only_constants_can_be_set():
    spec = RunSpec("aux", (Setting("labour_share", 0.5),), {"final_time": 2022.0})
    with pytest.raises(InputError, match="can set only constants, and 'labour share' is computed") as caught:
        compiled.run(default_model(), spec)
    assert "\n" not in str(caught.value)


@pytest.mark.usefixtures("needs_compiler")
def test_subscripts_match_simlin_on_a_small_model():
    model = MODELS / "regions.mdl"
    spec = prepare(["baseline"], model=model, engine="compiled").specs[0]
    fast, compiled_run = simlin_engine.run(model, spec), compiled.run(model, spec)
    xr.testing.assert_allclose(compiled_run, fast, rtol=RTOL, atol=0)


SMOOTH_MODEL = """{UTF-8}
input = 10 + STEP(5, 2020.5)
\t~\twidget
\t~\tA step.
\t|
smoothed = SMOOTH(input, 0.5)
\t~\twidget
\t~\tFirst-order smooth.
\t|
delayed = DELAY1(input, 0.7)
\t~\twidget
\t~\tFirst-order delay.
\t|
table(
\t[(0,0)-(20,2)],(0,0),(10,1),(20,2))
\t~\tDmnl
\t~\tA lookup.
\t|
looked = table(input)
\t~\tDmnl
\t~\tThe lookup of input.
\t|
third = SMOOTH3(input, 0.5) + DELAY3(input, 0.4) + TREND(input, 0.5, 0) + NPV(input, 0.05, 0, 1)
\t~\twidget
\t~\tThird-order smooth and delay, trend and present value: SDEverywhere makes them levels.
\t|
Total = INTEG(smoothed + delayed + looked + third, 0)
\t~\twidget*year
\t~\tAccumulated.
\t|
INITIAL TIME = 2020
\t~\tyear
\t~\tStart.
\t|
FINAL TIME = 2022
\t~\tyear
\t~\tEnd.
\t|
TIME STEP = 0.0625
\t~\tyear [0,?]
\t~\tStep.
\t|
SAVEPER = 0.25
\t~\tyear [0,?]
\t~\tOutput.
\t|
\\\\\\---/// Sketch information - do not modify anything except names
"""


@pytest.mark.usefixtures("needs_compiler")
def test_smooths_delays_trend_npv_and_lookups_match_simlin(tmp_path):
    model = tmp_path / "smooth.mdl"
    model.write_text(SMOOTH_MODEL)
    spec = RunSpec("baseline", (), {})
    fast, compiled_run = simlin_engine.run(model, spec), compiled.run(model, spec)
    xr.testing.assert_allclose(compiled_run, fast, rtol=RTOL, atol=0)


@pytest.mark.usefixtures("needs_compiler")
def test_an_unsupported_function_is_a_one_line_error(tmp_path):
    model = tmp_path / "pulses.mdl"
    model.write_text(SMOOTH_MODEL.replace("SMOOTH(input, 0.5)", "PULSE TRAIN(2020.5, 0.1, 0.5, 2022)"))
    with pytest.raises(InputError, match=r"pulses\.mdl: the compiled engine cannot run PULSE_TRAIN .*--engine simlin") as caught:
        compiled.run(model, RunSpec("baseline", (), {}))
    assert "\n" not in str(caught.value)


def test_missing_tools_are_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))  # nothing built: the tools are needed
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(compiled, "_programs", {})
    with pytest.raises(InputError, match=r"needs node, npm and a C compiler: 'node' is not on PATH") as caught:
        compiled.run(default_model(), RunSpec("baseline", (), {}))
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "cache" / "compiled").exists() or not any((tmp_path / "cache" / "compiled").iterdir())


@pytest.mark.usefixtures("needs_compiler")
def test_an_ensemble_on_worker_processes_matches_simlins():
    """The members run in forked workers (each with its copy of the library) and come back as on Simlin."""
    from sdmodel import ensemble
    from sdmodel.options import Execution, RunSetup

    def draws(engine: str) -> xr.Dataset:
        return ensemble.uncertainty(
            default_model().parent / "assumptions.toml",
            ["baseline", "data-strike"],
            samples=4,
            setup=RunSetup(final_time=2030, engine=engine),
            execution=Execution(jobs=2, progress=False),
        )

    fast, compiled_run = draws("simlin"), draws("compiled")
    assert list(compiled_run.data_vars) == list(fast.data_vars)
    assert compiled_run.sizes == fast.sizes
    for name in fast.data_vars:
        if np.issubdtype(fast[name].dtype, np.floating):
            np.testing.assert_allclose(compiled_run[name], fast[name], rtol=RTOL, atol=0, err_msg=name)
        else:
            assert np.array_equal(compiled_run[name].values, fast[name].values), name


@pytest.mark.usefixtures("needs_compiler")
def test_the_command_line_runs_a_robustness_study_on_it_as_on_simlin(tmp_path):
    """`--engine compiled` from the command line: the study is saved, says its engine, and answers as Simlin's does."""
    import json

    from click.testing import CliRunner

    from sdmodel import open_run
    from sdmodel.cli import main

    def study(engine: str) -> dict:
        command = ["robustness", str(default_model().parent / "assumptions.toml"), "data-strike", "collective-bargaining"]
        command += ["--samples", "4", "--final-time", "2030", "--jobs", "1", "--criterion", "hhi@2030 < 0.6"]
        result = CliRunner().invoke(main, [*command, "--engine", engine, "--json", "--runs-dir", str(tmp_path / engine)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    fast, compiled_study = study("simlin"), study("compiled")
    assert open_run(compiled_study["run"]).attrs["engine"] == "compiled"
    assert set(compiled_study["policies"]) == set(fast["policies"]) == {"baseline", "data-strike", "collective-bargaining"}
    for name, entry in fast["policies"].items():
        assert compiled_study["policies"][name]["criteria"] == entry["criteria"], name
        for output, effect in entry.get("effects", {}).items():  # the baseline has none: it is what effects are against
            for key, value in effect.items():
                assert compiled_study["policies"][name]["effects"][output][key] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_fast_falls_back_to_simlin_with_a_note_where_the_tools_are_missing(tmp_path, monkeypatch):
    """The ensembles' default `--engine fast` never fails for want of node, npm or a C compiler: Simlin runs, a note says why."""
    import json

    from click.testing import CliRunner

    from sdmodel.cli import main

    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))  # nothing built: the tools are needed
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(compiled, "_programs", {})
    command = ["uncertainty", str(default_model().parent / "assumptions.toml"), "data-strike", "--samples", "2"]
    result = CliRunner().invoke(main, [*command, "--final-time", "2022", "--jobs", "1", "--json", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (note,) = [line for line in result.stderr.splitlines() if "note:" in line]
    assert "--engine fast runs on simlin" in note and "'node' is not on PATH" in note
    manifest = json.loads((tmp_path / json.loads(result.stdout)["run"] / "manifest.json").read_text())
    assert manifest["engine"] == "simlin" and manifest["ensemble"]["engine"] == "simlin"


@pytest.mark.usefixtures("needs_compiler")
def test_fast_is_the_compiled_engine_where_it_can_run_and_simlin_for_xmile(tmp_path):
    import warnings

    from sdmodel.errors import Note
    from sdmodel.simulate import engine_module

    assert engine_module("fast") is compiled
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert engine_module("fast", default_model().with_suffix(".xmile")) is simlin_engine
    assert [str(w.message) for w in caught if w.category is Note] == [
        "--engine fast runs on simlin, as the compiled engine cannot: "
        + str(pytest.raises(InputError, compiled.load, default_model().with_suffix(".xmile")).value)
    ]


# --- the cache: builds checked before use, what a kill left removed, an unwritable cache in one line ------------------


@pytest.fixture
def private_cache(tmp_path, monkeypatch, needs_compiler):
    """A cache of the test's own with a copy of the session's npm install of SDEverywhere's compiler (so npm need not
    run), and no model loaded in this process."""
    prefix = compiled._sde_compiler().parents[4]  # .../node_modules/@sdeverywhere/compile/src/index.js
    cache = tmp_path / "cache"
    shutil.copytree(prefix, cache / prefix.name, symlinks=True)
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(cache))
    monkeypatch.setattr(compiled, "_programs", {})
    return cache


def _rewrite(path, data: bytes) -> None:
    """Replace a file's content as another process would: a new file (a loaded library keeps the old one)."""
    path.with_name("new").write_bytes(data)
    os.replace(path.with_name("new"), path)


def _garble(path) -> None:
    """Damage that still loads: two variables' C names swapped in the listing, a constant changed in the library."""
    data = path.read_bytes()
    if path.suffix == ".json":
        swapped = data.replace(b'"_stock"', b'"_swap"').replace(b'"_outflow"', b'"_stock"').replace(b'"_swap"', b'"_outflow"')
    else:
        assert data.count(struct.pack("<d", 100.0)) == 1  # decay.mdl's initial stock
        swapped = data.replace(struct.pack("<d", 100.0), struct.pack("<d", 200.0))
    _rewrite(path, swapped)


BUILD_DAMAGES = {
    "truncated": lambda path: _rewrite(path, path.read_bytes()[: len(path.read_bytes()) // 2]),
    "emptied": lambda path: _rewrite(path, b""),
    "garbled": _garble,
    "deleted": lambda path: path.unlink(),
}


STOCK = """
import json, sys
from sdmodel.engines import compiled
from sdmodel.scenario import RunSpec
print(json.dumps(compiled.run(sys.argv[1], RunSpec("baseline", (), {}))["stock"].values.tolist()))
"""


@pytest.mark.parametrize("damage", BUILD_DAMAGES)
@pytest.mark.parametrize("name", ["listing.json", "model.so"])
def test_a_damaged_build_is_built_again(name, damage, private_cache):
    """A file of a cached build cut short, emptied, garbled or deleted is never run: the next process compiles the model again
    (a garbled library or listing loaded and ran, with wrong numbers; a deleted library failed every command)."""
    model = MODELS / "decay.mdl"
    before = compiled.run(model, RunSpec("baseline", (), {}))["stock"].values.tolist()
    folder = compiled.build_folder(file_sha256(model))
    BUILD_DAMAGES[damage](folder / name)
    # in a new process: this one keeps the library it loaded, whatever its file now holds
    after = subprocess.run([sys.executable, "-c", STOCK, str(model)], capture_output=True, text=True, timeout=300, check=False)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == before
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]


def test_a_damaged_npm_install_and_what_a_killed_one_left_are_replaced(private_cache):
    """SDEverywhere's compiler cut short is installed again (it failed every model, 'cannot translate'), and the
    working folder of an install killed outright goes."""
    entry = next(private_cache.glob("sdeverywhere-compile-*/node_modules/@sdeverywhere/compile/src/index.js"))
    whole = entry.read_bytes()
    entry.write_bytes(whole[: len(whole) // 2])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    left = private_cache / f".npm-{socket.gethostname()}-{gone.pid}-abc"
    (left / "node_modules").mkdir(parents=True)
    try:
        compiled.run(MODELS / "decay.mdl", RunSpec("baseline", (), {}))
    except InputError as error:
        if "npm cannot install" in str(error):
            pytest.skip(f"npm cannot reach its registry here: {error}")
        raise
    assert entry.read_bytes() == whole
    assert not left.exists() and not list(private_cache.glob(".npm-*"))


def test_stale_build_folders_go_and_a_live_builds_stays(private_cache):
    """Removed: one of a process that is gone, and one older than a day whose name does not say its process.
    Kept: one whose process runs (here, this one)."""
    host = socket.gethostname()
    root = private_cache / "compiled"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, old, live = root / f".build-{host}-{gone.pid}-abc", root / ".build-k2j3h4", root / f".build-{host}-{os.getpid()}-def"
    for folder in (dead, old, live):
        folder.mkdir(parents=True)
        (folder / "model.c").write_text("/* half */")
    long_ago = time.time() - 24 * 3600 - 60
    os.utime(old, (long_ago, long_ago))
    compiled.run(MODELS / "decay.mdl", RunSpec("baseline", (), {}))
    assert sorted(path.name for path in root.glob(".build-*")) == [live.name]


UNWRITABLE = ["the cache is a file", "a file holds its place", "read-only"]


def _run_on_cache(cache, runs, engine: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "sdmodel.cli", "run", "--model", str(MODELS / "decay.mdl"), "--fresh"]
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(cache), "SDMODEL_RUNS_DIR": str(runs)}
    return subprocess.run([*command, "--engine", engine], capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.mark.usefixtures("needs_compiler")
@pytest.mark.parametrize("where", UNWRITABLE)
def test_an_unwritable_cache_is_one_line_naming_it(where, tmp_path):
    """`--engine compiled` on a cache it cannot write: one line naming the folder and the way out, exit 2, no traceback
    (it was a traceback: NotADirectoryError, PermissionError)."""
    from paths import without_root_privileges

    blocker, runs = tmp_path / "blocker", tmp_path / "runs"
    blocker.write_text("a file")
    cache = {"the cache is a file": blocker, "a file holds its place": blocker / "cache"}.get(where, tmp_path / "cache")
    prefix = ()
    if where == "read-only":
        prefix = tuple(without_root_privileges())
        cache.mkdir()
        cache.chmod(0o555)
    try:
        result = _run_on_cache(cache, runs, "compiled", prefix)
    finally:
        if where == "read-only":
            cache.chmod(0o755)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"sdmodel: error: {cache}: cannot write the compiled engine's cache"), line
    assert "SDMODEL_CACHE_DIR" in line and blocker.read_text() == "a file"
    assert not runs.exists()


@pytest.mark.usefixtures("needs_compiler")
def test_fast_on_an_unwritable_cache_runs_on_simlin_with_a_note(tmp_path):
    """As where a tool is missing: the run is made on Simlin, and a note says why, naming the cache."""
    blocker, runs = tmp_path / "blocker", tmp_path / "runs"
    blocker.write_text("a file")
    result = _run_on_cache(blocker / "cache", runs, "fast")
    assert result.returncode == 0, result.stderr
    (note,) = result.stderr.strip().splitlines()
    assert note.startswith("sdmodel: note: --engine fast runs on simlin, as the compiled engine cannot: ")
    assert f"{blocker / 'cache'}: cannot write the compiled engine's cache" in note
    (saved,) = runs.iterdir()
    assert json.loads((saved / "manifest.json").read_text())["engine"] == "simlin"


@pytest.mark.parametrize("name", ["delay_fixed.mdl", "missing.mdl", "timecontrols.mdl"])
def test_a_model_simlin_refuses_is_refused_in_the_compiled_engines_name(name, tmp_path):
    """The compiled engine reads models through Simlin's engine, whose refusal named only 'the simlin engine' to a user
    who had asked for `--engine compiled`: one line now says why Simlin speaks, and still points to PySD."""
    from click.testing import CliRunner

    from sdmodel.cli import main

    ran = CliRunner().invoke(main, ["run", "--model", str(MODELS / name), "--engine", "compiled", "--runs-dir", str(tmp_path)])
    assert ran.exit_code == 2, ran.output
    line = ran.stderr.strip()
    assert "\n" not in line and "the compiled engine reads models through Simlin, and the simlin engine" in line, line
    assert "--engine pysd" in line and list(tmp_path.iterdir()) == []
