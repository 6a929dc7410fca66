"""Capital and data both buy capability, and nothing in the model grows without bound.

The core claim of the argument is a trade-off between capital and data leverage, so both must have
bite: across parameter sets drawn from the documented ranges of models/assumptions.toml, a firm given
50% more outside investment from 2025 has a better model in 2040, and a firm that loses 30% of its new
user data from 2025 has a worse one. And every quantity that scaling laws could push without limit
stays under a named limit: the algorithmic ceiling, the data-constrained scaling law's ceilings on the
worth of repeated data and excess parameters (Muennighoff et al. 2023), and the cap on what synthetic
data can add (model collapse). Run on Simlin, which tests/test_engine_parity.py holds to PySD.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sdmodel
from sdmodel.locations import models_dir
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import Scenario, bundled_scenarios

FIRMS = ("incumbent", "challenger")
SAMPLES = 200
FUNDED_AT_LEAST = 0.95  # the share of draws in which a firm must be funded, so that the investment claim is tested on most


def _targeting(firm: str) -> dict[str, float]:
    return {f"strike target[{other}]": float(other == firm) for other in FIRMS}


def _levers() -> list[Scenario]:
    scenarios = [Scenario("as-drawn")]
    for firm in FIRMS:
        scenarios.append(
            Scenario(f"invest-{firm}", params={f"extra investment share[{firm}]": 0.5, "extra investment start": 2025})
        )
        scenarios.append(
            Scenario(f"data-{firm}", params={"data strike fraction": 0.3, "data strike start": 2025, **_targeting(firm)})
        )
    return scenarios


@pytest.fixture(scope="module")
def drawn() -> xr.Dataset:
    """200 Latin-hypercube draws of the model's main assumptions, each run with and without each lever."""
    return sdmodel.uncertainty(
        models_dir() / "assumptions.toml",
        _levers(),
        samples=SAMPLES,
        seed=12,
        outputs=["model capability", "captured user data", "outside investment"],
        setup=RunSetup(final_time=2040),
        execution=Execution(jobs=1, progress=False),
    )


def test_more_investment_buys_a_firm_a_better_model_in_every_draw(drawn):
    """In every draw where backers fund the firm at all. A firm nobody invests in cannot be given 50% more: at the top
    of share sensitivity's range, a challenger that launches far behind can win too few users to be valued and get
    nothing from 2025 on (models/README.md counts those draws); they may be a few, never most."""
    capability = drawn["model_capability"].sel(time=2040)
    assert not bool(drawn["failed"].any())
    for firm in FIRMS:
        invested = _invested(drawn, firm)
        funded = invested.sel(scenario="as-drawn") > 0
        print(f"{firm}: funded from 2025 in {int(funded.sum())} of {SAMPLES} draws")
        assert int(funded.sum()) >= FUNDED_AT_LEAST * SAMPLES, f"{firm}: funded in only {int(funded.sum())} of {SAMPLES} draws"
        more = invested.sel(scenario=f"invest-{firm}") > invested.sel(scenario="as-drawn")
        assert bool(more.where(funded, True).all()), f"{firm}: 50% more investment did not raise what it received"
        gain = (capability.sel(scenario=f"invest-{firm}", Firm=firm) / capability.sel(scenario="as-drawn", Firm=firm) - 1).where(
            funded
        )
        assert bool((gain > 0).where(funded, True).all()), (
            f"{firm}: {int((gain <= 0).sum())} of {SAMPLES} draws gain nothing from 50% more investment"
        )


def test_losing_user_data_costs_a_firm_capability_in_every_draw(drawn):
    capability = drawn["model_capability"].sel(time=2040)
    for firm in FIRMS:
        data = drawn["captured_user_data"].sel(Firm=firm, time=2040)
        assert bool((data.sel(scenario=f"data-{firm}") < data.sel(scenario="as-drawn")).all())
        loss = capability.sel(scenario=f"data-{firm}", Firm=firm) / capability.sel(scenario="as-drawn", Firm=firm) - 1
        assert bool((loss < 0).all()), f"{firm}: {int((loss >= 0).sum())} of {SAMPLES} draws lose nothing with 30% less user data"


def _invested(drawn: xr.Dataset, firm: str) -> xr.DataArray:
    """Outside investment the firm received from 2025 to 2040 (saved quarterly)."""
    flow = drawn["outside_investment"].sel(Firm=firm, time=slice(2025, 2040 - 0.25))
    return flow.sum("time") * 0.25


def capability_elasticities(drawn: xr.Dataset, firm: str = "incumbent") -> dict[str, np.ndarray]:
    """Elasticity of 2040 capability to outside investment and to captured user data, per draw (arc elasticities)."""
    at = drawn.sel(time=2040, Firm=firm)
    base = at.sel(scenario="as-drawn")
    capability = at["model_capability"] / base["model_capability"] - 1
    investment = _invested(drawn, firm)
    invest_change = investment.sel(scenario=f"invest-{firm}") / investment.sel(scenario="as-drawn") - 1
    data_change = at["captured_user_data"].sel(scenario=f"data-{firm}") / base["captured_user_data"] - 1
    return {
        "investment": (capability.sel(scenario=f"invest-{firm}") / invest_change).values,
        "user data": (capability.sel(scenario=f"data-{firm}") / data_change).values,
    }


def test_report_the_elasticities(drawn):
    """Not a threshold: prints the elasticities models/README.md reports (`pytest -rP`), and checks they are finite."""
    for name, values in capability_elasticities(drawn).items():
        assert np.isfinite(values).all()
        low, median, high = np.percentile(values, [5, 50, 95])
        print(
            f"\nelasticity of 2040 capability to {name}: median {median:.3f}, 5-95% {low:.3f} to {high:.3f}, min {values.min():.3f}"
        )


# --- limits: what scaling cannot push past ---

LIMITED = [
    "algorithmic efficiency",
    "effective training tokens",
    "unique training tokens",
    "effective parameters",
    "parameters for unique data",
    "excess parameter half life",
    "effective synthetic data",
    "clean human data",
    "model parameters",
    "training compute",
]  # the drawn constants are coordinates of the draws


def check_limits(results: xr.Dataset) -> None:
    """Each named limit of the scaling sector holds at every saved time."""
    r = results
    tolerance = 1 + 1e-9
    # better algorithms approach a ceiling of 10^headroom (Gompertz), never beyond
    assert bool((r["algorithmic_efficiency"] <= tolerance * 10 ** r["algorithmic_efficiency_headroom"]).all()), (
        "algorithmic ceiling"
    )
    # repeated data is worth at most 1 + R_D* times the unique data (Muennighoff et al. 2023)
    assert bool(
        (r["effective_training_tokens"] <= tolerance * (1 + r["repetition_half_life"]) * r["unique_training_tokens"]).all()
    ), "repeated data"
    # excess parameters are worth at most 1 + R_N* times those the unique data can use
    assert bool(
        (r["effective_parameters"] <= tolerance * (1 + r["excess_parameter_half_life"]) * r["parameters_for_unique_data"]).all()
    ), "excess parameters"
    # synthetic data adds at most its quality times the human data (model collapse without real data)
    assert bool((r["effective_synthetic_data"] <= tolerance * r["synthetic_data_quality"] * r["clean_human_data"]).all()), (
        "synthetic data"
    )
    # a model is never bigger than its run's compute allows: C = 6 N D with D at least one token
    assert bool((6 * r["model_parameters"] <= tolerance * r["training_compute"]).all()), "parameters within compute"


def test_no_bundled_scenario_breaks_a_scaling_limit():
    results = sdmodel.run(bundled_scenarios(), engine="simlin")
    check_limits(results)
    # and the limits bind: by 2050 data is repeated in the baseline, so the ceilings are not vacuous
    assert float(results["data_repetitions"].sel(scenario="baseline", Firm="incumbent").isel(time=-1)) > 1


def test_no_drawn_parameter_set_breaks_a_scaling_limit():
    drawn = sdmodel.uncertainty(
        models_dir() / "assumptions.toml",
        ["baseline"],
        samples=SAMPLES,
        seed=3,
        outputs=LIMITED,
        execution=Execution(jobs=1, progress=False),
    )
    assert {"algorithmic_efficiency_headroom", "repetition_half_life", "synthetic_data_quality"} <= set(drawn.coords)
    check_limits(drawn.sel(scenario="baseline"))


def test_capability_is_one_for_the_reference_run_whatever_the_scaling_constants():
    """The capability index is normalised from the model's own constants: a compute-optimal run at the reference
    compute (GPT-3's) scores exactly 1, whatever the Chinchilla exponents (the shipped model hard-coded the loss)."""
    probe = sdmodel.run(["baseline"], engine="simlin", final_time=2021).sel(scenario="baseline").isel(time=0)
    capacity = float(
        probe["reference_training_compute"] / probe["run_flop_per_unit_of_capacity"]
    )  # a 2020 run of exactly that compute
    exponents = ((0.2, 0.2), (0.5, 0.5), (0.34, 0.28), (0.25, 0.45))
    scenarios = [
        Scenario(
            f"exponents-{alpha}-{beta}",
            params={"chinchilla alpha": alpha, "chinchilla beta": beta, "initial compute capacity[incumbent]": capacity},
        )
        for alpha, beta in exponents
    ]
    results = sdmodel.run(scenarios, engine="simlin", final_time=2021).isel(time=0)
    np.testing.assert_allclose(results["model_capability"].sel(Firm="incumbent").values, 1.0, rtol=1e-9)
    losses = results["reference_reducible_loss"].values
    assert len(set(np.round(losses, 6))) == len(exponents)  # the reference itself moves with the constants
