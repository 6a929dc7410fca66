"""Shared fixtures. Full-model runs are expensive (seconds each), so the bundled
scenarios run once per session, to a short horizon, and tests read that result."""

from __future__ import annotations

import pytest
from paths import SHORT_HORIZON


@pytest.fixture(autouse=True)
def isolated_runs_dir(tmp_path, monkeypatch):
    """Every test saves into its own runs folder, never the developer's ./runs."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("SDMODEL_RUNS_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def bundled_comparison():
    """(results, metrics) of every bundled scenario against baseline, to the short horizon.

    Run on Simlin: tests/test_engine_parity.py holds it to PySD on every bundled scenario,
    and fourteen PySD runs of the full model would cost minutes.
    """
    from sdmodel.metrics import compare

    return compare(final_time=SHORT_HORIZON, engine="simlin")
