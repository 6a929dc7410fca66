"""Folders the engines build into the cache: a PySD translation, a compiled model, SDEverywhere's npm install.

Each is built in a private working folder (:func:`working_folder`), sealed by a checksum over its files written
last, and renamed into place whole (:func:`finish`); it is used only while its files are those the checksum was
made of (:func:`intact`), else built again. A file cut short, emptied, garbled or deleted was trusted otherwise,
and every later command failed, or ran on it. What a build killed outright left (its working folder) is removed
by the next build; a cache that cannot be written is one line naming it and the way out (:func:`writing`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from sdmodel.errors import InputError
from sdmodel.locations import CACHE_DIR_ENV, cache_dir
from sdmodel.model import file_sha256
from sdmodel.store import private_name, remove_abandoned

#: a working folder older than this is abandoned, whoever made it (another machine sharing the cache, or an older
#: sdmodel's, whose name does not say its process): no build measured here took a tenth of it
ABANDONED_AFTER = 24 * 3600.0
_checked: dict[Path, tuple] = {}  # per process: folders found intact, by their files' sizes and times


def working_folder(parent: Path, prefix: str) -> Path:
    """A private name (``PREFIX<host>-<pid>-<random>``) for a build's working folder in ``parent``, not yet made,
    once what builds killed outright left there under ``prefix`` is removed. Raises OSError where the cache
    cannot be written: call it within :func:`writing`."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(parent, prefix, older_than=ABANDONED_AFTER)
    return parent / private_name(prefix)


def finish(work: Path, folder: Path, seal: str) -> None:
    """Seal a finished build (its checksum, in the file ``seal``, written last) and rename it into place, atomically."""
    (work / seal).write_text(_checksum(work, seal))
    try:
        os.replace(work, folder)  # a reader never sees a half-written build
    except OSError:  # the folder exists: another process finished first (its build is the same) ...
        if not intact(folder, seal):  # ... or it is stale (an older layout) or damaged: replace it
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(work, folder)


def intact(folder: Path, seal: str) -> bool:
    """Whether a cached build is whole and unchanged: its files are those its checksum (in ``seal``) was made of.

    Checked once per process while the files' sizes and modification times stay the same.
    """
    try:
        files = _files(folder, seal)
        stamp = tuple((path, path.stat().st_size, path.stat().st_mtime_ns) for path in [*files, folder / seal])
        if _checked.get(folder) == stamp:
            return True
        found = (folder / seal).read_text(encoding="utf-8") == _checksum(folder, seal)
    except (OSError, UnicodeDecodeError):
        return False
    if found:
        _checked[folder] = stamp
    return found


@contextlib.contextmanager
def writing(what: str):
    """Turn a failure to write the cache (read-only, not a folder, full) into one line naming it and the way out."""
    try:
        yield
    except OSError as error:
        problem = f"cannot write {what} ({error.strerror or error})"
        fix = f"make the folder writable, or set {CACHE_DIR_ENV} to a folder that is"
        raise InputError(source=cache_dir(), key=None, problem=problem, fix=fix) from None


def _files(folder: Path, seal: str) -> list[Path]:
    """A build's files, but not its seal, nor the bytecode Python writes beside a translation when it is imported."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != seal and "__pycache__" not in path.parts)


def _checksum(folder: Path, seal: str) -> str:
    """A sha256 over every file of a build, by its place in the folder and its content."""
    digest = hashlib.sha256()
    for path in _files(folder, seal):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()
