"""The comparison's measures (sdmodel/metrics.py): each measure's final value and change from the baseline, the
measures a model lacks left out, its JSON and its table (columns under their groups), and numbers as a reader reads
them. The comparison of the bundled scenarios is tests/test_model_behaviour.py's; `sdmodel compare` as a command,
tests/test_cli.py's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from sdmodel.cli import main
from sdmodel.errors import InputError
from sdmodel.metrics import METRIC_BY_KEY, METRICS, compare_metrics, format_number, format_table, to_json


def test_compare_prints_a_table_with_differences(isolated_runs_dir):
    result = CliRunner().invoke(main, ["compare", "data-strike", "--final-time", "2030"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    groups, header = lines[0], lines[1]
    assert header.split()[0] == "scenario" and [line.split()[0] for line in lines[3:5]] == ["baseline", "data-strike"]
    assert "(" not in lines[3] and lines[4].count("(") == len(METRICS)  # changes shown against the baseline
    for metric in METRICS:
        assert metric.short in header
        # each column stands under its group's name: the target firm, the market, or AI against labour
        column = header.index(f" {metric.short}") + len(metric.short)
        start = groups.index(metric.group)
        left, right = groups.rfind("  ", 0, start), groups.find("  ", start + len(metric.group))
        assert left < column <= (right if right >= 0 else len(groups)), (metric.short, metric.group)
        assert any(line.strip().startswith(f"{metric.short}: {metric.label}") for line in lines), metric.label
    assert "saved " in lines[-1]


def toy_results() -> xr.Dataset:
    """Two measures of the comparison (hhi, labour share) over three years, and capability for the challenger only."""
    scenarios, time = ["baseline", "lever"], [2020.0, 2021.0, 2022.0]
    return xr.Dataset(
        {
            "revenue_concentration_index": (("scenario", "time"), [[0.5, 0.5, 0.4], [0.5, 0.3, 0.25]], {"units": "Dmnl"}),
            "labour_share": (("scenario", "time"), [[0.6, 0.6, 0.6], [0.6, 0.62, math.nan]], {"units": "Dmnl"}),
            "model_capability": (("scenario", "time", "Firm"), np.ones((2, 3, 1)), {"units": "Dmnl"}),
        },
        coords={"scenario": scenarios, "time": time, "Firm": ["challenger"]},
    )


def test_compare_metrics_reads_the_final_value_and_its_change():
    metrics = compare_metrics(toy_results())
    assert list(metrics.data_vars) == ["hhi", "labour_share"]  # no incumbent in the results: no incumbent measure
    assert metrics["hhi"].sel(scenario="lever", measure="final").item() == 0.25
    assert metrics["hhi"].sel(scenario="lever", measure="vs_baseline").item() == pytest.approx(-0.15)
    assert metrics["hhi"].sel(scenario="baseline", measure="vs_baseline").item() == 0
    assert metrics.attrs == {"baseline": "baseline", "time": 2022.0}
    against_lever = compare_metrics(toy_results(), baseline="lever")
    assert against_lever["hhi"].sel(scenario="baseline", measure="vs_baseline").item() == pytest.approx(0.15)


def test_compare_metrics_refuses_a_missing_baseline_and_a_model_without_measures():
    with pytest.raises(InputError, match="is not among the scenarios run"):
        compare_metrics(toy_results(), baseline="nobody")
    with pytest.raises(InputError, match="none of the comparison's variables"):
        compare_metrics(toy_results()[["model_capability"]])


def test_to_json_gives_no_number_where_there_is_none():
    summary = to_json(compare_metrics(toy_results()), "runs/x")
    assert summary["run"] == "runs/x" and summary["time"] == 2022.0
    assert summary["scenarios"]["lever"]["labour_share"] == {"final": None, "vs_baseline": None}  # NaN is not JSON
    assert summary["scenarios"]["lever"]["hhi"] == {"final": 0.25, "vs_baseline": pytest.approx(-0.15)}
    assert summary["metrics"]["hhi"]["group"] == METRIC_BY_KEY["hhi"].group and summary["metrics"]["hhi"]["units"] == "Dmnl"


def test_format_table_of_a_model_with_some_measures():
    lines = format_table(compare_metrics(toy_results())).splitlines()
    assert lines[1].split() == ["scenario", "HHI", "labour", "share"]
    assert lines[3].split() == ["baseline", "0.4", "0.6"] and lines[4].split()[:3] == ["lever", "0.25", "(-0.15)"]
    assert "At 2022; in brackets, the change from 'baseline'." in lines
    assert "  HHI: Herfindahl index of AI revenue (0-1) [index]" in lines


@pytest.mark.parametrize(
    "value, sign, shown",
    [
        (1234.5, False, "1,234"),
        (999.4, True, "+999"),
        (0.000123456, False, "0.000123"),
        (999.5, False, "1,000"),  # rounds to a thousand: written out, never 1e+03 (it was)
        (-999.95, True, "-1,000"),
    ],
)
def test_format_number_keeps_three_significant_digits_or_writes_thousands_out(value, sign, shown):
    assert format_number(value, sign) == shown
