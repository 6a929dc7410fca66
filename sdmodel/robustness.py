"""Robustness: which policy holds up when we are unsure of the model's assumptions.

A comparison answers "what does this policy do, if the model's assumptions are right?".
A robustness study asks what each policy does across the assumptions we cannot pin down:
every policy and the baseline run on the same Latin-hypercube draws (the machinery of
:func:`sdmodel.ensemble.uncertainty`, so its executors, streaming and failure records), and
per policy we report

- the distribution over draws of its effect on each output (policy minus baseline on the
  same draw, so the spread is the assumptions', not sampling noise between scenarios);
- the share of draws in which it meets each criterion (:mod:`sdmodel.criteria`), and all of them
  (the *satisficing* share);
- its regret on each outcome: on each draw, the best alternative's outcome minus its own, the
  baseline (doing nothing) counted as an alternative; the maximum (Savage's minimax-regret
  criterion) and 75th percentile over draws.

Regret needs to know which way is better. It is declared, never guessed from a variable's name:
``--maximize``/``--minimize`` outcomes if given, else each criterion's comparisons (``hhi@2040 <
0.4``: less HHI is better). Policies are ranked by maximum regret on the first outcome, then
75th-percentile regret, then satisficing share.

A draw on which any scenario failed is left out of every share and percentile (its
comparison is not on the same draw); how many were is reported.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel import criteria as crit
from sdmodel.errors import InputError
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import Scenario

PERCENTILES = (5, 25, 50, 75, 95)
PREFIX = "robust_"  # the analysis' variables, beside the ensemble's model variables in one saved Dataset


def robustness(
    distributions: str | os.PathLike,
    policies: Iterable[str | os.PathLike | Scenario] | None = None,
    *,
    criteria: Sequence[str],
    maximize: Sequence[str] = (),
    minimize: Sequence[str] = (),
    outputs: Sequence[str] | None = None,
    baseline: str | os.PathLike | Scenario = "baseline",
    samples: int = 100,
    seed: int = 0,
    setup: RunSetup = RunSetup(),
    execution: Execution = Execution(),
    command: str | None = None,
) -> xr.Dataset:
    """Run ``policies`` (default: every bundled scenario the model can run) and the baseline on the same draws, and analyse.

    Returns the ensemble (as :func:`sdmodel.ensemble.uncertainty` does) with the analysis
    added as ``robust_*`` variables (:func:`analyse`). Every expression and output is checked
    before anything runs.
    """
    from sdmodel import ensemble
    from sdmodel.scenario import load_scenario
    from sdmodel.simulate import bundled_scenarios_for

    parsed, outcomes = parse_question(criteria, maximize, minimize)
    base = baseline if isinstance(baseline, Scenario) else load_scenario(baseline)
    policies = list(policies or [])  # once: a generator would be used up by the test
    if not policies:
        fitting = bundled_scenarios_for(setup.model, setup.engine)[0] if setup.model else [load_scenario(n) for n in _bundled()]
        chosen = [s for s in fitting if s.name != base.name]
    else:
        chosen = [p if isinstance(p, Scenario) else load_scenario(p) for p in policies]
    if not chosen:
        raise InputError(
            source="POLICY",
            key=None,
            problem="no policy to study",
            fix="name a policy scenario, or leave POLICY out for every bundled one",
        )
    if any(p.name == base.name for p in chosen):
        raise InputError(
            source="POLICY",
            key=base.name,
            problem="is the baseline every policy is compared with",
            fix="leave it out of the policies",
        )
    prepared = setup.prepare([base, *chosen])
    info = prepared.info
    check_names(parsed, outcomes, info)
    check_years(parsed, outcomes, prepared.grid)
    named = [r.output for e in (*parsed, *(o.expression for o in outcomes)) for r in e.references()]
    kept = list(dict.fromkeys([*(outputs or _default_outputs(info)), *named]))
    results = ensemble.uncertainty(
        distributions,
        [base, *chosen],
        samples=samples,
        seed=seed,
        outputs=kept,
        setup=setup,
        execution=execution,
        command=command,
    )
    analysis = analyse(results, parsed, outcomes, baseline=base.name)
    results = results.assign(analysis.data_vars).assign_coords(analysis.coords)
    results.attrs.update(analysis.attrs)
    results.attrs["ensemble"] = "robustness"
    return results


def parse_question(
    criteria: Sequence[str], maximize: Sequence[str] = (), minimize: Sequence[str] = ()
) -> tuple[list[crit.Expression], list[crit.Outcome]]:
    """The criteria and the outcomes regret is measured on (explicit ones, else those the criteria imply)."""
    if not criteria:
        raise InputError(
            source="--criterion", key=None, problem="no criterion given", fix='give one, e.g. --criterion "hhi@2040 < 0.4"'
        )
    parsed = [crit.parse(text, test=True) for text in dict.fromkeys(criteria)]  # a criterion given twice counts once
    both = set(maximize) & set(minimize)
    if both:
        raise InputError(
            source="--maximize", key=min(both), problem="is also given to --minimize", fix="say once which way is better"
        )
    outcomes = [crit.outcome(t, 1, "--maximize") for t in dict.fromkeys(maximize)] + [
        crit.outcome(t, -1, "--minimize") for t in dict.fromkeys(minimize)
    ]
    if not outcomes:
        outcomes = list({o.label: o for e in parsed for o in crit.outcomes_of(e)}.values())
    if not outcomes:
        raise InputError(
            source="--criterion",
            key=criteria[0],
            problem="says no direction for regret (it compares no output with a number)",
            fix="add --maximize OUTPUT@YEAR or --minimize OUTPUT@YEAR",
        )
    return parsed, outcomes


def analyse(
    results: xr.Dataset, criteria: Sequence[crit.Expression], outcomes: Sequence[crit.Outcome], *, baseline: str = "baseline"
) -> xr.Dataset:
    """Effects, criteria met, satisficing shares and regret from an ensemble of scenarios on the same draws.

    ``results`` has dims ``scenario`` (the baseline among them) and ``run``. Returns a
    Dataset of ``robust_*`` variables; its attrs record the question (criteria, outcomes).
    """
    names = [str(s) for s in results["scenario"].values]
    if baseline not in names:
        raise InputError(
            source="--baseline", key=baseline, problem="is not among the scenarios run", fix=f"choose one of: {', '.join(names)}"
        )
    reader = Reader(results)
    at = names.index(baseline)
    failed = results["failed"].values.any(axis=0) if "failed" in results.coords else np.zeros(results.sizes["run"], bool)
    valid = ~failed
    if not valid.any():
        raise InputError(
            source="results",
            key=None,
            problem="every draw failed in some scenario: nothing to analyse",
            fix="narrow the ranges of the assumptions",
        )

    def values_of(expression: crit.Expression) -> np.ndarray:
        rows = []
        for index in range(len(names)):
            value = expression.evaluate(lambda ref, index=index: reader.values(ref, index, at))
            rows.append(np.broadcast_to(np.asarray(value, dtype=float), valid.shape))
        return np.where(valid, np.stack(rows), np.nan)

    met = np.stack([values_of(c) for c in criteria], axis=1)  # scenario, criterion, run; NaN where the draw failed
    raw = np.stack([values_of(o.expression) for o in outcomes], axis=1)
    signed = raw * np.array([o.sense for o in outcomes])[None, :, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        regret = np.nanmax(signed, axis=0, keepdims=True) - signed
        effect_labels, effects = _effects(reader, criteria, outcomes, len(names), at, valid)
        effect_bands = (
            np.nanpercentile(effects, PERCENTILES, axis=-1).transpose(1, 2, 0)
            if effects.size
            else np.zeros((len(names), 0, len(PERCENTILES)))
        )
        shares = np.nanmean(met, axis=-1)
        all_met = np.where(valid, np.all(met == 1, axis=1), np.nan)
        max_regret = np.nanmax(regret, axis=-1)
        p75_regret = np.nanpercentile(regret, 75, axis=-1)
    satisficing = np.nanmean(all_met, axis=-1)
    order = sorted(range(len(names)), key=lambda i: (_key(max_regret[i, 0]), _key(p75_regret[i, 0]), _key(-satisficing[i])))
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(1, len(names) + 1)
    p = PREFIX
    analysis = xr.Dataset(
        {
            f"{p}met": (
                ("scenario", "criterion", "run"),
                met,
                {"long_name": "The scenario meets the criterion on the draw (1/0; NaN: a scenario failed)"},
            ),
            f"{p}outcome": (("scenario", "outcome", "run"), raw, {"long_name": "The outcome regret is measured on"}),
            f"{p}regret": (
                ("scenario", "outcome", "run"),
                regret,
                {"long_name": "Regret: the best alternative's outcome on the draw minus this one's"},
            ),
            f"{p}effect": (
                ("scenario", "effect", "run"),
                effects,
                {"long_name": "Effect: the scenario's value minus the baseline's on the same draw"},
            ),
            f"{p}effect_percentiles": (
                ("scenario", "effect", "percentile"),
                effect_bands,
                {"long_name": "Percentiles of the effect over the draws"},
            ),
            f"{p}share_met": (("scenario", "criterion"), shares, {"long_name": "Share of draws meeting the criterion"}),
            f"{p}satisficing": (("scenario",), satisficing, {"long_name": "Share of draws meeting every criterion"}),
            f"{p}max_regret": (("scenario", "outcome"), max_regret, {"long_name": "Maximum regret over the draws (Savage)"}),
            f"{p}p75_regret": (("scenario", "outcome"), p75_regret, {"long_name": "75th percentile of regret over the draws"}),
            f"{p}rank": (
                ("scenario",),
                rank,
                {"long_name": "Rank by maximum regret on the first outcome, then 75th-percentile regret, then satisficing share"},
            ),
        },
        coords={
            "scenario": names,
            "criterion": [c.text for c in criteria],
            "outcome": [o.label for o in outcomes],
            "outcome_sense": ("outcome", [o.sense for o in outcomes], {"long_name": "+1: more is better; -1: less is better"}),
            "effect": effect_labels,
            "percentile": ("percentile", np.asarray(PERCENTILES, dtype=float), {"units": "%"}),
            "valid_draw": ("run", valid, {"long_name": "Every scenario ran on this draw (the others are left out)"}),
        },
    )
    analysis.attrs = {
        "robustness_baseline": baseline,
        "robustness_criteria": json.dumps([c.text for c in criteria]),
        "robustness_outcomes": json.dumps(
            [{"label": o.label, "expression": o.expression.text, "sense": o.sense} for o in outcomes]
        ),
        "robustness_valid_draws": int(valid.sum()),
    }
    return analysis


class Reader:
    """An ensemble's outputs at the times criteria name, read from the (possibly streamed) file once each."""

    def __init__(self, results: xr.Dataset):
        from sdmodel.ensemble import ensemble_outputs

        self.results = results
        self.outputs = {o.key: o for o in ensemble_outputs(results)}
        self.cache: dict[tuple[str, float | None], np.ndarray] = {}

    def values(self, reference: crit.Reference, scenario: int, baseline: int) -> np.ndarray:
        """The reference's values over the draws in one scenario (or the baseline, for ``baseline``)."""
        array = self.array(reference.output, reference.year)
        return array[baseline if reference.of_baseline else scenario]

    def array(self, output: str, year: float | None) -> np.ndarray:
        """scenario x run values of an output at a year (``None``: the final time)."""
        key = (output, year)
        if key not in self.cache:
            self.cache[key] = self._read(output, year)
        return self.cache[key]

    def _read(self, output: str, year: float | None) -> np.ndarray:
        found = self.outputs.get(output) or next(
            (o for o in self.outputs.values() if o.variable == output and not o.select), None
        )
        if found is None:
            raise InputError(
                source="--criterion",
                key=output,
                problem="is not an output of this run",
                fix=f"use one of: {', '.join(self.outputs)}",
            )
        array = self.results[found.variable].sel(found.select)
        if "time" in array.dims:
            array = array.isel(time=-1) if year is None else array.sel(time=_saved_time(array["time"].values, year, output))
        extra = [d for d in array.dims if d not in ("scenario", "run")]
        if extra:
            raise InputError(
                source="--criterion",
                key=output,
                problem=f"has subscripts ({', '.join(extra)})",
                fix="use a measure that picks one element, e.g. incumbent_revenue_share",
            )
        return np.asarray(array.transpose("scenario", "run").values, dtype=float)


def _saved_time(times: np.ndarray, year: float, output: str) -> float:
    nearest = float(times[np.argmin(np.abs(times - year))])
    if abs(nearest - year) > 1e-6 * max(1.0, abs(year)):
        raise InputError(
            source="--criterion",
            key=f"{output}@{year:g}",
            problem=f"{year:g} is not a saved time ({times[0]:g} to {times[-1]:g})",
            fix="choose a year the run saved",
        )
    return nearest


def _effects(reader: Reader, criteria, outcomes, count: int, at: int, valid: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Each output's effect (scenario minus baseline, per draw): the references the question names, then every output kept at the final time."""
    wanted = [r for e in (*criteria, *(o.expression for o in outcomes)) for r in e.references() if not r.of_baseline]
    wanted += [crit.Reference(key) for key in reader.outputs]
    final = float(reader.results["time"][-1])
    labels, rows = [], []
    for reference in dict.fromkeys(crit.Reference(r.output, r.year) for r in wanted):
        label = crit.Reference(reference.output, final if reference.year is None else reference.year).label
        if label in labels:
            continue
        try:
            array = reader.array(reference.output, reference.year)
        except InputError:
            continue  # an output kept whole (with subscripts) has no single effect; criteria name elements
        labels.append(label)
        rows.append(np.where(valid, array - array[at], np.nan))
    return labels, (np.stack(rows, axis=1) if rows else np.zeros((count, 0, len(valid))))


def check_names(parsed, outcomes, info) -> None:
    """Refuse an output the model lacks (or one with subscripts and no element picked), before anything runs."""
    from sdmodel.metrics import METRIC_BY_KEY

    def known(name: str) -> bool:
        metric = METRIC_BY_KEY.get(name)
        if metric is not None and metric.variable in info.variables:
            return True
        variable = info.variables.get(name)
        return variable is not None and not variable.dims and variable.kind != "lookup"

    for expression in parsed:
        crit.check_outputs(expression, known, "--criterion")
    for outcome in outcomes:
        crit.check_outputs(outcome.expression, known, "--maximize" if outcome.sense > 0 else "--minimize")


def check_years(parsed, outcomes, time: Mapping[str, float]) -> None:
    """Refuse a year outside the run or between its saved times, before anything runs."""
    first, last, step = time.get("initial_time"), time.get("final_time"), time.get("saveper") or time.get("time_step")
    for expression in (*parsed, *(o.expression for o in outcomes)):
        for reference in expression.references():
            if reference.year is None or first is None or last is None:
                continue
            if not first - 1e-9 <= reference.year <= last + 1e-9:
                raise InputError(
                    source="--criterion",
                    key=expression.text,
                    problem=f"{reference.year:g} is outside the run ({first:g} to {last:g})",
                    fix="choose a year within the run, or --final-time",
                )
            if step and abs((reference.year - first) / step - round((reference.year - first) / step)) > 1e-6:
                raise InputError(
                    source="--criterion",
                    key=expression.text,
                    problem=f"{reference.year:g} is not a saved time (every {step:g} from {first:g})",
                    fix="choose a saved year",
                )


def _default_outputs(info) -> list[str]:
    from sdmodel.metrics import METRICS

    return [m.key for m in METRICS if m.variable in info.variables]


def _bundled() -> list[str]:
    from sdmodel.scenario import bundled_scenarios

    return bundled_scenarios()


def _key(value: float) -> float:
    return value if math.isfinite(value) else math.inf


# --- reports ---------------------------------------------------------------------------------------


def thinned(results: xr.Dataset) -> xr.Dataset:
    """The study with its outputs kept only at the times its question reads and the final time.

    A saved study keeps every member's outputs over time, so any criterion can be asked of it later;
    that is scenarios x draws x time steps per output (about 70 kB per draw of the 17 bundled
    scenarios), too much at 100,000 draws. Thinned, it keeps a few time slices.
    """
    asked = json.loads(results.attrs.get("robustness_criteria", "[]"))
    outcomes = [entry["expression"] for entry in json.loads(results.attrs.get("robustness_outcomes", "[]"))]
    years = {r.year for text in asked for r in crit.parse(text, test=True).references() if r.year is not None}
    for text in outcomes:
        try:
            years |= {r.year for r in crit.parse(text, test=False).references() if r.year is not None}
        except InputError:
            pass  # a part of a criterion (its `baseline` bound there): the criterion's years are kept already
    times = results["time"].values
    keep = sorted({float(times[-1]), *(float(times[np.argmin(np.abs(times - year))]) for year in years)})
    return results.sel(time=keep).assign_attrs(robustness_thinned_to=json.dumps(keep))


@contextmanager
def opened(folder: str | os.PathLike) -> Iterator[xr.Dataset]:
    """A saved robustness run read lazily: its members (scenarios x draws x time) can be hundreds of MB, and
    discovery and the report read a few time slices of a few outputs, where ``open_run`` would load them all."""
    from sdmodel.store import RESULTS

    path = Path(folder) / RESULTS
    try:
        dataset = xr.open_dataset(path, engine="netcdf4")
    except (OSError, ValueError) as error:
        raise InputError(
            source=path, key=None, problem=f"cannot read the results ({error})", fix="the run is damaged; run it again"
        ) from None
    with dataset:
        yield dataset


def analysis_of(results: xr.Dataset) -> xr.Dataset:
    """The ``robust_*`` variables of a saved robustness run (and their coords), without the ensemble's members."""
    names = [name for name in results.data_vars if str(name).startswith(PREFIX)]
    if not names:
        raise InputError(
            source=results.attrs.get("title", "run"),
            key=None,
            problem="is not a robustness run",
            fix="give a run of `sdmodel robustness`",
        )
    analysis = results[names]
    analysis.attrs = {
        k: v for k, v in results.attrs.items() if k.startswith("robustness_") or k in ("samples", "seed", "distributions_toml")
    }
    return analysis


def to_json(analysis: xr.Dataset, run_path: str | os.PathLike | None = None) -> dict:
    """``{"run", "baseline", "criteria", "outcomes", "draws", "policies": {name: {...}}}``, policies in rank order."""
    p = PREFIX
    names = [str(s) for s in analysis["scenario"].values]
    order = sorted(range(len(names)), key=lambda i: int(analysis[f"{p}rank"].values[i]))
    effects = analysis[f"{p}effect_percentiles"].values
    baseline = analysis.attrs.get("robustness_baseline", "baseline")
    policies = {}
    for i in order:
        entry = {
            "rank": int(analysis[f"{p}rank"].values[i]),
            "satisficing": _number(analysis[f"{p}satisficing"].values[i]),
            "criteria": {
                str(c): _number(analysis[f"{p}share_met"].values[i, j]) for j, c in enumerate(analysis["criterion"].values)
            },
            "regret": {
                str(o): {
                    "max": _number(analysis[f"{p}max_regret"].values[i, j]),
                    "p75": _number(analysis[f"{p}p75_regret"].values[i, j]),
                }
                for j, o in enumerate(analysis["outcome"].values)
            },
        }
        if names[i] != baseline:
            entry["effects"] = {
                str(e): {f"p{q:g}": _number(effects[i, j, k]) for k, q in enumerate(analysis["percentile"].values)}
                for j, e in enumerate(analysis["effect"].values)
            }
        policies[names[i]] = entry
    return {
        "run": str(run_path) if run_path else None,
        "baseline": baseline,
        "criteria": [str(c) for c in analysis["criterion"].values],
        "outcomes": [
            {"label": str(o), "better": "higher" if int(s) > 0 else "lower"}
            for o, s in zip(analysis["outcome"].values, analysis["outcome_sense"].values)
        ],
        "draws": int(analysis.sizes["run"]) if "run" in analysis.dims else None,
        "valid_draws": int(analysis.attrs.get("robustness_valid_draws", 0)),
        "seed": analysis.attrs.get("seed"),
        "ranking": "maximum regret on the first outcome (Savage), then 75th-percentile regret, then satisficing share",
        "policies": policies,
    }


def format_table(analysis: xr.Dataset) -> str:
    """A row per scenario in rank order: satisficing share, share meeting each criterion, regret; then the effects' percentiles."""
    from sdmodel.ensemble import text_table

    summary = to_json(analysis)
    outcome = summary["outcomes"][0]["label"]
    header = [
        "rank",
        "scenario",
        "satisficing",
        *(f"C{i + 1}" for i in range(len(summary["criteria"]))),
        "max regret",
        "p75 regret",
    ]
    rows = [header]
    for name, entry in summary["policies"].items():
        first = entry["regret"][outcome]
        rows.append(
            [
                str(entry["rank"]),
                name,
                _share(entry["satisficing"]),
                *(_share(v) for v in entry["criteria"].values()),
                _fmt(first["max"]),
                _fmt(first["p75"]),
            ]
        )
    lines = [text_table(rows), ""]
    lines += [f"C{i + 1}: share of draws meeting {text}" for i, text in enumerate(summary["criteria"])]
    lines.append(
        f"regret on {outcome} ({summary['outcomes'][0]['better']} is better): the best alternative's value on the draw "
        f"minus this one's, '{summary['baseline']}' counted as an alternative; ranked by {summary['ranking']}"
    )
    for extra in summary["outcomes"][1:]:
        lines.append(
            f"  also on {extra['label']} ({extra['better']} is better): "
            + ", ".join(f"{name} {_fmt(entry['regret'][extra['label']]['max'])}" for name, entry in summary["policies"].items())
        )
    lines.append(
        f"{summary['valid_draws']} of {summary['draws']} draws used"
        + (f" (Latin hypercube, seed {summary['seed']})" if summary["seed"] is not None else "")
    )
    effects = [["effect vs baseline", "scenario", *(f"{q:g}%" for q in PERCENTILES)]]
    for label in analysis["effect"].values:
        for index, (name, entry) in enumerate((n, e) for n, e in summary["policies"].items() if "effects" in e):
            effects.append([str(label) if index == 0 else "", name, *(_fmt(v) for v in entry["effects"][str(label)].values())])
    if len(effects) > 1:
        lines += ["", text_table(effects)]
    return "\n".join(lines)


def figure(analysis: xr.Dataset):
    """Two panels, scenarios in rank order: the share of draws meeting every criterion, and the spread of regret on the first outcome."""
    import holoviews as hv

    from sdmodel.plots import load_backends

    load_backends()
    p = PREFIX
    summary = to_json(analysis)
    order = list(summary["policies"])[::-1]  # drawn bottom up: the first-ranked on top
    outcome = summary["outcomes"][0]["label"]
    bars = hv.Bars([(name, summary["policies"][name]["satisficing"] or 0.0) for name in order], "scenario", "share of draws")
    regret = analysis[f"{p}regret"].sel(outcome=outcome)
    rows = [(name, float(v)) for name in order for v in regret.sel(scenario=name).values if math.isfinite(float(v))]
    boxes = hv.BoxWhisker(rows, "scenario", "regret")
    title_bars = "Satisficing: share of draws"
    title_regret = f"Regret on {outcome} ({summary['outcomes'][0]['better']} is better)"
    regret_label = "regret: the best alternative on the draw minus this one"
    height = 120 + 22 * len(order)  # a row per scenario, names written out beside the bars
    inches = 1.2 + 0.28 * len(order)
    styled = []
    for element, title, ylabel in (
        (bars, title_bars, "share of draws meeting every criterion"),
        (boxes, title_regret, regret_label),
    ):
        styled.append(
            element.opts(
                title=title, invert_axes=True, xlabel="", ylabel=ylabel, width=520, height=height, show_grid=True, backend="bokeh"
            ).opts(
                title=title,
                invert_axes=True,
                xlabel="",
                ylabel=ylabel,
                aspect=5 / inches,
                fig_inches=5,
                show_grid=True,
                backend="matplotlib",
            )
        )
    styled[0] = styled[0].opts(ylim=(0, 1), backend="bokeh").opts(ylim=(0, 1), backend="matplotlib")
    return hv.Layout(styled).cols(2).opts(shared_axes=False, backend="bokeh")


def html_table(analysis: xr.Dataset) -> str:
    """The robustness table for the report (:mod:`sdmodel.report`): a row per scenario in rank order, and a note on the method."""
    import html

    summary = to_json(analysis)
    outcome = summary["outcomes"][0]["label"]
    head = "".join(f"<th title='{html.escape(c)}'>C{i + 1}</th>" for i, c in enumerate(summary["criteria"]))
    rows = []
    for name, entry in summary["policies"].items():
        cells = "".join(f"<td>{_share(v)}</td>" for v in entry["criteria"].values())
        regret = entry["regret"][outcome]
        rows.append(
            f"<tr><td>{entry['rank']}</td><td class='name'>{html.escape(name)}</td><td>{_share(entry['satisficing'])}</td>{cells}"
            f"<td>{_fmt(regret['max'])}</td><td>{_fmt(regret['p75'])}</td></tr>"
        )
    legend = "; ".join(f"<b>C{i + 1}</b>: {html.escape(c)}" for i, c in enumerate(summary["criteria"]))
    return (
        f"<table><tr><th>rank</th><th class='name'>scenario</th><th>satisficing</th>{head}<th>max regret</th><th>p75 regret</th></tr>"
        f"{''.join(rows)}</table><p class='note'>Every scenario ran on the same {summary['valid_draws']} draws of the assumptions "
        f"(Latin hypercube, seed {summary['seed']}). Satisficing: the share of draws meeting every criterion; {legend}. "
        f"Regret on {html.escape(outcome)} ({summary['outcomes'][0]['better']} is better): the best alternative's value on the draw "
        f"minus this one's, '{html.escape(summary['baseline'])}' counted as an alternative; ranked by {summary['ranking']}.</p>"
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def run_name(distributions: str | os.PathLike) -> str:
    """The saved run's folder name: ``robustness-<distributions file's stem>``."""
    return f"robustness-{Path(distributions).stem}"
