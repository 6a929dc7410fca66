"""Where the tests' own input files live, the bundled model's settings that several test modules read, and the
headless browser the figure and explorer tests drive."""

import functools
import shutil
from pathlib import Path

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
