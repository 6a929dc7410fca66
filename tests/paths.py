"""Where the tests' own input files live, the bundled model's settings that several test modules read, the
threshold fixture's study that the robustness and discovery tests share, the check of a clean failure that the export
and import tests share, and the headless browser the figure and explorer tests drive."""

import functools
import math
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

# tests/models/threshold.mdl, whose robustness study has an analytic answer (tests/test_robustness.py says it):
# tests/test_robustness.py and tests/test_discovery.py read the same study (the `study` fixture of tests/conftest.py).
THRESHOLD_MODEL = MODELS / "threshold.mdl"
THRESHOLD_FOLDER = MODELS / "threshold"
THRESHOLD_ASSUMPTIONS = THRESHOLD_FOLDER / "assumptions.toml"
THRESHOLD_POLICIES = [str(THRESHOLD_FOLDER / "works-above.toml"), str(THRESHOLD_FOLDER / "dominated.toml")]
THRESHOLD_SAMPLES = 1000
THRESHOLD_CRITERIA = ["benefit@10 - baseline > 0", "benefit@5 - baseline >= 1"]


def sampling_error(p: float, n: int = THRESHOLD_SAMPLES) -> float:
    """Three standard errors of a share (a Latin hypercube's are smaller: this bound is loose, never tight)."""
    return 3 * math.sqrt(p * (1 - p) / n)


def robustness_cli(*args, runs_dir):
    """`sdmodel robustness` of the threshold fixture's two policies, in one process."""
    from click.testing import CliRunner

    from sdmodel.cli import main

    return CliRunner().invoke(
        main,
        [
            "robustness",
            str(THRESHOLD_ASSUMPTIONS),
            *THRESHOLD_POLICIES,
            "--model",
            str(THRESHOLD_MODEL),
            "--jobs",
            "1",
            "--runs-dir",
            str(runs_dir),
            *args,
        ],
    )


@functools.cache
def model_step() -> float:
    """The bundled model's own TIME STEP (read by Simlin; tests/test_engine_parity.py holds PySD to the same model)."""
    from sdmodel.engines import simlin
    from sdmodel.locations import default_model

    return simlin.time_defaults(default_model())["time_step"]


def clean_failure(result, *needles: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr holding every needle."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


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
