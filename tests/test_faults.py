"""Faults around the run store: a killed run, a full disk, a read-only runs folder, two runs at once.

The promise: the runs folder only ever holds complete runs (each opens with `open_run`
and matches its manifest's checksum); a save that cannot finish says so in one line and
exits with 1 or 2; concurrent runs never overwrite each other.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner
from paths import without_root_privileges

from sdmodel.cli import main
from sdmodel.store import RESULTS, list_runs, open_run

SDMODEL = [sys.executable, "-m", "sdmodel.cli"]
RUN = ["run", "--engine", "simlin", "--final-time", "2030", "--json"]
TIME_STAMPED = ("created", "history")  # provenance attributes that record when a run was made


def complete_runs(runs: Path) -> list[Path]:
    """Check the runs folder holds only complete runs (and hidden, ignored leftovers); return the runs."""
    if not runs.exists():
        return []
    visible = sorted(p for p in runs.iterdir() if not p.name.startswith("."))
    for hidden in (p for p in runs.iterdir() if p.name.startswith(".")):
        # a save killed before its rename leaves its temporary folder: hidden, never listed or opened
        assert hidden.is_dir() and hidden.name.startswith(".tmp-"), hidden
    for path in visible:
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["files"][RESULTS]["sha256"] == hashlib.sha256((path / RESULTS).read_bytes()).hexdigest(), path
        opened = open_run(path)
        assert opened.sizes["time"] > 0 and len(opened.data_vars) > 0, path
    assert [Path(m["path"]) for m in list_runs(runs)] == visible
    return visible


def start(runs: Path, *args: str) -> subprocess.Popen:
    command = [*SDMODEL, *RUN, "--runs-dir", str(runs), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def temporary_folders(runs: Path) -> set[str]:
    try:
        return {p.name for p in runs.iterdir() if p.name.startswith(".tmp-")}
    except FileNotFoundError:
        return set()


def test_a_run_killed_while_saving_leaves_only_complete_runs(tmp_path):
    """SIGKILL (no cleanup can run) at random moments: mostly while the results are being written
    (after the temporary folder appears), some at any moment of the process's life."""
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    runs = tmp_path / "runs"
    began = time.monotonic()
    reference = start(runs, "baseline")
    assert reference.wait(timeout=120) == 0, reference.stderr.read()
    lifetime = time.monotonic() - began
    outcomes = []
    for attempt in range(8):
        before, saved = temporary_folders(runs), len(complete_runs(runs))
        process = start(runs, "baseline")
        if attempt < 6:  # wait for the save to begin, then kill it somewhere inside it
            while process.poll() is None and not temporary_folders(runs) - before:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.4))
        else:
            time.sleep(rng.uniform(0, lifetime * 1.1))
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=60)
        added = len(complete_runs(runs)) - saved  # checked after every kill, not only at the end
        assert added in (0, 1) and (code != 0 or added == 1), (seed, code, added)
        if code == 0:
            outcomes.append("finished")
        elif added:
            outcomes.append("killed after its rename")  # the run was complete: it stays
        else:
            outcomes.append("killed mid-save" if temporary_folders(runs) - before else "killed before saving")
    assert len(complete_runs(runs)) == 1 + sum(o in ("finished", "killed after its rename") for o in outcomes), (seed, outcomes)
    # the store still works afterwards, and the next save clears what the killed saves left
    after = start(runs, "baseline")
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err
    assert Path(json.loads(out)["run"]) in complete_runs(runs)
    assert temporary_folders(runs) == set(), (seed, outcomes)
    print(f"seed {seed}: {outcomes}")


KILLED_MID_SAVE = """
import os, signal, sys
from pathlib import Path
import numpy as np, xarray as xr
from sdmodel.store import save_run

def to_netcdf(self, path, *args, **kwargs):
    Path(path).write_bytes(b"\\x89HDF half a file")
    os.kill(os.getpid(), signal.SIGKILL)  # no `finally` runs

xr.Dataset.to_netcdf = to_netcdf
save_run(xr.Dataset({"x": ("time", np.zeros(3))}), "killed", sys.argv[1])
"""


def test_the_next_save_clears_what_a_killed_save_left(tmp_path):
    """A save killed with SIGKILL cannot remove its hidden temporary folder; the next save does."""
    runs = tmp_path / "runs"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SAVE, str(runs)], capture_output=True, text=True, timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(temporary_folders(runs)) == 1 and complete_runs(runs) == []
    result = CliRunner().invoke(main, [*RUN, "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    assert temporary_folders(runs) == set()
    assert len(complete_runs(runs)) == 1


def test_two_runs_at_once_both_save_complete_distinct_runs(tmp_path):
    runs = tmp_path / "runs"
    first, second = start(runs, "baseline"), start(runs, "baseline")  # same name, same second: names collide
    paths = []
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        paths.append(Path(json.loads(out)["run"]))
    assert paths[0] != paths[1]
    assert sorted(paths) == complete_runs(runs)
    one, other = (open_run(p).drop_attrs() for p in paths)
    xr.testing.assert_identical(one, other)


def _full_disk(stage: str):
    """A stand-in that fails at one stage of a save as a full disk does (ENOSPC), after writing a little."""
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if stage == "results":

        def to_netcdf(self, path, *args, **kwargs):
            Path(path).write_bytes(b"\x89HDF\r\n\x1a\n")  # a torn file, then the disk is full
            raise full

        return "xarray.Dataset.to_netcdf", to_netcdf
    if stage == "manifest":
        real = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == "manifest.json":
                raise full
            return real(self, *args, **kwargs)

        return "pathlib.Path.write_text", write_text

    def fsync(fd):
        raise full

    return "os.fsync", fsync


@pytest.mark.parametrize("stage", ["results", "manifest", "fsync"])
def test_a_full_disk_gives_one_line_and_leaves_nothing(stage, tmp_path, monkeypatch):
    """Simulated: the write raises OSError(ENOSPC) at one stage of the save (no real disk fills up)."""
    runs = tmp_path / "runs"
    target, stand_in = _full_disk(stage)
    monkeypatch.setattr(target, stand_in)
    result = CliRunner().invoke(main, [*RUN, "--runs-dir", str(runs)])
    assert result.exit_code in (1, 2), (result.output, result.exception)
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.stderr, result.stderr
    assert line.startswith("sdmodel: error: ") and str(runs) in line and "No space left on device" in line, line
    assert list(runs.iterdir()) == []  # not even a hidden temporary folder


@pytest.mark.parametrize("where", ["runs folder", "its parent"])
def test_a_read_only_runs_folder_gives_one_line_and_exit_2(where, tmp_path):
    """A real read-only folder (mode 0o555). Root ignores modes, so as root the run is started without
    CAP_DAC_OVERRIDE (via setpriv), which makes the kernel enforce them as for any user."""
    parent = tmp_path / "read-only"
    parent.mkdir()
    runs = parent / "runs"
    if where == "runs folder":
        runs.mkdir()
    locked = runs if where == "runs folder" else parent
    prefix = without_root_privileges()
    locked.chmod(0o555)
    try:
        result = subprocess.run(
            [*prefix, *SDMODEL, *RUN, "--runs-dir", str(runs)], capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.stderr, result.stderr
    assert line.startswith("sdmodel: error: ") and str(runs) in line and "Permission denied" in line, line
    assert not runs.exists() or list(runs.iterdir()) == []


def test_a_file_in_the_way_of_the_runs_folder_gives_one_line_and_exit_2(tmp_path):
    """The other way a runs folder cannot be written, whoever runs it: a file where its parent should be.
    (A file at the runs folder's own path is refused earlier by click's option check: exit 2, a usage message.)"""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    runs = blocker / "runs"
    result = CliRunner().invoke(main, [*RUN, "--runs-dir", str(runs)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"sdmodel: error: {runs}: cannot write runs here"), line
    assert blocker.read_text() == "a file"


def _descendants_once_started(process: subprocess.Popen, count: int, ready=lambda: True) -> list:
    """The command's child processes, once it has ``count`` of them and ``ready()`` holds (or it ended)."""
    import psutil  # distributed's dependency, so sdmodel's

    parent = psutil.Process(process.pid)
    while process.poll() is None:
        children = parent.children(recursive=True)
        if len(children) >= count and ready():
            return children
        time.sleep(0.05)
    raise AssertionError(f"the command ended before it started its workers: {process.stderr.read()[-2000:]}")


def _kill_and_expect_no_survivors(process: subprocess.Popen, children: list) -> None:
    """SIGKILL the command (no cleanup of its own can run): within 5 s none of its workers may be left."""
    import psutil

    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) in (-signal.SIGKILL, 0)  # 0: it ended on its own just before the kill landed
    _, alive = psutil.wait_procs(children, timeout=5)
    alive = [child for child in alive if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    for child in alive:
        child.kill()  # not to leave them behind for the next test
    assert alive == [], f"workers outlived their parent: {alive}"


def _streams_of(pid: int) -> list[Path]:
    """Files an ensemble of process ``pid`` streamed into the temporary folder."""
    import tempfile

    return [path for path in Path(tempfile.gettempdir()).glob("sdmodel-ensemble-*") if f"-{pid}-" in path.name]


@pytest.mark.parametrize("workers", [["--jobs", "2"], ["--dask-local", "2"]], ids=["processes", "dask-local"])
def test_a_killed_uncertainty_leaves_no_workers_and_no_stream(workers, tmp_path):
    """Its workers die with it (a Dask LocalCluster's nannies and workers too); its stream, in the store's hidden
    staging folder, goes with the next save."""
    runs = tmp_path / "runs"
    command = ["uncertainty", "models/assumptions.toml", "--samples", "20000", "--final-time", "2030", *workers]
    process = subprocess.Popen([*SDMODEL, *command, "--runs-dir", str(runs)], stderr=subprocess.PIPE, text=True)
    children = _descendants_once_started(process, 2, lambda: bool(temporary_folders(runs)))  # members stream there
    _kill_and_expect_no_survivors(process, children)
    assert len(temporary_folders(runs)) == 1 and _streams_of(process.pid) == []  # what the kill left: in the store, hidden
    after = subprocess.run(
        [*SDMODEL, *command[:2], "--samples", "8", "--final-time", "2022", "--runs-dir", str(runs), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert after.returncode == 0, after.stderr
    assert temporary_folders(runs) == set() and len(complete_runs(runs)) == 1


def test_a_killed_pysd_compare_leaves_no_workers(tmp_path):
    runs = tmp_path / "runs"
    command = [*SDMODEL, "compare", "data-strike", "--engine", "pysd", "--final-time", "2030", "--jobs", "2", "--fresh"]
    process = subprocess.Popen([*command, "--runs-dir", str(runs)], stderr=subprocess.PIPE, text=True)
    _kill_and_expect_no_survivors(process, _descendants_once_started(process, 2))
    after = subprocess.run(
        [*SDMODEL, *RUN, "--engine", "pysd", "--final-time", "2021", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert after.returncode == 0, after.stderr
    assert len(complete_runs(runs)) == 1


def test_an_ensemble_streamed_to_the_temporary_folder_is_removed_after_a_kill(tmp_path, monkeypatch):
    """Ensembles not saved as they run (sensitivity, policy search) stream to the temporary folder: a stream of a
    process that is gone is removed by the next."""
    import tempfile

    from sdmodel.ensemble import _temporary_netcdf

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    left = tmp_path / f"sdmodel-ensemble-{socket.gethostname()}-{gone.pid}-abc.nc"
    mine = tmp_path / f"sdmodel-ensemble-{socket.gethostname()}-{os.getpid()}-def.nc"
    for path in (left, mine):
        path.write_bytes(b"members")
    fresh = _temporary_netcdf()
    assert fresh.parent == tmp_path and f"-{os.getpid()}-" in fresh.name
    assert not left.exists() and mine.exists()


def test_a_killed_simlin_compare_leaves_nothing_once_the_next_command_has_run(tmp_path):
    """Simlin runs a comparison's scenarios on threads: SIGKILL at a random moment of its life (start-up, the runs,
    the save) leaves no process, and the next command works and clears what the killed one staged."""
    import psutil

    seed = int.from_bytes(os.urandom(4), "little")
    delay = random.Random(seed).uniform(0.2, 4.0)
    runs = tmp_path / "runs"
    command = [*SDMODEL, "compare", "--engine", "simlin", "--final-time", "2030", "--runs-dir", str(runs)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    children = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
    if process.poll() is None:
        _kill_and_expect_no_survivors(process, children)
    after = subprocess.run([*SDMODEL, *RUN, "--runs-dir", str(runs)], capture_output=True, text=True, timeout=300, check=False)
    assert after.returncode == 0, (seed, delay, after.stderr)
    assert temporary_folders(runs) == set(), (seed, delay)
    assert 1 <= len(complete_runs(runs)) <= 2, (seed, delay)


SLOW_COMPILER = """#!{python}
# a C compiler that takes its time, as on a large model: one process throughout (it becomes gcc)
import os, sys, time
time.sleep(60)
os.execvp("gcc", ["gcc", *sys.argv[1:]])
"""


def _cold_compiled_cache(cache: Path) -> dict[str, str]:
    """A cache with no model compiled in it, holding a copy of the session's npm install of SDEverywhere's compiler
    (npm need not run); the environment of a command that uses it, with the C compiler found on PATH."""
    from sdmodel.engines import compiled
    from sdmodel.errors import InputError

    if not (shutil.which("node") and shutil.which("npm") and shutil.which("gcc")):
        pytest.skip("the compiled engine needs node, npm and gcc")
    try:
        installed = compiled._sde_compiler().parents[4]  # .../node_modules/@sdeverywhere/compile/src/index.js
    except InputError as error:
        pytest.skip(f"the compiled engine cannot be installed here: {error}")
    shutil.copytree(installed, cache / installed.name, symlinks=True)
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(cache)}
    env.pop("CC", None)
    return env


def _next_compiled_run_clears_the_build(cache: Path, runs: Path, env: dict[str, str], note=None) -> None:
    after = subprocess.run(
        [*SDMODEL, *RUN, "--engine", "compiled", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert after.returncode == 0, (note, after.stderr)
    assert list((cache / "compiled").glob(".build-*")) == [], note
    assert 1 <= len(complete_runs(runs)) <= 2, note


def test_a_compiled_compare_killed_while_compiling_leaves_no_tools_and_nothing_once_the_next_command_has_run(tmp_path):
    """SIGKILL mid-build on a cold cache, while the C compiler runs: npm, node and the compiler die with sdmodel (they
    ran on, outliving it), the next command removes the build's working folder (it stayed for ever) and works."""
    import psutil

    cache, runs = tmp_path / "cache", tmp_path / "runs"
    env = _cold_compiled_cache(cache)
    slow = tmp_path / "slow-cc"
    slow.write_text(SLOW_COMPILER.format(python=sys.executable))
    slow.chmod(0o755)
    command = [*SDMODEL, "compare", "--engine", "compiled", "--final-time", "2030", "--fresh", "--runs-dir", str(runs)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**env, "CC": str(slow)}
    )

    def compiling() -> bool:
        try:
            return any(str(slow) in " ".join(child.cmdline()) for child in psutil.Process(process.pid).children())
        except psutil.Error:  # a child that ended while asked
            return False

    children = _descendants_once_started(process, 1, compiling)
    time.sleep(random.uniform(0, 0.5))
    assert len(list((cache / "compiled").glob(".build-*"))) == 1  # the build's working folder, mid-compile
    _kill_and_expect_no_survivors(process, children)
    _next_compiled_run_clears_the_build(cache, runs, env)
    assert len(complete_runs(runs)) == 1


def test_a_compiled_compare_killed_at_a_random_moment_leaves_nothing_once_the_next_command_has_run(tmp_path):
    """A cold compiled compare with the real tools, SIGKILLed at a random moment of its life (start-up, node's
    translation, the compile, the runs, the save): no process of it is left, and the next command works and clears
    what the killed one left."""
    import psutil

    seed = int.from_bytes(os.urandom(4), "little")
    delay = random.Random(seed).uniform(0.5, 6.0)
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    env = _cold_compiled_cache(cache)
    command = [*SDMODEL, "compare", "--engine", "compiled", "--final-time", "2030", "--fresh", "--runs-dir", str(runs)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + delay
    children: dict[int, psutil.Process] = {}
    while process.poll() is None and time.monotonic() < deadline:  # every tool it starts, however briefly
        try:
            children.update((child.pid, child) for child in psutil.Process(process.pid).children(recursive=True))
        except psutil.Error:
            pass
        time.sleep(0.02)
    if process.poll() is None:
        _kill_and_expect_no_survivors(process, [child for child in children.values() if child.is_running()])
    _next_compiled_run_clears_the_build(cache, runs, env, (seed, delay))
