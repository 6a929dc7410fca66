"""Figures with hvplot: a Dataset in, a figure out, saved as self-contained HTML."""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import hvplot.xarray  # noqa: F401  (registers .hvplot on xarray objects)
import numpy as np
import xarray as xr

from sdmodel import atomic, palette
from sdmodel.errors import InputError
from sdmodel.metrics import METRIC_BY_KEY, METRICS, trajectory
from sdmodel.model import reader_units, with_units


def comparison_figure(results: xr.Dataset, baseline: str = "baseline", colours: Mapping[str, str] | None = None):
    """Key trajectories of the comparison measures, one panel each, a line per scenario, legends outside the data.

    Up to ``palette.MAX_SERIES`` scenarios each get a colour (the baseline black, dashed). With more, the
    scenarios that move the measures most (:func:`featured_scenarios`) keep their colour and the rest are drawn
    grey: a reader cannot tell seventeen colours apart. ``colours`` (from :func:`sdmodel.palette.scenario_colours`)
    keeps a scenario's colour the same across a report's figures.
    """
    import holoviews as hv

    load_backends()
    names = [str(n) for n in results["scenario"].values]
    chosen = featured_scenarios(results, baseline)
    colours = colours or palette.scenario_colours(names, baseline, chosen)
    panels = []
    for metric in METRICS:
        if metric.variable not in results:
            continue
        line = trajectory(results, metric)
        # the title names the measure, the axis its units (a share or an index, not Dmnl): a name on the axis too ran
        # into the title in a PNG's small panels
        ylabel = reader_units(str(line.attrs.get("units") or ""), metric.variable) or metric.short
        panels.append(legend_outside(scenario_overlay(line, colours, baseline, chosen), metric.label, "year", ylabel))
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def featured_scenarios(results: xr.Dataset, baseline: str = "baseline") -> list[str] | None:
    """The scenarios drawn in colour when there are more than ``palette.MAX_SERIES``: those that move the comparison
    measures most at the final time (None: few enough for every one to have its colour)."""
    names = [str(n) for n in results["scenario"].values]
    if len(names) <= palette.MAX_SERIES:
        return None
    if baseline not in names:
        return names[: palette.MAX_SERIES - 2]
    changes: dict[str, list[float]] = {name: [] for name in names if name != baseline}
    for metric in METRICS:
        if metric.variable in results:
            final = trajectory(results, metric)
            final = final.isel(time=-1) if "time" in final.dims else final
            for name, row in changes.items():
                row.append(float(final.sel(scenario=name) - final.sel(scenario=baseline)))
    return palette.featured(changes)


def scenario_overlay(line: xr.DataArray, colours: Mapping[str, str], baseline: str = "baseline", chosen: list[str] | None = None):
    """One measure over time, a curve per scenario (dims ``scenario``, ``time``): the baseline black and dashed on top,
    ``chosen`` scenarios (every one when None) in their colours, the rest grey under them, named once in the legend
    as "other scenarios". Every curve is labelled with its scenario, so each scenario is in every panel."""
    import holoviews as hv

    names = [str(n) for n in line["scenario"].values]
    time = line["time"].values
    vdim = hv.Dimension("value", label=str(line.attrs.get("long_name") or line.name or "value"))
    grey, coloured, base = [], [], []
    for name in names:
        curve = hv.Curve((time, line.sel(scenario=name).values), "time", vdim, label=name)
        if name == baseline:
            base.append(
                curve.opts(color=palette.BASELINE, line_dash="dashed", line_width=2, backend="bokeh").opts(
                    color=palette.BASELINE, linestyle="--", linewidth=1.5, backend="matplotlib"
                )
            )
        elif chosen is None or name in chosen:
            coloured.append(
                curve.opts(color=colours[name], line_width=2, backend="bokeh").opts(
                    color=colours[name], linewidth=1.5, backend="matplotlib"
                )
            )
        else:
            grey.append(
                curve.opts(color=palette.OTHERS, line_width=1, show_legend=False, backend="bokeh").opts(
                    color=palette.OTHERS, linewidth=0.8, show_legend=False, backend="matplotlib"
                )
            )
    if grey:  # one legend entry for all of them: an invisible curve of the grey's colour
        grey.insert(
            0,
            hv.Curve((time[:1], line.sel(scenario=names[0]).values[:1]), "time", vdim, label="other scenarios")
            .opts(color=palette.OTHERS, line_width=1, backend="bokeh")
            .opts(color=palette.OTHERS, linewidth=0.8, backend="matplotlib"),
        )
    if chosen is not None:
        coloured.sort(key=lambda curve: chosen.index(curve.label))
    return hv.Overlay([*grey, *coloured, *base])


def legend_outside(element, title: str, xlabel: str, ylabel: str, width: int = 620, height: int = 300):
    """Title, axis labels and a legend to the right of the data area, for both backends (a legend inside a panel
    hides the lines under it). ``width`` includes the legend's column."""
    return element.opts(
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        width=width,
        height=height,
        legend_position="right",
        show_grid=True,
        fontsize={"title": 10, "legend": 8},
        backend="bokeh",
    ).opts(
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        aspect=1.6,
        legend_position="right",
        show_grid=True,
        fontsize={"title": 9, "legend": 7, "labels": 8},
        backend="matplotlib",
    )


def save_html(figure, path: str | os.PathLike, title: str = "sdmodel comparison") -> Path:
    """Write a figure as one HTML file with Bokeh's JavaScript inlined, so it opens offline.

    Rendered straight through Bokeh rather than ``hvplot.save``: Panel's page template
    links its icons from a CDN, and a report must not reach for the network.
    """
    import holoviews as hv
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    target = atomic.check_target(path, (".html",))
    html = file_html(hv.render(figure, backend="bokeh"), INLINE, title)
    # Bokeh inlines its own code; the only <script src> left is a module shim that Panel registers
    # for its reactive components, which these figures do not use and which cannot load offline.
    html = re.sub(r"<script src=[^>]*></script>\n?", "", html)
    return atomic.write_text(target, html)  # readers never see half a page


# --- any variable of a run, by scenario or subscript; PNG through matplotlib ------------------------

#: dims whose members summarise an ensemble (drawn as bands, not one line each)
BAND_DIMS = ("run", "percentile", "quantile")
BY_CHOICES = ("scenario", "Firm", "Domain")
PANEL = {"width": 460, "height": 280}
MPL_CURVE = {"aspect": 1.6, "xformatter": "%d", "show_grid": True}


def load_backends() -> None:
    """Load both HoloViews plotting backends, so options can be set for each: Bokeh (HTML) and matplotlib (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: PNGs are made on servers and in CI
    import holoviews as hv
    import holoviews.plotting.bokeh
    import holoviews.plotting.mpl

    hv.Store.set_current_backend("bokeh")


def resolve_variable(results: xr.Dataset, name: str) -> tuple[str, dict[str, str]]:
    """A variable of the results by its python name or its Vensim name (``long_name``), with an
    optional ``[element]`` (or ``[element,element]``), or a comparison measure's key (``hhi``):
    ``(python name, {dim: element})``.

    >>> import numpy as np
    >>> ds = xr.Dataset({"model_capability": (("Firm",), np.ones(2), {"long_name": "model capability"})},
    ...                 coords={"Firm": ["incumbent", "challenger"]})
    >>> resolve_variable(ds, "Model Capability[challenger]")
    ('model_capability', {'Firm': 'challenger'})
    """
    from sdmodel.model import normalise
    from sdmodel.scenario import ELEMENT_PATTERN

    metric = METRIC_BY_KEY.get(name.strip())
    if metric is not None and metric.variable in results:  # a comparison measure by its key, e.g. hhi or incumbent_revenue_share
        return metric.variable, dict(metric.select)
    match = ELEMENT_PATTERN.match(name.strip())
    base = match["name"] if match else name.strip()
    wanted = normalise(base)
    found = None
    for key, array in results.data_vars.items():
        if wanted in (normalise(str(key)), normalise(str(array.attrs.get("long_name", "")))):
            found = str(key)
            break
    if found is None:
        import difflib

        names = [str(results[k].attrs.get("long_name") or k) for k in results.data_vars]
        close = difflib.get_close_matches(base, names, n=1, cutoff=0.5)
        fix = f"did you mean '{close[0]}'?" if close else "`sdmodel describe` lists the model's variables"
        raise InputError(source="--var", key=name, problem="is not a variable of this run", fix=fix)
    select: dict[str, str] = {}
    if match:
        elements = [e.strip() for e in match["element"].split(",")]
        dims = [d for d in results[found].dims if d not in ("time", "scenario", *BAND_DIMS)]
        for element in elements:
            dim = next((d for d in dims if element in [str(v) for v in results[d].values]), None)
            if dim is None or dim in select:
                known = ", ".join(str(v) for d in dims for v in results[d].values) or "none: the variable has no subscripts"
                raise InputError(
                    source="--var", key=name, problem=f"'{element}' is not an element of {found}", fix=f"elements are: {known}"
                )
            select[dim] = element
    return found, select


def _in_reader_units(array: xr.DataArray) -> xr.DataArray:
    """The array with its units as a reader reads them (share, index: :func:`sdmodel.model.reader_units`), for
    the figure only: hvplot writes them into the hover text, where Dmnl told a reader nothing."""
    return array.assign_attrs(units=reader_units(str(array.attrs.get("units", "") or ""), f"{_label(array)} {array.name}"))


def _label(array: xr.DataArray) -> str:
    return str(array.attrs.get("long_name") or array.name)


def _ylabel(array: xr.DataArray) -> str:
    return with_units(_label(array), str(array.attrs.get("units", "") or ""), f"{_label(array)} {array.name}")


def _styled(element, title: str, ylabel: str):
    """Options for both backends: Bokeh for HTML, matplotlib for PNG (labels carry units in both)."""
    return element.opts(title=title, xlabel="year", ylabel=ylabel, **PANEL, backend="bokeh").opts(
        title=title, xlabel="year", ylabel=ylabel, **MPL_CURVE, backend="matplotlib"
    )


def variable_figure(results: xr.Dataset, names: list[str], by: str = "scenario"):
    """Each variable over time: a line per member of ``by`` (``scenario``, ``Firm`` or ``Domain``),
    a panel per member of the variable's other subscripts. Ensemble runs (a ``run``,
    ``percentile`` or ``quantile`` dim) are drawn as bands: 5-95 % and 25-75 %, and the median.
    Axis labels carry the variable's units."""
    import holoviews as hv

    load_backends()

    if by not in BY_CHOICES:
        raise InputError(source="--by", key=by, problem="unknown grouping", fix=f"choose one of: {', '.join(BY_CHOICES)}")
    if not names:
        raise InputError(
            source="--var", key=None, problem="no variable given", fix='name at least one, e.g. --var "model capability"'
        )
    pieces = []  # (data, band dim, colour dim, title, ylabel): every panel's data first, to choose the scenarios in colour
    for name in names:
        variable, select = resolve_variable(results, name)
        array = results[variable].sel(select)
        if "time" not in array.dims:
            raise InputError(
                source="--var",
                key=name,
                problem="is a constant in this run (no time axis)",
                fix="choose a variable that changes over time",
            )
        array = _in_reader_units(array.assign_attrs(results[variable].attrs))
        suffix = "".join(f"[{v}]" for v in select.values())
        band = next((d for d in BAND_DIMS if d in array.dims), None)
        colour = by if by in array.dims else None
        facets = [d for d in array.dims if d not in ("time", colour, band)]
        for values in element_combinations(array, facets):
            piece = array.sel(dict(zip(facets, values))) if facets else array
            pieces.append((piece, band, colour, _label(array) + suffix + "".join(f" · {v}" for v in values), _ylabel(array)))
    baseline = "baseline"
    chosen = _featured_in(pieces, baseline) if by == "scenario" else None
    colours = (
        palette.scenario_colours([str(s) for s in results["scenario"].values], baseline, chosen)
        if "scenario" in results.coords and results["scenario"].ndim
        else {}
    )
    panels = []
    for piece, band, colour, title, ylabel in pieces:
        if band:
            panels += [
                legend_outside(overlay, title, "year", ylabel) for overlay in band_panels(piece, band, colour, colours, baseline)
            ]
        elif colour == "scenario":
            panels.append(legend_outside(scenario_overlay(piece, colours, baseline, chosen), title, "year", ylabel))
        elif colour:
            panels.append(legend_outside(_member_overlay(piece, colour), title, "year", ylabel))
        else:
            panels.append(
                _styled(
                    hv.Curve((piece["time"].values, piece.values), "time", hv.Dimension("value", label=ylabel)), title, ylabel
                )
            )
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def _featured_in(pieces: list, baseline: str) -> list[str] | None:
    """The scenarios drawn in colour in a figure of lines by scenario: all when few, else those that move the
    drawn variables most at the final time (each panel counts as one measure)."""
    lines = [piece for piece, band, colour, *_ in pieces if colour == "scenario" and not band]
    if not lines:
        return None
    names = [str(n) for n in lines[0]["scenario"].values]
    if len(names) <= palette.MAX_SERIES:
        return None
    if baseline not in names:
        return names[: palette.MAX_SERIES - 2]
    finals = [piece.isel(time=-1) for piece in lines]
    return palette.featured(
        {n: [float(f.sel(scenario=n) - f.sel(scenario=baseline)) for f in finals] for n in names if n != baseline}
    )


def _member_overlay(piece: xr.DataArray, dim: str):
    """A curve per firm or domain, each in its own colour of the palette (at most ``palette.MAX_SERIES``)."""
    import holoviews as hv

    members = [str(m) for m in piece[dim].values]
    colours = palette.series_colours(members)
    vdim = hv.Dimension("value", label=str(piece.attrs.get("long_name") or piece.name or "value"))
    return hv.Overlay(
        [
            hv.Curve((piece["time"].values, piece.sel({dim: member}).values), "time", vdim, label=str(member))
            .opts(color=colours[str(member)], line_width=2, backend="bokeh")
            .opts(color=colours[str(member)], linewidth=1.5, backend="matplotlib")
            for member in piece[dim].values
        ]
    )


def sweep_figure(results: xr.Dataset, name: str):
    """A sweep's outcome at its final time: against the first swept constant, a line per value of the
    second, a panel per value of the third (and per element of the variable's subscripts).

    Where a line jumps, the outcome tips: the figure is for reading thresholds off a sweep."""
    import json

    import holoviews as hv

    load_backends()
    swept = json.loads(results.attrs.get("ensemble_params", "[]"))
    if not swept:
        raise InputError(source="run", key=None, problem="is not a sweep", fix="draw a sweep's results (sdmodel sweep)")
    variable, select = resolve_variable(results, name)
    array = _in_reader_units(results[variable].sel(select).assign_attrs(results[variable].attrs))
    if "time" in array.dims:
        array = array.isel(time=-1)
    x, by = swept[0], (swept[1] if len(swept) > 1 else None)
    facets = [d for d in array.dims if d not in (x, by)]

    def named(dim: str) -> str:
        return str(results[dim].attrs.get("long_name") or dim) if dim in results.coords else dim

    year = f"{float(results['time'][-1]):g}"
    metric = METRIC_BY_KEY.get(name.strip())
    short = metric.short if metric else _label(array)  # "HHI", not its long name, on a small axis
    xlabel = named(x)
    ylabel = with_units(f"{short} in {year}", str(array.attrs.get("units") or ""), f"{_label(array)} {array.name}")
    if by:  # the legend names the second constant and shows its values, not the python name and float noise
        array = array.assign_coords({by: [f"{v:.3g}" for v in array[by].values]}).rename({by: named(by)})
        by = named(by)
    scenario = str(results["scenario"].values) if "scenario" in results.coords and results["scenario"].ndim == 0 else "scenario"
    own = float(results[x].attrs.get("scenario_value", math.nan))  # where the scenario itself sits (sdmodel.ensemble.sweep)
    panels = []
    for values in element_combinations(array, facets):
        piece = array.sel(dict(zip(facets, values))) if facets else array
        title = " · ".join(f"{named(d)} = {v:.3g}" if isinstance(v, float) else str(v) for d, v in zip(facets, values)) or short
        line = piece.hvplot.line(x=x, by=by, legend="right") if by else piece.hvplot.line(x=x)
        if by:  # the second constant's values in order, light to dark: told apart, and read as more or less
            ramp = hv.Cycle(palette.sequential(piece.sizes[by]))
            line = line.opts(hv.opts.Curve(color=ramp, backend="bokeh"), hv.opts.Curve(color=ramp, backend="matplotlib"))
        if math.isfinite(own):  # a dashed line at the scenario's own value, named at the top of the panel
            mark = (
                hv.VLine(own)
                .opts(color="black", line_dash="dashed", line_width=1, backend="bokeh")
                .opts(color="black", linestyle="--", linewidth=1, backend="matplotlib")
            )
            # named to the left of the line, at the top: where a tipping curve is still low
            tag = hv.Text(own, float(piece.max()), f"{scenario} ({own:.3g}) ", halign="right", valign="top", fontsize=8)
            curves = [curve.relabel(str(key)) for key, curve in line.items()] if by else [line]
            line = hv.Overlay([*curves, mark, tag])
            if by:  # an overlay's legend has no title: name the second constant there again, as hvplot's own legend does
                line = line.opts(legend_position="right", hooks=[_legend_title(by, "matplotlib")], backend="matplotlib").opts(
                    legend_position="right", hooks=[_legend_title(by, "bokeh")], backend="bokeh"
                )
        panels.append(
            line.opts(title=title, xlabel=xlabel, ylabel=ylabel, **PANEL, backend="bokeh").opts(
                title=title, xlabel=xlabel, ylabel=ylabel, aspect=1.6, show_grid=True, backend="matplotlib"
            )
        )
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def _legend_title(title: str, backend: str):
    """A HoloViews hook that titles a plot's legend (for overlays, which drop the title hvplot gives a ``by`` legend)."""

    def hook(plot, element) -> None:
        if backend == "matplotlib":
            legend = plot.handles["axis"].get_legend()
            if legend is not None:
                legend.set_title(title)
        elif plot.state.legend:
            plot.state.legend[0].title = title

    return hook


def element_combinations(array: xr.DataArray, dims: list[str]) -> list[tuple]:
    from itertools import product

    return list(product(*(array[d].values.tolist() for d in dims))) if dims else [()]


def percentile_bands(array: xr.DataArray, band: str) -> xr.DataArray:
    """The 5/25/50/75/95 percentiles of an ensemble variable, dim ``percentile`` (0-100).

    Ensemble members (``run``) are reduced here; a ``percentile`` or ``quantile`` (0-1) dim is used as it is.
    """
    if band == "run":
        reduced = array.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="run", skipna=True)
        return reduced.assign_coords(quantile=reduced["quantile"] * 100).rename(quantile="percentile")
    if band == "quantile":
        return array.assign_coords(quantile=array["quantile"] * 100).rename(quantile="percentile")
    return array


def band_panels(
    array: xr.DataArray, band: str, colour: str | None, colours: Mapping[str, str] | None = None, baseline: str = "baseline"
) -> list:
    """Band overlays of an ensemble variable, as many as it takes to keep ``palette.MAX_SERIES`` members per panel
    (the baseline, if there, in each of them)."""
    if colour is None or array.sizes[colour] <= palette.MAX_SERIES:
        return [band_overlay(array, band, colour, colours, baseline)]
    members = [str(m) for m in array[colour].values]
    rest = [m for m in members if m != baseline]
    size = palette.MAX_SERIES - (baseline in members)
    groups = [([baseline] if baseline in members else []) + rest[i : i + size] for i in range(0, len(rest), size)]
    return [band_overlay(array.sel({colour: group}), band, colour, colours, baseline) for group in groups]


def band_overlay(
    array: xr.DataArray, band: str, colour: str | None, colours: Mapping[str, str] | None = None, baseline: str = "baseline"
):
    """Bands of an ensemble variable over time: 5-95 % lightly, 25-75 % darker, the median as a line; a band and a
    median per member of ``colour`` (at most ``palette.MAX_SERIES``: see :func:`band_panels`).

    Every band is drawn before any median, so no member's band hides under another's line, and each band's edges
    are drawn too: a narrow band stays visible as two close lines. The baseline's median is black and dashed."""
    import holoviews as hv

    load_backends()

    bands = percentile_bands(array, band)
    available = [float(p) for p in bands["percentile"].values]
    members = [str(m) for m in bands[colour].values] if colour else [None]
    if colour == "scenario":
        tints = palette.distinct_for(members, colours, baseline)
    else:
        tints = palette.series_colours([m or _label(array) for m in members])
    time = bands["time"].values
    areas, medians = [], []
    for member in members:
        piece = bands.sel({colour: member}) if colour else bands
        label = member if member is not None else _label(array)
        tint = tints[label]
        for low, high, alpha in ((5, 95, 0.15), (25, 75, 0.3)):
            if low in available and high in available:
                areas.append(
                    hv.Area(
                        (time, piece.sel(percentile=low).values, piece.sel(percentile=high).values),
                        kdims=["time"],
                        vdims=["low", "high"],
                        label=label,
                    )
                    .opts(
                        color=tint,
                        alpha=alpha,
                        line_alpha=0.6,
                        line_width=0.5,
                        line_color=tint,
                        show_legend=False,
                        backend="bokeh",
                    )
                    .opts(color=tint, alpha=alpha, linewidth=0.5, edgecolor=tint, show_legend=False, backend="matplotlib")
                )
        middle = 50.0 if 50.0 in available else available[len(available) // 2]
        dash = member == baseline
        medians.append(
            hv.Curve((time, piece.sel(percentile=middle).values), kdims=["time"], vdims=["median"], label=label)
            .opts(color=tint, line_width=2, line_dash="dashed" if dash else "solid", backend="bokeh")
            .opts(color=tint, linewidth=1.5, linestyle="--" if dash else "-", backend="matplotlib")
        )
    return (
        hv.Overlay([*areas, *medians])
        .opts(show_legend=bool(colour), legend_position="right", backend="bokeh")
        .opts(show_legend=bool(colour), legend_position="right", backend="matplotlib")
    )


def scenario_multiples(
    results: xr.Dataset, baseline: str = "baseline", keys: tuple[str, ...] | None = None, colours: Mapping[str, str] | None = None
):
    """Small multiples: a row per scenario, a panel per key measure, the scenario in its colour against the baseline
    (black, dashed). Two lines a panel, named in its title: no legend, and any number of scenarios."""
    import holoviews as hv

    load_backends()

    chosen = [m for m in METRICS if m.variable in results and (keys is None or m.key in keys)]
    names = [str(n) for n in results["scenario"].values if str(n) != baseline]
    colours = colours or palette.scenario_colours([baseline, *names], baseline)
    lines = {metric.key: trajectory(results, metric) for metric in chosen}
    panels = []
    for name in names:
        for metric in chosen:
            line = lines[metric.key]
            ylabel = with_units(metric.short, str(line.attrs.get("units") or ""), metric.variable)
            time = line["time"].values
            base = (
                hv.Curve((time, line.sel(scenario=baseline).values), "time", metric.key, label=baseline)
                .opts(color=palette.BASELINE, line_dash="dashed", backend="bokeh")
                .opts(color=palette.BASELINE, linestyle="--", backend="matplotlib")
            )
            this = (
                hv.Curve((time, line.sel(scenario=name).values), "time", metric.key, label=name)
                .opts(color=colours[name], line_width=2, backend="bokeh")
                .opts(color=colours[name], backend="matplotlib")
            )
            title = f"{name}: {metric.short}"
            panels.append(
                (base * this)
                .opts(
                    title=title,
                    xlabel="year",
                    ylabel=ylabel,
                    width=300,
                    height=200,
                    xticks=4,
                    show_legend=False,
                    toolbar=None,
                    fontsize={"title": 9},
                    backend="bokeh",
                )
                .opts(title=title, xlabel="year", ylabel=ylabel, show_legend=False, backend="matplotlib")
            )
    return hv.Layout(panels).cols(max(1, len(chosen))).opts(shared_axes=False, backend="bokeh")


def loop_dominance_figure(dominance: xr.Dataset):
    """Which named loop dominates when: a strip per scenario coloured by the dominant loop of its steady periods
    (:func:`sdmodel.loops.steady_periods`: no switch shorter than ``loops.MIN_PERIOD``), and each loop's yearly
    mean share of loop activity in the first scenario (usually the baseline). Legends outside the data."""
    import holoviews as hv
    import pandas as pd

    from sdmodel.loops import MIN_PERIOD, WINDOW, steady_periods

    load_backends()
    loops = [str(loop) for loop in dominance["loop"].values]
    colours = palette.series_colours(loops)
    names = dict(zip(loops, (str(n) for n in dominance["loop_name"].values)))
    rows = []
    scenarios = [str(s) for s in dominance["scenario"].values]
    for position, scenario in enumerate(scenarios):
        row = len(scenarios) - 1 - position  # the first scenario on top
        for period in steady_periods(dominance, scenario):
            rows.append(
                {
                    "x0": period["start"],
                    "x1": period["end"],
                    "y0": row - 0.4,
                    "y1": row + 0.4,
                    "scenario": scenario,
                    "loop": f"{period['loop']} {names[period['loop']]}",
                }
            )
    frame = pd.DataFrame(rows, columns=["x0", "y0", "x1", "y1", "scenario", "loop"])
    cmap = {f"{loop} {names[loop]}": colours[loop] for loop in loops}
    ticks = [(len(scenarios) - 1 - i, name) for i, name in enumerate(scenarios)]
    title = f"Dominant loop by scenario (a switch only after {MIN_PERIOD:g} years in the lead)"
    aspect = max(2.5, 12 / max(len(scenarios), 1))  # the strip's and the shares' in a PNG, so that they line up
    strip = (
        hv.Rectangles(frame, kdims=["x0", "y0", "x1", "y1"], vdims=["scenario", "loop"])
        .opts(
            color="loop",
            cmap=cmap,
            line_alpha=0,
            yticks=ticks,
            xlabel="year",
            ylabel="",
            title=title,
            width=1000,
            height=60 + 28 * len(scenarios),
            legend_position="right",
            show_legend=True,
            tools=["hover"],
            backend="bokeh",
        )
        .opts(
            color="loop",
            cmap=cmap,
            yticks=ticks,
            xlabel="year",
            ylabel="",
            title=title,
            linewidth=0,
            aspect=aspect,
            show_legend=True,
            backend="matplotlib",
        )
    )
    first = scenarios[0]
    time = dominance["time"].values.astype(float)
    year = xr.DataArray(np.floor((time - time[0]) / WINDOW) * WINDOW + time[0], dims="time")
    shares = dominance["share"].sel(scenario=first).groupby(year.rename("window")).mean()
    curves = [
        hv.Curve(
            (shares["window"].values, shares.sel(loop=loop).values),
            "time",
            hv.Dimension("share", label="share of loop activity", unit="share"),
            label=f"{loop} {names[loop]}",
        )
        .opts(color=colours[loop], interpolation="steps-post", backend="bokeh")
        .opts(color=colours[loop], backend="matplotlib")
        for loop in loops
    ]
    shares_title = f"Loop shares, {WINDOW:g}-year means: {first}"
    share = (
        hv.Overlay(curves)
        .opts(
            title=shares_title,
            xlabel="year",
            ylabel="share of loop activity [share]",
            width=1000,
            height=300,
            legend_position="right",
            backend="bokeh",
        )
        .opts(
            title=shares_title,
            xlabel="",
            ylabel="share of loop activity [share]",
            aspect=aspect,
            legend_position="bottom",
            legend_cols=2,
            backend="matplotlib",
        )
    )  # below, in a PNG, where the axis label would be (the years are the strip's): the panel keeps the strip's width
    return (strip + share).cols(1).opts(shared_axes=False, backend="bokeh").opts(vspace=0.3, fig_inches=9, backend="matplotlib")


def for_png(figure):
    """The figure as :func:`save_png` draws it through matplotlib: years without decimals, and panels apart by more
    than their width (``hspace``), so each legend sits to the right of its panel, clear of the next panel's axis."""
    import holoviews as hv

    load_backends()
    return figure.opts(
        hv.opts.Curve(xformatter="%d"),
        hv.opts.Overlay(xformatter="%d"),
        hv.opts.Layout(sublabel_format="", vspace=0.6, hspace=1.1),
        backend="matplotlib",
        clone=True,
    )


def save_png(figure, path: str | os.PathLike, dpi: int = 90) -> Path:
    """Write a figure as a PNG through matplotlib (no browser, :func:`for_png`); written beside and renamed into place."""
    import holoviews as hv

    target = atomic.check_target(path, (".png",))
    figure = for_png(figure)
    renderer = hv.renderer("matplotlib").instance(dpi=dpi)
    image = io.BytesIO()  # to a file, the renderer would add its own suffix to the name
    renderer.save(figure, image, fmt="png")
    with atomic.temporary_file(target) as temporary:
        temporary.write_bytes(image.getvalue())
    return target


def save_figure(figure, path: str | os.PathLike, title: str = "sdmodel") -> Path:
    """Save as self-contained HTML or as PNG, by the file's suffix."""
    if atomic.check_target(path, (".html", ".png")).suffix.lower() == ".html":
        return save_html(figure, path, title)
    return save_png(figure, path)
