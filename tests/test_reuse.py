"""Never run twice what is stored: a run assembled from saved scenarios equals one run afresh."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import xarray as xr
from click.testing import CliRunner
from paths import MODELS

from sdmodel.cli import main
from sdmodel.locations import scenarios_dir
from sdmodel.model import file_sha256
from sdmodel.reuse import reusable
from sdmodel.simulate import run
from sdmodel.store import find_run, open_run, save_run, write_plain

END = 2022.0  # two years: PySD starts in about a second
#: varies a constant over time, so the stored run gives that constant a time axis
RAMP = """name = "strike-ramp"
extends = "baseline"
description = "A strike that grows"
[params]
"data strike fraction" = {"2020" = 0.0, "2022" = 0.4}
"""


def pysd(scenarios, runs, reuse=True, **options) -> xr.Dataset:
    return run(scenarios, engine="pysd", final_time=END, jobs=2, reuse=reuse, runs_dir=runs, command="test", **options)


def values(results: xr.Dataset) -> xr.Dataset:
    """The results without the provenance that says when and how they were made."""
    return results.drop_attrs(deep=False)


@pytest.fixture
def ramp(tmp_path):
    path = tmp_path / "strike-ramp.toml"
    path.write_text(RAMP)
    return path


def test_a_run_from_stored_scenarios_equals_a_fresh_run(tmp_path, ramp):
    runs = tmp_path / "runs"
    first = pysd(["baseline", str(ramp)], runs)
    assert "reused_from" not in first.attrs and first["data_strike_fraction"].dims == ("scenario", "time")
    save_run(first, "first", runs)

    extended = pysd(["baseline", "collective-licensing", "data-strike"], runs)
    fresh = pysd(["baseline", "collective-licensing", "data-strike"], runs, reuse=False)

    assert json.loads(extended.attrs["reused_from"]) == {"baseline": next(runs.iterdir()).name}
    assert "reused_from" not in fresh.attrs
    # the stored baseline carried the ramp's time axis for the strike fraction; no scenario here needs it
    assert fresh["data_strike_fraction"].dims == ("scenario",)
    xr.testing.assert_identical(values(extended), values(fresh))
    assert list(extended.data_vars) == list(fresh.data_vars) and list(extended.coords) == list(fresh.coords)
    assert extended.attrs["run_keys"] == fresh.attrs["run_keys"]


def test_changed_inputs_run_again(tmp_path):
    runs = tmp_path / "runs"
    save_run(pysd(["baseline"], runs), "baseline", runs)
    assert "reused_from" in pysd(["baseline"], runs).attrs
    assert "reused_from" not in pysd(["baseline"], runs, overrides={"data strike fraction": 0.1}).attrs
    assert "reused_from" not in run(["baseline"], engine="pysd", final_time=END + 1, reuse=True, runs_dir=runs).attrs
    # the fast engine never reads back: its run takes less than reading a stored one
    assert "reused_from" not in run(["baseline"], engine="simlin", final_time=END, reuse=True, runs_dir=runs).attrs


def test_the_same_settings_under_another_name_are_reused(tmp_path):
    runs = tmp_path / "runs"
    save_run(pysd(["data-strike"], runs), "data-strike", runs)
    twin = tmp_path / "my-strike.toml"
    twin.write_text('name = "my-strike"\nextends = "data-strike"\ndescription = "the same strike, renamed"\n')
    results = pysd([str(twin)], runs)
    assert json.loads(results.attrs["reused_from"]) == {"my-strike": next(runs.iterdir()).name}
    assert list(results["description"].values) == ["the same strike, renamed"]


@pytest.mark.parametrize("damaged", ["results.nc", "manifest.json"])
def test_a_damaged_stored_run_is_run_again(tmp_path, damaged):
    runs = tmp_path / "runs"
    saved = save_run(pysd(["baseline"], runs), "baseline", runs)
    (saved / damaged).write_bytes(b"not what it should be")
    results = pysd(["baseline"], runs)
    assert "reused_from" not in results.attrs and results["time"].size > 1


def test_a_stored_run_changed_after_saving_is_not_trusted(tmp_path):
    """A results file edited in place is still valid NetCDF, but no longer what the manifest's checksum says."""
    runs = tmp_path / "runs"
    older = save_run(pysd(["baseline"], runs), "older", runs)
    newer = save_run(pysd(["baseline"], runs, reuse=False), "newer", runs)
    edited = open_run(newer)
    edited["model_capability"] = edited["model_capability"] * 2
    write_plain(edited, newer / "results.nc")
    results = pysd(["baseline"], runs)
    assert json.loads(results.attrs["reused_from"]) == {"baseline": older.name}
    xr.testing.assert_identical(results["model_capability"], open_run(older)["model_capability"])


def test_a_run_saved_before_stacking_is_reused(tmp_path):
    """Runs saved one NetCDF variable each (before sdmodel.stacking) still answer for their scenarios."""
    runs = tmp_path / "runs"
    fresh = pysd(["baseline"], runs)
    old = save_run(fresh, "old", runs)
    write_plain(fresh, old / "results.nc")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"]["results.nc"]["sha256"] = file_sha256(old / "results.nc")  # as it was saved then
    (old / "manifest.json").write_text(json.dumps(manifest))
    results = pysd(["baseline"], runs)
    assert json.loads(results.attrs["reused_from"]) == {"baseline": old.name}
    xr.testing.assert_identical(values(results), values(fresh))


def test_cli_says_what_it_reused_and_fresh_runs_again(tmp_path, isolated_runs_dir):
    command = ["run", "baseline", "--final-time", str(END)]
    assert CliRunner().invoke(main, command).exit_code == 0
    first = find_run("latest")
    mixed = CliRunner().invoke(main, ["run", "baseline", "data-strike", "--final-time", str(END)])
    assert f"1 of 2 scenarios reused from {first.name}" in mixed.stdout
    again = CliRunner().invoke(main, [*command, "--fresh", "--json"])
    assert json.loads(again.stdout)["reused_from"] == {}
    manifests = [json.loads((run / "manifest.json").read_text()) for run in sorted(isolated_runs_dir.iterdir())]
    assert len(manifests) == 3 and len({m["run_keys"]["baseline"] for m in manifests}) == 1
    comparison = CliRunner().invoke(main, ["compare", "crawler-block", "--final-time", str(END), "--json"])
    assert set(json.loads(comparison.stdout)["reused_from"]) == {"baseline"}  # the strike itself was never run
    shown = CliRunner().invoke(main, ["runs", "show", "latest"]).stdout
    assert f"reused: baseline from {sorted(isolated_runs_dir.iterdir())[-2].name}" in shown


def test_the_program_saves_a_run_it_reused(isolated_runs_dir):
    """The installed program keeps Dask out of `run`; saving a reused scenario (which keeps its file's chunk sizes) needs none."""
    command = [sys.executable, "-m", "sdmodel.cli", "run", "baseline", "--final-time", str(END)]
    for extra in ([], ["data-strike"]):
        done = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    assert "1 of 2 scenarios reused from" in done.stdout
    first, second = sorted(isolated_runs_dir.iterdir())
    reused = values(open_run(second)).sel(scenario=["baseline"])
    xr.testing.assert_identical(reused, values(open_run(first)))


def test_a_run_that_computed_nothing_new_points_at_the_run_holding_it(isolated_runs_dir):
    """`run` saved a copy of a run it had wholly reused, as `compare` did: now it names the run that holds its results,
    made the latest again, and saves only when something was computed (--fresh, or another scenario)."""
    runner = CliRunner()
    command = ["run", "baseline", "data-strike", "--final-time", str(END)]
    assert runner.invoke(main, command).exit_code == 0
    holder = find_run("latest")
    assert runner.invoke(main, ["compare", "data-strike", "--final-time", str(END)]).exit_code == 0
    assert find_run("latest") != holder  # the comparison, a run of another kind, is not a copy of it

    again = runner.invoke(main, [*command, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"reused_from": None} == {
        "run": str(holder),
        "scenarios": ["baseline", "data-strike"],
        "reused_from": None,
        "saved": False,
    }
    assert find_run("latest") == holder and len(list(isolated_runs_dir.iterdir())) == 2
    told = runner.invoke(main, command).stdout
    assert f"nothing new: its results are run {holder}, now the latest" in told

    assert json.loads(runner.invoke(main, ["run", "data-strike", "--final-time", str(END), "--json"]).stdout)["saved"]
    assert json.loads(runner.invoke(main, [*command, "--fresh", "--json"]).stdout)["saved"]
    assert len(list(isolated_runs_dir.iterdir())) == 4


def test_models_reading_external_files_are_never_reused(tmp_path):
    assert reusable(MODELS / "decay.mdl")
    external = tmp_path / "external.mdl"
    external.write_text(
        (MODELS / "decay.mdl")
        .read_text()
        .replace("{UTF-8}", "{UTF-8}\nprices := GET XLS DATA('p.xlsx', 'a', '1', 'B2') ~ USD ~ |", 1)
    )
    assert not reusable(external)


def test_a_comparison_that_computed_nothing_new_points_at_the_run_holding_it(tmp_path, isolated_runs_dir):
    """Every `compare` saved a copy of megabytes, even one that reused every scenario; now it names the run that holds
    it, made the latest again, and saves only what differs: other names, descriptions, a baseline, or --fresh."""
    from sdmodel.store import find_run

    runner = CliRunner()
    command = ["compare", "data-strike", "--final-time", str(END)]
    first = json.loads(runner.invoke(main, [*command, "--json"]).stdout)
    holder = find_run("latest")
    assert first["saved"] is True and first["run"] == str(holder)
    later = runner.invoke(main, ["run", "baseline", "--final-time", str(END)])  # a newer run, which was `latest`
    assert later.exit_code == 0 and find_run("latest") != holder

    again = runner.invoke(main, command)
    assert again.exit_code == 0, again.output
    assert f"nothing new: the comparison is run {holder}, now the latest" in again.stdout
    assert len(list(isolated_runs_dir.iterdir())) == 2  # the comparison and the later run: no copy
    assert find_run("latest") == holder and find_run("latest:compare") == holder
    assert runner.invoke(main, ["runs", "show", "latest"]).stdout.startswith(f"           path: {holder}\n")
    as_json = json.loads(runner.invoke(main, [*command, "--json"]).stdout)
    assert as_json["saved"] is False and as_json["run"] == str(holder) and as_json["scenarios"] == first["scenarios"]
    report = runner.invoke(
        main, ["report", "data-strike", "--final-time", str(END), "--no-loops", "--out", str(tmp_path / "r.html")]
    )
    assert report.exit_code == 0 and f"nothing new: the comparison is run {holder}" in report.stderr

    renamed = tmp_path / "strike.toml"  # the same settings, so the same keys, but another scenario name
    renamed.write_text('name = "strike"\nextends = "data-strike"\ndescription = "the strike, renamed"\n')
    redescribed = tmp_path / "told" / "data-strike.toml"  # the same name and keys, another description
    redescribed.parent.mkdir()
    bundled = (scenarios_dir() / "data-strike.toml").read_text()
    redescribed.write_text(re.sub(r"(?m)^description = .*$", 'description = "the strike, told otherwise"', bundled))
    for other in (
        ["compare", str(renamed)],
        ["compare", str(redescribed)],
        ["compare", "data-strike", "--baseline", "data-strike"],
        [*command, "--fresh"],
    ):
        outcome = runner.invoke(main, [*other, "--final-time", str(END), "--json"])
        answer = json.loads(outcome.stdout)
        assert outcome.exit_code == 0 and answer["saved"] is True, (other, outcome.output)
        assert set(answer["reused_from"]) == (
            set() if "--fresh" in other else set(answer["scenarios"])
        )  # nothing computed, yet another comparison
    assert len(list(isolated_runs_dir.iterdir())) == 6
