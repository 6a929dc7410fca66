"""The results contract: one Dataset, named dims, documented variables, provenance."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from paths import MODELS

import sdmodel
from sdmodel import simulate
from sdmodel.locations import default_model, models_dir
from sdmodel.scenario import Scenario


def test_dataset_has_scenario_time_and_firm_dims(bundled_comparison):
    results, _ = bundled_comparison
    assert next(iter(results["scenario"].values)) == "baseline"
    assert {"scenario", "time", "Firm"} <= set(results.dims)
    assert list(results["Firm"].values) == ["incumbent", "challenger", "open"]
    assert results["model_capability"].dims == ("scenario", "time", "Firm")
    assert results["time"].values[0] == 2020 and results["time"].values[-1] == 2035


def test_every_variable_documented(bundled_comparison):
    results, _ = bundled_comparison
    for name, variable in results.data_vars.items():
        assert variable.attrs["long_name"], name
        assert variable.attrs["description"], name
        assert "units" in variable.attrs, name
    assert results["ai_revenue"].attrs["units"] == "billion USD/year"


def test_provenance(bundled_comparison):
    attrs = bundled_comparison[0].attrs
    assert attrs["model_sha256"] == __import__("hashlib").sha256(default_model().read_bytes()).hexdigest()
    assert attrs["engine"] == "simlin" and attrs["engine_version"] and attrs["pysd_version"] == __import__("pysd").__version__
    assert attrs["created"].endswith("Z") and attrs["command"] and attrs["history"]
    resolved = __import__("tomllib").loads(attrs["scenarios_toml"])["scenario"]
    strike = next(s for s in resolved if s["name"] == "strike-and-licensing")
    # extends resolved: the parent's licensing and the child's strike are both there
    assert strike["params"]["collective bargaining weight"] == 1 and strike["params"]["data strike fraction"] == 0.33
    assert strike["time"]["final_time"] == 2035


def test_pysd_prints_nothing_to_stdout(capfd):
    sdmodel.run(["baseline"], final_time=2021, jobs=1)
    out, _ = capfd.readouterr()
    assert out == ""


def test_translation_cached_outside_the_source_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    sdmodel.run(model=MODELS / "decay.mdl", jobs=1)
    assert list(models_dir().glob("*.py")) == []
    assert list(MODELS.glob("*.py")) == []
    assert len(list((tmp_path / "cache").glob("pysd-*/*/model.py"))) == 1  # one translation, named by content


def test_vensim_and_python_names_give_the_same_run():
    by_vensim = Scenario("a", params={"data strike fraction": 0.5})
    by_python = Scenario("b", params={"data_strike_fraction": 0.5})
    results = sdmodel.run([by_vensim, by_python], final_time=2030)
    xr.testing.assert_equal(results.sel(scenario="a", drop=True), results.sel(scenario="b", drop=True))


def test_one_subscript_element_and_a_time_series_can_be_set():
    scenario = Scenario(
        "redirected",
        params={"strike target[challenger]": 1.0, "data strike fraction": ((2020.0, 0.0), (2030.0, 0.6))},
    )
    results = sdmodel.run([scenario], final_time=2030).sel(scenario="redirected")
    assert results["strike_target"].values.tolist() == [1.0, 1.0, 0.0]  # the open model stays untargeted
    assert results["data_strike_fraction"].sel(time=2025).item() == pytest.approx(0.3)


def test_a_model_of_our_own_matches_its_analytic_solution():
    results = sdmodel.run(model=MODELS / "decay.mdl").sel(scenario="baseline")
    # Euler with step h on dS/dt = -S/T gives S(t) = S0 (1 - h/T)^(t/h)
    expected = 100 * (1 - 0.125 / 2) ** (results["time"].values / 0.125)
    np.testing.assert_allclose(results["stock"].values, expected, rtol=1e-12)


def test_final_time_option_changes_the_horizon_not_the_path(bundled_comparison):
    results, _ = bundled_comparison
    short = sdmodel.run(["baseline"], final_time=2025)
    xr.testing.assert_allclose(short["ai_capital"], results["ai_capital"].sel(scenario=["baseline"], time=short["time"]))


@pytest.mark.parametrize("engine", ["simlin", "pysd"])
def test_progress_counts_every_scenario_on_stderr(engine, capsys, monkeypatch):
    """PySD takes seconds per scenario: the API can say how far it has got (a bar on a terminal, its label here)."""
    sdmodel.run(["baseline", "data-strike"], engine=engine, final_time=2021, jobs=2, progress=True)
    assert f"2 scenarios on {engine}" in capsys.readouterr().err
    sdmodel.run(["baseline"], engine=engine, final_time=2021, jobs=1)  # by default, only on a terminal
    assert capsys.readouterr().err == ""
    counted = []
    monkeypatch.setattr(
        simulate,
        "progress_bar",
        lambda total, label, show: contextlib.nullcontext(SimpleNamespace(update=counted.append, relabel=lambda label: None)),
    )
    sdmodel.run(["baseline", "data-strike", "crawler-block"], engine=engine, final_time=2021, jobs=2)
    assert sum(counted) == 3  # each scenario once, as it finishes


def test_simlin_runs_scenarios_on_threads_with_the_same_results_as_one_by_one():
    """Simlin's scenarios run on one thread per core (it releases Python's lock while it runs): the same Dataset, in order."""
    scenarios = ["baseline", "data-strike", "windfall-tax", "crawler-block"]
    one = sdmodel.run(scenarios, engine="simlin", final_time=2030, jobs=1, command="test")
    threads = sdmodel.run(scenarios, engine="simlin", final_time=2030, jobs=4, command="test")
    for results in (one, threads):
        for stamped in ("created", "history"):  # the time of the run, to the second
            results.attrs.pop(stamped)
    xr.testing.assert_identical(one, threads)
    assert list(threads["scenario"].values) == scenarios


def test_of_scenarios_on_threads_the_first_that_fails_is_named():
    """A failure on a thread is raised as in a serial run: the first failing scenario, in the order given."""
    from sdmodel.engines import simlin as simlin_engine
    from sdmodel.errors import InputError, ModelRunError
    from sdmodel.scenario import RunSpec, Setting

    grid = {"final_time": 2022.0}
    specs = [
        RunSpec("baseline", (), grid),
        RunSpec("typo-a", (Setting("no_such_a", 1.0),), grid),
        RunSpec("typo-b", (Setting("no_such_b", 1.0),), grid),
    ]
    for jobs in (1, 3):
        with pytest.raises(InputError, match="typo-a.*no_such_a"):
            simlin_engine.run_scenarios(default_model(), specs, jobs=jobs)
    broken = [RunSpec("baseline", (), grid), RunSpec("broken", (Setting("hardware_life", 0.0),), grid)]  # unvalidated: NaN
    with pytest.raises(ModelRunError, match="scenario 'broken'"):
        simlin_engine.run_scenarios(default_model(), broken, jobs=2)


def test_prepare_hands_back_everything_a_run_needs():
    """One object carries the model, the validated scenarios, the model's metadata, its time grid and the engine."""
    from sdmodel.model import file_sha256

    prepared = simulate.prepare(["baseline", "data-strike"], final_time=2030, engine="simlin")
    assert prepared.model_path == default_model()
    assert [s.name for s in prepared.scenarios] == [spec.name for spec in prepared.specs] == ["baseline", "data-strike"]
    assert prepared.info.sha256 == file_sha256(default_model())
    assert prepared.engine.NAME == "simlin"
    assert prepared.grid["final_time"] == 2030
    assert prepared.grid["initial_time"] == prepared.time_defaults["initial_time"] < 2030
    assert {"data_strike_fraction", "model_capability"} <= set(prepared.info.variables)
    assert prepared.info == simulate.model_info(engine="simlin")
