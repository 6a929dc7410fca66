"""The run store: atomic saves, round trips, names that never collide."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from sdmodel import stacking
from sdmodel.errors import InputError
from sdmodel.model import file_sha256
from sdmodel.store import (
    TRAJECTORY_KINDS,
    DamagedRun,
    WrongRunKind,
    find_run,
    list_runs,
    open_run,
    read_manifest,
    read_results,
    save_run,
    write_plain,
)


@pytest.fixture
def results() -> xr.Dataset:
    """A small Dataset shaped like sdmodel's results (no model run needed to test the store)."""
    time = np.arange(2020, 2031, dtype=float)
    data = np.linspace(0, 1, 2 * 11 * 2).reshape(2, 11, 2)
    return xr.Dataset(
        {
            "capital_share": (
                ("scenario", "time", "Firm"),
                data,
                {"units": "Dmnl", "long_name": "capital share", "description": "d"},
            )
        },
        coords={"scenario": ["baseline", "data-strike"], "time": time, "Firm": ["incumbent", "challenger"]},
        attrs={"created": "2026-01-01T00:00:00Z", "command": "sdmodel run", "engine": "pysd", "model_sha256": "abc"},
    )


def test_open_run_returns_what_was_saved(results, isolated_runs_dir):
    path = save_run(results, "baseline")
    assert path.parent == isolated_runs_dir
    xr.testing.assert_identical(open_run(path), results)
    xr.testing.assert_identical(read_results(path / "results.nc"), results)


@pytest.fixture
def varied(results) -> xr.Dataset:
    """Results with variables of several dims, a constant, and variables that must stay NetCDF variables of their own."""
    extra = {
        "hhi": (
            ("scenario", "time"),
            np.linspace(0.3, 0.6, 22).reshape(2, 11),
            {"units": "Dmnl", "long_name": "HHI", "description": ""},
        ),
        "hardware_life": (("scenario",), [5.0, 6.0], {"units": "year", "long_name": "life", "sd_kind": "constant"}),
        "ai_capital": (
            ("scenario", "time", "Firm"),
            np.arange(44.0).reshape(2, 11, 2),
            {"units": "billion USD", "long_name": "capital"},
        ),
        "failed": (("scenario",), np.array([0, 1], dtype="int32"), {"long_name": "failed members"}),  # not float
        "limit": (("scenario",), [1.0, np.nan], {"valid_max": 3.0, "long_name": "a number attribute"}),  # attrs not all text
        "duration": (("scenario",), [1.0, 2.0], {"units": "days"}),  # xarray may read it as durations
        "stacked_0": (("scenario",), [1.0, 2.0], {"long_name": "a name a stack could have taken"}),
    }
    return results.assign(**extra).assign_coords(description=("scenario", ["the baseline", "a strike"]))


def test_a_run_is_saved_as_a_few_stacked_arrays_and_opens_as_saved(varied, isolated_runs_dir):
    """Some 340 variables of their own took most of a second to write; stacked by dims, a few hundredths."""
    path = save_run(varied, "baseline+1", kind="compare")
    with xr.open_dataset(path / "results.nc") as raw:
        assert set(raw.data_vars) == {"stacked_1", "stacked_2", "stacked_3", "failed", "limit", "duration"}  # by dims: 3 stacks
    opened = open_run(path)
    xr.testing.assert_identical(opened, varied)
    write_plain(varied, path.parent / "before-stacking.nc")
    before = read_results(path.parent / "before-stacking.nc")  # what open_run gave before runs were stacked
    assert list(opened.data_vars) == list(before.data_vars) and list(opened.coords) == list(before.coords)
    for name, variable in before.variables.items():
        assert opened[name].dtype == variable.dtype, name
        assert {key: type(value) for key, value in opened[name].attrs.items()} == {
            key: type(value) for key, value in variable.attrs.items()
        }, name


def test_a_run_saved_before_stacking_opens_as_it_did(varied, isolated_runs_dir):
    path = save_run(varied, "old", kind="compare")
    write_plain(varied, path / "results.nc")  # the layout of every run saved before runs were stacked
    _edit_manifest(path, files={"results.nc": {"sha256": file_sha256(path / "results.nc")}})  # as that run recorded it
    with xr.open_dataset(path / "results.nc") as raw:
        assert not stacking.is_stacked(raw)
        xr.testing.assert_identical(open_run(path), raw.load())
    xr.testing.assert_identical(open_run(path), varied)


def test_ensembles_are_not_stacked(varied, isolated_runs_dir):
    """An ensemble's variables are written chunk by chunk (flat memory), never gathered into one array."""
    path = save_run(varied, "uncertainty-x", kind="uncertainty")
    with xr.open_dataset(path / "results.nc") as raw:
        xr.testing.assert_identical(raw.load(), varied)


def test_interrupted_save_leaves_nothing(results, isolated_runs_dir, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt  # Ctrl-C at the last moment, just before the rename

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_run(results, "baseline")
    assert list(isolated_runs_dir.iterdir()) == []


def test_two_saves_in_the_same_second_get_distinct_folders(results):
    first, second = save_run(results, "same"), save_run(results, "same")
    assert first != second
    assert [m["path"] for m in list_runs()] == sorted([str(first), str(second)])


def test_find_run_by_name_prefix_and_latest(results):
    path = save_run(results, "baseline")
    assert find_run(path.name) == path
    assert find_run(path.name[:10]) == path
    assert find_run("latest") == path
    with pytest.raises(InputError, match="no such run"):
        find_run("not-a-run")


def test_latest_is_the_latest_run_the_reader_can_use(results):
    """After an ensemble, `plot latest` reads the latest comparison, not the ensemble (which has no trajectories)."""
    compared = save_run(results, "compare", kind="compare")
    ensemble = save_run(results, "sensitivity-sobol", kind="sensitivity")
    assert find_run("latest") == ensemble  # any kind, for `runs show`
    assert find_run("latest", kinds=TRAJECTORY_KINDS) == compared
    assert find_run("latest:compare") == compared and find_run("latest:sensitivity") == ensemble
    with pytest.raises(
        WrongRunKind,
        match=f"{ensemble.name} is a run of `sdmodel sensitivity`; this command reads runs of `sdmodel run` or `sdmodel compare`",
    ):
        find_run(ensemble.name, kinds=TRAJECTORY_KINDS)
    with pytest.raises(WrongRunKind, match="is a run of `sdmodel sensitivity`"):
        open_run("latest:sensitivity", kinds=TRAJECTORY_KINDS)
    with pytest.raises(InputError, match="no run of `sdmodel uncertainty` in .*; save one first"):
        find_run("latest", kinds=("uncertainty",))
    with pytest.raises(InputError, match="unknown kind of run 'sweeps'; choose one of: latest:run, "):
        find_run("latest:sweeps")


def test_a_wrong_kind_of_run_names_the_command_that_saves_it(results):
    """Runs of kinds `search` and `discovery` were said to be runs of `sdmodel search` and `sdmodel discovery`, which
    are not commands."""
    search = save_run(results, "search-policy", kind="search")
    save_run(results, "discovery-x", kind="discovery")
    with pytest.raises(WrongRunKind, match=f"{search.name} is a run of `sdmodel search-policy`; this command reads"):
        find_run(search.name, kinds=TRAJECTORY_KINDS)
    with pytest.raises(WrongRunKind, match="is a run of `sdmodel discover`; this command reads runs of `sdmodel search-po"):
        find_run("latest:discovery", kinds=("search",))


def test_latest_passes_over_a_damaged_manifest_and_its_reader_names_it(results):
    compared = save_run(results, "compare", kind="compare")
    damaged = save_run(results, "damaged", kind="compare")
    (damaged / "manifest.json").write_text("[]")  # valid JSON, not an object
    assert find_run("latest", kinds=TRAJECTORY_KINDS) == compared
    assert find_run(damaged.name, kinds=TRAJECTORY_KINDS) == damaged  # named: given to the reader, which says what is wrong
    with pytest.raises(InputError, match="the manifest is not a JSON object; the run is damaged"):
        read_manifest(damaged.name)


def test_manifest_records_provenance_and_checksum(results):
    import hashlib
    import json

    path = save_run(results, "baseline")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["scenarios"] == ["baseline", "data-strike"]
    assert manifest["model_sha256"] == "abc"
    assert manifest["files"]["results.nc"]["sha256"] == hashlib.sha256((path / "results.nc").read_bytes()).hexdigest()


def test_unwritable_runs_dir_is_an_input_error(results, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write runs here"):
        save_run(results, "baseline", blocker / "runs")


def test_a_damaged_manifest_is_one_line_naming_it(results, isolated_runs_dir):
    from click.testing import CliRunner

    from sdmodel.cli import main

    path = save_run(results, "baseline")
    (path / "manifest.json").write_text('{"name": ')
    outcome = CliRunner().invoke(main, ["runs", "show", path.name])
    assert outcome.exit_code == 2 and outcome.stderr.count("\n") == 1
    assert str(path / "manifest.json") in outcome.stderr and "remove its folder" in outcome.stderr


JUNK_MANIFESTS = {  # what a damaged or hand-edited manifest may hold, and the field the message names
    "a list": ("[]", "not a JSON object"),
    "null": ("null", "not a JSON object"),
    "a string": ('"run"', "not a JSON object"),
    "no scenarios": ('{"kind": "run", "files": {}}', "scenarios: is missing"),
    "scenarios as text": ('{"kind": "run", "scenarios": "baseline", "files": {}}', "scenarios: is not a list of scenario names"),
    "an unknown kind": ('{"kind": ["run"], "scenarios": [], "files": {}}', "kind: is not one of"),
    "keys as a list": ('{"kind": "run", "scenarios": [], "files": {}, "run_keys": [1, 2]}', "run_keys: is not a table"),
    "sources as a number": ('{"kind": "run", "scenarios": [], "files": {}, "reused_from": 5}', "reused_from: is not a table"),
    "a time as a list": (
        '{"kind": "run", "scenarios": [], "files": {}, "created": [null]}',
        "created: is not text",
    ),  # CI, stop 30
}


@pytest.mark.parametrize("junk", JUNK_MANIFESTS, ids=list(JUNK_MANIFESTS))
def test_a_junk_manifest_hides_no_intact_run_and_is_named_in_one_line(junk, results, isolated_runs_dir):
    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.reuse import find_stored

    text, named = JUNK_MANIFESTS[junk]
    intact = save_run(results.assign_attrs(run_keys='{"baseline": "k", "data-strike": "s"}'), "intact")
    damaged = save_run(results, "damaged")
    (damaged / "manifest.json").write_text(text)
    listed = CliRunner().invoke(main, ["runs", "list"])
    assert listed.exit_code == 0 and intact.name in listed.stdout and damaged.name not in listed.stdout
    (line,) = listed.stderr.strip().splitlines()
    assert str(damaged / "manifest.json") in line and named in line
    shown = CliRunner().invoke(main, ["runs", "show", damaged.name])
    assert shown.exit_code == 2 and named in shown.stderr and len(shown.stderr.strip().splitlines()) == 1
    assert find_run("latest") == intact  # the newest readable run
    assert find_stored({"baseline": "k"}, isolated_runs_dir) == {"baseline": (intact, "baseline")}


def _days_ago(folder, days: float) -> None:
    """Date a run's last use back (recency is its manifest's time, as `latest` reads it)."""
    import time

    stamp = time.time() - days * 86400
    os.utime(folder / "manifest.json", (stamp, stamp))


def test_runs_prune_keeps_the_recently_used_and_removes_whole_folders(results, isolated_runs_dir):
    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.store import touch_run

    saved = [save_run(results, name) for name in ("ten", "five", "two", "now")]
    for folder, days in zip(saved, (10, 5, 2, 0)):
        _days_ago(folder, days)
    runner = CliRunner()
    neither = runner.invoke(main, ["runs", "prune"])
    assert neither.exit_code == 2 and neither.stderr.count("\n") == 1 and "give --keep N" in neither.stderr
    dry = runner.invoke(main, ["runs", "prune", "--keep", "2", "--dry-run"])
    assert dry.exit_code == 0 and [line.split()[2] for line in dry.stdout.splitlines()[:2]] == [saved[0].name, saved[1].name]
    assert set(isolated_runs_dir.iterdir()) == set(saved)  # a dry run removes nothing

    touch_run(saved[0])  # the oldest answers a command: the latest again, and kept as such
    assert find_run("latest") == saved[0]
    pruned = runner.invoke(main, ["runs", "prune", "--keep", "1", "--older-than", "3"])  # each option spares runs
    assert pruned.exit_code == 0, pruned.output
    assert f"removed {saved[1].name}" in pruned.stdout and "1 run(s), freed" in pruned.stdout
    assert set(isolated_runs_dir.iterdir()) == {saved[0], saved[2], saved[3]}  # no half folder, nothing aside
    assert runner.invoke(main, ["runs", "prune", "--older-than", "3"]).stdout == "nothing to remove\n"
    assert "removed" in runner.invoke(main, ["runs", "prune", "--keep", "0"]).stdout and list(isolated_runs_dir.iterdir()) == []


def test_runs_show_says_when_a_reused_source_was_removed(results, isolated_runs_dir):
    import json

    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.store import remove_run

    source = save_run(results, "source")
    results.attrs["reused_from"] = json.dumps({"baseline": source.name})
    save_run(results, "reuser")
    shown = CliRunner().invoke(main, ["runs", "show", "latest"]).stdout
    assert f"reused: baseline from {source.name}\n" in shown and "last used: " in shown
    remove_run(source)
    shown = CliRunner().invoke(main, ["runs", "show", "latest"]).stdout
    assert f"reused: baseline from {source.name} (since removed; the values are in this run)" in shown


@pytest.fixture
def keyed(results) -> xr.Dataset:
    """Results as a run saves them: a key per scenario over what decided its values (sdmodel.reuse)."""
    import json

    return results.assign_attrs(run_keys=json.dumps({"baseline": "key-of-baseline", "data-strike": "key-of-strike"}))


def _edit_manifest(folder, **changes) -> None:
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))


def test_keys_swapped_in_the_manifest_are_refused_by_readers_and_by_reuse(keyed, isolated_runs_dir):
    """The checksum covers results.nc, not the manifest: the keys written inside results.nc are what count."""
    from sdmodel.reuse import find_stored

    folder = save_run(keyed, "compare", kind="compare")
    assert find_stored({"baseline": "key-of-baseline"}, isolated_runs_dir) == {"baseline": (folder, "baseline")}
    _edit_manifest(folder, run_keys={"baseline": "key-of-strike", "data-strike": "key-of-baseline"})
    with pytest.raises(DamagedRun, match="run_keys: differ from the keys saved in results.nc"):
        open_run(folder)
    assert find_stored({"baseline": "key-of-baseline", "x": "key-of-strike"}, isolated_runs_dir) == {}


def test_another_runs_results_copied_in_are_refused(keyed, isolated_runs_dir):
    import shutil

    first = save_run(keyed, "first")
    second = save_run(keyed.assign(capital_share=keyed["capital_share"] * 2), "second")
    shutil.copyfile(first / "results.nc", second / "results.nc")
    with pytest.raises(DamagedRun, match="does not match the checksum in its manifest"):
        open_run(second)
    xr.testing.assert_identical(open_run(first), keyed)  # the intact run still reads


def test_scenarios_renamed_in_the_manifest_are_refused(keyed, isolated_runs_dir):
    folder = save_run(keyed, "compare", kind="compare")
    _edit_manifest(folder, scenarios=["data-strike", "baseline"])
    with pytest.raises(DamagedRun, match="scenarios: differ from the scenarios saved in results.nc"):
        open_run(folder)


def test_a_results_file_that_is_not_a_regular_file_is_refused_not_read(keyed, isolated_runs_dir):
    folder = save_run(keyed, "fifo")
    (folder / "results.nc").unlink()
    os.mkfifo(folder / "results.nc")  # reading it would wait for a writer forever
    with pytest.raises(DamagedRun, match="is not a regular file"):
        open_run(folder)


@pytest.mark.parametrize("command", [["runs", "show"], ["export", "--to", "netcdf"], ["plot", "--var", "capital share"]])
def test_every_reader_refuses_a_tampered_run_in_one_line(command, keyed, isolated_runs_dir, tmp_path):
    from click.testing import CliRunner

    from sdmodel.cli import main

    folder = save_run(keyed, "compare", kind="compare")
    _edit_manifest(folder, run_keys={"baseline": "key-of-strike", "data-strike": "key-of-baseline"})
    args = [*command[:2], folder.name, *command[2:]] if command[0] == "runs" else [command[0], folder.name, *command[1:]]
    out = tmp_path / "out"
    if command[0] == "plot":
        out.mkdir()  # a folder that exists: the run's check is what must refuse
        args += ["--out", str(out / "figure.png")]
    elif command[0] == "export":
        args += ["--out", str(out)]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 2, outcome.output
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    (line,) = lines
    assert "run_keys: differ from the keys saved in results.nc" in line and "Traceback" not in outcome.output
    assert not out.exists() or not any(out.iterdir())


def test_a_verified_checksum_is_remembered_until_the_file_changes(keyed, isolated_runs_dir, monkeypatch, tmp_path):
    """Reading a run hashes its results once; a changed file (its mtime here) is hashed again."""
    from sdmodel import store

    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    folder = save_run(keyed, "compare", kind="compare")
    hashed = []
    real = store.file_sha256
    monkeypatch.setattr(store, "file_sha256", lambda path: hashed.append(path) or real(path))
    open_run(folder)
    open_run(folder)
    assert hashed == [folder / "results.nc"]
    stamp = os.stat(folder / "results.nc").st_mtime_ns + 10**9
    os.utime(folder / "results.nc", ns=(stamp, stamp))
    open_run(folder)
    assert hashed == [folder / "results.nc"] * 2


def test_a_run_with_one_scenario_as_a_scalar_reads_back(results, isolated_runs_dir):
    """A sweep holds its one scenario as a scalar coordinate, which its manifest lists as no scenarios."""
    sweep = results.isel(scenario=0).expand_dims(value=[0.1, 0.3])
    folder = save_run(sweep, "sweep-x", kind="sweep")
    xr.testing.assert_identical(open_run(folder), sweep)
