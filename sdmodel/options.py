"""The options the ensemble functions share, grouped: what to run (:class:`RunSetup`) and how (:class:`Execution`).

:func:`~sdmodel.ensemble.uncertainty`, :func:`~sdmodel.ensemble.sweep`,
:func:`~sdmodel.sensitivity.sensitivity`, :func:`~sdmodel.robustness.robustness` and
:func:`~sdmodel.search.search_policy` each take one of each; the defaults are what each
took before the options were grouped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdmodel.scenario import Scenario
    from sdmodel.simulate import Prepared


@dataclass(frozen=True)
class RunSetup:
    """What every member runs on: the model file, ``--set`` values, the horizon and the engine.

    >>> RunSetup(final_time=2030).engine
    'simlin'
    """

    model: str | os.PathLike | None = None  #: the bundled model by default
    overrides: Mapping[str, float] | None = None  #: variable name -> value, in every scenario (the CLI's ``--set``)
    final_time: float | None = None  #: the scenarios' own (or the model's) by default
    engine: str = "simlin"  #: ensembles run on the fast engine unless told otherwise

    def prepare(self, scenarios: Iterable[str | Path | Scenario]) -> Prepared:
        """The scenarios loaded and checked against the model with these options (:func:`sdmodel.simulate.prepare`)."""
        from sdmodel.simulate import prepare

        return prepare(scenarios, model=self.model, overrides=self.overrides, final_time=self.final_time, engine=self.engine)


@dataclass(frozen=True)
class Execution:
    """How the members run: on how many processes or which Dask cluster, where they stream to, and whether a bar shows.

    ``jobs`` caps the worker processes (default: one per core; 1 runs in this process);
    ``scheduler`` is a Dask scheduler's address and ``dask_local`` the workers of a Dask
    LocalCluster to start; with ``store`` (a NetCDF path) the members stay in that file and
    the results read it lazily; ``progress`` shows a bar on stderr (default: on a terminal).
    """

    jobs: int | None = None
    scheduler: str | None = None
    dask_local: int | None = None
    store: str | os.PathLike | None = None
    progress: bool | None = None
