"""Where sdmodel finds its bundled model and scenarios, keeps its cache and saves runs.

The bundled ``models/`` folder sits at the repository root (the design card fixes
the layout); a wheel carries a copy inside the package as ``sdmodel/models``.
"""

from __future__ import annotations

import os
from pathlib import Path

RUNS_DIR_ENV = "SDMODEL_RUNS_DIR"
CACHE_DIR_ENV = "SDMODEL_CACHE_DIR"


def models_dir() -> Path:
    """The folder of bundled models: inside the installed package, else the source tree."""
    packaged = Path(__file__).parent / "models"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "models"


def default_model() -> Path:
    """The bundled AI-power model in Vensim form, the source of truth."""
    return models_dir() / "ai_power.mdl"


def scenarios_dir() -> Path:
    """The folder of bundled scenario TOML files."""
    return models_dir() / "scenarios"


def runs_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The run store: an explicit folder, else ``$SDMODEL_RUNS_DIR``, else ``./runs``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def cache_dir() -> Path:
    """Where translated models are cached: ``$SDMODEL_CACHE_DIR``, else the XDG cache.

    Translation output is build output, so it never goes next to the model file.
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sdmodel"


#: the first line of every cache file sdmodel writes: a checksum of the rest, so a damaged entry is read as none
_CHECKED = "sdmodel-cache sha256 "


def write_cache(path: Path, text: str) -> None:
    """Write a cache entry atomically (a temporary file beside it, then a rename), its checksum first.

    A cache that cannot be written only costs the next reader the work it saves, so an OSError is ignored.
    """
    import hashlib

    from sdmodel import atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, f"{_CHECKED}{hashlib.sha256(text.encode()).hexdigest()}\n{text}")
    except OSError:
        pass


def read_cache(path: Path) -> str | None:
    """A cache entry's text, or None when there is none or it is not what was written (emptied, cut short, garbled).

    >>> import tempfile; entry = Path(tempfile.mkdtemp()) / "entry"
    >>> write_cache(entry, '{"a": 1}'); read_cache(entry)
    '{"a": 1}'
    >>> _ = entry.write_text(entry.read_text().replace("1", "2")); read_cache(entry) is None
    True
    """
    import hashlib

    try:
        head, _, text = path.read_bytes().decode("utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if head != _CHECKED + hashlib.sha256(text.encode()).hexdigest():
        return None
    return text
