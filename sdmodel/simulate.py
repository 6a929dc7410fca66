"""Run scenarios and gather them into one xarray Dataset (dims ``scenario``, ``time``, subscripts).

Validation happens here, before any run; how the runs are spread over cores is the engine's
business (PySD runs in parallel processes, Simlin in this one).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel import provenance
from sdmodel import reuse as reuse_runs
from sdmodel.engines import Engine
from sdmodel.errors import InputError, NonFiniteWarning, Note
from sdmodel.locations import default_model
from sdmodel.model import ModelInfo
from sdmodel.progress import duration, progress_bar
from sdmodel.scenario import RunSpec, Scenario, bundled_scenarios, load_scenario, validate

#: engine name -> module; PySD is the reference, Simlin the fast engine held to it by parity tests; "compiled" the
#: model translated to C (node, npm and a C compiler needed), held to Simlin, for ensembles of thousands of runs
ENGINES = {"pysd": "sdmodel.engines.pysd", "simlin": "sdmodel.engines.simlin", "compiled": "sdmodel.engines.compiled"}


#: not an engine but a choice among them: the compiled engine where it can run the model, else Simlin
FASTEST = "fast"


def engine_module(name: str, model: str | Path | None = None) -> Engine:
    """The engine adapter for a name (imported on first use: each engine is a heavy import).

    ``"fast"`` (:data:`FASTEST`) picks for ``model`` (the bundled one by default) the compiled
    engine, about ten times faster than Simlin and held to it, or Simlin where the compiled engine
    cannot run (no node, npm or C compiler, npm's registry out of reach, an XMILE model): ensembles
    should not fail for want of a tool outside Python, and a :class:`~sdmodel.errors.Note` says why.
    """
    if name == FASTEST:
        return _fastest(Path(model) if model else default_model())
    if name not in ENGINES:
        choices = ", ".join([*ENGINES, FASTEST])
        raise InputError(source="--engine", key=name, problem="unknown engine", fix=f"choose one of: {choices}")
    return importlib.import_module(ENGINES[name])


def _fastest(model_path: Path) -> Engine:
    simlin, compiled = (importlib.import_module(ENGINES[name]) for name in ("simlin", "compiled"))
    simlin.load_plan(model_path)  # a model Simlin refuses is an error either way, said once, by Simlin
    try:
        compiled.load(model_path)  # compiled once per model and cached: later calls cost a look-up
    except InputError as error:
        warnings.warn(Note(f"--engine fast runs on simlin, as the compiled engine cannot: {error}"), stacklevel=3)
        return simlin
    return compiled


def model_info(model: str | Path | None = None, engine: str = "pysd") -> ModelInfo:
    """A model's metadata (names, units, ranges, subscripts) as ``engine`` reads it; the bundled model by default."""
    model_path = Path(model) if model else default_model()
    return engine_module(engine, model_path).model_info(model_path)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` loaded and checked: everything a run needs, before anything runs."""

    model_path: Path
    scenarios: list[Scenario]  #: as loaded, with ``--set`` and ``--final-time`` applied
    specs: list[RunSpec]  #: one per scenario, validated against the model
    info: ModelInfo  #: the model's metadata, as the engine reads it
    time_defaults: dict[str, float]  #: the model's own time controls
    engine: Engine

    @property
    def grid(self) -> dict[str, float]:
        """The runs' time controls: the model's, with what the scenarios set (one grid for all, checked)."""
        return {**self.time_defaults, **self.specs[0].time}


def prepare(
    scenarios: Iterable[str | Path | Scenario] = ("baseline",),
    *,
    model: str | Path | None = None,
    overrides: Mapping[str, float] | None = None,
    final_time: float | None = None,
    engine: str = "pysd",
    data: Sequence[str | Path] = (),
) -> Prepared:
    """Load and validate everything before anything runs, so bad input costs no run.

    ``data`` names files holding the values of the model's data variables (PySD's ``data_files``).
    """
    model_path = Path(model) if model else default_model()
    engine = engine_module(engine, model_path)
    data_files = data_paths(data)
    if data_files and not engine.READS_DATA_FILES:
        raise InputError(
            source="--data",
            key=data_files[0],
            problem=f"the {engine.NAME} engine cannot read data files",
            fix="run it with `--engine pysd`",
        )
    info = engine.model_info(model_path)
    defaults = engine.time_defaults(model_path)
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    if not loaded:
        raise InputError(source="scenarios", key=None, problem="no scenario given", fix="name at least one scenario")
    seen: dict[str, str] = {}
    for scenario in loaded:
        if scenario.name in seen:
            raise InputError(
                source=scenario.source,
                key="name",
                problem=f"scenario '{scenario.name}' is given twice (also {seen[scenario.name]})",
                fix="give each scenario once, or rename one",
            )
        seen[scenario.name] = scenario.source
    time = {"final_time": float(final_time)} if final_time is not None else {}
    loaded = [s.with_overrides(dict(overrides or {}), {}, "--set").with_overrides({}, time, "--final-time") for s in loaded]
    specs = [dataclasses.replace(validate(s, info, defaults), data_files=data_files) for s in loaded]
    grids = {tuple(sorted(spec.time.items())) for spec in specs}
    if len(grids) > 1:
        raise InputError(
            source=loaded[0].source,
            key="time",
            problem="the scenarios in one run set different [time] periods",
            fix="run them separately, or pass --final-time",
        )
    return Prepared(model_path, loaded, specs, info, defaults, engine)


def data_paths(data: Sequence[str | Path]) -> tuple[str, ...]:
    """The ``--data`` files as absolute paths (a worker process may run elsewhere), each checked to exist."""
    paths = []
    for name in data:
        path = Path(name)
        if not path.is_file():
            raise InputError(
                source="--data",
                key=str(name),
                problem="data file not found",
                fix="give the path of a .tab, .csv or .xlsx file with the model's data variables",
            )
        paths.append(str(path.resolve()))
    return tuple(paths)


def is_bundled(model_path: Path) -> bool:
    """Whether a model is the bundled one, whose results must be finite: NaN there breaks a promise of the model."""
    try:
        return model_path.resolve() == default_model().resolve()
    except OSError:
        return False


def non_finite(results: xr.Dataset) -> list[str]:
    """One line for each variable holding NaN: its name, the first scenario that does, and from when."""
    lines = []
    for name, array in results.data_vars.items():
        bad = np.isnan(array)
        if not bool(bad.any()):
            continue
        first = bad.where(bad, drop=True)
        where = [f"scenario '{first['scenario'].values[0]}'"] if "scenario" in first.dims else []
        if "time" in first.dims:
            where.append(f"from time {float(first['time'].min()):g}")
        lines.append(f"'{array.attrs.get('long_name') or name}' holds NaN" + (f" ({', '.join(where)})" if where else ""))
    return lines


def bundled_scenarios_for(model: str | Path | None = None, engine: str = "pysd") -> tuple[list[Scenario], dict[str, str]]:
    """The bundled scenarios ``model`` can run, and for each other one why it cannot.

    The bundled scenarios set the bundled model's levers: a model of the user's own
    lacks most of them, and comparing every bundled scenario against it would stop
    at the first lever it lacks.
    """
    model_path = Path(model) if model else default_model()
    adapter = engine_module(engine, model_path)
    info, defaults = adapter.model_info(model_path), adapter.time_defaults(model_path)
    fitting, skipped = [], {}
    for scenario in (load_scenario(name) for name in bundled_scenarios()):
        try:
            validate(scenario, info, defaults)
        except InputError as error:
            skipped[scenario.name] = str(error)
        else:
            fitting.append(scenario)
    return fitting, skipped


def run(
    scenarios: Iterable[str | Path | Scenario] = ("baseline",),
    *,
    model: str | Path | None = None,
    overrides: Mapping[str, float] | None = None,
    final_time: float | None = None,
    jobs: int | None = None,
    command: str | None = None,
    engine: str = "pysd",
    reuse: bool = False,
    runs_dir: str | Path | None = None,
    progress: bool | None = None,
    data: Sequence[str | Path] = (),
) -> xr.Dataset:
    """Run scenarios (bundled names, TOML paths or Scenario objects) on a model.

    ``overrides`` maps variable names to values applied to every scenario (the
    CLI's ``--set``). ``engine`` is ``"pysd"`` (the reference) or ``"simlin"`` (fast).
    ``jobs`` caps PySD's worker processes (default: one per core). With ``reuse``,
    scenarios whose results a run saved in ``runs_dir`` already holds are read from
    there instead of run again, on an engine slow enough for that to pay (PySD);
    the ``reused_from`` attribute names those runs. ``progress`` shows a bar on
    stderr as scenarios finish; by default only for PySD (seconds per scenario) and
    when stderr is a terminal. ``data`` names files of values for the model's data variables.

    On the bundled model a NaN or infinite value is a :class:`~sdmodel.errors.ModelRunError`;
    on a model of one's own NaN is a result (Vensim's ``:NA:``, an element left undefined):
    kept as it is, with a :class:`~sdmodel.errors.NonFiniteWarning` naming the variables. An
    infinity (a value that overflowed) fails the run on any model.
    """
    prepared = prepare(scenarios, model=model, overrides=overrides, final_time=final_time, engine=engine, data=data)
    model_path, loaded, specs, engine = prepared.model_path, prepared.scenarios, prepared.specs, prepared.engine
    allow_nan = not is_bundled(model_path)
    show = (
        progress if progress is not None else (None if engine.REUSE_STORED else False)
    )  # the fast engine is done before a bar draws
    with progress_bar(len(specs), f"{len(specs)} scenarios on {engine.NAME}", show) as bar:

        def starting(count: int, seconds: float | None) -> None:
            if seconds is not None:  # the engine measured its runs here: say how long this will take
                workers = min(count, jobs or os.cpu_count() or 1)
                plural = "s" if count != 1 else ""
                wait = duration(seconds / workers)
                bar.relabel(f"{count} scenario{plural} on {engine.NAME}, {workers} at a time: about {wait} here")

        dataset, keys, reused_from = reuse_runs.run_or_reuse(
            prepared, jobs=jobs, reuse=reuse, runs_dir=runs_dir, done=bar.update, allow_nan=allow_nan, starting=starting
        )
    if allow_nan:
        for line in non_finite(dataset):
            warnings.warn(f"{model_path}: {line}; saved as the model computed them", NonFiniteWarning, stacklevel=2)
    dataset["scenario"].attrs = {"long_name": "Scenario"}
    dataset = dataset.assign_coords(description=("scenario", [s.description for s in loaded]))
    dataset.attrs = provenance.attributes(
        engine=engine.NAME,
        engine_version=engine.VERSION,
        model=model_path,
        model_sha256=prepared.info.sha256,
        scenarios=[s.to_dict() for s in loaded],
        command=command or provenance.command_line(),
    )
    dataset.attrs["run_keys"] = json.dumps(keys)
    if reused_from:
        dataset.attrs["reused_from"] = json.dumps(reused_from)
    return dataset
