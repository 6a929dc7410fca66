"""The cache: what it holds is checked before it is used, and a damaged or unwritable cache never breaks a command.

A translation or a metadata file cut short, emptied, garbled or deleted is rebuilt, not blamed on the model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from paths import MODELS, without_root_privileges

from sdmodel import describe
from sdmodel.cli import main
from sdmodel.engines import cached
from sdmodel.engines import pysd as pysd_engine
from sdmodel.engines import simlin as simlin_engine

DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "emptied": lambda path: path.write_bytes(b""),
    "garbled": lambda path: path.write_bytes(path.read_bytes().replace(b"tock", b"tick")),
    "deleted": lambda path: path.unlink(),
}
MEMOS = (pysd_engine._loaded, pysd_engine._infos, pysd_engine._time_defaults, cached._checked, simlin_engine._infos)


def forget_loaded_models() -> None:
    """What a new process knows of the cache: nothing (every engine keeps what it loaded, per process)."""
    for memo in MEMOS:
        memo.clear()


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):
    """An empty cache, and no model loaded in this process; the session's loaded models come back afterwards."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(folder))
    saved = [dict(memo) for memo in MEMOS]
    forget_loaded_models()
    yield folder
    for memo, entries in zip(MEMOS, saved):
        memo.clear()
        memo.update(entries)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_translation_is_rebuilt(damage, cold_cache, isolated_runs_dir):
    model = MODELS / "decay.mdl"
    translated = pysd_engine.translate(model)
    good = translated.read_bytes()
    forget_loaded_models()
    DAMAGES[damage](translated)
    assert pysd_engine.translate(model) == translated and translated.read_bytes() == good
    forget_loaded_models()
    DAMAGES[damage](translated)  # and a command on the damaged cache works, as on a cold one
    result = CliRunner().invoke(main, ["run", "--model", str(model), "--engine", "pysd", "--fresh", "--json"])
    assert result.exit_code == 0, result.output
    assert translated.read_bytes() == good


def test_a_translation_whose_checksum_is_damaged_is_rebuilt(cold_cache):
    model = MODELS / "decay.mdl"
    translated = pysd_engine.translate(model)
    checksum = translated.parent / pysd_engine.CHECKSUM
    checksum.write_text("0" * 64)
    forget_loaded_models()
    stamp = translated.stat().st_mtime_ns
    assert pysd_engine.translate(model) == translated
    assert translated.stat().st_mtime_ns != stamp and checksum.read_text() != "0" * 64


def test_an_intact_translation_is_not_rebuilt(cold_cache):
    model = MODELS / "decay.mdl"
    translated = pysd_engine.translate(model)
    forget_loaded_models()
    stamp = translated.stat().st_mtime_ns
    assert pysd_engine.translate(model) == translated and translated.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", [*DAMAGES, "valid JSON, wrong content"])
def test_damaged_model_info_caches_are_read_again(damage, cold_cache):
    """Both caches of a model's metadata: the fast engine's copy of PySD's, and describe's."""
    model = MODELS / "decay.mdl"
    info = pysd_engine.model_info(model)
    simlin_engine._write_info_cache(info.sha256, info, ("time",))
    reference = simlin_engine._read_info_cache(model, info.sha256)
    assert reference is not None and reference[0].variables == info.variables
    metadata = describe.model_metadata(model)
    caches = [simlin_engine._info_cache_file(info.sha256), describe._metadata_path(info.sha256)]
    for path in caches:
        if damage == "valid JSON, wrong content":  # well-formed, so only a checksum can tell
            path.write_text(json.dumps({"variables": [], "subscripts": {}, "order": [], "equations": {}, "links": []}))
        else:
            DAMAGES[damage](path)
    assert simlin_engine._read_info_cache(model, info.sha256) is None  # so the model is read again
    assert describe.model_metadata(model) == metadata


KILLED_MID_TRANSLATION = """
import os, signal, sys
import pysd
from sdmodel.engines import pysd as engine

def read_vensim(path, *args, **kwargs):
    open(path[: -len(".mdl")] + ".py", "w").write("# half a translation")
    os.kill(os.getpid(), signal.SIGKILL)  # no `finally` runs

engine.READERS[".mdl"] = read_vensim
engine.translate(sys.argv[1])
"""


def working_folders(cache) -> list[str]:
    return sorted(path.name for path in cache.glob(f"pysd-*/{pysd_engine.TRANSLATING}*"))


def test_a_killed_translation_leaves_nothing_once_the_next_has_run(cold_cache):
    model = MODELS / "decay.mdl"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_TRANSLATION, str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SDMODEL_CACHE_DIR": str(cold_cache)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(working_folders(cold_cache)) == 1  # what a kill leaves: no cleanup ran
    translated = pysd_engine.translate(model)
    assert working_folders(cold_cache) == [] and cached.intact(translated.parent, pysd_engine.CHECKSUM)


def test_stale_working_folders_go_and_a_live_translations_stays(cold_cache):
    """Removed: one of a process that is gone, and one older than ABANDONED_AFTER whose name does not say its
    process (an older sdmodel's, or another machine's). Kept: one whose process runs (here, this one)."""
    host = socket.gethostname()
    root = cold_cache / f"pysd-{pysd_engine.VERSION}"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    dead = root / f"{pysd_engine.TRANSLATING}{host}-{process.pid}-abc"
    old = root / f"{pysd_engine.TRANSLATING}k2j3h4"
    live = root / f"{pysd_engine.TRANSLATING}{host}-{os.getpid()}-def"
    for folder in (dead, old, live):
        (folder / "_").mkdir(parents=True)
    long_ago = time.time() - cached.ABANDONED_AFTER - 60
    os.utime(old, (long_ago, long_ago))
    pysd_engine.translate(MODELS / "decay.mdl")
    assert working_folders(cold_cache) == [live.name]


def _assert_cache_error(result, cache, runs) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"sdmodel: error: {cache}: cannot write the translation cache"), line
    assert "SDMODEL_CACHE_DIR" in line
    assert not runs.exists() or not any(runs.iterdir())


COLD_PYSD_RUN = ["run", "--model", str(MODELS / "decay.mdl"), "--engine", "pysd", "--fresh"]


@pytest.mark.parametrize("where", ["the cache is a file", "a file holds its place"])
def test_a_cache_folder_that_is_a_file_gives_one_line(where, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    cache = blocker if where == "the cache is a file" else blocker / "cache"
    runs = tmp_path / "runs"
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(cache), "SDMODEL_RUNS_DIR": str(runs)}
    result = subprocess.run(
        [sys.executable, "-m", "sdmodel.cli", *COLD_PYSD_RUN], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    _assert_cache_error(result, cache, runs)
    assert blocker.read_text() == "a file"


def test_a_read_only_cache_folder_gives_one_line(tmp_path):
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    cache.mkdir()
    prefix = without_root_privileges()
    env = {**os.environ, "SDMODEL_CACHE_DIR": str(cache), "SDMODEL_RUNS_DIR": str(runs)}
    cache.chmod(0o555)
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "sdmodel.cli", *COLD_PYSD_RUN],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        cache.chmod(0o755)
    _assert_cache_error(result, cache, runs)
    assert "Permission denied" in result.stderr


@pytest.mark.parametrize("terminal", [True, False])
def test_a_translation_says_so_on_a_terminal_only(terminal, cold_cache, capsys, monkeypatch):
    """A large model translates for minutes: on a terminal a line says what is happening, as PySD runs do; a
    script's stderr gets nothing, and neither does a command that finds the translation cached."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    pysd_engine.translate(MODELS / "decay.mdl")
    said = capsys.readouterr()
    assert said.out == ""
    assert ("translating decay.mdl through PySD" in said.err) is terminal and said.err.count("\n") == int(terminal)
    forget_loaded_models()
    pysd_engine.translate(MODELS / "decay.mdl")
    assert capsys.readouterr().err == ""
