"""The bundled model: its committed baseline reproduces the 2020-2025 reference series it was calibrated to.

(tests/test_calibrate.py tests the calibration tool, sdmodel.calibrate.)
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sdmodel
from sdmodel.calibrate import targets
from sdmodel.engines import simlin
from sdmodel.locations import default_model
from sdmodel.reference import bundled_series

SERIES_TOLERANCE = 0.25  # every point of every series (issue 12)
SHARE_TOLERANCE = 0.10  # the concentration of AI revenue, 2023-2025 (issue 12)


@pytest.fixture(scope="module")
def errors() -> dict[str, tuple[tuple[float, ...], np.ndarray]]:
    """Each series' relative errors, read as calibration reads them (a yearly flow as the year's average), so the test
    and the fit agree on what "2024" means."""
    chosen = targets(bundled_series(), simlin.model_info(default_model()), (2020, 2026))
    assert {t.series.name for t in chosen} >= {
        "frontier_training_compute",
        "big4_capex",
        "ai_lab_revenue",
        "chatgpt_weekly_users",
        "ai_revenue_concentration",
        "developer_ai_use",
    }
    results = sdmodel.run(["baseline"], engine="simlin", final_time=2026).sel(scenario="baseline")
    return {t.series.name: (t.years, t.modelled(results) / t.observed - 1) for t in chosen}


def _worst(years: tuple[float, ...], error: np.ndarray) -> tuple[float, float]:
    worst = int(np.argmax(np.abs(error)))
    return years[worst], float(error[worst])


def test_baseline_reproduces_every_point_of_history_within_25_percent(errors):
    for name, (years, error) in errors.items():
        year, worst = _worst(years, error)
        assert abs(worst) <= SERIES_TOLERANCE, f"{name} {year:g}: {worst:+.1%}"


def test_baseline_reproduces_the_concentration_of_revenue_within_10_percent(errors):
    """Read as the series is computed: the HHI of each firm's revenue for the calendar year."""
    year, worst = _worst(*errors["ai_revenue_concentration"])
    assert abs(worst) <= SHARE_TOLERANCE, f"ai_revenue_concentration {year:g}: {worst:+.1%}"


def test_a_yearly_flow_is_read_as_its_average_over_the_year():
    """Revenue growing 2x a year: the year's average is (2 - 1) / ln 2 = 1.443 times the flow on 1 January."""
    revenue = next(
        t
        for t in targets(bundled_series(), simlin.model_info(default_model()), (2020, 2026))
        if t.series.name == "ai_lab_revenue"
    )
    time = np.arange(2020, 2026.001, 1 / 32)
    results = xr.Dataset({revenue.variable: ("time", 2.0 ** (time - 2020))}, coords={"time": time})
    expected = 2.0 ** (np.array(revenue.years) - 2020) / np.log(2)
    np.testing.assert_allclose(
        revenue.modelled(results), expected, rtol=1e-3
    )  # linear interpolation between the 1/32-year points


def test_a_yearly_herfindahl_is_that_of_the_firms_revenue_for_the_year():
    """One firm sells 1 a year, the other 2^(t - 2020): the year's totals are 1 and 2^(y - 2020) / ln 2, and the HHI is
    theirs, (a^2 + b^2) / (a + b)^2, whatever the index was at each instant."""
    concentration = next(
        t
        for t in targets(bundled_series(), simlin.model_info(default_model()), (2020, 2026))
        if t.series.name == "ai_revenue_concentration"
    )
    time = np.arange(2020, 2026.001, 1 / 32)
    revenue = np.column_stack([np.ones_like(time), 2.0 ** (time - 2020), np.zeros_like(time)])
    results = xr.Dataset(
        {concentration.variable: (("time", "Firm"), revenue)}, coords={"time": time, "Firm": ["incumbent", "challenger", "open"]}
    )
    a, b = 1.0, 2.0 ** (np.array(concentration.years) - 2020) / np.log(2)
    np.testing.assert_allclose(concentration.modelled(results), (a**2 + b**2) / (a + b) ** 2, rtol=1e-3)
