"""The model against theory and against baseline runs: each lever moves its target the way the
argument says, money is conserved between firms and data producers, and nothing goes negative."""

from __future__ import annotations

import numpy as np
import pytest

import sdmodel
from sdmodel.scenario import Scenario, load_scenario

STOCKS = ["compute_capacity", "hardware_value", "ai_users", "public_human_data", "harvested_public_data",
          "captured_user_data", "deletable_captured_data", "financial_capital", "data_producer_income"]


def _metric(metrics, scenario, key, measure="vs_baseline"):
    return float(metrics[key].sel(scenario=scenario, measure=measure))


def test_data_strike_lowers_incumbent_capability_and_revenue_share(bundled_comparison):
    _, metrics = bundled_comparison
    for scenario in ("data-strike", "data-strike-deletion"):
        assert _metric(metrics, scenario, "incumbent_capability") < 0
        assert _metric(metrics, scenario, "incumbent_revenue_share") < 0
    # erasing past data on top of withholding new data hurts the incumbent more
    assert _metric(metrics, "data-strike-deletion", "incumbent_capability") < _metric(metrics, "data-strike", "incumbent_capability")


def test_collective_licensing_pays_producers_and_lowers_incumbent_capital(bundled_comparison):
    _, metrics = bundled_comparison
    assert _metric(metrics, "baseline", "producer_payments_cumulative", "final") == 0
    for scenario in ("collective-licensing", "strike-and-licensing"):
        assert _metric(metrics, scenario, "producer_payments_cumulative") > 0
        assert _metric(metrics, scenario, "incumbent_capital") < 0


def test_levers_do_nothing_before_they_start(bundled_comparison):
    results, _ = bundled_comparison
    before = results.sel(time=slice(None, 2027 - 0.25))
    for scenario in results["scenario"].values:
        np.testing.assert_array_equal(before["ai_capital"].sel(scenario=scenario), before["ai_capital"].sel(scenario="baseline"))


def test_stocks_never_negative_and_all_values_finite(bundled_comparison):
    results, _ = bundled_comparison
    for name in STOCKS:
        assert float(results[name].min()) >= 0, name
    for name, variable in results.data_vars.items():
        assert np.isfinite(variable.values).all(), name


def test_money_paid_by_firms_is_money_received_by_producers():
    """Euler integration: the producers' stock grows by exactly dt times what firms pay, each step."""
    scenario = load_scenario("collective-licensing").with_overrides({}, {"saveper": 0.0625}, "test")
    results = sdmodel.run([scenario], final_time=2032).sel(scenario="collective-licensing")
    paid_by_firms = results["licence_payments"].sum("Firm").values[:-1] * 0.0625
    received = np.diff(results["data_producer_income"].values)
    np.testing.assert_allclose(received, paid_by_firms, rtol=1e-12, atol=0)
    assert received.sum() > 0


def test_full_strike_cuts_the_incumbents_new_data_to_zero():
    scenario = Scenario("full-strike", params={"data strike fraction": 1.0, "data strike start": 2025})
    results = sdmodel.run([scenario], final_time=2030).sel(scenario="full-strike")
    after = results.sel(time=slice(2025, None))
    assert float(abs(after["data_capture"].sel(Firm="incumbent")).max()) == 0
    assert float(abs(after["public_data_harvest"].sel(Firm="incumbent")).max()) == 0
    assert float(after["data_capture"].sel(Firm="challenger").min()) > 0  # the challenger is not struck


def test_full_strike_with_deletion_erases_the_incumbents_public_data():
    scenario = Scenario("erase", params={"data strike fraction": 1.0, "data strike start": 2024, "strike deletion share": 1.0})
    results = sdmodel.run([scenario], final_time=2032).sel(scenario="erase")
    held = results["harvested_public_data"].sel(Firm="incumbent")
    assert float(held.sel(time=2032)) < 1e-3 * float(held.sel(time=2024))


@pytest.mark.slow
def test_halving_the_time_step_moves_key_outputs_under_one_percent():
    from sdmodel.metrics import compare_metrics

    names = ["baseline", "data-strike", "collective-licensing"]
    coarse = compare_metrics(sdmodel.run(names))
    fine_scenarios = [load_scenario(n).with_overrides({}, {"time_step": 0.03125}, "test") for n in names]
    fine = compare_metrics(sdmodel.run(fine_scenarios))
    for key in coarse.data_vars:
        a, b = coarse[key].sel(measure="final"), fine[key].sel(measure="final")
        scale = np.maximum(abs(b), 1e-9)
        assert float((abs(a - b) / scale).max()) <= 0.01, key
