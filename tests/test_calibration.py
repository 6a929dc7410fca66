"""The committed baseline reproduces the 2020-2025 reference series it was calibrated to."""

from __future__ import annotations

import re

import numpy as np

import sdmodel
from sdmodel.reference import bundled_series


def test_baseline_reproduces_history():
    results = sdmodel.run(["baseline"], engine="simlin", final_time=2025).sel(scenario="baseline")
    fitted = [s for s in bundled_series() if s.variable and any(2020 <= year <= 2025 for year in s.values)]
    assert {s.name for s in fitted} >= {"frontier_training_compute", "big4_capex", "ai_lab_revenue", "chatgpt_weekly_users"}
    for series in fitted:
        name, element = re.match(r"^(.*?)(?:\[(.*)\])?$", series.variable).groups()
        variable = results[re.sub(r"\s+", "_", name.strip().lower())]
        if element:
            variable = variable.sel({variable.dims[-1]: element})
        years = sorted(y for y in series.values if 2020 <= y <= 2025)
        errors = np.interp(years, results["time"], variable) / np.array([series.values[y] for y in years]) - 1
        assert np.mean(np.abs(errors)) <= 0.25, series.name  # each series within 25% on average
        assert np.max(np.abs(errors)) <= 0.30, series.name  # and no year off by more than 30%
