"""One self-contained HTML page to hand to a colleague: the comparison, its trajectories, loop
dominance, uncertainty bands and the provenance, opening from disk with no server and no network.

Figures are Bokeh documents embedded in a page of our own (Bokeh's ``file_html`` with a template),
with Bokeh's JavaScript inlined, as :func:`sdmodel.plots.save_html` does for single figures.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import xarray as xr

from sdmodel.errors import InputError
from sdmodel.metrics import METRIC_BY_KEY, compare_metrics
from sdmodel.model import reader_units, with_units

#: the trajectories drawn as small multiples, scenario against baseline
KEY_METRICS = ("incumbent_revenue_share", "hhi", "data_payments_cumulative", "labour_share")
PROVENANCE_KEYS = ("created", "command", "engine", "engine_version", "sdmodel_version", "pysd_version", "model_file", "model_sha256", "git_commit")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1250px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } th.group { text-align: center; border-bottom: 2px solid #999; } td.periods { text-align: left; } td.name, th.name { text-align: left; white-space: nowrap; }
td.up { color: #1a7f37; } td.down { color: #b3261e; } .note { color: #555; font-size: .9em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
"""

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
    title: str = "sdmodel report",
) -> str:
    """The report page as HTML text (no external script or stylesheet)."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE
    from jinja2 import Template
    import holoviews as hv

    from sdmodel import plots

    metrics = compare_metrics(results, baseline)
    figures = {"comparison": plots.comparison_figure(results)}
    keys = tuple(k for k in KEY_METRICS if k in metrics.data_vars)
    if results.sizes.get("scenario", 1) > 1 and keys:
        figures["multiples"] = plots.scenario_multiples(results, baseline, keys)
    if dominance is not None:
        figures["loops"] = plots.loop_dominance_figure(dominance)
    if uncertainty is not None:
        figures["bands"] = uncertainty_figure(uncertainty)
    models = []
    for name, figure in figures.items():
        model = hv.render(figure, backend="bokeh")
        model.name = name
        models.append(model)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by sdmodel {html.escape(str(results.attrs.get('sdmodel_version', '')))} "
        f"from the {html.escape(str(results.attrs.get('engine', '')))} engine's results. Opens offline: everything it needs is in this file.</p>",
        "<h2>Comparison with the baseline</h2>",
        comparison_table(metrics),
        "<h2>Key trajectories</h2><p class='note'>Every scenario's measures over time.</p>",
        EMBED + "comparison",
    ]
    if "multiples" in figures:
        sections += ["<h2>Each scenario against the baseline</h2><p class='note'>Grey dashed: the baseline.</p>", EMBED + "multiples"]
    sections.append("<h2>Which feedback loop drives the system</h2>")
    if dominance is not None:
        sections += [loops_table(dominance, baseline), EMBED + "loops"]
    sections.append(f"<p class='note'>{html.escape(dominance_note)}</p>" if dominance_note else "")
    sections.append("<h2>Uncertainty</h2>")
    if uncertainty is not None:
        sections += ["<p class='note'>Monte Carlo bands: 5-95 % lightly shaded, 25-75 % darker, the median as a line.</p>", EMBED + "bands"]
    if uncertainty_note or uncertainty is None:
        sections.append(f"<p class='note'>{html.escape(uncertainty_note or 'No Monte Carlo run given (sdmodel report --uncertainty RUN).')}</p>")
    sections += ["<h2>Provenance</h2>", provenance_table(results)]
    # the page's own text is kept raw (braces in it are not Jinja); the figures are Bokeh's embeds
    contents = "".join(
        f"{{{{ embed(roots.{part[len(EMBED):]}) }}}}" if part.startswith(EMBED) else "{% raw %}" + part + "{% endraw %}"
        for part in sections
    )
    template = Template(TEMPLATE.replace("{{ page }}", contents))
    text = file_html(models, INLINE, title, template=template, template_variables={"style": STYLE, "title": title})
    return re.sub(r"<script src=[^>]*></script>\n?", "", text)  # Panel's module shim: unused here, and it cannot load offline


def write_report(text: str, path: str | os.PathLike) -> Path:
    """Write the page atomically (readers never see half a page)."""
    target = Path(path)
    if target.suffix.lower() != ".html":
        raise InputError(target, "--out", "the report must be an .html file", "give a file name ending in .html")
    if not target.parent.is_dir():
        raise InputError(target, "--out", f"folder {target.parent} does not exist", "create it or choose another path")
    temporary = target.with_name(f".{target.name}.partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def comparison_table(metrics: xr.Dataset) -> str:
    """The comparison as an HTML table: final values, and in brackets the change from the baseline."""
    from sdmodel.metrics import _fmt

    keys = list(metrics.data_vars)
    baseline = metrics.attrs["baseline"]
    head = "".join(
        f"<th title='{html.escape(METRIC_BY_KEY[k].label)}'>{html.escape(METRIC_BY_KEY[k].short)}"
        + (f"<br><small>{html.escape(units)}</small>" if (units := reader_units(metrics[k].attrs.get("units", ""), METRIC_BY_KEY[k].variable)) else "")
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
                cells.append(f"<td>{_fmt(final)}</td>")
            else:
                tone = "up" if change > 0 else "down" if change < 0 else ""
                cells.append(f"<td class='{tone}'>{_fmt(final)} ({_fmt(change, sign=True)})</td>")
        rows.append(f"<tr><td class='name'>{html.escape(name)}</td>{''.join(cells)}</tr>")
    legend = "; ".join(f"<b>{html.escape(METRIC_BY_KEY[k].short)}</b>: {html.escape(METRIC_BY_KEY[k].label)}" for k in keys)
    groups = "".join(f"<th colspan='{len(list(members))}' class='group'>{html.escape(group)}</th>"
                     for group, members in itertools.groupby(keys, key=lambda k: METRIC_BY_KEY[k].group))
    return (f"<table><tr><th></th>{groups}</tr><tr><th class='name'>scenario</th>{head}</tr>{''.join(rows)}</table>"
            f"<p class='note'>At {metrics.attrs['time']:g}; in brackets, the change from '{html.escape(baseline)}'. {legend}.</p>")


def loops_table(dominance: xr.Dataset, baseline: str = "baseline") -> str:
    """Which loop dominates in which period, per scenario, as an HTML table."""
    from sdmodel.loops import to_json

    summary = to_json(dominance, baseline)
    rows = []
    for name, result in summary["scenarios"].items():
        periods = "; ".join(f"{p['start']:g}-{p['end']:g}: <b>{html.escape(p['loop'])}</b> ({p['share']:.0%})" for p in result["periods"])
        change = result["differs_from_baseline_from"]
        note = "" if name == summary["baseline"] else ("same as baseline" if change is None else f"from {change:g}")
        rows.append(f"<tr><td class='name'>{html.escape(name)}</td><td class='periods'>{periods or 'no loop active'}</td><td>{note}</td></tr>")
    legend = "; ".join(f"<b>{html.escape(k)}</b> {html.escape(v['name'])} ({html.escape(v['polarity'])})" for k, v in summary["loops"].items())
    unscored = "".join(f"<br><b>{html.escape(k)}</b> is not scored: {html.escape(v)}." for k, v in summary["unscored"].items())
    return (f"<table><tr><th class='name'>scenario</th><th class='name'>dominant loop by period (mean share)</th><th>differs from baseline</th></tr>{''.join(rows)}</table>"
            f"<p class='note'>{html.escape(summary['method'])}. {legend}.{unscored}</p>")


def provenance_table(results: xr.Dataset) -> str:
    """How the numbers were made: versions, model hash, command, and the scenarios as TOML."""
    rows = "".join(
        f"<tr><th class='name'>{html.escape(key)}</th><td class='name'>{html.escape(str(results.attrs.get(key, '')))}</td></tr>"
        for key in PROVENANCE_KEYS if key in results.attrs
    )
    scenarios = html.escape(str(results.attrs.get("scenarios_toml", "")))
    return f"<table>{rows}</table><p class='note'>The scenarios as run:</p><pre>{scenarios}</pre>"


def uncertainty_bands(run: xr.Dataset) -> tuple[xr.Dataset | None, str]:
    """An uncertainty run as percentile bands, or None and why it cannot be drawn.

    A run with a ``percentile`` or ``quantile`` dim is drawn as it is; one with ensemble members
    (a ``run`` dim) is summarised by :func:`sdmodel.ensemble.percentile_bands`.
    """
    if "percentile" in run.dims or "quantile" in run.dims:
        return run, ""
    if "run" in run.dims:
        try:
            from sdmodel.ensemble import percentile_bands
        except ImportError:
            return None, "Uncertainty bands skipped: this sdmodel has no sdmodel.ensemble module to summarise the members yet."
        return percentile_bands(run), ""
    return None, "Uncertainty bands skipped: the run given has no ensemble members (no run, percentile or quantile dim)."


def uncertainty_figure(bands: xr.Dataset):
    """Each output of an uncertainty run as bands over time, a colour per scenario."""
    import holoviews as hv

    from sdmodel import plots

    band = "percentile" if "percentile" in bands.dims else "quantile"
    outputs = _ensemble_outputs(bands, band)
    panels = []
    for variable, select, label, units in outputs:
        array = bands[variable].sel(select)
        if "time" not in array.dims:
            continue
        colour = "scenario" if "scenario" in array.dims else None
        rest = [d for d in array.dims if d not in ("time", band, colour)]
        for values in plots._product(array, rest):
            piece = array.sel(dict(zip(rest, values))) if rest else array
            title = label + "".join(f" · {v}" for v in values)
            ylabel = with_units(label, units, f"{label} {variable}")
            panels.append(plots._styled(plots.band_overlay(piece, band, colour), title, ylabel))
    if not panels:
        raise InputError("--uncertainty", None, "the run has no output over time to draw", "run `sdmodel uncertainty` with outputs that change over time")
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def _ensemble_outputs(bands: xr.Dataset, band: str) -> list[tuple[str, dict, str, str]]:
    """(variable, selection, label, units) of the outputs an ensemble kept."""
    rows = json.loads(bands.attrs.get("ensemble_outputs", "[]") or "[]")
    if rows:
        return [(r["variable"], dict(r.get("select", {})), r.get("label", r["variable"]), r.get("units", "")) for r in rows if r["variable"] in bands]
    return [(str(name), {}, str(array.attrs.get("long_name") or name), str(array.attrs.get("units", ""))) for name, array in bands.data_vars.items() if band in array.dims]


def scenarios_of(results: xr.Dataset) -> list:
    """The scenarios a run was made from, as recorded in its provenance (``scenarios_toml``)."""
    import tomllib

    from sdmodel.scenario import Scenario

    document = tomllib.loads(results.attrs.get("scenarios_toml", "") or "")
    loaded = []
    for entry in document.get("scenario", []):
        params = {key: tuple(sorted((float(t), float(v)) for t, v in value.items())) if isinstance(value, dict) else float(value)
                  for key, value in entry.get("params", {}).items()}
        loaded.append(Scenario(name=entry["name"], description=entry.get("description", ""), params=params,
                               time={k: float(v) for k, v in entry.get("time", {}).items()}, source="the run's provenance"))
    if not loaded:
        raise InputError("--run", None, "the run records no scenarios", "run the scenarios again with `sdmodel compare`")
    return loaded
