"""Simulation engines. Only the modules in this package import an engine.

Each engine is a module (``pysd.py``, ``simlin.py``) that provides what :class:`Engine`
lists; :func:`sdmodel.simulate.engine_module` hands one out by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from sdmodel.model import ModelInfo
    from sdmodel.scenario import RunSpec


@runtime_checkable
class Engine(Protocol):
    """What an engine module provides: the rest of sdmodel uses an engine through these names only."""

    NAME: str  #: the name ``--engine`` takes and provenance records
    VERSION: str  #: the engine's version, part of every run's provenance and reuse key
    REUSE_STORED: bool  #: whether a stored run is read back instead of run again (worth it where runs take seconds)
    READS_DATA_FILES: bool  #: whether data variables' values can come from files (``--data``)
    #: ``member_runner(model_path, spec, params, outputs)``: a fast runner of one ensemble member at a time, with
    #: ``run(values) -> (rows, error)``; None where the engine has none (ensembles then build a Dataset per member)
    member_runner: Callable | None

    def model_info(self, model_path: str | os.PathLike) -> ModelInfo:
        """The model's variables, units, ranges and subscripts."""

    def time_defaults(self, model_path: str | os.PathLike) -> dict[str, float]:
        """The model's own time controls (initial_time, final_time, time_step, saveper)."""

    def run(self, model_path: str | os.PathLike, spec: RunSpec, allow_nan: bool = False) -> xr.Dataset:
        """One scenario's results (dims ``time`` and subscripts)."""

    def expected_seconds(self, model_path: str | os.PathLike, specs: Sequence[RunSpec]) -> float | None:
        """How long running ``specs`` one after another should take on this machine, or None if unknown."""

    def run_scenarios(
        self,
        model_path: str | os.PathLike,
        specs: Sequence[RunSpec],
        jobs: int | None = None,
        done: Callable[[int], None] | None = None,
        allow_nan: bool = False,
    ) -> xr.Dataset:
        """Scenarios' results in one Dataset with a leading ``scenario`` dim; ``done(1)`` as each finishes."""


def unchanging(values: np.ndarray) -> bool:
    """Whether a series (time first) holds its first value throughout, so a constant can drop its time axis.

    NaN equals NaN here: a constant the model leaves missing (``:NA:``) is still a constant.
    """
    values = np.asarray(values)
    return bool(np.array_equal(values, np.broadcast_to(values[:1], values.shape), equal_nan=True))
