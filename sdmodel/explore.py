"""A policy explorer in the browser: move a lever, see the future change (as En-ROADS does for climate).

A Panel app served on localhost. Each policy lever (a constant that a bundled scenario sets, and
its start year) gets a slider or a switch; every change re-runs the model on the fast engine
(Simlin, a few milliseconds) and updates the key outcomes, drawn against the baseline. The page
says how long the last update took on the server. The current settings can be saved as a scenario
TOML that ``sdmodel run``/``compare`` accept.

The levers are found, not listed by hand: every constant set in ``models/scenarios/*.toml`` is one.
``GROUPS`` only orders them into families; a lever of a new scenario lands in "Other levers".
"""

from __future__ import annotations

import html
import math
import os
import re
import socket
import time as clock
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from sdmodel import atomic, palette
from sdmodel.errors import InputError
from sdmodel.metrics import METRICS, trajectory
from sdmodel.model import ModelInfo, normalise, reader_units, with_units
from sdmodel.scenario import ELEMENT_PATTERN, NAME_PATTERN, Scenario, bundled_scenarios, load_scenario, validate

#: lever families, in the order the page shows them (Vensim names, compared case-insensitively)
GROUPS = (
    ("Data strike", ("data strike fraction", "data strike start")),
    ("Crawler block and erasure", ("crawler block fraction", "crawler block start", "erasure fraction", "erasure start")),
    (
        "Conscious data contribution",
        (
            "conscious contribution share",
            "conscious contribution to receiver",
            "redirect receiver",
            "conscious contribution start",
        ),
    ),
    ("Data poisoning", ("data poisoning share", "data poisoning start")),
    ("Data-sharing mandate", ("data sharing mandate share", "data sharing start")),
    (
        "Collective licensing",
        ("organising rate", "organising start", "collective bargaining weight", "licensing start", "collective strike"),
    ),
    ("Eval-data bargaining", ("eval withholding share", "eval withholding start", "eval royalty rate", "eval deal start")),
    (
        "Public commons and taxes",
        (
            "public commons funding",
            "public commons start",
            "windfall tax rate",
            "compute tax rate",
            "tax start",
            "commons share of tax",
        ),
    ),
)
OTHER = "Other levers"
#: the outcomes drawn live (metric keys of sdmodel.metrics.METRICS)
LIVE_METRICS = (
    "incumbent_revenue_share",
    "hhi",
    "incumbent_capability",
    "data_payments_cumulative",
    "labour_share",
    "ai_capital_share",
)


BASELINE_COLOUR = palette.BASELINE  # as in every figure of sdmodel (sdmodel.palette): the baseline black and dashed
#: pixels right of a chart's plot area, where the last tick label ("2050") must fit
CHART_RIGHT_BORDER = 28
#: characters of a chart title that fit half of a 1400 px page beside the levers (Bokeh does not wrap titles)
TITLE_CHARS = 52
CURRENT_COLOUR = palette.HIGHLIGHT


@dataclass(frozen=True)
class Lever:
    """One slider or switch: a constant (or one element of it) a scenario may set."""

    key: str  # as a scenario's [params] writes it, e.g. "eval withholding share[legal]"
    label: str
    units: str
    group: str
    low: float
    high: float
    step: float
    default: float
    switch: bool = False

    @property
    def css(self) -> str:
        """A CSS class naming the lever's widget, for tests and styling."""
        return "lever-" + re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")


def find_levers(info: ModelInfo, baseline: xr.Dataset) -> list[Lever]:
    """Every constant the bundled scenarios set, one lever per element for a subscripted one."""
    keys: dict[str, list[float]] = {}
    for name in bundled_scenarios():
        for key, value in load_scenario(name).params.items():
            values = [v for _, v in value] if isinstance(value, tuple) else [value]
            keys.setdefault(key, []).extend(values)
    levers = []
    seen = set()
    for key, values in keys.items():
        match = ELEMENT_PATTERN.match(key)
        variable = info.resolve(match["name"] if match else key, "scenarios", key)
        elements = [()] if not variable.dims else [(e,) for e in info.subscripts.get(variable.dims[0], ())]
        for element in elements:  # every element gets a lever, not only those a scenario happens to set
            lever_key = f"{variable.name}[{element[0]}]" if element else variable.name
            if lever_key in seen:
                continue
            seen.add(lever_key)
            default = float(
                baseline[variable.py_name].sel({variable.dims[0]: element[0]}) if element else baseline[variable.py_name]
            )
            levers.append(_lever(lever_key, variable, default, values))
    order = {normalise(name): (g, i) for g, (_, names) in enumerate(GROUPS) for i, name in enumerate(names)}
    return sorted(
        levers,
        key=lambda lever: order.get(normalise(ELEMENT_PATTERN.sub(r"\g<name>", lever.key)), (len(GROUPS), 0)) + (lever.key,),
    )


def _lever(key: str, variable, default: float, values: list[float]) -> Lever:
    base = normalise(variable.name)
    group = next((title for title, names in GROUPS if base in names), OTHER)
    if variable.units == "year":
        low = max(variable.lower if math.isfinite(variable.lower) else 2020.0, 2020.0)
        high = variable.upper if math.isfinite(variable.upper) else 2100.0
        return Lever(key, variable.name, "year", group, low, high, 1.0, default)
    switch = variable.comment.strip().lower().startswith("1 if") and variable.lower == 0 and variable.upper == 1
    low = variable.lower if math.isfinite(variable.lower) else 0.0
    high = variable.upper if math.isfinite(variable.upper) else max([1.0, 4 * abs(default), *(2 * abs(v) for v in values)])
    step = 10 ** math.floor(math.log10((high - low) / 100)) if high > low else 0.01
    return Lever(key, variable.name, variable.units, group, low, high, step, default, switch)


def chart_title(label: str) -> str:
    """A measure's label short enough for a chart's title: a long one loses its bracketed remark (the
    outcomes table above the charts gives it in full)."""
    if len(label) <= TITLE_CHARS:
        return label
    return label.split(" (", 1)[0] if len(label.split(" (", 1)[0]) <= TITLE_CHARS else label[: TITLE_CHARS - 1].rstrip() + "…"


def _title(text: str) -> dict[str, str]:
    """A widget's title: Panel 1.9 calls it ``label`` (``name`` is deprecated); older Panels, ``name``."""
    import panel as pn

    return {"label": text} if "label" in pn.widgets.Widget.param else {"name": text}


class Explorer:
    """One browser session's state: the levers, the baseline, the current run and the page."""

    def __init__(
        self, model: str | os.PathLike | None = None, final_time: float | None = None, scenarios_dir: str | os.PathLike = "."
    ):
        from sdmodel.locations import default_model
        from sdmodel.simulate import engine_module

        self.engine = engine_module("simlin")
        self.model_path = Path(model) if model else default_model()
        self.info = self.engine.model_info(self.model_path)
        self.time_defaults = self.engine.time_defaults(self.model_path)
        self.time = {"final_time": float(final_time)} if final_time is not None else {}
        self.scenarios_dir = Path(scenarios_dir)
        self.baseline = self.run({})
        self.levers = find_levers(self.info, self.baseline)
        self.metrics = [m for m in METRICS if m.key in LIVE_METRICS and m.variable in self.baseline]
        self.last_ms = float("nan")
        self._quiet = False
        self._build()
        self.update()

    # --- the model ------------------------------------------------------------------------

    def run(self, params: dict[str, float]) -> xr.Dataset:
        """The model with these lever settings, on the fast engine."""
        scenario = Scenario(
            name="explorer",
            description="Settings from sdmodel explore",
            params=dict(params),
            time=dict(self.time),
            source="sdmodel explore",
        )
        return self.engine.run(self.model_path, validate(scenario, self.info, self.time_defaults))

    def settings(self) -> dict[str, float]:
        """The levers moved away from the baseline, as a scenario's [params]."""
        values = {}
        for lever in self.levers:
            value = float(self.widgets[lever.key].value)
            if not math.isclose(value, lever.default, rel_tol=1e-12, abs_tol=1e-12):
                values[lever.key] = value
        return values

    def update(self, *events) -> None:
        """Re-run with the current settings and redraw; the time taken is shown on the page."""
        if self._quiet:
            return
        start = clock.perf_counter()
        try:
            results = self.run(self.settings())
        except Exception as error:  # noqa: BLE001 (shown on the page: a bad combination must not kill the session)
            self.status.object = f"<span class='error'>Cannot run these settings: {error}</span>"
            return
        import panel as pn

        rows = []
        with pn.io.hold():  # one message to the browser for all the changes
            for metric in self.metrics:
                line = trajectory(results, metric)
                base = trajectory(self.baseline, metric)
                figure, source = self.curves[metric.key]
                source.data = {"time": line["time"].values, metric.key: line.values}
                low, high = float(min(line.min(), base.min())), float(max(line.max(), base.max()))
                pad = 0.06 * (high - low) if high > low else max(abs(high) * 0.05, 1.0)
                figure.y_range.start, figure.y_range.end = low - pad, high + pad
                rows.append(
                    (
                        metric,
                        reader_units(line.attrs.get("units", ""), metric.variable),
                        float(base.isel(time=-1)),
                        float(line.isel(time=-1)),
                    )
                )
            self.outcomes.object = self._outcome_table(rows, float(results["time"][-1]))
            self.last_ms = (clock.perf_counter() - start) * 1000
            moved = len(self.settings())
            self.status.object = (
                f"<span data-metric='latency'>Re-ran the model and redrew in {self.last_ms:.0f} ms</span> "
                f"(Simlin {self.engine.VERSION}; {moved} lever{'s' if moved != 1 else ''} moved from the baseline)."
            )

    # --- the page ---------------------------------------------------------------------------

    def _build(self) -> None:
        import holoviews as hv
        import panel as pn

        from sdmodel.plots import load_backends

        load_backends()
        self.widgets = {}
        cards = {}
        for lever in self.levers:
            label = lever.key if lever.switch else with_units(lever.key, lever.units, lever.label)  # a switch is on or off
            if lever.switch:
                widget = pn.widgets.Checkbox(
                    **_title(label), value=bool(lever.default), css_classes=[lever.css], sizing_mode="stretch_width"
                )
                widget.param.watch(self.update, "value")
            elif lever.units == "year":
                widget = pn.widgets.IntSlider(
                    **_title(label),
                    start=int(lever.low),
                    end=int(lever.high),
                    step=1,
                    value=round(lever.default),
                    css_classes=[lever.css],
                    sizing_mode="stretch_width",
                )
                widget.param.watch(self.update, "value_throttled")
            else:
                widget = pn.widgets.FloatSlider(
                    **_title(label),
                    start=lever.low,
                    end=lever.high,
                    step=lever.step,
                    value=lever.default,
                    css_classes=[lever.css],
                    sizing_mode="stretch_width",
                    format="0[.][000]",
                )
                widget.param.watch(self.update, "value_throttled")
            self.widgets[lever.key] = widget
            cards.setdefault(lever.group, []).append(widget)
        groups = [title for title, _ in GROUPS if title in cards] + ([OTHER] if OTHER in cards else [])
        accordion = pn.Accordion(
            *[(title, pn.Column(*cards[title], sizing_mode="stretch_width")) for title in groups],
            active=[0],
            sizing_mode="stretch_width",
        )
        self.preset = pn.widgets.Select(
            **_title("Start from a scenario"), options=bundled_scenarios(), value="baseline", sizing_mode="stretch_width"
        )
        self.preset.param.watch(self._apply_preset, "value")
        self.name_input = pn.widgets.TextInput(**_title("Scenario name"), value="my-scenario", sizing_mode="stretch_width")
        self.save_button = pn.widgets.Button(
            **_title("Save settings as scenario TOML"),
            button_type="primary",
            sizing_mode="stretch_width",
            css_classes=["save-scenario"],
        )
        self.save_button.on_click(self._save)
        self.saved = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["save-status"])
        self.curves = {}  # metric key -> (Bokeh figure, the data source of "your settings")
        panels = []
        for metric in self.metrics:
            base = trajectory(self.baseline, metric)
            ylabel = with_units(metric.short, base.attrs.get("units", ""), metric.variable)
            data = (base["time"].values, base.values)
            overlay = hv.Curve(data, "time", metric.key, label="baseline").opts(
                color=BASELINE_COLOUR, line_dash="dashed", line_width=2
            ) * hv.Curve(data, "time", metric.key, label="your settings").opts(color=CURRENT_COLOUR, line_width=3)
            figure = hv.render(
                overlay.opts(
                    title=chart_title(metric.label),
                    xlabel="year",
                    ylabel=ylabel,
                    height=260,
                    responsive=True,
                    show_legend=False,  # the intro names the two lines: a legend in a panel covers its data
                    toolbar=None,
                ),
                backend="bokeh",
            )
            figure.min_border_right = CHART_RIGHT_BORDER  # the last year's tick label is drawn half past the axis' end
            # updated in place at every change: a new data source, not a new figure (a redraw costs ~50 ms a panel)
            source = next(r.data_source for r in figure.renderers if getattr(r.glyph, "line_color", None) == CURRENT_COLOUR)
            self.curves[metric.key] = (figure, source)
            panels.append(pn.pane.Bokeh(figure, sizing_mode="stretch_width"))
        self.outcomes = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["outcomes"])
        self.status = pn.pane.HTML("", css_classes=["status"], sizing_mode="stretch_width")
        intro = pn.pane.Markdown(
            "## sdmodel explorer\nMove a lever: the model re-runs (Simlin) and the outcomes update, "
            "drawn as a solid orange-red line against the baseline (black, dashed). Levers are the constants the bundled scenarios set.",
            sizing_mode="stretch_width",
        )
        sidebar = pn.Column(
            self.preset, accordion, self.name_input, self.save_button, self.saved, width=380, scroll=True, height=900
        )
        # the charts stretch to the column's right edge, which was the window's own: a margin keeps the
        # right-hand charts' last tick inside the page (at 1400 px it was cut, and so was a long title)
        charts = pn.GridBox(*panels, ncols=2, sizing_mode="stretch_width")
        main = pn.Column(intro, self.status, self.outcomes, charts, sizing_mode="stretch_width", margin=(0, 24, 0, 10))
        self.page = pn.Row(sidebar, main, sizing_mode="stretch_width")

    def _outcome_table(self, rows, year: float) -> str:
        """The outcomes at the final year, each in its units (cumulative payments are billions of USD, not a share)."""
        from sdmodel.metrics import format_number

        cells = "".join(
            f"<tr><td>{metric.label}</td><td>{format_number(base)}</td><td data-metric='{metric.key}'>{format_number(now)}</td>"
            f"<td>{format_number(now - base, sign=True)}</td><td class='units' data-units='{metric.key}'>{html.escape(units)}</td></tr>"
            for metric, units, base, now in rows
        )
        return (
            f"<table class='outcomes' style='border-collapse:collapse;font-size:14px'><tr><th style='text-align:left'>in {year:g}</th>"
            f"<th>baseline</th><th>your settings</th><th>change</th><th>units</th></tr>{cells}</table>"
        )

    def _apply_preset(self, event) -> None:
        """Set every lever as a bundled scenario has it (baseline values for the rest), then run once."""
        scenario = load_scenario(event.new)
        values = {}
        for key, value in scenario.params.items():
            value = value[-1][1] if isinstance(value, tuple) else value  # a time series: its end value
            match = ELEMENT_PATTERN.match(key)
            variable = self.info.resolve(match["name"] if match else key, scenario.source, key)
            keys = (
                [f"{variable.name}[{match['element']}]"]
                if match
                else [k for k in self.widgets if ELEMENT_PATTERN.sub(r"\g<name>", k) == variable.name or k == variable.name]
            )
            values.update({k: value for k in keys})
        self._quiet = True
        try:
            for lever in self.levers:
                widget = self.widgets[lever.key]
                value = values.get(lever.key, lever.default)
                value = bool(value) if lever.switch else round(value) if lever.units == "year" else float(value)
                widget.value = value
        finally:
            self._quiet = False
        self.name_input.value = f"my-{event.new}"
        self.update()

    def scenario_toml(self, name: str) -> str:
        """The current settings as a scenario file: the baseline plus the levers moved."""
        import tomli_w

        document = {"name": name, "extends": "baseline", "description": "Saved from sdmodel explore", "params": self.settings()}
        if self.time:
            document["time"] = dict(self.time)
        return "# saved by sdmodel explore\n" + tomli_w.dumps(document)

    def save(self, name: str) -> Path:
        """Write the current settings to ``<scenarios dir>/<name>.toml`` (atomically) and return the path."""
        if not NAME_PATTERN.match(name):
            raise InputError(
                source="scenario name",
                key=name,
                problem="is not a usable scenario name",
                fix="use letters, digits, '-', '_' or '.'",
            )
        if not self.scenarios_dir.is_dir():
            raise InputError(
                source=self.scenarios_dir,
                key=None,
                problem="folder does not exist",
                fix="create it, or start explore with another --scenarios-dir",
            )
        target = self.scenarios_dir / f"{name}.toml"
        return atomic.write_text(target, self.scenario_toml(name))

    def _save(self, event=None) -> None:
        try:
            path = self.save(self.name_input.value.strip())
            self.saved.object = f"Saved <code>{path}</code>: run it with <code>sdmodel run {path}</code>"
        except (InputError, OSError) as error:
            self.saved.object = f"<span class='error'>Not saved: {error}</span>"


def app(model: str | os.PathLike | None = None, final_time: float | None = None, scenarios_dir: str | os.PathLike = "."):
    """A fresh explorer page (one per browser session)."""
    import panel as pn

    explorer = Explorer(model, final_time, scenarios_dir)
    # the first update of a live page costs ~0.5 s (Bokeh's first patch of each figure): pay it on
    # loading, not on the user's first move
    pn.state.onload(explorer.update)
    return explorer.page


def free_port() -> int:
    """A port on localhost that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_port_free(port: int) -> None:
    """Refuse a port something else listens on, in one line, before Panel's server fails on it with a traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise InputError(
                source="--port",
                key=str(port),
                problem=f"cannot listen there ({error.strerror})",
                fix="choose another port, or --port 0 for any free one",
            ) from None


def serve(
    port: int = 5006, show: bool = True, final_time: float | None = None, scenarios_dir: str | os.PathLike = ".", model=None
) -> None:
    """Serve the explorer on localhost until interrupted (``port=0``: any free port)."""
    import panel as pn

    if not Path(scenarios_dir).is_dir():
        raise InputError(
            source="--scenarios-dir",
            key=str(scenarios_dir),
            problem="folder does not exist",
            fix="create it or choose another folder",
        )
    Explorer(model, final_time, scenarios_dir)  # fail here, with one line, before a server starts
    port = port or free_port()
    _check_port_free(port)
    print(f"sdmodel explore: http://localhost:{port}/ (Ctrl-C to stop)", flush=True)
    pn.serve(
        {"/": lambda: app(model, final_time, scenarios_dir)},
        port=port,
        address="127.0.0.1",
        show=show,
        websocket_origin=[f"localhost:{port}", f"127.0.0.1:{port}"],
        title="sdmodel explorer",
        print_url=False,
    )
