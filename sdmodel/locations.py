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
