"""Ensembles: parameter sweeps and Monte Carlo uncertainty, run serially, in local processes or on Dask.

A researcher needs thousands of runs; PySD takes seconds per run, Simlin
milliseconds. So ensembles default to the Simlin engine and run members through
:class:`sdmodel.engines.simlin.MemberRunner`, which reads only the outputs kept
(a handful of series, not all of the model's variables). This module says what
an ensemble is (the constants varied, on a grid or drawn from the distributions
of :mod:`sdmodel.distributions`, and the outputs kept), hands its members in
batches to an executor (:mod:`sdmodel.executors`, which says how runs are kept
cheap) and gathers and summarises what comes back:

- results stream into a NetCDF file batch by batch, so memory holds a few
  batches, not the ensemble;
- a streamed ensemble stays in its file: the Dataset reads it lazily and keeps
  nothing it has read, and :func:`percentile_bands` reads a block of time steps at
  a time, so neither holds the ensemble in memory;
- a member that fails (:class:`~sdmodel.errors.ModelRunError`) is recorded with
  its error (``failed`` and ``error`` coordinates, values NaN) and the others are
  kept; the record is a message number per member, each distinct message kept once.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from sdmodel import provenance
from sdmodel.distributions import (
    Distribution,
    check_varied_once,
    latin_hypercube,
    load_distributions,
    param_name,
    resolve_constant,
    varied_setting,
)
from sdmodel.errors import NUMBER, InputError, ModelRunError, check_range, finite_number
from sdmodel.executors import MAX_BATCH, Batch, BatchResult, Job, batch_size, make_executor, runner_for, serial_executor
from sdmodel.model import TIME_CONTROLS, ModelInfo, with_units
from sdmodel.options import Execution, RunSetup
from sdmodel.progress import progress_bar
from sdmodel.scenario import ELEMENT_PATTERN, RunSpec, Scenario, Setting, find_element

if TYPE_CHECKING:
    from sdmodel.simulate import Prepared

PERCENTILES = (5, 25, 50, 75, 95)
MAX_SWEEP_PARAMS = 3
CHUNK_CACHE_BYTES = 2**20  # per streamed variable: about a batch's chunk, not HDF5's default 64 MiB
BAND_BLOCK_BYTES = 8 * 2**20  # the members' values percentile_bands holds at a time, per variable and scenario


# --- sweep grids -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepParam:
    """One swept constant: its name as given, the setting it changes and its grid values."""

    name: str
    setting: Setting
    values: tuple[float, ...]


def parse_sweep_param(text: str, info: ModelInfo) -> SweepParam:
    """``NAME=LO:HI:N`` -> N evenly spaced values from LO to HI, checked against the model's range."""
    name, lo, hi, count = _sweep_grid(text)
    variable = resolve_constant(name, info, "--param", name)
    for value in (lo, hi):
        check_range(value, variable, "--param", name, give="values")
    return SweepParam(name, varied_setting(name, variable, info, "--param"), tuple(float(v) for v in np.linspace(lo, hi, count)))


def _sweep_grid(text: str) -> tuple[str, float, float, int]:
    """``NAME=LO:HI:N`` as its name, LO, HI and N, each checked: what a grid's size is known from before it is made."""
    name, sep, grid = text.partition("=")
    name = name.strip()
    parts = grid.split(":")
    if not sep or not name or len(parts) != 3:
        raise InputError(
            source="--param", key=text, problem="expected NAME=LO:HI:N", fix='e.g. --param "data strike fraction=0.1:0.5:5"'
        )
    try:
        if not (
            NUMBER.fullmatch(parts[0].strip())
            and NUMBER.fullmatch(parts[1].strip())
            and re.fullmatch(r"[+-]?[0-9]+", parts[2].strip())
        ):
            raise ValueError("not a number as the docs write one")  # float() reads "0_5" and full-width digits
        lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2].strip())
    except ValueError:
        raise InputError(
            source="--param",
            key=name,
            problem=f"{grid!r} is not LO:HI:N",
            fix="give two numbers and a whole number of points, e.g. 0.1:0.5:5",
        ) from None
    if count < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(
            source="--param", key=name, problem=f"{grid!r} is not a grid", fix="give finite LO and HI and N of at least 1"
        )
    if (lo >= hi and count > 1) or (lo != hi and count == 1):
        raise InputError(
            source="--param",
            key=name,
            problem=f"LO {lo:g} is not below HI {hi:g}",
            fix="make LO less than HI (or give N=1 with LO equal to HI)",
        )
    return name, lo, hi, count


# --- bounded work ------------------------------------------------------------------------------

#: the most model time steps (runs x steps a run) an ensemble takes on without --yes: measured on the
#: bundled model in Simlin, about 20 microseconds a step (3,840 steps a run, 78 ms), so some 5 hours on one core
MAX_STEPS = 10**9
#: the most bytes of outputs (runs x kept values x saved times x 8) it keeps without --yes: what its stream
#: file holds on disk, and what memory holds where an ensemble is read whole (sensitivity, policy search)
MAX_KEPT_BYTES = 4 * 2**30
_any_size: ContextVar[bool] = ContextVar("sdmodel_any_size", default=False)


@contextmanager
def any_size() -> Iterator[None]:
    """Lift :data:`MAX_STEPS` and :data:`MAX_KEPT_BYTES` for the ensembles run inside (the CLI's ``--yes``)."""
    token = _any_size.set(True)
    try:
        yield
    finally:
        _any_size.reset(token)


def check_size(
    source: str,
    members: int,
    prepared: Prepared,
    outputs: Sequence[Output],
    given: str | None = None,
    specs: Sequence[RunSpec] | None = None,
) -> None:
    """Refuse an ensemble of ``members`` for each scenario (``specs``, default ``prepared``'s) past the stated limits,
    before anything is drawn or run.

    The error names ``source`` (an option) and ``given`` (its value; default: ``members``).

    A sweep of ``x=0:1:100000000`` or ``--samples 1000000000`` ran out of memory making its design, or would
    have run for days: the estimate is one line naming the limit and ``--yes`` (:func:`any_size`).
    """
    if _any_size.get():
        return
    grid, info = prepared.grid, prepared.info
    span = grid["final_time"] - grid["initial_time"]
    steps = max(1, math.ceil(span / grid["time_step"] - 1e-9))
    saved = math.floor(span / grid["saveper"] + 1e-9) + 1
    variables = dict.fromkeys(output.variable for output in outputs)
    values = sum(math.prod(len(info.subscripts.get(dim, ())) for dim in info.variables[name].dims) for name in variables)
    runs = members * len(prepared.specs if specs is None else specs)
    work, kept = runs * steps, runs * values * saved * 8
    anyway = "give --yes to run it anyway"
    if work > MAX_STEPS:
        problem = f"{runs:,} runs of {steps:,} time steps each are {work:.3g} model steps, more than the limit of {MAX_STEPS:.0e}"
        raise InputError(source=source, key=given or str(members), problem=problem, fix=f"ask for fewer runs, or {anyway}")
    if kept > MAX_KEPT_BYTES:
        size = f"{kept / 2**30:.3g} GiB of outputs ({values:,} values x {saved:,} saved times a run)"
        problem = f"{runs:,} runs would keep {size}, more than the limit of {MAX_KEPT_BYTES / 2**30:g} GiB"
        raise InputError(
            source=source, key=given or str(members), problem=problem, fix=f"ask for fewer runs or outputs, or {anyway}"
        )


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """A quantity an ensemble reports: a model variable, optionally one element of it."""

    key: str
    variable: str  # python name: the variable kept per member (all its elements)
    label: str
    units: str = ""
    select: dict[str, str] = field(default_factory=dict)


def resolve_outputs(names: Sequence[str] | None, info: ModelInfo) -> list[Output]:
    """Outputs by metric key (``hhi``), variable name, or ``name[element]``; default: the comparison metrics."""
    from sdmodel.metrics import METRICS

    metrics = {metric.key: metric for metric in METRICS}
    if not names:
        chosen = [m for m in METRICS if m.variable in info.variables]
        if not chosen:
            raise InputError(
                source=info.path,
                key=None,
                problem="the model has none of the comparison's variables",
                fix="name the outputs to keep with --output",
            )
        return [_metric_output(m, info) for m in chosen]
    outputs = []
    for name in names:
        if name in metrics and metrics[name].variable in info.variables:
            outputs.append(_metric_output(metrics[name], info))
            continue
        match = ELEMENT_PATTERN.match(name)
        variable = info.resolve(match["name"] if match else name, "--output", name)
        if variable.py_name in (*TIME_CONTROLS, "time"):  # PySD documents Time's kind as NaN: "'Time' is a nan" was said
            problem = f"'{variable.name}' is a time control (the run's clock or its settings), not an output"
            raise InputError(source="--output", key=name, problem=problem, fix="choose a stock, flow, auxiliary or constant")
        if variable.kind == "lookup":
            problem = f"'{variable.name}' is a lookup, not a series"
            raise InputError(source="--output", key=name, problem=problem, fix="choose a stock, flow, auxiliary or constant")
        select = {}
        if match:
            select = dict([find_element(variable.dims, match["element"], info, "--output", name)])
        outputs.append(
            Output(name, variable.py_name, variable.name + (f"[{match['element']}]" if match else ""), variable.units, select)
        )
    return outputs


def _metric_output(metric, info: ModelInfo) -> Output:
    return Output(metric.key, metric.variable, metric.label, info.variables[metric.variable].units, dict(metric.select))


# --- streaming results to NetCDF -------------------------------------------------------------


class _Stream:
    """Members' outputs written into a NetCDF file as batches arrive: memory holds a batch, not the ensemble.

    The file has the ensemble's leading dims (``scenario`` and ``run``, or one per
    swept parameter), then ``time`` and each output's subscripts. Members never
    written (failed ones) read back as NaN. The file is made when the first
    result brings the time axis.
    """

    def __init__(self, path: Path, lead: dict[str, int], outputs: Sequence[tuple[str, dict[str, tuple[str, ...]]]]):
        self.path, self.lead, self.outputs = path, dict(lead), list(outputs)
        self.file = None
        self.time: np.ndarray | None = None

    def write(self, result: BatchResult) -> None:
        if result.values is None:
            return
        if self.file is None:
            self._create(result.time)
        shape = tuple(self.lead.values())
        offset = 0
        for name, coords in self.outputs:
            sizes = [len(elements) for elements in coords.values()]
            width = math.prod(sizes)
            block = result.values[:, offset : offset + width, :].reshape(len(result.values), *sizes, len(self.time))
            block = np.moveaxis(block, -1, 1)  # members, time, subscripts
            offset += width
            for index, first, last, at in _segments(result.start, len(block), shape):
                self.file[name][(*index, slice(first, last))] = block[at : at + last - first]

    def _create(self, time: np.ndarray) -> None:
        import netCDF4

        self.time = np.asarray(time, dtype=float)
        self.file = netCDF4.Dataset(self.path, "w", format="NETCDF4")
        for dim, size in self.lead.items():
            self.file.createDimension(dim, size)
        self.file.createDimension("time", len(self.time))
        self.file.createVariable("time", "f8", ("time",))[:] = self.time
        subscripts = {dim: len(elements) for _, coords in self.outputs for dim, elements in coords.items()}
        for dim, size in subscripts.items():
            self.file.createDimension(dim, size)
        batch = min(MAX_BATCH, list(self.lead.values())[-1])
        for name, coords in self.outputs:
            dims = (*self.lead, "time", *coords)
            chunks = [1] * (len(self.lead) - 1) + [batch, len(self.time)] + [len(e) for e in coords.values()]
            variable = self.file.createVariable(name, "f8", dims, fill_value=np.nan, chunksizes=chunks)
            # HDF5 caches up to 64 MiB of chunks per variable by default; written once in order, a chunk needs no cache
            variable.set_var_chunk_cache(size=CHUNK_CACHE_BYTES)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _Failures:
    """Which members failed and why, kept compact however many fail.

    A number per member (0: it ran), each distinct message once: failures in a big
    ensemble repeat a few messages, and a string and a dict entry per member would
    cost more than the members' values.
    """

    def __init__(self, total: int):
        self.code = np.zeros(total, dtype=np.int32)
        self.messages: dict[str, int] = {}

    def record(self, errors: Mapping[int, str]) -> None:
        for member, message in errors.items():
            self.code[member] = self.messages.setdefault(message, len(self.messages) + 1)

    def count(self) -> int:
        return int(np.count_nonzero(self.code))

    def first(self) -> str:
        """The message of the first member (in the ensemble's order) that failed."""
        return self._texts()[self.code[np.flatnonzero(self.code)[0]]]

    def coordinates(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``failed`` (bool) and ``error`` (the message, "" for a member that ran) over the ensemble's leading dims."""
        return (self.code != 0).reshape(shape), self._texts()[self.code].reshape(shape)

    def _texts(self) -> np.ndarray:
        return np.array(["", *self.messages])  # fixed-width unicode, as wide as the longest message


@contextmanager
def _small_chunk_cache():
    """Open NetCDF files with a small HDF5 chunk cache: the default 64 MiB per variable, over a
    handful of variables read once, would hold more memory than the ensemble's own values."""
    import netCDF4

    default = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(CHUNK_CACHE_BYTES)
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*default)


def _segments(start: int, count: int, shape: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], int, int, int]]:
    """Split members ``start .. start+count`` (flat, C order over ``shape``) into runs along the last axis.

    Yields ``(index of the leading axes, first, last, offset in the block)``: one
    NetCDF write per run, instead of one per member.

    >>> list(_segments(2, 5, (3, 3)))
    [((0,), 2, 3, 0), ((1,), 0, 3, 1), ((2,), 0, 1, 4)]
    """
    last_axis = shape[-1]
    flat, end = start, start + count
    while flat < end:
        first = flat % last_axis
        last = min(last_axis, first + end - flat)
        index = tuple(int(i) for i in np.unravel_index(flat // last_axis, shape[:-1])) if len(shape) > 1 else ()
        yield index, first, last, flat - start
        flat += last - first


# --- ensembles -----------------------------------------------------------------------------


def uncertainty(
    distributions: str | os.PathLike,
    scenarios: Iterable[str | os.PathLike | Scenario] = ("baseline",),
    *,
    samples: int = 100,
    seed: int = 0,
    outputs: Sequence[str] | None = None,
    setup: RunSetup = RunSetup(),
    execution: Execution = Execution(),
    command: str | None = None,
) -> xr.Dataset:
    """Monte Carlo: a Latin hypercube of ``samples`` draws from a distributions file, run on each scenario.

    Every scenario runs the same draws (so their differences are not sampling
    noise). Returns the kept outputs with dims ``scenario``, ``run``, ``time`` and
    subscripts; the drawn values are coordinates on ``run``, and ``failed`` and
    ``error`` say which members failed and why. With ``execution.store`` (a NetCDF
    path) the members stay in that file and the Dataset reads it lazily, keeping
    nothing it reads (close it when done); otherwise they are loaded into
    memory. :func:`percentile_bands` summarises the result.
    """
    if samples < 1:
        raise InputError(source="--samples", key=str(samples), problem="no members to run", fix="give --samples of at least 1")
    prepared = setup.prepare(scenarios)
    specs, info = prepared.specs, prepared.info
    drawn = load_distributions(distributions, info)
    varied = [d.setting for d in drawn]
    _check_not_set(setup.overrides, varied, info)
    check_levers_not_varied(distributions, drawn, specs)
    chosen = resolve_outputs(outputs, info)
    check_size("--samples", samples, prepared, chosen)
    design = latin_hypercube(drawn, samples, seed)
    names = [param_name(setting) for setting in varied]
    lead = {"scenario": len(specs), "run": samples}
    results, description = run_design(prepared, specs, varied, design, chosen, lead, execution=execution, label="uncertainty")
    params = {name: ("run", design[:, i], _param_attrs(info, setting)) for i, (name, setting) in enumerate(zip(names, varied))}
    results = results.assign_coords(
        scenario=("scenario", [s.name for s in specs], {"long_name": "Scenario"}),
        run=("run", np.arange(samples), {"long_name": "Ensemble member"}),
        description=("scenario", [s.description for s in prepared.scenarios]),
        **params,
    )
    document = {"params": {d.name: {"dist": d.dist, **d.args} for d in drawn}}
    results.attrs = ensemble_attributes(prepared, command, description, chosen, names) | {
        "ensemble": "uncertainty",
        "sampling": "Latin hypercube (scipy.stats.qmc.LatinHypercube), mapped through each distribution's inverse CDF",
        "samples": samples,
        "seed": seed,
        "distributions_file": str(Path(distributions).resolve()),
        "distributions_toml": _toml(document),
        "failed_members": int(results["failed"].sum()),
    }
    return results


def sweep(
    params: Sequence[str] | Mapping[str, Sequence[float]],
    scenario: str | os.PathLike | Scenario = "baseline",
    *,
    outputs: Sequence[str] | None = None,
    setup: RunSetup = RunSetup(),
    execution: Execution = Execution(),
    command: str | None = None,
) -> xr.Dataset:
    """A grid over up to three constants of one scenario.

    ``params`` is a list of ``"NAME=LO:HI:N"`` (N evenly spaced values) or a
    mapping of names to their values. Returns the kept outputs with one dim per
    parameter (named by its python name, the values as coordinates), ``time`` and
    subscripts, and ``failed`` and ``error`` on the grid.
    """
    prepared = setup.prepare([scenario])
    specs, info = prepared.specs, prepared.info
    counts = [len(values) for values in params.values()] if isinstance(params, Mapping) else []
    counts = counts or [_sweep_grid(text)[3] for text in params]
    if not 1 <= len(counts) <= MAX_SWEEP_PARAMS:
        raise InputError(
            source="--param", key=None, problem=f"{len(counts)} parameters given", fix=f"sweep 1 to {MAX_SWEEP_PARAMS} parameters"
        )
    chosen = resolve_outputs(outputs, info)
    given = None if isinstance(params, Mapping) else " ".join(params)
    check_size("--param", math.prod(counts), prepared, chosen, given)  # before a grid is made
    if isinstance(params, Mapping):
        swept = [_explicit_param(name, values, info) for name, values in params.items()]
    else:
        swept = [parse_sweep_param(text, info) for text in params]
    varied = [p.setting for p in swept]
    check_varied_once([(p.setting, p.name) for p in swept], "--param")
    _check_not_set(setup.overrides, varied, info)
    names = [param_name(setting) for setting in varied]
    design = np.array(list(product(*(p.values for p in swept))), dtype=float).reshape(-1, len(swept))
    lead = {name: len(p.values) for name, p in zip(names, swept)}
    results, description = run_design(prepared, specs, varied, design, chosen, lead, execution=execution, label="sweep")
    grid = {
        name: (
            name,
            list(p.values),
            _param_attrs(info, p.setting) | {"scenario_value": _scenario_value(specs[0], info, p.setting)},
        )
        for name, p in zip(names, swept)
    }
    results = results.assign_coords(scenario=specs[0].name, **grid)
    results.attrs = ensemble_attributes(prepared, command, description, chosen, names) | {
        "ensemble": "sweep",
        "grid": "; ".join(f"{n}={p.values[0]:g}:{p.values[-1]:g}:{len(p.values)}" for n, p in zip(names, swept)),
        "failed_members": int(results["failed"].sum()),
    }
    return results


def _explicit_param(name: str, values: Sequence[float], info: ModelInfo) -> SweepParam:
    variable = resolve_constant(name, info, "--param", name)
    numbers = tuple(finite_number(v, "--param", name) for v in values)
    if not numbers:
        raise InputError(source="--param", key=name, problem="no values given", fix="give at least one value")
    for value in numbers:
        check_range(value, variable, "--param", name, give="values")
    return SweepParam(name, varied_setting(name, variable, info, "--param"), numbers)


def run_design(
    prepared: Prepared,
    specs: Sequence[RunSpec],
    varied: Sequence[Setting],
    design: np.ndarray,
    outputs: Sequence[Output],
    lead: dict[str, int],
    *,
    execution: Execution,
    label: str,
) -> tuple[xr.Dataset, str]:
    """Run every scenario x design row, streaming outputs to NetCDF; return the Dataset and the executor used.

    ``design`` is members x ``varied`` values, whoever drew it: a sweep's grid, a
    Latin hypercube, or SALib's sample. Public so :mod:`sdmodel.sensitivity` runs
    its design with the same executors, streaming and failure records as sweeps
    and uncertainty. ``prepared`` gives the model and engine; ``specs`` may be other scenarios on the same model
    (a policy search's candidates).
    """
    info, engine, model_path = prepared.info, prepared.engine.NAME, prepared.model_path
    jobs, scheduler, dask_local, store = execution.jobs, execution.scheduler, execution.dask_local, execution.store
    variables = list(dict.fromkeys(output.variable for output in outputs))
    clash = [name for name in variables if name in {s.py_name for s in varied} | set(lead)]
    if clash:
        raise InputError(
            source="--output",
            key=clash[0],
            problem="is varied by the ensemble: its values are already a coordinate",
            fix="choose another output",
        )
    check_size("--samples", len(design), prepared, outputs, specs=specs)  # a design someone else drew
    coords = {name: {dim: tuple(info.subscripts.get(dim, ())) for dim in info.variables[name].dims} for name in variables}
    work = [Job(engine, str(model_path), info.sha256, spec, tuple(varied), tuple(variables)) for spec in specs]
    for job in work:
        runner_for(job)  # bad settings or outputs fail here, before any worker starts; forked workers inherit the loaded model
    members, total = len(design), len(design) * len(work)
    executor, workers, description = make_executor(jobs, scheduler, dask_local)
    size = batch_size(total, workers, engine)
    if workers > 1 and not (scheduler or dask_local) and math.ceil(total / size) <= 1:
        executor, description = serial_executor(), "serial"  # one task: a worker would only add its start-up
    batches = (
        Batch(job, block * members + first, design[first : first + size])
        for block, job in enumerate(work)
        for first in range(0, members, size)
    )
    path = Path(store) if store is not None else _temporary_netcdf()
    stream = _Stream(path, lead, [(name, coords[name]) for name in variables])
    failures = _Failures(total)
    done = 0
    try:
        with progress_bar(total, f"{label}: {total} runs", execution.progress) as bar:
            for result in executor(batches):
                stream.write(result)
                failures.record(result.errors)
                count = len(result.values) if result.values is not None else len(result.errors)
                done += count
                bar.update(count)
        stream.close()
        if done != total:  # an executor that lost a batch would leave silent NaN members
            raise RuntimeError(f"the executor returned {done} of {total} members")
        if failures.count() == total or stream.time is None:
            raise ModelRunError(f"every member failed; the first: {failures.first()}")
        with _small_chunk_cache():
            if store is None:
                results = xr.open_dataset(path, engine="netcdf4")
                results = results.load()
                results.close()
            else:
                # Dask arrays in the file's chunks (a batch of members each): reading or saving a
                # variable goes a chunk at a time, and nothing read is held by the Dataset
                results = xr.open_dataset(path, engine="netcdf4", chunks={})
    except BaseException:
        stream.close()
        path.unlink(missing_ok=True)
        raise
    finally:
        if store is None:
            path.unlink(missing_ok=True)
    return _decorate(results, info, lead, coords, failures), description


def _decorate(results: xr.Dataset, info: ModelInfo, lead: dict[str, int], coords: dict, failures: _Failures) -> xr.Dataset:
    """Coordinates and metadata the stream file does not carry: subscripts, units, which members failed and why."""
    failed, error = failures.coordinates(tuple(lead.values()))
    subscripts = {dim: list(elements) for variable in coords.values() for dim, elements in variable.items()}
    results = results.assign_coords(
        failed=(tuple(lead), failed, {"long_name": "The member's run failed (its values are NaN)"}),
        error=(tuple(lead), error, {"long_name": "Why the member's run failed"}),
        **subscripts,
    )
    results["time"].attrs = {"units": "year", "long_name": "Time"}
    for name in coords:
        variable = info.variables[name]
        results[name].attrs = variable.attrs
    return results


def ensemble_attributes(prepared: Prepared, command, description: str, outputs, names) -> dict:
    """The attributes every ensemble's Dataset carries: provenance, the executor, the outputs kept, the constants varied.

    Public so :mod:`sdmodel.sensitivity` records its runs the way sweeps and uncertainty do.
    """
    attrs = provenance.attributes(
        engine=prepared.engine.NAME,
        engine_version=prepared.engine.VERSION,
        model=prepared.model_path,
        model_sha256=prepared.info.sha256,
        scenarios=[s.to_dict() for s in prepared.scenarios],
        command=command or provenance.command_line(),
    )
    outputs_json = json.dumps([{**vars(o), "select": dict(o.select)} for o in outputs])
    return attrs | {"executor": description, "ensemble_outputs": outputs_json, "ensemble_params": json.dumps(names)}


def _param_attrs(info: ModelInfo, setting: Setting) -> dict[str, str]:
    variable = info.variables[setting.py_name]
    element = f"[{setting.element[1]}]" if setting.element else ""
    return {"units": variable.units, "long_name": variable.name + element, "description": variable.comment}


def _scenario_value(spec: RunSpec, info: ModelInfo, setting: Setting) -> float:
    """The swept constant's value in the scenario itself (its own setting, else the model's): where the sweep's figure
    marks the scenario, so a reader sees how far it sits from a threshold. NaN for a time series."""
    from sdmodel.calibrate import current_value

    own = [s.value for s in spec.settings if s.py_name == setting.py_name and s.element in (setting.element, None)]
    value = own[-1] if own else current_value(info, setting)
    return float(value) if isinstance(value, (int, float)) else math.nan


def check_levers_not_varied(distributions: str | os.PathLike, drawn: Sequence[Distribution], specs: Sequence[RunSpec]) -> None:
    """Refuse to draw a constant that the scenarios set differently: a policy's own lever.

    Each draw overrides the constant in every scenario alike, so the policy would
    vanish from the comparison, and its bands would equal the baseline's.
    """
    for distribution in drawn:
        set_by = [
            tuple(
                sorted(
                    (setting.element or ("", ""), repr(setting.value))
                    for setting in spec.settings
                    if _overlaps(setting, distribution.setting)
                )
            )
            for spec in specs
        ]
        if len(set(set_by)) > 1:
            setter = next(spec.name for spec, settings in zip(specs, set_by) if settings)
            raise InputError(
                source=distributions,
                key=f'params."{distribution.name}"',
                problem=f"is a lever that scenario '{setter}' sets",
                fix="the draws override it in every scenario alike; vary assumptions, and leave the scenarios' own levers out",
            )


def _overlaps(setting: Setting, drawn: Setting) -> bool:
    """Whether a draw of ``drawn`` overrides ``setting``: the same constant, and the same element or the whole of it."""
    return setting.py_name == drawn.py_name and (None in (setting.element, drawn.element) or setting.element == drawn.element)


def _check_not_set(overrides: Mapping[str, float] | None, varied: Sequence[Setting], info: ModelInfo) -> None:
    """A constant both fixed with --set and varied by the ensemble is a contradiction, not a precedence question."""
    names = {setting.py_name for setting in varied}
    for name in overrides or {}:
        if resolve_constant(name, info, "--set", name).py_name in names:
            raise InputError(
                source="--set", key=name, problem="is also varied by the ensemble", fix="drop the --set, or stop varying it"
            )


#: the prefix of an ensemble's members streamed to the temporary folder (an ensemble not saved as it runs)
STREAM_PREFIX = "sdmodel-ensemble-"


def _temporary_netcdf() -> Path:
    """A new NetCDF path in the temporary folder, first removing those of processes killed while they streamed."""
    from sdmodel.store import private_name, remove_abandoned

    folder = Path(tempfile.gettempdir())
    remove_abandoned(folder, STREAM_PREFIX)
    return folder / f"{private_name(STREAM_PREFIX)}.nc"


@contextmanager
def streamed(runs_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """A NetCDF path for members streamed before they are saved in the run store (``runs_dir``, as
    :func:`~sdmodel.store.save_run`'s): in the store's hidden staging folder, removed afterwards, and
    by the next save or stream should the process be killed (a stream held 46 MB per kill in the
    temporary folder, for ever)."""
    from sdmodel.store import staging

    with staging(runs_dir) as folder:
        yield folder / "members.nc"


# --- summaries ---------------------------------------------------------------------------------


def percentile_bands(results: xr.Dataset, percentiles: Sequence[float] = PERCENTILES) -> xr.Dataset:
    """Percentiles over the ``run`` dim of every output, per scenario; failed members are left out.

    Dims ``scenario``, ``percentile``, ``time`` and subscripts; ``members`` and
    ``failed_members`` count what each scenario's bands rest on. Reads one
    scenario's variable a block of time steps at a time (:func:`_percentiles`), so
    a streamed ensemble is never loaded whole, nor even one of its variables.
    """
    if "run" not in results.dims:
        raise InputError(
            source=results.attrs.get("title", "results"),
            key=None,
            problem="has no run dim",
            fix="give the results of `sdmodel uncertainty`",
        )
    per_scenario = "scenario" in results.dims
    data = {}
    for name, array in results.data_vars.items():
        if "run" not in array.dims:
            continue
        rest = [dim for dim in array.dims if dim not in ("scenario", "run")]
        groups = [array.isel(scenario=i) for i in range(results.sizes["scenario"])] if per_scenario else [array]
        bands = [_percentiles(group.transpose("run", *rest), percentiles) for group in groups]
        dims = ("scenario", "percentile", *rest) if per_scenario else ("percentile", *rest)
        data[name] = (dims, np.stack(bands) if per_scenario else bands[0], array.attrs)
    kept = ["scenario", *(dim for dim in results.dims if dim not in ("scenario", "run"))]
    coords = {dim: (dim, results[dim].values, results[dim].attrs) for dim in kept if dim in results.coords}
    coords["percentile"] = (
        "percentile",
        np.asarray(percentiles, dtype=float),
        {"units": "%", "long_name": "Percentile of the members"},
    )
    bands = xr.Dataset(data, coords=coords, attrs=dict(results.attrs))
    failed = results["failed"].sum("run") if "failed" in results.coords else xr.zeros_like(results["run"]).sum()
    bands["members"] = xr.full_like(failed, results.sizes["run"]).assign_attrs(long_name="Members run")
    bands["failed_members"] = failed.assign_attrs(long_name="Members whose run failed (left out of the bands)")
    return bands


def _percentiles(array: xr.DataArray, percentiles: Sequence[float]) -> np.ndarray:
    """``np.nanpercentile`` over the members (the first axis), reading a block of the second axis at a time.

    A column's percentiles depend on that column alone, so the blocks' bands are
    exactly those of the whole array; but memory holds members x a block
    (about :data:`BAND_BLOCK_BYTES`), not members x the whole series.
    """
    if array.ndim == 1:
        blocks = [array]
    else:
        step_bytes = array.dtype.itemsize * array.shape[0] * math.prod(array.shape[2:])
        step = max(1, BAND_BLOCK_BYTES // max(1, step_bytes))
        blocks = [array[:, start : start + step] for start in range(0, max(1, array.shape[1]), step)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all members of a scenario failed: NaN bands
        bands = [np.nanpercentile(block.values, list(percentiles), axis=0) for block in blocks]
    return bands[0] if len(bands) == 1 else np.concatenate(bands, axis=1)


def ensemble_outputs(results: xr.Dataset) -> list[Output]:
    """The outputs an ensemble kept, as recorded in its attributes (metric keys, selections, labels)."""
    rows = json.loads(results.attrs.get("ensemble_outputs", "[]"))
    if not rows:
        return [
            Output(str(n), str(n), results[n].attrs.get("long_name", str(n)), results[n].attrs.get("units", ""))
            for n in results.data_vars
        ]
    return [Output(**{**row, "select": dict(row["select"])}) for row in rows if row["variable"] in results]


def _columns(data: xr.Dataset, outputs: Sequence[Output], lead: Sequence[str]) -> list[tuple[str, str, str, xr.DataArray]]:
    """(key, label, units, values at the final time) per output; one column per element of a subscript it keeps."""
    columns = []
    for output in outputs:
        array = data[output.variable].sel(output.select)
        if "time" in array.dims:
            array = array.isel(time=-1, drop=True)
        array = array.compute()  # read once (members x elements), not once per member and element from a streamed file
        rest = [dim for dim in array.dims if dim not in (*lead, "percentile")]
        for elements in product(*(array[dim].values for dim in rest)):
            selected = array.sel(dict(zip(rest, elements)))
            suffix = f"[{','.join(map(str, elements))}]" if elements else ""
            columns.append((output.key + suffix, output.label + suffix, output.units, selected))
    return columns


def bands_json(bands: xr.Dataset, run_path: str | os.PathLike | None = None) -> dict:
    """The bands at the final time: ``{"run", "time", "percentiles", "samples", "seed", "scenarios": {name: {output: {"p5", ...}}}}``."""
    columns = _columns(bands, ensemble_outputs(bands), ["scenario"])
    names = [str(name) for name in bands["scenario"].values]
    return {
        "run": str(run_path) if run_path else None,
        "time": float(bands["time"][-1]),
        "percentiles": [float(p) for p in bands["percentile"].values],
        "samples": int(bands.attrs.get("samples", bands["members"].max())),
        "seed": bands.attrs.get("seed"),
        "members": {name: int(bands["members"].sel(scenario=name)) for name in names},
        "failed": {name: int(bands["failed_members"].sel(scenario=name)) for name in names},
        "scenarios": {
            name: {
                key: {f"p{p:g}": _number_or_none(values.sel(scenario=name, percentile=p)) for p in bands["percentile"].values}
                for key, _, _, values in columns
            }
            for name in names
        },
        "outputs": {key: {"label": label, "units": units} for key, label, units, _ in columns},
    }


def format_bands(bands: xr.Dataset) -> str:
    """A plain-text table of the bands at the final time: a row per output and scenario, a column per percentile."""
    columns = _columns(bands, ensemble_outputs(bands), ["scenario"])
    names = [str(name) for name in bands["scenario"].values]
    header = [f"at {float(bands['time'][-1]):g}", "scenario", *(f"{p:g}%" for p in bands["percentile"].values)]
    rows = [header]
    for _, label, units, values in columns:
        title = with_units(label, units)
        for index, name in enumerate(names):
            row = [title if index == 0 else "", name]
            rows.append(row + [_fmt(float(v)) for v in values.sel(scenario=name).transpose("percentile").values])
    failed = int(bands["failed_members"].sum())
    footer = f"{int(bands['members'].max())} members per scenario"
    if "seed" in bands.attrs:
        footer += f", Latin hypercube, seed {bands.attrs['seed']}"
    footer += f"; {failed} failed and left out" if failed else ""
    return text_table(rows) + "\n" + footer


def sweep_run_name(results: xr.Dataset) -> str:
    """The name a sweep is saved under: ``sweep-`` and its swept constants' python names.

    >>> sweep_run_name(xr.Dataset(attrs={"ensemble_params": '["data_strike_fraction", "hardware_life"]'}))
    'sweep-data_strike_fraction+hardware_life'
    """
    names = "+".join(json.loads(results.attrs["ensemble_params"]))
    return "sweep-" + re.sub(r"[^A-Za-z0-9_.+-]+", "-", names).strip("-")


def sweep_json(results: xr.Dataset, run_path: str | os.PathLike | None = None) -> dict:
    """The sweep at the final time: ``{"run", "time", "params", "points": [{param: value, ..., "outputs": {...}}]}``."""
    names = json.loads(results.attrs.get("ensemble_params", "[]"))
    columns = _columns(results, ensemble_outputs(results), names)
    points = []
    for index in np.ndindex(*(results.sizes[name] for name in names)):
        at = dict(zip(names, index))
        point = {name: float(results[name].values[i]) for name, i in at.items()}
        point["outputs"] = {key: _number_or_none(values.isel(at)) for key, _, _, values in columns}
        point["failed"] = bool(results["failed"].isel(at))
        if point["failed"]:
            point["error"] = str(results["error"].isel(at).values)
        points.append(point)
    return {
        "run": str(run_path) if run_path else None,
        "scenario": str(results["scenario"].values),
        "time": float(results["time"][-1]),
        "params": names,
        "points": points,
        "outputs": {key: {"label": label, "units": units} for key, label, units, _ in columns},
    }


def format_sweep(results: xr.Dataset) -> str:
    """A plain-text table of the sweep at the final time: a row per grid point, a column per output."""
    summary = sweep_json(results)
    header = [*summary["params"], *summary["outputs"]]
    rows = [header]
    for point in summary["points"]:
        cells = [_fmt(point[name]) for name in summary["params"]]
        cells += ["failed" if point["failed"] else _fmt(value) for value in point["outputs"].values()]
        rows.append(cells)
    legend = "; ".join(f"{key}: {with_units(meta['label'], meta['units'])}" for key, meta in summary["outputs"].items())
    footer = f"'{summary['scenario']}' at {summary['time']:g}; {legend}"
    failed = [point for point in summary["points"] if point["failed"]]
    if failed:
        footer += f"\n{len(failed)} of {len(summary['points'])} members failed; the first: {failed[0]['error']}"
    return text_table(rows) + "\n" + footer


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# --- small helpers -----------------------------------------------------------------------------


def _number_or_none(array) -> float | None:
    value = float(array)
    return value if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _toml(document: dict) -> str:
    import tomli_w

    return tomli_w.dumps(document)
