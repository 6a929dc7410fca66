"""The cache: what it holds is checked before it is used, and a damaged or unwritable cache never breaks a command.

A translation or a metadata file cut short, emptied, garbled or deleted is rebuilt, not blamed on the model.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from paths import MODELS

from sdmodel import describe
from sdmodel.cli import main
from sdmodel.engines import pysd as pysd_engine
from sdmodel.engines import simlin as simlin_engine

DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "emptied": lambda path: path.write_bytes(b""),
    "garbled": lambda path: path.write_bytes(path.read_bytes().replace(b"tock", b"tick")),
    "deleted": lambda path: path.unlink(),
}
MEMOS = (pysd_engine._loaded, pysd_engine._infos, pysd_engine._time_defaults, pysd_engine._checked, simlin_engine._infos)


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
