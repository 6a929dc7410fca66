"""Figures with hvplot: a Dataset in, a figure out, saved as self-contained HTML."""

from __future__ import annotations

import os
import re
from pathlib import Path

import hvplot.xarray  # noqa: F401  (registers .hvplot on xarray objects)
import xarray as xr

from sdmodel.errors import InputError
from sdmodel.metrics import METRICS, trajectory


def comparison_figure(results: xr.Dataset):
    """Key trajectories of the comparison metrics, one panel each, a line per scenario."""
    panels = []
    for metric in METRICS:
        if metric.variable not in results:
            continue
        line = trajectory(results, metric)
        units = line.attrs["units"]
        panels.append(
            line.hvplot.line(
                x="time", by="scenario", title=metric.label, xlabel="year",
                ylabel=f"{metric.label} [{units}]" if units and units != "Dmnl" else metric.label,
                width=520, height=300, legend="top_left",
            )
        )
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
