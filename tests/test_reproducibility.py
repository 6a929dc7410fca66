"""The same command twice gives the same results.nc: every value, coordinate and attribute, except
the provenance that records when the run was made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from sdmodel.cli import main

TIME_STAMPED = ("created", "history")  # "history" is "<created>: <command>"
SCENARIOS = ["data-strike", "collective-licensing", "baseline"]


def saved(path: str | Path) -> xr.Dataset:
    """A run's results.nc as written (not through open_run), without the time-stamped attributes."""
    with xr.open_dataset(Path(path) / "results.nc", engine="netcdf4") as dataset:
        loaded = dataset.load()
    for name in TIME_STAMPED:
        loaded.attrs.pop(name)
    return loaded


def run_twice_in_one_process(runs: Path, *args: str) -> tuple[xr.Dataset, xr.Dataset]:
    paths = []
    for _ in range(2):
        result = CliRunner().invoke(main, ["run", *args, "--runs-dir", str(runs), "--json"])
        assert result.exit_code == 0, result.output
        paths.append(json.loads(result.stdout)["run"])
    assert paths[0] != paths[1]
    return saved(paths[0]), saved(paths[1])


@pytest.mark.parametrize("engine", ["simlin", "pysd"])
def test_the_same_command_twice_in_one_process_gives_identical_results(engine, tmp_path):
    """In one process, so that state an engine keeps between runs (PySD keeps `params`) would show."""
    horizon = "2040" if engine == "simlin" else "2021"  # PySD takes seconds per simulated decade
    # --fresh: without it, PySD's second run would read the first back (sdmodel.reuse) instead of running
    first, second = run_twice_in_one_process(
        tmp_path / "runs", *SCENARIOS, "--engine", engine, "--final-time", horizon, "--set", "data strike fraction=0.5", "--fresh"
    )
    xr.testing.assert_identical(first, second)
    assert first.attrs["engine"] == engine


def test_the_same_command_in_two_processes_gives_identical_results(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "sdmodel.cli", "run", *SCENARIOS, "--engine", "simlin", "--runs-dir", str(runs), "--json"]
    outputs = [subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout for _ in range(2)]
    paths = [json.loads(output)["run"] for output in outputs]
    first, second = saved(paths[0]), saved(paths[1])
    xr.testing.assert_identical(first, second)
    # the manifests agree too, but for the time of the run (and the file's checksum, which covers it)
    manifests = [json.loads((Path(p) / "manifest.json").read_text()) for p in paths]
    for manifest in manifests:
        manifest.pop("created")
        manifest.pop("files")
    assert manifests[0] == manifests[1]
