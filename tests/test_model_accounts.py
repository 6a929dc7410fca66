"""Money that adds up: the national accounts close at every step, investment comes out of what backers
hold, and revenue goes only to firms whose users and models earn it.

National income is computed twice in the model, from the production side (the rest of the economy,
the domains' work at 2020 wages plus reinstated tasks, AI services sold to consumers) and from the
income side (wages, data producers, transfers, AI operators, capital owners with adopters' savings,
public saving); the two must agree at every step, in every bundled scenario and in parameter sets drawn
from models/assumptions.toml. Run on Simlin, which tests/test_engine_parity.py holds to PySD.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from paths import model_step

import sdmodel
from sdmodel.locations import models_dir
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import Scenario, bundled_scenarios

STEP = model_step()  # saved at every step, so each step's change can be checked
EVERY_STEP = {"saveper": STEP}


def assert_accounts_close(results: xr.Dataset) -> None:
    np.testing.assert_allclose(results["income_received"], results["national_income"], rtol=1e-9)


def assert_investment_within_backers_wealth(results: xr.Dataset) -> None:
    """What backers put in over a step never exceeds what they hold, and their wealth changes by exactly its flows
    (income in; investment in the firms, patrons' spending on the open model and payouts out)."""
    wealth = results["backer_wealth"]
    assert float(wealth.min()) >= 0
    invested = results["backer_investment"].sum("Firm")
    assert bool((invested * STEP <= wealth * (1 + 1e-12)).all())
    change = results["backer_income"] - invested - results["total_patron_funding"] - results["backer_payouts"]
    np.testing.assert_allclose(
        wealth.diff("time").values,
        STEP * change.isel(time=slice(None, -1)).values,
        rtol=1e-9,
        atol=1e-9 * float(abs(wealth).max()),
    )


def test_accounts_close_and_backers_fund_investment_in_every_bundled_scenario():
    results = sdmodel.run([s for s in bundled_scenarios()], engine="simlin", final_time=2050)
    for name in results["scenario"].values:
        assert_accounts_close(results.sel(scenario=name))
    stepwise = sdmodel.run([Scenario("baseline-every-step", time=EVERY_STEP)], engine="simlin").sel(
        scenario="baseline-every-step"
    )
    assert_investment_within_backers_wealth(stepwise)
    # the accounts are not closed by construction: adopters' savings are a real share of income by 2050
    assert float(stepwise["adopter_savings"].isel(time=-1)) > 0.01 * float(stepwise["national_income"].isel(time=-1))


def test_accounts_close_in_drawn_parameter_sets():
    outputs = [
        "national income",
        "income received",
        "backer wealth",
        "backer investment",
        "backer income",
        "backer payouts",
        "total patron funding",
    ]
    drawn = sdmodel.uncertainty(
        models_dir() / "assumptions.toml",
        [Scenario("drawn", time=EVERY_STEP)],
        samples=50,
        seed=5,
        outputs=outputs,
        setup=RunSetup(final_time=2040),
        execution=Execution(jobs=1, progress=False),
    ).sel(scenario="drawn")
    assert not bool(drawn["failed"].any())
    for run in range(drawn.sizes["run"]):
        member = drawn.isel(run=run)
        assert_accounts_close(member)
        assert_investment_within_backers_wealth(member)


def test_other_capital_accumulates_reinvested_income():
    results = sdmodel.run(["baseline"], engine="simlin").sel(scenario="baseline")
    stock = results["other_capital_stock"]
    assert float(abs(stock.isel(time=1) / stock.isel(time=0) - 1)) < 1e-6  # steady in 2020, as stated
    assert float(stock.isel(time=-1)) > float(stock.isel(time=0))  # adopters' savings are reinvested


def test_a_firm_with_no_users_and_no_model_earns_nothing():
    nothing = {
        "initial compute capacity[challenger]": 0.0,
        "initial users[challenger]": 0.0,
        "initial financial capital[challenger]": 0.0,
    }
    results = sdmodel.run([Scenario("no-challenger", params=nothing)], engine="simlin").sel(
        scenario="no-challenger", Firm="challenger"
    )
    assert float(abs(results["model_capability"]).max()) == 0
    assert float(abs(results["ai_users"]).max()) == 0
    assert float(abs(results["ai_revenue"]).max()) == 0
    assert float(abs(results["outside_investment"]).max()) == 0  # investors see nothing to price
