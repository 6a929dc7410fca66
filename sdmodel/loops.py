"""Loop dominance: which named feedback loop drives the system, when, and whether a policy changes it.

The question: *does a data strike or collective licensing change which loop drives the system,
and when?* The answer comes from Loops That Matter (Schoenberg, Davidsen & Eberlein 2020) as
Simlin computes it (:func:`sdmodel.engines.simlin_structure.loop_scores`): every named loop of
``models/loops.toml`` is pinned, so Simlin scores it even though the model is too large for
exhaustive loop enumeration. A named loop over subscripted variables has several element-level
instances (one per firm, per domain, or across firms); a loop's **share** at a time is the sum of
the absolute relative loop scores of its instances: the fraction of all the named loops' activity
that runs through it (the shares add up to 1 where any loop is active). The **dominant** loop is
the one with the largest share; a **period** is a stretch of time with one dominant loop.

Simlin cannot pin every loop: one whose element-level expansion is over its size limit is not
scored, and the results say so (``unscored_loops``) instead of leaving it out silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel import provenance
from sdmodel.errors import InputError, read_toml
from sdmodel.locations import models_dir
from sdmodel.scenario import Scenario, bundled_scenarios

METHOD = (
    "Loops That Matter (Schoenberg, Davidsen & Eberlein 2020) computed by Simlin with the named loops pinned; "
    "a loop's share is the sum of its element-level instances' absolute relative loop scores"
)
WINDOW = 1.0  # years: the dominant loop of a year is the one with the largest mean share over it
MIN_PERIOD = 2.0  # years: no switch is reported before the new loop has led this long
SMOOTHING = (
    f"the dominant loop of each {WINDOW:g}-year window is the one with the largest mean share over it; a loop must lead "
    f"for at least {MIN_PERIOD:g} years before a switch is reported (a shorter lead goes to the neighbouring period "
    "whose loop has the larger mean share over it)"
)


def loops_file(path: str | os.PathLike | None = None) -> Path:
    """The named loops: a given TOML file, else the bundled ``models/loops.toml``."""
    return Path(path) if path else models_dir() / "loops.toml"


def load_named_loops(path: str | os.PathLike | None = None) -> list[dict]:
    """The named loops (id, name, polarity, description, variables in causal order), checked for shape."""
    source = loops_file(path)
    document = read_toml(source, "see models/loops.toml")
    loops = document.get("loop")
    if not isinstance(loops, list) or not loops:
        raise InputError(
            source=source,
            key="loop",
            problem="no [[loop]] tables",
            fix="name each loop in a [[loop]] table (see models/loops.toml)",
        )
    for index, loop in enumerate(loops):
        if not isinstance(loop, dict):
            raise InputError(
                source=source,
                key=f"loop[{index}]",
                problem=f"{loop!r} is not a table",
                fix='write each loop as a [[loop]] table with id = "R1" and its variables',
            )
        for key in ("id", "variables"):
            if key not in loop:
                raise InputError(
                    source=source,
                    key=f"loop[{index}].{key}",
                    problem="is missing",
                    fix="give every loop an id and its variables in causal order",
                )
        if not isinstance(loop["id"], str) or not loop["id"]:
            raise InputError(
                source=source, key=f"loop[{index}].id", problem=f"{loop['id']!r} is not a name", fix='e.g. id = "R1"'
            )
        variables = loop["variables"]
        if not isinstance(variables, list) or not variables or not all(isinstance(name, str) for name in variables):
            raise InputError(
                source=source,
                key=f"loop[{index}].variables",
                problem="must be a list of variable names",
                fix='e.g. variables = ["Compute Capacity", "compute retirement"]',
            )
    return loops


def loop_dominance(
    scenarios: Iterable[str | os.PathLike | Scenario] | None = None,
    *,
    model: str | os.PathLike | None = None,
    loops: str | os.PathLike | None = None,
    overrides: Mapping[str, float] | None = None,
    final_time: float | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """Loop shares over time for scenarios (default: every bundled one), on the Simlin engine.

    Returns a Dataset with ``share`` and ``score`` (dims ``scenario``, ``loop``, ``time``) and
    ``dominant`` (dims ``scenario``, ``time``: the loop id with the largest share, ``""``
    before any loop is active). ``score`` is the signed sum of the instances' relative loop
    scores (balancing loops read negative). Loops Simlin could not score are named, with the
    reason, in the ``unscored_loops`` attribute (JSON).
    """
    from sdmodel.engines.simlin_structure import loop_scores
    from sdmodel.simulate import prepare

    named = load_named_loops(loops)
    prepared = prepare(
        list(scenarios) if scenarios else bundled_scenarios(),
        model=model,
        overrides=overrides,
        final_time=final_time,
        engine="simlin",
    )
    model_path, loaded, specs, info = prepared.model_path, prepared.scenarios, prepared.specs, prepared.info
    for loop in named:  # a typo in loops.toml should name the loop and the variable, not fail inside Simlin
        for index, name in enumerate(loop["variables"]):
            info.resolve(name, str(loops_file(loops)), f"loop {loop['id']}.variables[{index}]")
    defaults = prepared.time_defaults
    variables = {loop["id"]: loop["variables"] for loop in named}
    runs = []
    unscored: dict[str, str] = {}
    for spec in specs:
        time, found, missing = loop_scores(model_path, variables, spec, {**defaults, **spec.time})
        runs.append((time, found))
        unscored.update(missing)
    ids = [loop["id"] for loop in named if loop["id"] not in unscored]
    if not ids:
        raise InputError(
            source=loops_file(loops),
            key=None,
            problem="Simlin could score none of the named loops",
            fix="; ".join(f"{k}: {v}" for k, v in unscored.items()),
        )
    time = runs[0][0]
    share = np.zeros((len(specs), len(ids), len(time)))
    score = np.zeros_like(share)
    instances = np.zeros(len(ids), dtype=int)
    for s, (_, found) in enumerate(runs):
        for l, loop_id in enumerate(ids):
            series = np.array([values for _, _, values in found[loop_id]])
            series = np.nan_to_num(series, nan=0.0)
            share[s, l] = np.abs(series).sum(axis=0)
            score[s, l] = series.sum(axis=0)
            instances[l] = len(series)
    total = share.sum(axis=1)
    dominant = np.where(total > 0, np.asarray(ids, dtype=object)[share.argmax(axis=1)], "").astype(str)
    by_id = {loop["id"]: loop for loop in named}
    coords = {
        "scenario": ("scenario", [s.name for s in specs], {"long_name": "Scenario"}),
        "loop": ("loop", ids, {"long_name": "Named feedback loop"}),
        "time": ("time", time, {"units": "year", "long_name": "Time"}),
        "loop_name": ("loop", [by_id[i].get("name", i) for i in ids]),
        "polarity": ("loop", [by_id[i].get("polarity", "") for i in ids]),
        "instances": ("loop", instances, {"long_name": "Element-level instances Simlin scores"}),
        "description": ("scenario", [s.description for s in loaded]),
    }
    data = {
        "share": (
            ("scenario", "loop", "time"),
            share,
            {
                "units": "Dmnl",
                "long_name": "Share of loop activity",
                "description": "sum of the absolute relative loop scores of the loop's instances",
            },
        ),
        "score": (
            ("scenario", "loop", "time"),
            score,
            {
                "units": "Dmnl",
                "long_name": "Relative loop score",
                "description": "signed sum of the relative loop scores of the loop's instances",
            },
        ),
        "dominant": (("scenario", "time"), dominant, {"long_name": "Dominant loop"}),
    }
    attrs = provenance.attributes(
        engine=prepared.engine.NAME,
        engine_version=prepared.engine.VERSION,
        model=Path(model_path),
        model_sha256=info.sha256,
        scenarios=[s.to_dict() for s in loaded],
        command=command or provenance.command_line(),
    )
    attrs.update(method=METHOD, loops_file=str(loops_file(loops).resolve()), unscored_loops=json.dumps(unscored))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def unscored_loops(dominance: xr.Dataset) -> dict[str, str]:
    """Loop id -> why Simlin could not score it."""
    return json.loads(dominance.attrs.get("unscored_loops", "{}"))


def dominant_periods(dominance: xr.Dataset, scenario: str) -> list[dict]:
    """A scenario's periods of one dominant loop: ``{"start", "end", "loop", "name", "share"}``.

    A period runs from its first save time to the next period's start (the last to the final
    time); ``share`` is the dominant loop's mean share over it. Times before any loop is
    active belong to no period.
    """
    names = dict(zip(dominance["loop"].values.tolist(), dominance["loop_name"].values.tolist()))
    dominant = dominance["dominant"].sel(scenario=scenario).values
    time = dominance["time"].values
    share = dominance["share"].sel(scenario=scenario)
    periods = []
    start = 0
    for index in range(1, len(time) + 1):
        if index == len(time) or dominant[index] != dominant[start]:
            loop = str(dominant[start])
            if loop:
                end = float(time[index]) if index < len(time) else float(time[-1])
                mean = float(share.sel(loop=loop).isel(time=slice(start, index)).mean())
                periods.append(
                    {"start": float(time[start]), "end": end, "loop": loop, "name": names[loop], "share": round(mean, 4)}
                )
            start = index
    return periods


def steady_periods(dominance: xr.Dataset, scenario: str, window: float = WINDOW, min_period: float = MIN_PERIOD) -> list[dict]:
    """A scenario's periods of one dominant loop as a reader should see them: no switch shorter than ``min_period``.

    Loop shares swing from one save step to the next (two loops near a tie trade the lead every quarter), which
    :func:`dominant_periods` reports as it is. Here the dominant loop of each ``window`` of years is the one with the
    largest mean share over it; then a run of windows shorter than ``min_period`` goes, shortest first, to the
    neighbour whose loop has the larger mean share over it. Same fields as :func:`dominant_periods`.
    """
    time = dominance["time"].values.astype(float)
    share = dominance["share"].sel(scenario=scenario).transpose("loop", "time").values
    loops = [str(loop) for loop in dominance["loop"].values]
    names = dict(zip(loops, (str(n) for n in dominance["loop_name"].values)))
    active = share.sum(axis=0) > 0
    if not active.any():
        return []
    first = float(time[active.argmax()])
    count = max(1, int(np.floor((time[-1] - time[0]) / window + 1e-9)))
    index = np.minimum(np.floor((time - time[0]) / window + 1e-9).astype(int), count - 1)
    runs: list[list] = []  # [loop, first window, last window]
    for k in range(count):
        inside = (index == k) & active
        loop = loops[int(share[:, inside].mean(axis=1).argmax())] if inside.any() else ""
        if runs and runs[-1][0] == loop:
            runs[-1][2] = k
        else:
            runs.append([loop, k, k])

    def bounds(run: list) -> tuple[float, float]:
        start = max(first, float(time[0]) + run[1] * window)
        return start, (float(time[0]) + (run[2] + 1) * window if run[2] < count - 1 else float(time[-1]))

    def mean_share(loop: str, start: float, end: float, last: bool) -> float:
        inside = (time >= start) & ((time <= end) if last else (time < end))
        return float(share[loops.index(loop), inside].mean()) if inside.any() else 0.0

    while len(runs) > 1:
        short = [i for i, run in enumerate(runs) if run[0] and bounds(run)[1] - bounds(run)[0] < min_period - 1e-9]
        if not short:
            break
        i = min(short, key=lambda j: (bounds(runs[j])[1] - bounds(runs[j])[0], j))
        start, end = bounds(runs[i])
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs) and runs[j][0]]
        if not neighbours:
            break
        j = max(neighbours, key=lambda n: mean_share(runs[n][0], start, end, i == len(runs) - 1))
        runs[i][0] = runs[j][0]
        merged: list[list] = []
        for run in runs:
            if merged and merged[-1][0] == run[0]:
                merged[-1][2] = run[2]
            else:
                merged.append(run)
        runs = merged
    periods = []
    for position, run in enumerate(runs):
        if run[0]:
            start, end = bounds(run)
            periods.append(
                {
                    "start": start,
                    "end": end,
                    "loop": run[0],
                    "name": names[run[0]],
                    "share": round(mean_share(run[0], start, end, position == len(runs) - 1), 4),
                }
            )
    return periods


def steady_dominant(dominance: xr.Dataset, scenario: str) -> np.ndarray:
    """The loop of :func:`steady_periods` at each save time (``""`` outside any period)."""
    time = dominance["time"].values.astype(float)
    labels = np.full(len(time), "", dtype=object)
    for period in steady_periods(dominance, scenario):
        labels[(time >= period["start"]) & (time <= period["end"])] = period["loop"]
    return labels


def first_difference(dominance: xr.Dataset, scenario: str, baseline: str = "baseline", steps: bool = False) -> float | None:
    """The first time a scenario's dominant loop differs from the baseline's, or None (never, or no baseline).

    Read from the steady periods (:func:`steady_periods`), or with ``steps`` from the dominant loop at each save step."""
    if baseline not in dominance["scenario"].values or scenario == baseline:
        return None
    if steps:
        differs = dominance["dominant"].sel(scenario=scenario).values != dominance["dominant"].sel(scenario=baseline).values
    else:
        differs = steady_dominant(dominance, scenario) != steady_dominant(dominance, baseline)
    return float(dominance["time"].values[differs.argmax()]) if differs.any() else None


def to_json(dominance: xr.Dataset, baseline: str = "baseline") -> dict:
    """``{"loops", "unscored", "time", "smoothing", "scenarios": {name: {"periods": [...], "dominant_at_end",
    "differs_from_baseline_from", "step_periods": [...], "step_differs_from_baseline_from"}}}``.

    ``periods`` are the steady periods (:func:`steady_periods`: what the table and the figure show);
    ``step_periods``, the dominant loop as it is at each save step."""
    loops = {
        str(loop): {"name": str(name), "polarity": str(polarity), "instances": int(count)}
        for loop, name, polarity, count in zip(*(dominance[k].values for k in ("loop", "loop_name", "polarity", "instances")))
    }
    scenarios = {}
    for name in (str(n) for n in dominance["scenario"].values):
        periods = steady_periods(dominance, name)
        scenarios[name] = {
            "periods": periods,
            "dominant_at_end": periods[-1]["loop"] if periods else None,
            "differs_from_baseline_from": first_difference(dominance, name, baseline),
            "step_periods": dominant_periods(dominance, name),
            "step_differs_from_baseline_from": first_difference(dominance, name, baseline, steps=True),
        }
    return {
        "method": dominance.attrs.get("method", METHOD),
        "smoothing": {"window": WINDOW, "min_period": MIN_PERIOD, "how": SMOOTHING},
        "baseline": baseline if baseline in scenarios else None,
        "time": [float(dominance["time"][0]), float(dominance["time"][-1])],
        "loops": loops,
        "unscored": unscored_loops(dominance),
        "scenarios": scenarios,
    }


def format_table(dominance: xr.Dataset, baseline: str = "baseline") -> str:
    """A plain-text table: for each scenario, its periods and the loop dominating each."""
    summary = to_json(dominance, baseline)
    rows = [["scenario", "from", "to", "dominant loop", "share"]]
    for name, result in summary["scenarios"].items():
        for index, period in enumerate(result["periods"]):
            rows.append(
                [
                    name if index == 0 else "",
                    f"{period['start']:g}",
                    f"{period['end']:g}",
                    f"{period['loop']} {period['name']}",
                    f"{period['share']:.0%}",
                ]
            )
        if not result["periods"]:
            rows.append([name, "", "", "no loop active", ""])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(w) if i in (1, 2, 4) else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    lines.append("")
    lines.append(
        "Share: the dominant loop's mean share of the named loops' activity over the period (Loops That Matter, Simlin)."
    )
    lines.append(f"Periods: {SMOOTHING}; --json also gives the dominant loop step by step (step_periods).")
    changes = [(name, r["differs_from_baseline_from"]) for name, r in summary["scenarios"].items() if name != summary["baseline"]]
    if summary["baseline"] and changes:
        changed = [f"{name} from {year:g}" for name, year in changes if year is not None]
        lines.append("Dominance differs from the baseline: " + (", ".join(changed) if changed else "in no scenario") + ".")
    for loop_id, loop in summary["loops"].items():
        lines.append(f"  {loop_id}: {loop['name']} ({loop['polarity']})")
    for loop_id, reason in summary["unscored"].items():
        lines.append(f"  {loop_id}: not scored: {reason}")
    return "\n".join(lines)
