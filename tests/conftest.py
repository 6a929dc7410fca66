"""Shared fixtures. Full-model runs are expensive (seconds each), so the bundled
scenarios run once per session, to a short horizon, and tests read that result."""

from __future__ import annotations

import json

import pytest
from paths import SHORT_HORIZON, THRESHOLD_CRITERIA, THRESHOLD_SAMPLES, robustness_cli


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


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """One robustness run of tests/models/threshold.mdl through the command line: (its JSON, the runs folder).

    Read by tests/test_robustness.py (the study) and tests/test_discovery.py (discovery on it).
    """
    runs = tmp_path_factory.mktemp("runs")
    figure = tmp_path_factory.mktemp("figure") / "robustness.png"
    args = [f"--criterion={c}" for c in THRESHOLD_CRITERIA] + [
        "--samples",
        str(THRESHOLD_SAMPLES),
        "--json",
        "--plot",
        str(figure),
    ]
    result = robustness_cli(*args, runs_dir=runs)
    assert result.exit_code == 0, result.output
    return json.loads(result.output), runs
