"""One self-contained HTML page to hand to a colleague: the comparison, its trajectories, loop
dominance, uncertainty bands and the provenance, opening from disk with no server and no network.

Figures are Bokeh documents embedded in a page of our own (Bokeh's ``file_html`` with a template),
with Bokeh's JavaScript inlined, as :func:`sdmodel.plots.save_html` does for single figures.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xarray as xr

from sdmodel import atomic, palette
from sdmodel.errors import InputError
from sdmodel.metrics import METRIC_BY_KEY, compare_metrics
from sdmodel.model import reader_units, with_units

#: the trajectories drawn as small multiples, scenario against baseline, and the measures the summary opens with
KEY_METRICS = ("incumbent_revenue_share", "hhi", "data_payments_cumulative", "labour_share")


NEGLIGIBLE = 1e-3  # a change under 0.1 % of the value is not judged better or worse


@dataclass(frozen=True)
class Viewpoint:
    """The point of view a report judges a change from, declared once at the top of the page: which way each
    measure should move (+1 up, -1 down). A measure it does not name is not judged, and its changes are not coloured."""

    statement: str
    desirable: Mapping[str, int]

    def judge(self, key: str, change: float, final: float | None = None) -> str:
        """``"better"``, ``"worse"`` or ``""`` (no stated direction, no change, or with ``final`` given, a change under
        ``NEGLIGIBLE`` of the larger of the two values: numerical noise is not a verdict)."""
        direction = self.desirable.get(key, 0)
        if not direction or not math.isfinite(change) or change == 0:
            return ""
        if final is not None and abs(change) < NEGLIGIBLE * max(abs(final), abs(final - change)):
            return ""
        return "better" if direction * change > 0 else "worse"


#: the report's default point of view: power in AI less concentrated, more of income to labour, more paid to the
#: people whose data the models are made of and to the public commons. Capability and capital in themselves are not judged.
VIEWPOINT = Viewpoint(
    "less concentration of AI power (the incumbent's shares, the HHI, AI operators' share of all capital), "
    "a larger labour share, and more paid to data producers and to the public commons",
    {
        "incumbent_revenue_share": -1,
        "incumbent_capital_share": -1,
        "hhi": -1,
        "ai_capital_share": -1,
        "labour_share": +1,
        "data_payments_cumulative": +1,
        "commons_grants_cumulative": +1,
    },
)
PROVENANCE_KEYS = (
    "created",
    "command",
    "engine",
    "engine_version",
    "sdmodel_version",
    "pysd_version",
    "model_file",
    "model_sha256",
    "git_commit",
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1250px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } th.group { text-align: center; border-bottom: 2px solid #999; } td.periods { text-align: left; } td.name, th.name { text-align: left; white-space: nowrap; }
.better { color: BETTER; font-weight: 600; } .worse { color: WORSE; } .note { color: #555; font-size: .9em; }
p.caption { color: #333; font-style: italic; margin: .3em 0 .6em; } p.brief { font-size: 1.05em; line-height: 1.5; max-width: 60em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
"""
STYLE = STYLE.replace("BETTER", palette.BETTER).replace("WORSE", palette.WORSE)

EMBED = "\x00embed:"  # marks where a figure goes among the page's sections
TEMPLATE = """{% extends base %}
{% block title %}{{ title }}{% endblock %}
{% block preamble %}<style>{{ style }}</style>{% endblock %}
{% block contents %}
{{ page }}
{% endblock %}
"""


def build_report(
    results: xr.Dataset,
    *,
    baseline: str = "baseline",
    dominance: xr.Dataset | None = None,
    dominance_note: str = "",
    uncertainty: xr.Dataset | None = None,
    uncertainty_note: str = "",
    robustness: xr.Dataset | None = None,
    title: str = "sdmodel report",
    viewpoint: Viewpoint | None = VIEWPOINT,
) -> str:
    """The report page as HTML text (no external script or stylesheet): a summary written from the numbers, the
    table (changes coloured by ``viewpoint``, or not at all with None), then the figures, each with a caption."""
    import holoviews as hv
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    from jinja2 import Template

    from sdmodel import plots

    metrics = compare_metrics(results, baseline)
    names = [str(n) for n in results["scenario"].values]
    chosen = plots.featured_scenarios(results, baseline)
    colours = palette.scenario_colours(names, baseline, chosen)  # one colour per scenario in every figure of the page
    figures = {"comparison": plots.comparison_figure(results, baseline, colours)}
    keys = tuple(k for k in KEY_METRICS if k in metrics.data_vars)
    if results.sizes.get("scenario", 1) > 1 and keys:
        figures["multiples"] = plots.scenario_multiples(results, baseline, keys, colours)
    if dominance is not None:
        figures["loops"] = plots.loop_dominance_figure(dominance)
    if uncertainty is not None:
        figures["bands"] = uncertainty_figure(uncertainty, colours, baseline)
    if robustness is not None:  # the analysis of a saved `sdmodel robustness` run (sdmodel.robustness.analysis_of)
        from sdmodel import robustness as robust

        figures["robustness"] = robust.figure(robustness)
    models = []
    for name, figure in figures.items():
        model = hv.render(figure, backend="bokeh")
        model.name = name
        models.append(model)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        (
            f"<p class='note'>Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by sdmodel {html.escape(str(results.attrs.get('sdmodel_version', '')))} "
            f"from the {html.escape(str(results.attrs.get('engine', '')))} engine's results. Opens offline: everything it needs is in this file.</p>"
        ),
        "<h2>What the run shows</h2>",
        "<p class='brief'>" + " ".join(html.escape(s) for s in summary_sentences(metrics, viewpoint)) + "</p>",
        "<h2>Comparison with the baseline</h2>",
        comparison_table(metrics, viewpoint),
        "<h2>Key trajectories</h2>",
        caption(trajectories_caption(names, baseline, chosen)),
        EMBED + "comparison",
    ]
    if "multiples" in figures:
        sections += [
            "<h2>Each scenario against the baseline</h2>",
            caption(
                f"A row per scenario, in its colour, against '{baseline}' (black, dashed): look for the gap that opens "
                "after the levers start, and whether it keeps growing."
            ),
            EMBED + "multiples",
        ]
    sections.append("<h2>Which feedback loop drives the system</h2>")
    if dominance is not None:
        from sdmodel.loops import SMOOTHING

        sections += [
            loops_table(dominance, baseline),
            caption(
                "Look for a strip that changes colour in another year than the baseline's: there a lever changes which loop "
                f"drives the system. Periods: {SMOOTHING}; `sdmodel loops --json` gives the dominant loop step by step."
            ),
            EMBED + "loops",
        ]
    sections.append(f"<p class='note'>{html.escape(dominance_note)}</p>" if dominance_note else "")
    sections.append("<h2>Uncertainty</h2>")
    if uncertainty is not None:
        sections += [caption(bands_caption(uncertainty)), EMBED + "bands"]
    if uncertainty_note or uncertainty is None:
        sections.append(
            f"<p class='note'>{html.escape(uncertainty_note or 'No Monte Carlo run given (sdmodel report --uncertainty RUN).')}</p>"
        )
    if robustness is not None:
        sections += ["<h2>Which policy holds up across the assumptions</h2>", robust.html_table(robustness), EMBED + "robustness"]
    sections += ["<h2>Provenance</h2>", provenance_table(results)]
    # the page's own text is kept raw (braces in it are not Jinja); the figures are Bokeh's embeds
    contents = "".join(
        f"{{{{ embed(roots.{part[len(EMBED) :]}) }}}}" if part.startswith(EMBED) else "{% raw %}" + part + "{% endraw %}"
        for part in sections
    )
    template = Template(TEMPLATE.replace("{{ page }}", contents))
    text = file_html(models, INLINE, title, template=template, template_variables={"style": STYLE, "title": title})
    return re.sub(r"<script src=[^>]*></script>\n?", "", text)  # Panel's module shim: unused here, and it cannot load offline


def write_report(text: str, path: str | os.PathLike) -> Path:
    """Write the page atomically (readers never see half a page)."""
    return atomic.write_text(atomic.check_target(path, (".html",)), text)


def comparison_table(metrics: xr.Dataset, viewpoint: Viewpoint | None = VIEWPOINT) -> str:
    """The comparison as an HTML table: final values, and in brackets the change from the baseline, coloured by
    whether ``viewpoint`` holds it better (blue, bold) or worse (vermillion); never by its sign alone."""
    from sdmodel.metrics import format_number

    keys = list(metrics.data_vars)
    baseline = metrics.attrs["baseline"]
    head = "".join(
        f"<th title='{html.escape(METRIC_BY_KEY[k].label)}'>{html.escape(METRIC_BY_KEY[k].short)}"
        + (
            f"<br><small>{html.escape(units)}</small>"
            if (units := reader_units(metrics[k].attrs.get("units", ""), METRIC_BY_KEY[k].variable))
            else ""
        )
        + (
            f"<br><small>{'more' if viewpoint.desirable[k] > 0 else 'less'} is better</small>"
            if viewpoint and viewpoint.desirable.get(k)
            else ""
        )
        + "</th>"
        for k in keys
    )
    rows = []
    for name in (str(n) for n in metrics["scenario"].values):
        cells = []
        for key in keys:
            final = float(metrics[key].sel(scenario=name, measure="final"))
            change = float(metrics[key].sel(scenario=name, measure="vs_baseline"))
            if name == baseline:
                cells.append(f"<td>{format_number(final)}</td>")
            else:
                tone = viewpoint.judge(key, change, final) if viewpoint else ""
                cells.append(f"<td class='{tone}'>{format_number(final)} ({format_number(change, sign=True)})</td>")
        rows.append(f"<tr><td class='name'>{html.escape(name)}</td>{''.join(cells)}</tr>")
    legend = "; ".join(f"<b>{html.escape(METRIC_BY_KEY[k].short)}</b>: {html.escape(METRIC_BY_KEY[k].label)}" for k in keys)
    groups = "".join(
        f"<th colspan='{len(list(members))}' class='group'>{html.escape(group)}</th>"
        for group, members in itertools.groupby(keys, key=lambda k: METRIC_BY_KEY[k].group)
    )
    if viewpoint:
        unjudged = [METRIC_BY_KEY[k].short for k in keys if not viewpoint.desirable.get(k)]
        view = (
            f"<p class='note viewpoint'>Point of view: <b>{html.escape(viewpoint.statement)}</b>. A change is "
            "<span class='better'>blue</span> where it is better by this view and "
            "<span class='worse'>vermillion</span> where it is worse"
            + (f"; {html.escape(', '.join(unjudged))}: no direction is declared, so not coloured" if unjudged else "")
            + f"; a change under {NEGLIGIBLE:.1%} of the value is not coloured.</p>"
        )
    else:
        view = "<p class='note viewpoint'>No point of view declared: changes are not coloured.</p>"
    return (
        f"{view}<table><tr><th></th>{groups}</tr><tr><th class='name'>scenario</th>{head}</tr>{''.join(rows)}</table>"
        f"<p class='note'>At {metrics.attrs['time']:g}; in brackets, the change from '{html.escape(baseline)}'. {legend}.</p>"
    )


def caption(text: str) -> str:
    """A figure's one-line caption: what to look at."""
    return f"<p class='caption'>{html.escape(text)}</p>"


def trajectories_caption(names: list[str], baseline: str, chosen: list[str] | None) -> str:
    """The key trajectories' caption, naming the scenarios in colour when the rest are grey."""
    text = f"Look at where the coloured lines leave '{baseline}' (black, dashed) and how far apart they end."
    if chosen is not None:
        rest = len([n for n in names if n != baseline]) - len(chosen)
        text += (
            f" In colour, the {len(chosen)} scenarios that move these measures most ({', '.join(chosen)}); "
            f"grey, the other {rest}, each drawn in colour in the next section."
        )
    return text


def summary_sentences(metrics: xr.Dataset, viewpoint: Viewpoint | None = VIEWPOINT) -> list[str]:
    """Three to five sentences on what the run shows, written from its numbers: which scenario does best by the
    report's point of view, and for each headline measure which lever moved it most, and by how much."""
    from sdmodel.metrics import format_number

    baseline, year = metrics.attrs["baseline"], metrics.attrs["time"]
    keys = [k for k in KEY_METRICS if k in metrics.data_vars] or list(metrics.data_vars)[
        :4
    ]  # a model of one's own: its first measures
    others = [str(n) for n in metrics["scenario"].values if str(n) != baseline]
    finals = {k: metrics[k].sel(measure="final") for k in keys}
    changes = {k: metrics[k].sel(measure="vs_baseline") for k in keys}
    if not others:
        values = "; ".join(f"{METRIC_BY_KEY[k].label} {format_number(float(finals[k].sel(scenario=baseline)))}" for k in keys)
        return [f"Only '{baseline}' was run, so nothing is compared. In {year:g}: {values}."]
    sentences = [_overall_sentence(others, keys, finals, changes, viewpoint, baseline, year)]
    for key in keys[:4]:
        sentences.append(_measure_sentence(key, others, finals[key], changes[key], viewpoint, baseline))
    return sentences


def _overall_sentence(others, keys, finals, changes, viewpoint, baseline: str, year: float) -> str:
    """Which scenarios improve the most headline measures by the point of view (ties named together, fewest worsened
    first), and how many improve none."""
    lead = f"Against '{baseline}' in {year:g}, {len(others)} scenario{'s were' if len(others) != 1 else ' was'} compared"
    judged = [k for k in keys if viewpoint and viewpoint.desirable.get(k)]
    if not judged:
        return lead + "."

    def count(name: str, kind: str) -> int:
        return sum(
            viewpoint.judge(k, float(changes[k].sel(scenario=name)), float(finals[k].sel(scenario=name))) == kind for k in judged
        )

    score = {n: (count(n, "better"), -count(n, "worse")) for n in others}
    top = max(score.values())
    leaders = [n for n in others if score[n] == top]
    named = ", ".join(leaders[:3]) + (f" and {len(leaders) - 3} more" if len(leaders) > 3 else "")
    verb = "does best, improving" if len(leaders) == 1 else "do best, each improving"
    text = (
        f"{lead}; by this report's point of view, {named} {verb} {top[0]} of the {len(judged)} headline measures this view judges"
        + (f" and worsening {-top[1]}" if top[1] else "")
    )
    none = [n for n in others if score[n][0] == 0]
    if none and len(none) < len(others):
        text += f"; {len(none)} improve{'s' if len(none) == 1 else ''} none of them"
    return text + "."


def _measure_sentence(key: str, others: list[str], final: xr.DataArray, change: xr.DataArray, viewpoint, baseline: str) -> str:
    """The lever that moved one measure most: from the baseline's value to its own, and whether that is better."""
    from sdmodel.metrics import format_number

    metric = METRIC_BY_KEY[key]
    moved = max(others, key=lambda n: abs(float(change.sel(scenario=n))))
    delta, base = float(change.sel(scenario=moved)), float(final.sel(scenario=baseline))
    if delta == 0 or not math.isfinite(delta):
        return f"{metric.label}: no scenario changes it ({format_number(base)})."
    relative = f", {delta / abs(base):+.0%}" if base and abs(delta / base) < 100 else ""
    verdict = viewpoint.judge(key, delta, float(final.sel(scenario=moved))) if viewpoint else ""
    return (
        f"{metric.label}: {moved} moves it most, from {format_number(base)} in '{baseline}' to {format_number(float(final.sel(scenario=moved)))} "
        f"({format_number(delta, sign=True)}{relative})" + (f", {verdict} by this view." if verdict else ".")
    )


def loops_table(dominance: xr.Dataset, baseline: str = "baseline") -> str:
    """Which loop dominates in which period, per scenario, as an HTML table."""
    from sdmodel.loops import to_json

    summary = to_json(dominance, baseline)
    rows = []
    for name, result in summary["scenarios"].items():
        periods = "; ".join(
            f"{p['start']:g}-{p['end']:g}: <b>{html.escape(p['loop'])}</b> ({p['share']:.0%})" for p in result["periods"]
        )
        change = result["differs_from_baseline_from"]
        note = "" if name == summary["baseline"] else ("same as baseline" if change is None else f"from {change:g}")
        rows.append(
            f"<tr><td class='name'>{html.escape(name)}</td><td class='periods'>{periods or 'no loop active'}</td><td>{note}</td></tr>"
        )
    legend = "; ".join(
        f"<b>{html.escape(k)}</b> {html.escape(v['name'])} ({html.escape(v['polarity'])})" for k, v in summary["loops"].items()
    )
    unscored = "".join(f"<br><b>{html.escape(k)}</b> is not scored: {html.escape(v)}." for k, v in summary["unscored"].items())
    return (
        f"<table><tr><th class='name'>scenario</th><th class='name'>dominant loop by period (mean share)</th><th>differs from baseline</th></tr>{''.join(rows)}</table>"
        f"<p class='note'>{html.escape(summary['method'])}. {legend}.{unscored}</p>"
    )


def provenance_table(results: xr.Dataset) -> str:
    """How the numbers were made: versions, model hash, command, and the scenarios as TOML."""
    rows = "".join(
        f"<tr><th class='name'>{html.escape(key)}</th><td class='name'>{html.escape(str(results.attrs.get(key, '')))}</td></tr>"
        for key in PROVENANCE_KEYS
        if key in results.attrs
    )
    scenarios = html.escape(str(results.attrs.get("scenarios_toml", "")))
    return f"<table>{rows}</table><p class='note'>The scenarios as run:</p><pre>{scenarios}</pre>"


def uncertainty_bands(run: xr.Dataset) -> tuple[xr.Dataset | None, str]:
    """An uncertainty run as percentile bands, or None and why it cannot be drawn.

    A run with a ``percentile`` dim (bands already) is drawn as it is; one with ensemble members
    (a ``run`` dim) is summarised by :func:`sdmodel.ensemble.percentile_bands`.
    """
    from sdmodel.ensemble import percentile_bands

    if "percentile" in run.dims:
        return run, ""
    if "run" in run.dims:
        return percentile_bands(run), ""
    return None, "Uncertainty bands skipped: the run given has no ensemble members (no run or percentile dim)."


def uncertainty_figure(bands: xr.Dataset, colours: Mapping[str, str] | None = None, baseline: str = "baseline"):
    """Each output of an uncertainty run as bands over time, a band and a median per scenario in every panel, in the
    scenarios' colours of the report (``colours``), legends outside the data."""
    import holoviews as hv

    from sdmodel import plots

    panels = []
    for piece, title, ylabel in _band_pieces(bands):
        colour = "scenario" if "scenario" in piece.dims else None
        panels += [
            plots.legend_outside(overlay, title, "year", ylabel)
            for overlay in plots.band_panels(piece, "percentile", colour, colours, baseline)
        ]
    if not panels:
        raise InputError(
            source="--uncertainty",
            key=None,
            problem="the run has no output over time to draw",
            fix="run `sdmodel uncertainty` with outputs that change over time",
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def _band_pieces(bands: xr.Dataset) -> list[tuple[xr.DataArray, str, str]]:
    """(data, title, axis label) of each panel of an uncertainty figure: an output, or an element of it."""
    from sdmodel import plots

    pieces = []
    for variable, select, label, units in _ensemble_outputs(bands):
        array = bands[variable].sel(select)
        if "time" not in array.dims:
            continue
        rest = [d for d in array.dims if d not in ("time", "percentile", "scenario")]
        for values in plots.element_combinations(array, rest):
            piece = array.sel(dict(zip(rest, values))) if rest else array
            pieces.append((piece, label + "".join(f" · {v}" for v in values), with_units(label, units, f"{label} {variable}")))
    return pieces


def bands_caption(bands: xr.Dataset, flat: float = 0.01) -> str:
    """The uncertainty figure's caption: how to read a band, and which scenarios' bands are too narrow to see
    (5-95 % narrower than ``flat`` of the panel's range everywhere), so a missing band is not read as a missing scenario."""
    from sdmodel.plots import percentile_bands

    text = (
        "Monte Carlo bands, one per scenario: 5-95 % lightly shaded, 25-75 % darker, the median as a line. "
        "Look at whether the scenarios' bands part: where they overlap, their difference is within the uncertainty."
    )
    pieces = _band_pieces(bands)
    if not pieces or "scenario" not in pieces[0][0].dims:
        return text
    narrow = []
    for name in (str(n) for n in pieces[0][0]["scenario"].values):
        widths = []
        for piece, _, _ in pieces:
            summary = percentile_bands(piece, "percentile")
            span = float(summary.max() - summary.min()) or 1.0
            own = summary.sel(scenario=name)
            if 5.0 in own["percentile"].values and 95.0 in own["percentile"].values:
                widths.append(float((own.sel(percentile=95.0) - own.sel(percentile=5.0)).max()) / span)
        if widths and max(widths) < flat:
            narrow.append(name)
    if narrow:
        text += (
            f" {', '.join(narrow)}: the members agree to within {flat:.0%} of each panel's range, so the band is drawn "
            "but shows as a line."
        )
    return text


def _ensemble_outputs(bands: xr.Dataset) -> list[tuple[str, dict, str, str]]:
    """(variable, selection, label, units) of the outputs an ensemble kept."""
    rows = json.loads(bands.attrs.get("ensemble_outputs", "[]") or "[]")
    if rows:
        return [
            (r["variable"], dict(r.get("select", {})), r.get("label", r["variable"]), r.get("units", ""))
            for r in rows
            if r["variable"] in bands
        ]
    return [
        (str(name), {}, str(array.attrs.get("long_name") or name), str(array.attrs.get("units", "")))
        for name, array in bands.data_vars.items()
        if "percentile" in array.dims
    ]


def scenarios_of(results: xr.Dataset) -> list:
    """The scenarios a run was made from, as recorded in its provenance (``scenarios_toml``)."""
    import tomllib

    from sdmodel.scenario import Scenario

    document = tomllib.loads(results.attrs.get("scenarios_toml", "") or "")
    loaded = []
    for entry in document.get("scenario", []):
        params = {
            key: tuple(sorted((float(t), float(v)) for t, v in value.items())) if isinstance(value, dict) else float(value)
            for key, value in entry.get("params", {}).items()
        }
        loaded.append(
            Scenario(
                name=entry["name"],
                description=entry.get("description", ""),
                params=params,
                time={k: float(v) for k, v in entry.get("time", {}).items()},
                source="the run's provenance",
            )
        )
    if not loaded:
        raise InputError(
            source="--run", key=None, problem="the run records no scenarios", fix="run the scenarios again with `sdmodel compare`"
        )
    return loaded
