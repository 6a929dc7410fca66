"""Figures with hvplot: a Dataset in, a figure out, saved as self-contained HTML."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import hvplot.xarray  # noqa: F401  (registers .hvplot on xarray objects)
import xarray as xr

from sdmodel.errors import InputError
from sdmodel.metrics import METRIC_BY_KEY, METRICS, trajectory
from sdmodel.model import reader_units, with_units


def comparison_figure(results: xr.Dataset):
    """Key trajectories of the comparison metrics, one panel each, a line per scenario."""
    _backends()
    panels = []
    for metric in METRICS:
        if metric.variable not in results:
            continue
        line = trajectory(results, metric)
        units = reader_units(line.attrs["units"], metric.variable)
        line = line.assign_attrs(units=units)  # hvplot's hover text reads the units too
        panel = line.hvplot.line(
            x="time", by="scenario", title=metric.label, xlabel="year",
            ylabel=f"{metric.label} [{units}]" if units else metric.label,
            width=520, height=300, legend="top_left",
        )
        # a PNG's panels are small: the title names the measure, the axis its units, one legend for all
        panels.append(panel.opts(title=metric.label, xlabel="year", ylabel=units or "units not given",
                                 show_legend=not panels, legend_position="bottom_left", aspect=1.6, show_grid=True, backend="matplotlib"))
    layout = panels[0]
    for panel in panels[1:]:
        layout = layout + panel
    return layout.cols(2)


def save_html(figure, path: str | os.PathLike, title: str = "sdmodel comparison") -> Path:
    """Write a figure as one HTML file with Bokeh's JavaScript inlined, so it opens offline.

    Rendered straight through Bokeh rather than ``hvplot.save``: Panel's page template
    links its icons from a CDN, and a report must not reach for the network.
    """
    import holoviews as hv
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    target = Path(path)
    if target.suffix.lower() != ".html":
        raise InputError(target, None, "the plot must be an .html file", "give a file name ending in .html")
    if not target.parent.is_dir():
        raise InputError(target, None, f"folder {target.parent} does not exist", "create it or choose another path")
    html = file_html(hv.render(figure, backend="bokeh"), INLINE, title)
    # Bokeh inlines its own code; the only <script src> left is a module shim that Panel registers
    # for its reactive components, which these figures do not use and which cannot load offline.
    html = re.sub(r"<script src=[^>]*></script>\n?", "", html)
    temporary = target.with_name(f".{target.name}.partial")
    try:
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, target)  # readers never see half a page
    finally:
        temporary.unlink(missing_ok=True)
    return target


# --- any variable of a run, by scenario or subscript; PNG through matplotlib ------------------------

#: dims whose members summarise an ensemble (drawn as bands, not one line each)
BAND_DIMS = ("run", "percentile", "quantile")
BY_CHOICES = ("scenario", "Firm", "Domain")
PANEL = {"width": 460, "height": 280}
MPL_CURVE = {"aspect": 1.6, "xformatter": "%d", "show_grid": True}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#393b79", "#637939", "#8c6d31", "#843c39")


def _backends() -> None:
    """Load both HoloViews plotting backends, so options can be set for each: Bokeh (HTML) and matplotlib (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: PNGs are made on servers and in CI
    import holoviews as hv
    import holoviews.plotting.bokeh  # noqa: F401
    import holoviews.plotting.mpl  # noqa: F401

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
        raise InputError("--var", name, "is not a variable of this run", fix)
    select: dict[str, str] = {}
    if match:
        elements = [e.strip() for e in match["element"].split(",")]
        dims = [d for d in results[found].dims if d not in ("time", "scenario", *BAND_DIMS)]
        for element in elements:
            dim = next((d for d in dims if element in [str(v) for v in results[d].values]), None)
            if dim is None or dim in select:
                known = ", ".join(str(v) for d in dims for v in results[d].values) or "none: the variable has no subscripts"
                raise InputError("--var", name, f"'{element}' is not an element of {found}", f"elements are: {known}")
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
        title=title, xlabel="year", ylabel=ylabel, **MPL_CURVE, backend="matplotlib")


def variable_figure(results: xr.Dataset, names: list[str], by: str = "scenario"):
    """Each variable over time: a line per member of ``by`` (``scenario``, ``Firm`` or ``Domain``),
    a panel per member of the variable's other subscripts. Ensemble runs (a ``run``,
    ``percentile`` or ``quantile`` dim) are drawn as bands: 5-95 % and 25-75 %, and the median.
    Axis labels carry the variable's units."""
    import holoviews as hv

    _backends()

    if by not in BY_CHOICES:
        raise InputError("--by", by, "unknown grouping", f"choose one of: {', '.join(BY_CHOICES)}")
    if not names:
        raise InputError("--var", None, "no variable given", "name at least one, e.g. --var \"model capability\"")
    panels = []
    for name in names:
        variable, select = resolve_variable(results, name)
        array = results[variable].sel(select)
        if "time" not in array.dims:
            raise InputError("--var", name, "is a constant in this run (no time axis)", "choose a variable that changes over time")
        array = _in_reader_units(array.assign_attrs(results[variable].attrs))
        suffix = "".join(f"[{v}]" for v in select.values())
        band = next((d for d in BAND_DIMS if d in array.dims), None)
        colour = by if by in array.dims else None
        facets = [d for d in array.dims if d not in ("time", colour, band)]
        for values in _product(array, facets):
            piece = array.sel(dict(zip(facets, values))) if facets else array
            title = _label(array) + suffix + "".join(f" · {v}" for v in values)
            if band:
                panels.append(_styled(band_overlay(piece, band, colour), title, _ylabel(array)))
            else:
                line = piece.hvplot.line(x="time", by=colour, legend="top_left") if colour else piece.hvplot.line(x="time")
                panels.append(_styled(line, title, _ylabel(array)))
    return hv.Layout(panels).cols(2).opts(shared_axes=False, backend="bokeh")


def sweep_figure(results: xr.Dataset, name: str):
    """A sweep's outcome at its final time: against the first swept constant, a line per value of the
    second, a panel per value of the third (and per element of the variable's subscripts).

    Where a line jumps, the outcome tips: the figure is for reading thresholds off a sweep."""
    import json

    import holoviews as hv

    _backends()
    swept = json.loads(results.attrs.get("ensemble_params", "[]"))
    if not swept:
        raise InputError("run", None, "is not a sweep", "draw a sweep's results (sdmodel sweep)")
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
    for values in _product(array, facets):
        piece = array.sel(dict(zip(facets, values))) if facets else array
        title = " · ".join(f"{named(d)} = {v:.3g}" if isinstance(v, float) else str(v) for d, v in zip(facets, values)) or short
        line = piece.hvplot.line(x=x, by=by, legend="right") if by else piece.hvplot.line(x=x)
        if math.isfinite(own):  # a dashed line at the scenario's own value, named at the top of the panel
            mark = hv.VLine(own).opts(color="black", line_dash="dashed", line_width=1, backend="bokeh").opts(
                color="black", linestyle="--", linewidth=1, backend="matplotlib")
            # named to the left of the line, at the top: where a tipping curve is still low
            tag = hv.Text(own, float(piece.max()), f"{scenario} ({own:.3g}) ", halign="right", valign="top", fontsize=8)
            curves = [curve.relabel(str(key)) for key, curve in line.items()] if by else [line]
            line = hv.Overlay([*curves, mark, tag])
            if by:  # an overlay's legend has no title: name the second constant there again, as hvplot's own legend does
                line = line.opts(legend_position="bottom_right", hooks=[_legend_title(by, "matplotlib")], backend="matplotlib").opts(
                    legend_position="bottom_right", hooks=[_legend_title(by, "bokeh")], backend="bokeh")
        panels.append(line.opts(title=title, xlabel=xlabel, ylabel=ylabel, **PANEL, backend="bokeh").opts(
            title=title, xlabel=xlabel, ylabel=ylabel, aspect=1.6, show_grid=True, backend="matplotlib"))
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


def _product(array: xr.DataArray, dims: list[str]) -> list[tuple]:
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


def band_overlay(array: xr.DataArray, band: str, colour: str | None):
    """Bands of an ensemble variable over time: 5-95 % lightly, 25-75 % darker, the median as a line."""
    import holoviews as hv

    _backends()

    bands = percentile_bands(array, band)
    available = [float(p) for p in bands["percentile"].values]
    members = bands[colour].values.tolist() if colour else [None]
    layers = []
    for index, member in enumerate(members):
        piece = bands.sel({colour: member}) if colour else bands
        tint = PALETTE[index % len(PALETTE)]
        label = str(member) if member is not None else _label(array)
        for low, high, alpha in ((5, 95, 0.18), (25, 75, 0.35)):
            if low in available and high in available:
                layers.append(hv.Area((piece["time"].values, piece.sel(percentile=low).values, piece.sel(percentile=high).values),
                                      kdims=["time"], vdims=["low", "high"], label=label).opts(color=tint, alpha=alpha, line_alpha=0))
        middle = 50.0 if 50.0 in available else available[len(available) // 2]
        layers.append(hv.Curve((piece["time"].values, piece.sel(percentile=middle).values), kdims=["time"], vdims=["median"], label=label).opts(color=tint))
    return hv.Overlay(layers).opts(show_legend=bool(colour), legend_position="top_left", backend="bokeh")


def scenario_multiples(results: xr.Dataset, baseline: str = "baseline", keys: tuple[str, ...] | None = None):
    """Small multiples: a panel per scenario and key metric, the scenario's trajectory against the baseline's (grey)."""
    import holoviews as hv

    _backends()

    from sdmodel.metrics import METRICS

    chosen = [m for m in METRICS if m.variable in results and (keys is None or m.key in keys)]
    names = [str(n) for n in results["scenario"].values if str(n) != baseline]
    rows = []
    for metric in chosen:
        line = trajectory(results, metric)
        ylabel = with_units(metric.short, str(line.attrs.get("units") or ""), metric.variable)
        for index, name in enumerate(names):
            base = hv.Curve((line["time"].values, line.sel(scenario=baseline).values), "time", metric.key, label=baseline).opts(color="#999999", line_dash="dashed", backend="bokeh").opts(color="#999999", linestyle="--", backend="matplotlib")
            this = hv.Curve((line["time"].values, line.sel(scenario=name).values), "time", metric.key, label=name).opts(color=PALETTE[index % len(PALETTE)])
            rows.append((base * this).opts(title=f"{name}: {metric.short}", xlabel="year", ylabel=ylabel, width=280, height=200, xticks=4, show_legend=False, toolbar=None, fontsize={"title": 9}, backend="bokeh")
                        .opts(title=f"{name}: {metric.short}", xlabel="year", ylabel=ylabel, show_legend=False, backend="matplotlib"))
    return hv.Layout(rows).cols(max(1, min(len(names), 5))).opts(shared_axes=False, backend="bokeh")


def loop_dominance_figure(dominance: xr.Dataset):
    """Which named loop dominates when: a strip per scenario coloured by the dominant loop, and each
    loop's share of loop activity over time in the first scenario (usually the baseline)."""
    import holoviews as hv

    _backends()
    import pandas as pd

    loops = dominance["loop"].values.tolist()
    colours = {loop: PALETTE[i % len(PALETTE)] for i, loop in enumerate(loops)}
    names = dict(zip(loops, dominance["loop_name"].values.tolist()))
    time = dominance["time"].values
    step = float(time[1] - time[0]) if len(time) > 1 else 1.0
    rows = []
    scenarios = [str(s) for s in dominance["scenario"].values]
    for position, scenario in enumerate(scenarios):
        dominant = dominance["dominant"].sel(scenario=scenario).values
        for t, loop in zip(time, dominant):
            if loop:
                row = len(scenarios) - 1 - position  # the first scenario on top
                rows.append({"x0": float(t), "x1": float(t) + step, "y0": row - 0.4, "y1": row + 0.4,
                             "scenario": scenario, "loop": f"{loop} {names[str(loop)]}"})
    frame = pd.DataFrame(rows, columns=["x0", "y0", "x1", "y1", "scenario", "loop"])
    cmap = {f"{loop} {names[loop]}": colours[loop] for loop in loops}
    ticks = [(len(scenarios) - 1 - i, name) for i, name in enumerate(scenarios)]
    strip = hv.Rectangles(frame, kdims=["x0", "y0", "x1", "y1"], vdims=["scenario", "loop"]).opts(
        color="loop", cmap=cmap, line_alpha=0, yticks=ticks, xlabel="year", ylabel="", title="Dominant loop by scenario",
        width=900, height=60 + 28 * len(scenarios), legend_position="right", show_legend=True, tools=["hover"], backend="bokeh",
    ).opts(color="loop", cmap=cmap, yticks=ticks, xlabel="year", ylabel="", title="Dominant loop by scenario", linewidth=0,
           aspect=max(2.5, 12 / max(len(scenarios), 1)), show_legend=True, backend="matplotlib")
    first = scenarios[0]
    shares = dominance["share"].sel(scenario=first)
    curves = [hv.Curve((time, shares.sel(loop=loop).values), "time", hv.Dimension("share", label="share of loop activity", unit="share"),
                       label=f"{loop} {names[loop]}").opts(color=colours[loop]) for loop in loops]
    share = hv.Overlay(curves).opts(title=f"Loop shares: {first}", xlabel="year", ylabel="share of loop activity [share]",
                                    width=900, height=300, legend_position="right", backend="bokeh").opts(
        title=f"Loop shares: {first}", xlabel="year", ylabel="share of loop activity [share]", aspect=2.5, legend_position="right", backend="matplotlib")
    return (strip + share).cols(1).opts(shared_axes=False, backend="bokeh")


def save_png(figure, path: str | os.PathLike, dpi: int = 90) -> Path:
    """Write a figure as a PNG through matplotlib (no browser); written beside and renamed into place."""
    import holoviews as hv

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise InputError(target, None, "the image must be a .png file", "give a file name ending in .png")
    if not target.parent.is_dir():
        raise InputError(target, None, f"folder {target.parent} does not exist", "create it or choose another path")
    _backends()
    figure = figure.opts(hv.opts.Curve(xformatter="%d"), hv.opts.Overlay(xformatter="%d"),
                         hv.opts.Layout(sublabel_format="", vspace=0.35, hspace=0.35), backend="matplotlib", clone=True)
    renderer = hv.renderer("matplotlib").instance(dpi=dpi)
    temporary = target.with_name(f".{target.stem}-partial")
    written = temporary.with_name(temporary.name + ".png")  # the renderer adds the suffix
    try:
        renderer.save(figure, str(temporary), fmt="png")
        os.replace(written, target)
    finally:
        written.unlink(missing_ok=True)
    return target


def save_figure(figure, path: str | os.PathLike, title: str = "sdmodel") -> Path:
    """Save as self-contained HTML or as PNG, by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".html":
        return save_html(figure, path, title)
    if suffix == ".png":
        return save_png(figure, path)
    raise InputError(path, "--out", f"unknown figure format '{suffix}'", "give a file name ending in .html or .png")
