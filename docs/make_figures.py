"""Make the README's pictures: the comparison figure (PNG), a screenshot of the explorer, and the
tipping figure of models/README.md (the sweep command in TIPPING, run as a user would).

    python docs/make_figures.py          # needs Chromium for the screenshot (Debian: apt-get install chromium)
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
SCENARIOS = ["baseline", "data-strike", "conscious-contribution", "collective-licensing", "strike-and-licensing", "windfall-tax"]
# where the AI market tips to one firm (models/README.md, "Where the market tips")
TIPPING = [
    "sweep",
    "--param",
    "share sensitivity=2:10:33",
    "--param",
    "switching time=0.25:4.25:5",
    "--param",
    "usable share of interactions=0.01:0.03:3",
    "--output",
    "hhi",
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def comparison_png(path: Path = HERE / "comparison.png") -> Path:
    import sdmodel
    from sdmodel.plots import comparison_figure, save_png

    results = sdmodel.run(SCENARIOS, engine="simlin")  # held to PySD by tests/test_engine_parity.py
    return save_png(comparison_figure(results), path, dpi=72)


def tipping_png(path: Path = HERE / "tipping.png") -> Path:
    import tempfile

    with tempfile.TemporaryDirectory() as runs:  # the sweep's saved run is not the point here
        subprocess.run(
            [sys.executable, "-m", "sdmodel.cli", *TIPPING, "--plot", str(path), "--runs-dir", runs],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def explorer_png(path: Path = HERE / "explorer.png", chromium: str = "/usr/bin/chromium") -> Path:
    from playwright.sync_api import sync_playwright

    from sdmodel.explore import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sdmodel.cli", "explore", "--port", str(port), "--no-browser"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 860})
            page.goto(url)
            page.locator("[data-metric='incumbent_revenue_share']").wait_for(timeout=30_000)
            page.locator("select").first.select_option("strike-and-licensing")  # a preset: a strike and collective licensing
            page.wait_for_timeout(1500)
            page.screenshot(path=str(path))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    from PIL import Image

    with Image.open(path) as image:  # a small file for the README
        image.convert("RGB").resize((975, 645)).quantize(colors=128).save(path, optimize=True)
    return path


if __name__ == "__main__":
    for made in (comparison_png(), tipping_png(), explorer_png()):
        print(f"wrote {made} ({made.stat().st_size // 1024} KB)")
