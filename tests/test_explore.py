"""The policy explorer: its levers, its speed, saving a scenario, and the page in a real (headless) browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from paths import CHROMIUM_ARGS, chromium

from sdmodel.explore import free_port
from sdmodel.metrics import METRIC_BY_KEY, trajectory
from sdmodel.scenario import load_scenario

ARTIFACTS = Path(__file__).parent / "artifacts"  # git-ignored: screenshots of the last browser run
OUTCOME = "[data-metric='incumbent_revenue_share']"


@pytest.fixture(scope="module")
def explorer():
    from sdmodel.explore import Explorer

    return Explorer(final_time=2040)


def test_every_lever_of_the_bundled_scenarios_has_a_widget(explorer):
    keys = {lever.key.lower() for lever in explorer.levers}
    for name in (
        "data strike fraction",
        "data strike start",
        "erasure fraction",
        "conscious contribution share",
        "data poisoning share",
        "data sharing mandate share",
        "organising rate",
        "licensing start",
        "collective bargaining weight",
        "collective strike",
        "windfall tax rate",
        "compute tax rate",
        "public commons funding",
    ):
        assert name in keys, name
    assert {f"eval withholding share[{d}]" for d in ("software", "media", "finance", "support", "legal", "health")} <= keys
    assert {"crawler block fraction", "erasure fraction", "redirect receiver[open]"} <= keys
    from sdmodel.explore import OTHER

    assert [lever.key for lever in explorer.levers if lever.group == OTHER] == []  # every bundled lever sits in its family
    by_key = {lever.key.lower(): lever for lever in explorer.levers}
    assert by_key["collective strike"].switch and not by_key["data strike fraction"].switch
    assert by_key["data strike start"].units == "year" and by_key["data strike start"].step == 1
    assert by_key["data strike fraction"].default == 0 and (
        by_key["data strike fraction"].low,
        by_key["data strike fraction"].high,
    ) == (0, 1)
    assert set(explorer.widgets) == {lever.key for lever in explorer.levers}


def test_a_lever_change_reruns_the_model_and_moves_the_outcome(explorer):
    """What a change does, not how fast: the 200 ms target is measured by bench/explorer.py (a timed assertion
    fails on a loaded machine without anything being wrong)."""
    import param

    widget = explorer.widgets["data strike fraction"]
    before = explorer.outcomes.object
    for value in (0.5, 0.2, 0.5):
        with param.edit_constant(widget):
            widget.value = value
            widget.value_throttled = value  # what a slider's release sets
        assert explorer.last_ms > 0  # the change re-ran the model and timed it, for the page's status line
    assert explorer.outcomes.object != before
    _figure, source = explorer.curves["incumbent_revenue_share"]
    unstruck = float(trajectory(explorer.baseline, METRIC_BY_KEY["incumbent_revenue_share"]).isel(time=-1))
    assert (
        source.data["incumbent_revenue_share"][-1] < unstruck - 0.01
    )  # a strike by half the contributors cuts the incumbent's share


def test_every_outcome_shows_its_units_and_every_chart_title_fits(explorer):
    """The payments row had no units (billions of USD beside shares); a long title ran past its chart."""
    from sdmodel.explore import CHART_RIGHT_BORDER, TITLE_CHARS

    table = explorer.outcomes.object
    assert "<th>units</th>" in table and "data-units='data_payments_cumulative'>billion USD<" in table
    assert "data-units='hhi'>index<" in table and "data-units='incumbent_revenue_share'>share<" in table and "Dmnl" not in table
    for figure, _ in explorer.curves.values():
        assert len(figure.title.text) <= TITLE_CHARS and figure.min_border_right >= CHART_RIGHT_BORDER
    assert "[share]" in explorer.curves["labour_share"][0].yaxis[0].axis_label


def test_no_chart_has_a_legend_over_its_data_and_the_intro_names_the_lines(explorer):
    """Issue 16: the first chart's legend sat in its data area; the intro says which line is which instead."""
    from bokeh.models import Legend

    for figure, _ in explorer.curves.values():
        legends = [item for item in figure.center if isinstance(item, Legend) and item.visible and item.items]
        assert not legends, figure.title.text
    intro = explorer.page[1][0].object
    assert "baseline (black, dashed)" in intro and "solid orange-red" in intro


def test_save_writes_a_scenario_that_loads_and_means_the_same(explorer, tmp_path):
    explorer.scenarios_dir = tmp_path
    explorer.widgets["data strike fraction"].value = 0.4
    explorer.widgets["eval withholding share[legal]"].value = 0.6
    path = explorer.save("my-strike")
    document = tomllib.loads(path.read_text())
    assert document["extends"] == "baseline" and document["params"]["data strike fraction"] == 0.4
    scenario = load_scenario(path)
    assert scenario.params["eval withholding share[legal]"] == 0.6 and scenario.time == {"final_time": 2040.0}
    from sdmodel.errors import InputError

    with pytest.raises(InputError):
        explorer.save("no/slashes")


def test_a_preset_sets_the_levers_as_the_scenario_has_them(explorer):
    from types import SimpleNamespace

    explorer._apply_preset(SimpleNamespace(new="collective-licensing"))
    assert explorer.settings() == {"organising start": 2024, "organising rate": 0.5, "licensing start": 2027}
    explorer._apply_preset(SimpleNamespace(new="baseline"))
    assert explorer.settings() == {}


@pytest.fixture
def served(tmp_path):
    """`sdmodel explore` in its own process on a free port; stopped after the test."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sdmodel.cli",
        "explore",
        "--port",
        str(port),
        "--no-browser",
        "--final-time",
        "2040",
        "--scenarios-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "BOKEH_LOG_LEVEL": "error"}
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300  # a guard against a server that never starts, not a speed test (bench/)
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"sdmodel explore did not start: {process.stdout.read()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def baseline_share_2040() -> float:
    import sdmodel

    return float(
        trajectory(sdmodel.run(["baseline"], engine="simlin", final_time=2040), METRIC_BY_KEY["incumbent_revenue_share"])
        .isel(time=-1)
        .squeeze()
    )


def test_in_a_browser_moving_a_lever_changes_an_outcome(served, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium; .ci/run does this)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package drives the browser")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are test output, never committed
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(served)
            outcome = page.locator(OUTCOME)
            outcome.wait_for(timeout=120_000)  # hang guards, not speed tests (bench/explorer.py)
            before = outcome.inner_text()
            # the baseline's incumbent revenue share in 2040, as a run of the baseline gives it (shown to 3 digits)
            assert float(before) == pytest.approx(baseline_share_2040(), abs=5e-4)
            handle = page.locator(".lever-data-strike-fraction .noUi-handle")
            track = page.locator(".lever-data-strike-fraction .noUi-target").bounding_box()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + track["width"] * 0.5, box["y"] + box["height"] / 2, steps=5)
            released = time.monotonic()
            page.mouse.up()
            page.wait_for_function(
                """([selector, before]) => {
                    const find = (root) => { const hit = root.querySelector(selector); if (hit) return hit;
                        for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; } }
                        return null; };
                    const cell = find(document); return cell !== null && cell.textContent !== before; }""",
                arg=[OUTCOME, before],
                timeout=60_000,
                polling="raf",
            )
            elapsed_ms = (time.monotonic() - released) * 1000
            after = outcome.inner_text()
            assert float(after) < float(before)  # a data strike against the incumbent cuts its revenue share
            assert "ms" in page.locator("[data-metric='latency']").inner_text()
            page.wait_for_timeout(300)  # let the curves draw
            # every chart inside the window at 1400 px (the right-hand ones ran to its edge and lost their last tick)
            canvases = page.evaluate("""() => { const out = []; const walk = (root) => { for (const el of root.querySelectorAll('canvas')) {
                    const box = el.getBoundingClientRect(); if (box.width > 100) out.push(box.right); }
                for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); } }; walk(document); return out; }""")
            width = page.evaluate("() => document.documentElement.clientWidth")
            assert canvases and max(canvases) <= width - 10, (canvases, width)
            page.screenshot(path=str(ARTIFACTS / "explore.png"))
            page.locator(".save-scenario button").click()
            page.locator(".save-status code").first.wait_for(timeout=60_000)
            saved = tomllib.loads((tmp_path / "my-scenario.toml").read_text())
            assert 0.3 < saved["params"]["data strike fraction"] < 0.7
            assert not errors, errors
            print(f"browser: outcome updated {elapsed_ms:.0f} ms after the slider's release")
        finally:
            browser.close()


def test_a_port_in_use_is_one_line_before_any_server_starts(isolated_runs_dir):

    from click.testing import CliRunner

    from sdmodel.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["explore", "--port", str(port), "--no-browser", "--final-time", "2022"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"--port: {port}: cannot listen there" in line
