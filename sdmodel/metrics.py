"""Outcome measures of economic power, and the comparison of scenarios against a baseline.

Each metric is one model variable, read at the final time (and for one firm where
the variable has a firm axis), so a metric always means what the model documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sdmodel.errors import InputError
from sdmodel.model import with_units
from sdmodel.scenario import Scenario, bundled_scenarios, load_scenario, with_baseline

if TYPE_CHECKING:  # imported where used: describe reads the measures without xarray
    import xarray as xr


#: what a lever does, read in three places (issue 13): to the firm it targets, to the market, and to AI
#: operators as a whole against workers and data producers. A lever aimed at one firm can strengthen AI as a
#: whole (its rival gains), so the three are shown apart rather than summed into one verdict.
TARGET, MARKET, SOCIETY = "target firm (incumbent)", "market", "AI operators vs labour and data producers"
GROUPS = (TARGET, MARKET, SOCIETY)


@dataclass(frozen=True)
class Metric:
    key: str
    variable: str
    label: str
    short: str  # a column title for the table
    select: dict[str, str] = field(default_factory=dict)
    group: str = SOCIETY  # one of GROUPS


METRICS = (  # in the order of GROUPS, so each group's columns stand together
    Metric(
        "incumbent_capability",
        "model_capability",
        "Incumbent's capability (2020 frontier = 1)",
        "capability",
        {"Firm": "incumbent"},
        TARGET,
    ),
    Metric(
        "incumbent_revenue_share",
        "revenue_share",
        "Incumbent's share of AI revenue",
        "revenue share",
        {"Firm": "incumbent"},
        TARGET,
    ),
    Metric(
        "incumbent_capital_share",
        "capital_share",
        "Incumbent's share of AI capital",
        "capital share",
        {"Firm": "incumbent"},
        TARGET,
    ),
    Metric("incumbent_capital", "ai_capital", "Incumbent's AI capital", "capital", {"Firm": "incumbent"}, TARGET),
    Metric("hhi", "revenue_concentration_index", "Herfindahl index of AI revenue (0-1)", "HHI", group=MARKET),
    Metric("ai_capital_share", "ai_capital_share_of_total", "AI operators' share of all capital", "AI capital share"),
    Metric("labour_share", "labour_share", "Labour share of income", "labour share"),
    # What firms pay data producers for their data (royalties, evaluation fees), apart from what the public
    # spends on the commons: a royalty is a price for data, a grant is a transfer; a reader weighing a lever needs each.
    Metric("data_payments_cumulative", "data_payments", "Paid to data producers for data, cumulative", "paid for data"),
    Metric("commons_grants_cumulative", "commons_grants", "Public grants to the commons, cumulative", "commons grants"),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}  # a comparison measure by its key, e.g. "hhi"


def trajectory(results: xr.Dataset, metric: Metric) -> xr.DataArray:
    """A metric over time (dims ``scenario``, ``time``), with the variable's units and a label."""
    array = results[metric.variable].sel(metric.select)
    return array.assign_attrs(long_name=metric.label, units=results[metric.variable].attrs.get("units", ""))


def compare_metrics(results: xr.Dataset, baseline: str = "baseline") -> xr.Dataset:
    """Each metric at the final time, and its difference from the baseline scenario.

    Returns a Dataset with dims ``scenario`` and ``measure`` (``final``, ``vs_baseline``).
    """
    import xarray as xr

    names = [str(s) for s in results["scenario"].values]
    if baseline not in names:
        raise InputError(
            source="--baseline", key=baseline, problem="is not among the scenarios run", fix=f"choose one of: {', '.join(names)}"
        )
    metrics = {}
    for metric in METRICS:
        if not _measurable(results, metric):
            continue  # a model of the user's own need not have every measure, nor its subscripts
        series = trajectory(results, metric)
        final = series.isel(time=-1, drop=True) if "time" in series.dims else series  # PySD saves a constant once
        both = xr.concat(
            [final, final - final.sel(scenario=baseline)],
            dim=xr.DataArray(["final", "vs_baseline"], dims="measure", name="measure"),
        )
        metrics[metric.key] = both.assign_attrs(final.attrs)
    if not metrics:
        raise InputError(
            source=results.attrs.get("model_file", "model"),
            key=None,
            problem="the model has none of the comparison's variables",
            fix="use `sdmodel run` for this model",
        )
    return xr.Dataset(metrics, attrs={"baseline": baseline, "time": float(results["time"][-1])})


def _measurable(results: xr.Dataset, metric: Metric) -> bool:
    """Whether the results hold the measure's variable with the elements it selects (the bundled model's do)."""
    if metric.variable not in results:
        return False
    array = results[metric.variable]
    return all(dim in array.dims and element in array[dim].values for dim, element in metric.select.items())


def compare(
    scenarios: Iterable[str | Path | Scenario] | None = None,
    *,
    baseline: str = "baseline",
    **run_options,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Run scenarios with the baseline; return (results, metrics).

    By default every bundled scenario, or with ``model=`` those of them the model
    can run (:func:`~sdmodel.simulate.bundled_scenarios_for`).
    """
    from sdmodel.simulate import bundled_scenarios_for, run

    if scenarios:
        chosen = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    elif run_options.get("model"):
        chosen = bundled_scenarios_for(run_options["model"], run_options.get("engine", "pysd"))[0]
    else:
        chosen = [load_scenario(name) for name in bundled_scenarios()]
    chosen = with_baseline(chosen, baseline)
    results = run(chosen, **run_options)
    return results, compare_metrics(results, load_scenario(baseline).name)


def compare_and_save(
    scenarios: Iterable[str | Path | Scenario] | None = None,
    *,
    baseline: str = "baseline",
    runs_dir: str | Path | None = None,
    **run_options,
) -> tuple[xr.Dataset, xr.Dataset, Path, bool]:
    """:func:`compare`, then :func:`save_comparison`: (results, metrics, the run's folder, whether it is new)."""
    results, metrics = compare(scenarios, baseline=baseline, runs_dir=runs_dir, **run_options)
    return results, metrics, *save_comparison(results, metrics, runs_dir)


def save_comparison(results: xr.Dataset, metrics: xr.Dataset, runs_dir: str | Path | None = None) -> tuple[Path, bool]:
    """Save a comparison, or point at the saved run that already holds exactly it (:func:`sdmodel.reuse.save_once`).
    Returns the run's folder and whether it is new."""
    from sdmodel.reuse import save_once

    return save_once(results, "compare", "compare", runs_dir, extra={"comparison": to_json(metrics)})


def to_json(metrics: xr.Dataset, run_path: str | Path | None = None) -> dict:
    """The comparison as ``{"baseline", "run", "time", "scenarios": {name: {metric: {"final", "vs_baseline"}}}}``."""
    cells = _cells(metrics)
    return {
        "baseline": metrics.attrs["baseline"],
        "run": str(run_path) if run_path else None,
        "time": metrics.attrs["time"],
        "scenarios": {
            name: {key: {"final": _number(final), "vs_baseline": _number(change)} for key, (final, change) in row.items()}
            for name, row in cells.items()
        },
        "metrics": {
            key: {
                "label": metrics[key].attrs.get("long_name", key),
                "units": metrics[key].attrs.get("units", ""),
                "group": METRIC_BY_KEY[key].group,
            }
            for key in metrics.data_vars
        },
    }


def format_table(metrics: xr.Dataset) -> str:
    """A plain-text table: a row per scenario, a column per metric under its group (``GROUPS``), each cell the
    final value and, in brackets, its change from the baseline; a legend names each column in full."""
    keys = list(metrics.data_vars)
    baseline = metrics.attrs["baseline"]
    rows = [["scenario"] + [METRIC_BY_KEY[key].short for key in keys]]
    for name, row in _cells(metrics).items():
        rows.append(
            [name]
            + [
                format_number(final) if name == baseline else f"{format_number(final)} ({format_number(change, sign=True)})"
                for final, change in row.values()
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths)))
        for row in rows
    ]
    lines.insert(0, _group_line(widths, [METRIC_BY_KEY[key].group for key in keys]))
    lines.insert(2, "-" * len(lines[1]))
    changes = f"; in brackets, the change from '{baseline}'" if metrics.sizes["scenario"] > 1 else ""
    lines.append(f"\nAt {metrics.attrs['time']:g}{changes}.")
    for key in keys:
        metric = METRIC_BY_KEY[key]
        lines.append(f"  {metric.short}: " + with_units(metric.label, metrics[key].attrs.get("units", ""), metric.variable))
    return "\n".join(lines)


def _group_line(widths: list[int], groups: list[str]) -> str:
    """Each group's name centred over its columns (``widths[0]`` is the scenario column), between rules."""
    spans: list[tuple[str, int]] = []
    for group, width in zip(groups, widths[1:]):
        if spans and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1] + 2 + width)
        else:
            spans.append((group, width))
    cells = [f" {group} ".center(width, "-") if len(group) + 2 <= width else group for group, width in spans]
    return "  ".join([" " * widths[0], *cells])


def _cells(metrics: xr.Dataset) -> dict[str, dict[str, tuple[float, float]]]:
    """``{scenario: {metric: (final, vs_baseline)}}`` read in one pass (a ``.sel`` per cell took 40 ms)."""
    values = {
        key: metrics[key].transpose("scenario", "measure").sel(measure=["final", "vs_baseline"]).values
        for key in metrics.data_vars
    }
    return {
        str(name): {key: (float(array[row, 0]), float(array[row, 1])) for key, array in values.items()}
        for row, name in enumerate(metrics["scenario"].values)
    }


def format_number(value: float, sign: bool = False) -> str:
    """Three significant digits, and thousands written out (7,117 rather than 7.12e+03).

    >>> format_number(7117.4), format_number(-0.03661, sign=True), format_number(0.0, sign=True)
    ('7,117', '-0.0366', '+0')
    """
    plus = "+" if sign else ""
    # from 999.5 three significant digits round to 1000, which .3g writes as 1e+03
    return f"{value:{plus},.0f}" if abs(value) >= 999.5 else f"{value:{plus}.3g}"


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None
