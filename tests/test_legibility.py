"""Figures and the report as a reader sees them (issue 16): no legend over the data, no colour twice in a panel,
every scenario in every panel, a band per scenario, loop dominance without flicker, a table coloured by a declared
point of view, and a summary written from the numbers.

The structure is checked on the Bokeh and matplotlib objects; the images a reader would look at (a headless
Chromium screenshot of each HTML page, and the PNGs) are written to tests/artifacts/ (git-ignored) for a person to open.
"""

from __future__ import annotations

import html
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr
from paths import CHROMIUM_ARGS, SHORT_HORIZON, chromium

from sdmodel import palette
from sdmodel.options import Execution, RunSetup

ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored: screenshots and PNGs of the last run
LOOP_SCENARIOS = ["baseline", "data-strike", "collective-licensing"]
#: what firms pay for data: one key before metrics.py's split, the other after it
PAYMENTS = ("data_payments_cumulative",)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # test output, never committed
    return ARTIFACTS / name


def screenshot(page: Path, image: Path) -> None:
    """A full-page screenshot of an HTML file in headless Chromium, as a reader's browser draws it (skipped without one)."""
    binary = chromium()
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package drives the browser")
    if binary is None:
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 900})
            errors = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(page.resolve().as_uri())
            tab.wait_for_selector(".bk-Figure, .bk-GridPlot, .bk-GridBox", state="attached", timeout=60_000)
            tab.wait_for_timeout(1000)  # let the canvases draw
            tab.screenshot(path=str(image), full_page=True)
            assert not errors, errors
        finally:
            browser.close()


def bokeh_plots(figure) -> list:
    """The Bokeh plots (panels) a HoloViews figure renders to."""
    from bokeh.models import Plot

    return list(hv.render(figure, backend="bokeh").select({"type": Plot}))


def line_colours(plot) -> list[str]:
    """Colours of a Bokeh panel's lines in colour (grey context lines and band areas left out)."""
    from bokeh.models import Line

    return [r.glyph.line_color for r in plot.renderers if isinstance(r.glyph, Line) and r.glyph.line_color != palette.OTHERS]


def assert_legible_html(figure) -> list:
    """Every panel: legends outside the data area, at most MAX_SERIES lines in colour, no colour twice."""
    from bokeh.models import Legend

    plots = bokeh_plots(figure)
    assert plots
    for plot in plots:
        title = plot.title.text if plot.title else ""
        inside = [item for item in plot.center if isinstance(item, Legend) and item.visible and item.items]
        assert not inside, f"a legend inside the data area of '{title}'"
        colours = line_colours(plot)
        assert len(colours) <= palette.MAX_SERIES, (title, colours)
        assert len(set(colours)) == len(colours), f"a colour used twice in '{title}': {colours}"
    return plots


def assert_legible_png(figure) -> None:
    """As drawn by `save_png`: no legend over any panel's axes (its own or a neighbour's), no colour twice in a panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from sdmodel.plots import for_png

    rendered = hv.render(for_png(figure), backend="matplotlib")
    canvas = FigureCanvasAgg(rendered)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = [ax for ax in rendered.axes if ax.get_visible() and ax.has_data()]
    assert axes
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            box = legend.get_window_extent(renderer)
            for other in axes:
                assert not box.overlaps(other.get_window_extent(renderer)), (
                    f"the legend of '{ax.get_title()}' lies over '{other.get_title()}'"
                )
        colours = [line.get_color() for line in ax.get_lines() if line.get_color().lower() != palette.OTHERS.lower()]
        assert len(set(colours)) == len(colours), f"a colour used twice in '{ax.get_title()}': {colours}"


def curve_labels(panel) -> set[str]:
    return {element.label for element in panel if isinstance(element, (hv.Curve, hv.Area))}


# --- the figures of `compare --plot`, `plot` and the report, for every bundled scenario --------------------------------


def test_comparison_figure_of_every_bundled_scenario(bundled_comparison):
    """17 scenarios: every one in every panel, the strongest levers in colour, the rest grey (`compare --plot`)."""
    from sdmodel.plots import comparison_figure, featured_scenarios, save_html, save_png

    results, _ = bundled_comparison
    names = [str(n) for n in results["scenario"].values]
    assert len(names) > palette.MAX_SERIES  # the case the issue is about
    figure = comparison_figure(results)
    chosen = featured_scenarios(results)
    assert 0 < len(chosen) <= palette.FEATURED
    for panel in figure:
        assert set(names) <= curve_labels(panel), panel.label  # the rest are there, in grey
    for plot in assert_legible_html(figure):
        assert len(line_colours(plot)) == len(chosen) + 1  # the featured and the baseline
        assert palette.BASELINE in line_colours(plot)
    assert_legible_png(figure)
    page = save_html(figure, artifact("compare-plot.html"))
    screenshot(page, artifact("compare-plot.png"))
    save_png(figure, artifact("compare-figure.png"))


def test_comparison_figure_of_a_few_scenarios_gives_each_its_own_colour(bundled_comparison):
    from sdmodel.plots import comparison_figure

    results, _ = bundled_comparison
    few = results.sel(scenario=["baseline", "data-strike", "collective-licensing", "windfall-tax"])
    for plot in assert_legible_html(comparison_figure(few)):
        assert len(set(line_colours(plot))) == 4
    assert_legible_png(comparison_figure(few))


@pytest.mark.parametrize("variables, by", [(["model capability", "hhi"], "scenario"), (["revenue share"], "Firm")])
def test_plot_pngs_of_every_bundled_scenario(bundled_comparison, variables, by):
    """`sdmodel plot` of a run of every bundled scenario: by scenario (a panel per firm), and by firm (a panel per scenario)."""
    from sdmodel.plots import save_png, variable_figure

    results, _ = bundled_comparison
    figure = variable_figure(results, variables, by=by)
    names = {str(n) for n in results["scenario"].values}
    if by == "scenario":
        assert all(names <= curve_labels(panel) for panel in figure)
    else:  # a panel per scenario, with every firm in it
        assert len(figure) == len(names) and all(curve_labels(panel) == {"incumbent", "challenger", "open"} for panel in figure)
    assert_legible_html(figure)
    assert_legible_png(figure)
    save_png(figure, artifact(f"plot-{by}.png"))


# --- the report ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bands():
    from tempfile import TemporaryDirectory

    import sdmodel
    from sdmodel.report import uncertainty_bands

    with TemporaryDirectory() as folder:
        members = Path(folder) / "dist.toml"  # varies what both scenarios share: each has a band of its own
        members.write_text('[params."usable share of interactions"]\ndist = "uniform"\nlower = 0.01\nupper = 0.03\n')
        run = sdmodel.uncertainty(
            members, ["baseline", "data-strike"], samples=8, setup=RunSetup(final_time=SHORT_HORIZON), execution=Execution(jobs=1)
        )
    summary, note = uncertainty_bands(run)
    assert summary is not None, note
    return summary


@pytest.fixture(scope="module")
def dominance():
    from sdmodel.loops import loop_dominance

    return loop_dominance(LOOP_SCENARIOS, final_time=2050)  # the full horizon: the 2040s are where shares flicker


def test_the_report_is_a_brief_with_legible_figures(bundled_comparison, bands, dominance, tmp_path):
    from sdmodel import plots
    from sdmodel.report import build_report, uncertainty_figure, write_report

    results, _ = bundled_comparison
    page = write_report(build_report(results, dominance=dominance, uncertainty=bands), artifact("report.html"))
    text = page.read_text(encoding="utf-8")
    order = [
        text.index(part)
        for part in (
            "What the run shows",
            "Comparison with the baseline",
            "Key trajectories",
            "Each scenario against the baseline",
            "Which feedback loop",
            "Uncertainty",
            "Provenance",
        )
    ]
    assert order == sorted(order)  # the brief, then the table, then the figures
    assert text.count("class='caption'") == 4  # a caption for each of the four figures
    assert text.count("Point of view:") == 1  # declared once
    screenshot(page, artifact("report.png"))
    # one colour per scenario across the report's figures
    names = [str(n) for n in results["scenario"].values]
    colours = palette.scenario_colours(names, "baseline", plots.featured_scenarios(results))
    drawn: dict[str, set[str]] = {}
    for figure in (
        plots.comparison_figure(results, colours=colours),
        plots.scenario_multiples(results, keys=("hhi",), colours=colours),
        uncertainty_figure(bands, colours),
    ):
        assert_legible_html(figure)
        for panel in figure:
            for element in panel:
                if isinstance(element, hv.Curve) and element.label in names:
                    drawn.setdefault(element.label, set()).add(hv.Store.lookup_options("bokeh", element, "style").kwargs["color"])
    for name, used in drawn.items():
        assert len(used - {palette.OTHERS}) == 1, (name, used)  # its colour, and grey where it is context


def test_every_uncertainty_panel_has_a_band_per_scenario(bands):
    from sdmodel.report import bands_caption, uncertainty_figure

    figure = uncertainty_figure(bands)
    scenarios = {str(s) for s in bands["scenario"].values}
    for panel in figure:
        areas = [element for element in panel if isinstance(element, hv.Area)]
        assert {area.label for area in areas} == scenarios, panel  # 5-95 % and 25-75 % of each
        assert len(areas) == 2 * len(scenarios)
        first_median = next(i for i, element in enumerate(panel) if isinstance(element, hv.Curve))
        assert all(isinstance(element, hv.Area) for element in list(panel)[:first_median])  # no band drawn over a median
    assert_legible_html(figure)
    assert_legible_png(figure)
    # a band too narrow to see is named, so that a reader does not take it for a missing scenario
    hhi = bands[["revenue_concentration_index"]]
    middle = hhi["revenue_concentration_index"].sel(percentile=50.0)
    spread = xr.DataArray([-0.2, -0.1, 0.0, 0.1, 0.2], dims="percentile", coords={"percentile": hhi["percentile"]})
    made = (
        middle + spread * xr.DataArray([0.0, 1.0], dims="scenario", coords={"scenario": ["baseline", "data-strike"]})
    ).transpose(*hhi["revenue_concentration_index"].dims)
    text = bands_caption(hhi.assign(revenue_concentration_index=made))  # the baseline's members all agree; the strike's do not
    assert "baseline: the members agree" in text and "data-strike" not in text


def comparison(values: dict[str, dict[str, float]], baseline: str = "baseline") -> xr.Dataset:
    """A comparison (as `compare_metrics` makes it) from final values by scenario and measure key."""
    names = list(values)
    data = {}
    for key in values[baseline]:
        final = np.array([values[n][key] for n in names])
        data[key] = (("scenario", "measure"), np.stack([final, final - values[baseline][key]], axis=1), {"units": ""})
    return xr.Dataset(
        data, coords={"scenario": names, "measure": ["final", "vs_baseline"]}, attrs={"baseline": baseline, "time": 2050.0}
    )


def test_the_table_colours_a_change_by_the_declared_direction_never_by_its_sign():
    from sdmodel.metrics import METRIC_BY_KEY
    from sdmodel.report import VIEWPOINT, comparison_table

    payments = next(key for key in PAYMENTS if key in METRIC_BY_KEY)
    metrics = comparison(
        {
            "baseline": {"hhi": 0.5, payments: 0.0, "incumbent_capability": 10.0},
            "up": {"hhi": 0.6, payments: 100.0, "incumbent_capability": 12.0},
            "noise": {"hhi": 0.5 + 1e-7, payments: 0.0, "incumbent_capability": 10.0},
        }
    )
    row = comparison_table(metrics).split("<td class='name'>up</td>")[1]
    cells = row.split("</tr>")[0].split("<td")[1:]
    tones = dict(zip(metrics.data_vars, cells))
    assert "class='worse'" in tones["hhi"]  # more concentration: up, and worse
    assert "class='better'" in tones[payments]  # more paid to data producers: up, and better
    assert "class=''" in tones["incumbent_capability"]  # no direction declared: not coloured
    noise = comparison_table(metrics).split("<td class='name'>noise</td>")[1].split("</tr>")[0]
    assert "better" not in noise and "worse" not in noise  # a change of 1e-7 in 0.5 is no verdict
    assert comparison_table(metrics).count("Point of view:") == 1 and html.escape(VIEWPOINT.statement) in comparison_table(
        metrics
    )
    plain = comparison_table(metrics, viewpoint=None)
    assert "better" not in plain.replace("is better", "") and "worse" not in plain and "No point of view declared" in plain
    assert all(VIEWPOINT.desirable.get(key) == 1 for key in ("data_payments_cumulative", "commons_grants_cumulative"))


def test_the_summary_is_written_from_the_results_and_changes_with_them(bundled_comparison):
    import sdmodel
    from sdmodel.metrics import METRIC_BY_KEY, compare_metrics, format_number
    from sdmodel.report import summary_sentences

    _, everything = bundled_comparison
    other = compare_metrics(sdmodel.run(["baseline", "windfall-tax", "crawler-block"], engine="simlin", final_time=2040))
    first, second = summary_sentences(everything), summary_sentences(other)
    assert 3 <= len(first) <= 5 and 3 <= len(second) <= 5
    assert first != second
    for metrics, sentences in ((everything, first), (other, second)):
        change = metrics["hhi"].sel(measure="vs_baseline").drop_sel(scenario="baseline")
        mover = str(change["scenario"].values[int(abs(change).argmax())])
        final = float(metrics["hhi"].sel(measure="final", scenario=mover))
        line = next(s for s in sentences if s.startswith(METRIC_BY_KEY["hhi"].label))
        assert f"{mover} moves it most" in line and format_number(final) in line, line
        assert f"in {metrics.attrs['time']:g}" in sentences[0]


# --- loop dominance -----------------------------------------------------------------------------------------------------


def flicker() -> xr.Dataset:
    """Two loops trading the lead every quarter in 2030-2032, then B leading for a year, then A again."""
    time = np.arange(2020, 2040.01, 0.25)
    a = np.where((time >= 2030) & (time < 2032), np.where(np.arange(len(time)) % 2 == 0, 0.6, 0.4), 0.7)
    a = np.where((time >= 2035) & (time < 2036), 0.3, a)
    share = np.stack([a, 1 - a])[None]
    dominant = np.where(share[0, 0] >= share[0, 1], "A", "B")[None]
    return xr.Dataset(
        {"share": (("scenario", "loop", "time"), share), "dominant": (("scenario", "time"), dominant)},
        coords={"scenario": ["baseline"], "loop": ["A", "B"], "time": time, "loop_name": ("loop", ["a", "b"])},
    )


def test_steady_periods_merge_switches_shorter_than_the_minimum():
    from sdmodel.loops import MIN_PERIOD, dominant_periods, steady_periods

    steps = dominant_periods(flicker(), "baseline")
    assert len(steps) > 5  # the step series flickers
    periods = steady_periods(flicker(), "baseline")
    assert [p["loop"] for p in periods] == ["A"]  # a one-year lead of B is under the minimum
    assert periods[0]["start"] == 2020 and periods[0]["end"] == 2040
    longer = steady_periods(flicker(), "baseline", min_period=0.5)
    assert [(p["loop"], p["start"], p["end"]) for p in longer] == [("A", 2020, 2035), ("B", 2035, 2036), ("A", 2036, 2040)]
    assert MIN_PERIOD >= 1


def test_the_loop_dominance_figure_reports_no_switch_shorter_than_its_minimum(dominance):
    from sdmodel.loops import MIN_PERIOD, SMOOTHING, to_json
    from sdmodel.plots import loop_dominance_figure, save_png

    summary = to_json(dominance)
    assert summary["smoothing"]["min_period"] == MIN_PERIOD and summary["smoothing"]["how"] == SMOOTHING
    shortest_step = min(p["end"] - p["start"] for r in summary["scenarios"].values() for p in r["step_periods"][:-1])
    assert shortest_step < MIN_PERIOD  # the raw series stays available, and it does flicker
    for name, result in summary["scenarios"].items():
        assert all(p["end"] - p["start"] >= MIN_PERIOD for p in result["periods"]), (name, result["periods"])
        assert all(a["end"] == b["start"] and a["loop"] != b["loop"] for a, b in zip(result["periods"], result["periods"][1:]))
    figure = loop_dominance_figure(dominance)
    strip = figure[0]
    widths = strip.dframe()["x1"] - strip.dframe()["x0"]
    assert float(widths.min()) >= MIN_PERIOD
    plots = assert_legible_html(figure)
    assert any(f"after {MIN_PERIOD:g} years" in plot.title.text for plot in plots)  # the figure says its minimum
    assert_legible_png(figure)
    save_png(figure, artifact("loops.png"))
