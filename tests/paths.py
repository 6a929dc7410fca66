"""Where the tests' own input files live, the bundled model's settings that several test modules read, and the
headless browser the figure and explorer tests drive."""

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BAD = HERE / "bad"
DATA = HERE / "data"
MODELS = HERE / "models"
SHORT_HORIZON = 2035.0  # the levers start in 2027; by 2035 their effects are clear


@functools.cache
def model_step() -> float:
    """The bundled model's own TIME STEP (read by Simlin; tests/test_engine_parity.py holds PySD to the same model)."""
    from sdmodel.engines import simlin
    from sdmodel.locations import default_model

    return simlin.time_defaults(default_model())["time_step"]


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    """A Chromium binary: Debian's `chromium` (.ci/run installs it), or another on PATH."""
    return next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


def without_root_privileges() -> list[str]:
    """A command prefix that makes permissions bind: as root, drop the capability to override them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: a 0o555 folder would not stop writes")
    drop = "-dac_override,-dac_read_search"
    probe = subprocess.run(
        [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", "--", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here: {probe.stderr.decode().strip()}")
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", "--"]
