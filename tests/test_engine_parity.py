"""The Simlin engine held to the PySD reference: same variables, same numbers, same metadata.

Every bundled scenario runs on both engines (to 2035, to keep PySD quick) and every
variable they share must agree to ``rtol=1e-6``; settings (scalars, one subscript
element, whole arrays, time series) and time controls must move both engines alike.

Each run is made twice and the two must be identical (:func:`twice`): Simlin 0.8.5 gave
different results on repeated runs of one subscript-transposition model, so an engine
upgrade that brings such a bug back fails here. PySD's runs of the bundled model are made
once (seconds each; the nondeterminism seen was Simlin's); every fixture's, twice.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import xarray as xr
from paths import MODELS, SHORT_HORIZON

from sdmodel.engines import pysd as pysd_engine
from sdmodel.engines import simlin as simlin_engine
from sdmodel.errors import InputError, ModelRunError
from sdmodel.locations import default_model
from sdmodel.scenario import RunSpec, Scenario, Setting, bundled_scenarios, load_scenario
from sdmodel.simulate import prepare

FINAL_TIME = SHORT_HORIZON
RTOL = 1e-6
STRIKE_SERIES = ((2022.0, 0.0), (2027.3, 0.4), (2031.0, 0.2))  # knots off the time grid, to test interpolation


def assert_parity(reference: xr.Dataset, fast: xr.Dataset) -> None:
    """Every variable in both Datasets: same dims, coords, attrs, and values within RTOL."""
    shared = [name for name in reference.data_vars if name in fast.data_vars]
    assert shared, "the engines share no variables"
    for name in shared:
        try:
            xr.testing.assert_allclose(reference[name], fast[name], rtol=RTOL)
        except AssertionError as error:
            raise AssertionError(f"'{name}' differs between PySD and Simlin:\n{error}") from None
        assert fast[name].attrs == reference[name].attrs, name
    assert fast["time"].attrs == reference["time"].attrs


def twice(engine, model, spec: RunSpec) -> xr.Dataset:
    """An engine's run of a scenario, made twice: any difference between the two runs fails the test."""
    first, second = engine.run(model, spec), engine.run(model, spec)
    try:
        xr.testing.assert_identical(first, second)
    except AssertionError as error:
        raise AssertionError(f"{engine.NAME} gave two different results for one run of {model}:\n{error}") from None
    return first


def both_twice(model, spec: RunSpec) -> tuple[xr.Dataset, xr.Dataset]:
    """PySD's and Simlin's runs of a fixture model, each made twice and compared with itself."""
    return twice(pysd_engine, model, spec), twice(simlin_engine, model, spec)


def run_both(scenario: str | Scenario, **options) -> tuple[xr.Dataset, xr.Dataset]:
    prepared = prepare([scenario], final_time=options.pop("final_time", FINAL_TIME), **options)
    model_path, (spec,) = prepared.model_path, prepared.specs
    return pysd_engine.run(model_path, spec), twice(simlin_engine, model_path, spec)


@functools.cache
def bundled_pair(name: str) -> tuple[xr.Dataset, xr.Dataset]:
    """PySD and Simlin results of a bundled scenario, run once per test session."""
    return run_both(load_scenario(name))


@pytest.mark.parametrize("name", bundled_scenarios())
def test_bundled_scenario_matches_pysd(name):
    reference, fast = bundled_pair(name)
    assert_parity(reference, fast)


def test_same_variables_coords_and_order_as_pysd():
    reference, fast = bundled_pair("baseline")
    assert list(fast.data_vars) == list(reference.data_vars)
    assert set(fast.coords) == set(reference.coords)  # the order of coordinates carries no meaning
    for name in reference.coords:
        assert list(fast[name].values) == list(reference[name].values), name
    assert fast.sizes == reference.sizes
    assert "time" not in fast["hardware_life"].dims  # constants have no time axis
    assert fast["initial_compute_capacity"].dims == ("Firm",)
    assert fast["compute_capacity"].dims == ("time", "Firm")
    assert float(fast["time"][-1]) == FINAL_TIME


def file_time_controls(model) -> dict[str, float]:
    """The time controls as written in a Vensim file, e.g. ``TIME STEP  = 0.0625``."""
    text = model.read_text()
    names = {"initial_time": "INITIAL TIME", "final_time": "FINAL TIME", "time_step": "TIME STEP", "saveper": "SAVEPER"}
    return {key: float(re.search(rf"^{name}\s*=\s*([-+0-9.eE]+)", text, re.MULTILINE)[1]) for key, name in names.items()}


def test_time_defaults_are_the_model_files():
    model = default_model()
    simlin_engine.run(model, RunSpec("short", (), {"final_time": 2023.0, "time_step": 0.125}))
    assert simlin_engine.time_defaults(model) == file_time_controls(model)
    assert simlin_engine.model_info(model) is pysd_engine.model_info(model)


def test_pysd_time_defaults_after_a_run_are_the_model_files():
    model = default_model()
    pysd_engine.run(model, RunSpec("short", (), {"final_time": 2021.0, "time_step": 0.125}))
    assert pysd_engine.time_defaults(model) == file_time_controls(model)


@pytest.mark.parametrize(
    "overrides",
    [
        {"data strike fraction": 0.5, "data strike start": 2025},  # scalars, by Vensim name
        {"initial_users[challenger]": 5e7},  # one element of a subscripted constant, by python name
        {"initial compute capacity": 1e18},  # a subscripted constant set as a whole
    ],
    ids=["scalars", "one-element", "whole-array"],
)
def test_setting_changes_the_result_as_in_pysd(overrides):
    reference, fast = run_both("baseline", overrides=overrides)
    assert_parity(reference, fast)
    _, fast_baseline = bundled_pair("baseline")
    moved = ~np.isclose(fast["revenue_share"], fast_baseline["revenue_share"], rtol=1e-3)
    assert moved.any(), "the setting did not change the Simlin run"


def test_fees_beyond_income_are_bounded_alike_in_both_engines():
    """Where fees to data producers exceed what revenue leaves (from 2021.25 in this case, found by the property
    test), both engines pay the same share: the bound's ZIDZ inside IF THEN ELSE is not held to PySD elsewhere."""
    from test_properties import UNPAYABLE_EVAL_FEES

    reference, fast = run_both(Scenario("unpayable-fees", params=UNPAYABLE_EVAL_FEES), final_time=2024)
    assert float(fast["paid_share_of_data_fees"].min()) < 1  # the bound binds in this run
    assert_parity(reference, fast)


def test_time_series_setting_matches_pysd():
    scenario = Scenario(name="strike-ramp", params={"data strike fraction": STRIKE_SERIES, "data strike start": 2021.0})
    reference, fast = run_both(scenario)
    assert_parity(reference, fast)
    assert fast["data_strike_fraction"].dims == ("time",)
    assert float(fast["data_strike_fraction"].sel(time=2030)) == pytest.approx(np.interp(2030, *zip(*STRIKE_SERIES)))


def test_time_series_on_one_element_changes_only_that_element():
    prepared = prepare(
        [Scenario(name="ramp-one", params={"strike target[challenger]": STRIKE_SERIES, "data strike fraction": 0.3})],
        final_time=FINAL_TIME,
    )
    model_path, (spec,) = prepared.model_path, prepared.specs
    target = simlin_engine.run(model_path, spec)["strike_target"]
    as_written = simlin_engine.run(model_path, RunSpec("baseline", (), spec.time))["strike_target"]
    assert target.dims == ("time", "Firm")
    assert (target.sel(Firm="incumbent") == as_written.sel(Firm="incumbent")).all()
    assert float(target.sel(Firm="challenger", time=2035)) == pytest.approx(0.2)


def test_time_series_on_one_element_matches_pysd():
    scenario = Scenario(name="ramp-one", params={"strike target[challenger]": STRIKE_SERIES, "data strike fraction": 0.3})
    assert_parity(*run_both(scenario))


def test_time_controls_match_pysd():
    model = default_model()
    grid = {"initial_time": 2024.0, "final_time": 2031.0, "time_step": 0.125, "saveper": 0.5}
    spec = RunSpec("grid", (Setting("data_strike_fraction", 0.33),), grid)
    reference, fast = pysd_engine.run(model, spec), twice(simlin_engine, model, spec)
    assert_parity(reference, fast)
    assert fast["time"].values.tolist() == np.arange(2024.0, 2031.25, 0.5).tolist()


def test_settings_do_not_persist_between_runs():
    model = default_model()
    baseline = RunSpec("baseline", (), {"final_time": 2030.0})
    before = simlin_engine.run(model, baseline)
    strike = (Setting("data_strike_fraction", 0.9), Setting("data_strike_start", 2021.0))
    simlin_engine.run(model, RunSpec("strike", strike, {"final_time": 2030.0}))
    xr.testing.assert_identical(simlin_engine.run(model, baseline), before)


def test_non_finite_values_raise_model_run_error():
    spec = RunSpec("broken", (Setting("hardware_life", 0.0),), {"final_time": 2022.0})  # unvalidated: below the model's limits
    with pytest.raises(ModelRunError, match=r"scenario 'broken': .* became NaN or infinite at time 2020\.25"):
        simlin_engine.run(default_model(), spec)


def test_unknown_setting_raises_input_error():
    with pytest.raises(InputError, match="no_such_constant"):
        simlin_engine.run(default_model(), RunSpec("typo", (Setting("no_such_constant", 1.0),), {}))


@pytest.mark.parametrize("content, suffix", [(None, ".mdl"), ("this is not a model (((", ".mdl"), ("x = 1", ".txt")])
def test_bad_model_file_raises_one_line_input_error(tmp_path, content, suffix):
    path = tmp_path / f"model{suffix}"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as caught:
        simlin_engine.run(path, RunSpec("baseline", (), {}))
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_decay_fixture_matches_pysd():
    model = MODELS / "decay.mdl"
    spec = RunSpec("baseline", (Setting("lifetime", 3.0),), {})
    assert simlin_engine.time_defaults(model) == file_time_controls(model)
    assert_parity(*both_twice(model, spec))


@pytest.mark.parametrize("model", ["overflow.mdl", "overflow_float.mdl"])
def test_overflow_fixture_raises_model_run_error(model):
    with pytest.raises(ModelRunError, match=r"'Stock' became NaN or infinite at time \d+"):
        simlin_engine.run(MODELS / model, RunSpec("baseline", (), {}))


@pytest.mark.parametrize("model", ["logistic.mdl", "logistic.xmile", "regions.mdl", "constants.mdl"])
def test_own_fixture_models_match_pysd(model):
    path = MODELS / model
    if not path.is_file():
        pytest.skip(f"{model} is not among the test models")
    spec = RunSpec("baseline", (), {})
    reference, fast = both_twice(path, spec)
    assert_parity(reference, fast)
    assert list(fast.data_vars) == list(reference.data_vars)


def test_delay_fixed_is_refused_not_approximated():
    """Simlin 0.8 runs DELAY FIXED as a first-order delay (bpowers/simlin#346); PySD's pipeline is right."""
    model = MODELS / "delay_fixed.mdl"
    shipments = pysd_engine.run(model, RunSpec("baseline", (), {}))["shipments"]
    assert float(shipments.sel(time=3.5)) == 0 and float(shipments.sel(time=4.5)) == 10  # the reference is a pipeline
    with pytest.raises(InputError, match=r"DELAY FIXED .*--engine pysd") as caught:
        simlin_engine.run(model, RunSpec("baseline", (), {}))
    assert "\n" not in str(caught.value)


def test_broken_fixture_raises_input_error():
    with pytest.raises(InputError, match="broken.mdl"):
        simlin_engine.run(MODELS / "broken.mdl", RunSpec("baseline", (), {}))


def test_fixture_model_with_spaced_elements_matches_pysd():
    """tests/models/spaced_elements.mdl: a three-element subscript with spaces and capitals, a quoted name,
    per-element constants. Two stocks: with a single arrayed stock, PySD keeps the state as an object array."""
    model = MODELS / "spaced_elements.mdl"
    spec = RunSpec(
        "fixture",
        (Setting("initial_tasks", 7.0, ("Domain", "Writing Media")), Setting("multiplier", 2.0), Setting("base_rate", 0.15)),
        {},
    )
    reference, fast = both_twice(model, spec)
    assert_parity(reference, fast)
    assert list(fast.data_vars) == list(reference.data_vars)
    assert fast["initial_tasks"].sel(Domain="Writing Media") == 7.0
    assert "oddname_x" in fast


def test_a_run_that_differs_from_itself_fails():
    """The guard itself: an engine whose second run differs (as Simlin 0.8.5's did) fails :func:`twice`."""
    import types

    runs = iter([1.0, 1.0 + 1e-12])
    flaky = types.SimpleNamespace(NAME="flaky", run=lambda model, spec: xr.Dataset({"stock": ("time", [next(runs)])}))
    with pytest.raises(AssertionError, match="flaky gave two different results"):
        twice(flaky, "model.mdl", RunSpec("baseline", (), {}))
