"""sdmodel.report's own pieces: which runs give uncertainty bands, and where a report may be written.

The whole page, built from the CLI, is tested in tests/test_figures.py; its legibility in tests/test_legibility.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sdmodel.errors import InputError
from sdmodel.report import uncertainty_bands, write_report


def _members(runs: int = 20) -> xr.Dataset:
    """An ensemble as `sdmodel uncertainty` saves it: members along ``run``, per scenario, over time."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, runs, 3)).cumsum(axis=2)
    return xr.Dataset(
        {"capital": (("scenario", "run", "time"), values, {"units": "$", "long_name": "capital"})},
        coords={"scenario": ["baseline", "data-strike"], "run": np.arange(runs), "time": [2020.0, 2021.0, 2022.0]},
    )


def test_members_are_summarised_as_percentile_bands_per_scenario():
    run = _members()
    bands, note = uncertainty_bands(run)
    assert note == ""
    assert set(bands["capital"].dims) == {"scenario", "percentile", "time"}
    median = bands["capital"].sel(percentile=50.0, scenario="data-strike")
    np.testing.assert_allclose(median.values, np.median(run["capital"].sel(scenario="data-strike").values, axis=0))
    low, high = bands["capital"].sel(percentile=5.0), bands["capital"].sel(percentile=95.0)
    assert bool((low <= high).all())


def test_bands_already_made_are_drawn_as_they_are():
    bands, _ = uncertainty_bands(_members())
    again, note = uncertainty_bands(bands)
    assert again is bands and note == ""


@pytest.mark.parametrize("dims", [("scenario", "time"), ("quantile", "time")])
def test_a_run_without_members_or_percentiles_gives_no_bands_and_says_why(dims):
    """A quantile dim is no sdmodel output: it is refused like any run without members."""
    run = xr.Dataset({"capital": (dims, np.ones((2, 3)))}, coords={dims[0]: [0, 1], "time": [2020.0, 2021.0, 2022.0]})
    bands, note = uncertainty_bands(run)
    assert bands is None
    assert "no ensemble members" in note


@pytest.mark.parametrize(("name", "problem"), [("report.htm", "must end in .html"), ("missing/report.html", "does not exist")])
def test_a_report_goes_to_an_html_file_in_a_folder_that_exists(name, problem, tmp_path):
    with pytest.raises(InputError, match=problem):
        write_report("<!doctype html>", tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_report_replaces_the_file_whole(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    assert write_report("<!doctype html><p>new</p>", target) == target
    assert target.read_text(encoding="utf-8") == "<!doctype html><p>new</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize("option", ["--robustness", "--uncertainty"])
def test_a_damaged_run_to_add_is_refused_before_the_comparison_runs(option, tmp_path):
    """It was read after the comparison ran and was saved: the error left a new run in the runs folder."""
    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.store import save_run

    kind = option.lstrip("-")
    members = xr.Dataset({"hhi": (("scenario", "run", "time"), np.zeros((1, 2, 2)))}, coords={"time": [2020.0, 2021.0]})
    damaged = save_run(members.assign_coords(scenario=["baseline"], run=[0, 1]), kind, tmp_path / "runs", kind=kind)
    (damaged / "results.nc").write_bytes(b"not NetCDF")
    args = ["report", "baseline", option, damaged.name, "--no-loops", "--engine", "simlin", "--final-time", "2021"]
    result = CliRunner().invoke(main, [*args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "the run is damaged" in result.stderr
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [damaged.name]
