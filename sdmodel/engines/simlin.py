"""The fast engine: Simlin (``pysimlin``, a Rust engine), with the same interface as the PySD engine.

Only this module imports Simlin. PySD stays the reference: the variables' names,
kinds, units, comments and limits are PySD's (scenarios are validated against
them), so a scenario means the same on both engines; the results' variables are
ordered as in PySD's. Importing and loading PySD costs over a second, more than a
whole comparison in Simlin, so PySD is not asked when it can be helped: when it is
loaded in the process anyway it answers; else a JSON copy of its answer cached
earlier (keyed by the model's sha256 and PySD's version); else, for a Vensim model,
:func:`describe` builds the same answer from Simlin's description and the file's
text (tests/test_models_like_pysd.py holds it to PySD's, field by field); only then
PySD. Simlin does the simulating: a full-horizon run of the bundled model takes ~1.6 ms in Simlin and
~10 ms with the Dataset built, against ~9 s in PySD (measured in one process).
``tests/test_engine_parity.py`` holds it to PySD on every bundled scenario, each run made twice.

What this module relies on in pysimlin (0.8):

- ``simlin.load(path)`` reads ``.mdl``/``.xmile``/``.stmx`` into memory;
  ``model.check()`` lists compile errors that ``load`` lets through.
- ``model.project.set_sim_specs(start=, stop=, dt=, save_step=)`` changes the
  simulation period; it changes the loaded model, so loaded models are cached
  per file content *and* time grid.
- ``model.simulate()`` returns a fresh ``Sim`` (the compiled model is cached by
  the ``Model``); ``sim.set_value(slot, value)`` before the first step overrides a
  constant for this ``Sim`` only (nothing persists to the next run, unlike PySD's
  ``params``); ``sim.run_to_end()``; ``sim.get_series(slot)`` gives one slot's values
  at every save step, and ``sim.get_series("time")`` the times.
- ``sim.run_to(t)`` runs every step whose time is at most ``t``; a value set
  after it is used from the next step on. A time-series setting (PySD: a
  ``pandas.Series`` parameter, interpolated linearly, ends held) is applied by
  stepping the run and setting the interpolated value before each step.
- ``model.simulate()`` is cheap (~0.06 ms): ensembles make one ``Sim`` per member
  (:class:`MemberRunner`) and read only the outputs they keep, so a member costs
  little more than the engine's own run.
- Slots are Simlin's canonical names: lower case, spaces as ``_``, and one slot
  per element of an arrayed variable (``compute_capacity[incumbent]``). An
  arrayed constant can only be set element by element, and only a "simple
  constant" (a number in the model file) can be set at all.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import simlin
import xarray as xr

from sdmodel.engines import unchanging
from sdmodel.errors import InputError, ModelRunError
from sdmodel.locations import cache_dir, read_cache, write_cache
from sdmodel.model import TIME_CONTROLS, ModelInfo, Variable, file_sha256
from sdmodel.scenario import RunSpec, Setting

NAME = "simlin"
VERSION = simlin.__version__
REUSE_STORED = False  # a run takes milliseconds, less than reading a stored one back (sdmodel.reuse)
READS_DATA_FILES = False  # data variables take the values the model file gives them
FORMATS = (".mdl", ".xmile", ".stmx", ".itmx")  # what the reference engine reads too
#: our time controls -> ``Project.set_sim_specs`` keywords
SPEC_KEYS = {"initial_time": "start", "final_time": "stop", "time_step": "dt", "saveper": "save_step"}
USE_PYSD = "run it with `--engine pysd`"
PIPELINE_DELAY = re.compile(r"\bDELAY\s*\(", re.IGNORECASE)  # XMILE DELAY = Vensim DELAY FIXED; not DELAY1/DELAY3/DELAYN

_lock = threading.Lock()  # a loaded Model is shared by every run in the process
_models: OrderedDict[tuple, simlin.Model] = OrderedDict()  # (path, sha256, time grid) -> loaded model
_plans: dict[tuple[str, str], Plan] = {}  # (path, sha256) -> how PySD's names map to Simlin's slots
_infos: dict[tuple[str, str], tuple[ModelInfo, tuple[str, ...]]] = {}  # (path, sha256) -> (info, PySD's variable order)
MAX_MODELS = 8
INFO_CACHE_FORMAT = 1  # bump when the cached JSON's layout changes


@dataclass(frozen=True)
class _Output:
    """One variable of the results: its Simlin slots, in the shape of its subscripts."""

    variable: Variable
    slots: tuple[str, ...]  # flattened in the order of ``coords``
    coords: dict[str, tuple[str, ...]]
    control: str | None = None  # a time control (``final_time``): its value is the run's grid, not a slot


@dataclass(frozen=True)
class Plan:
    info: ModelInfo
    defaults: dict[str, float]
    outputs: tuple[_Output, ...]
    slots: dict[str, str]  # normalised slot name -> Simlin's slot name


def model_info(model_path: str | os.PathLike) -> ModelInfo:
    """Names, kinds, units and limits of a model's variables: the reference engine's, so validation is the same."""
    return _reference_info(model_path)[0]


def time_defaults(model_path: str | os.PathLike) -> dict[str, float]:
    """The model's own simulation period and steps, as Simlin reads them."""
    return dict(load_plan(model_path).defaults)


def run(model_path: str | os.PathLike, spec: RunSpec, allow_nan: bool = False) -> xr.Dataset:
    """Run one scenario and return its trajectories (dims ``time`` and subscripts).

    A NaN or infinite value is a :class:`ModelRunError`; with ``allow_nan``, NaN is kept and only an infinity fails.
    """
    plan = load_plan(model_path)
    time, values = _simulate(plan, model_path, spec)
    return to_dataset(time, values, plan, spec.name, allow_nan)


def expected_seconds(model_path: str | os.PathLike, specs: Sequence[RunSpec]) -> float | None:
    """None: a Simlin run takes a fraction of a second, so nothing says how long a comparison will take."""
    return None


def run_scenarios(
    model_path: str | os.PathLike,
    specs: Sequence[RunSpec],
    jobs: int | None = None,
    done: Callable[[int], None] | None = None,
    allow_nan: bool = False,
) -> xr.Dataset:
    """Run scenarios on one time grid into one Dataset with a leading ``scenario`` dim.

    In this process, on up to ``jobs`` threads (default: one per core): a run takes tens of
    milliseconds, less than starting a worker process, and Simlin lets go of Python's lock
    while it runs (cffi releases the GIL around each call), so each thread gets a core.

    The same Dataset as ``xr.concat`` of :func:`run`'s results along ``scenario``
    (``data_vars="all"``: every variable gets the dim; a constant keeps a time
    axis if any scenario varies it over time), built from arrays in one go:
    concatenating ~200 variables per scenario took longer than the runs.
    """
    plan = load_plan(model_path)
    runs = _simulate_all(plan, model_path, specs, jobs)
    if done:
        done(len(specs))  # milliseconds each: no bar needs them one by one
    return scenarios_dataset(plan, specs, runs, allow_nan)


def scenarios_dataset(
    plan: Plan, specs: Sequence[RunSpec], runs: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]], allow_nan: bool = False
) -> xr.Dataset:
    """Scenarios' runs (each ``(time, {py_name: (time, slots) values})``, as :func:`_simulate` returns) in one Dataset
    with a leading ``scenario`` dim, as :func:`run_scenarios` returns it; the compiled engine builds its Datasets here too.
    """
    time = runs[0][0]
    if any(len(other) != len(time) or not np.array_equal(other, time) for other, _ in runs):
        raise InputError(
            source=f"scenario '{specs[0].name}'",
            key="time",
            problem="the scenarios run on different time grids",
            fix="run them separately",
        )
    coords: dict[str, object] = {}
    data = {}
    for output in plan.outputs:
        variable = output.variable
        shape = (len(time), *(len(e) for e in output.coords.values()))
        arrays = [values[variable.py_name].reshape(shape) for _, values in runs]
        over_time = variable.kind != "constant" or not all(unchanging(a) for a in arrays)
        dims: tuple[str, ...] = ("time", *output.coords) if over_time else tuple(output.coords)
        for spec, array in zip(specs, arrays):
            _check_finite(array if over_time else array[0], dims, time, variable, spec.name, allow_nan)
        stacked = np.stack([a if over_time else a[0] for a in arrays]).astype(float)
        attrs = variable.attrs
        data[variable.py_name] = (("scenario", *dims), stacked, attrs)
        coords.update({dim: list(elements) for dim, elements in output.coords.items()})
    coords["time"] = ("time", time, {"units": "year", "long_name": "Time"})
    coords["scenario"] = ("scenario", [spec.name for spec in specs])  # last, where xr.concat puts it
    return xr.Dataset(data, coords=coords)


def _simulate_all(plan: Plan, model_path: str | os.PathLike, specs: Sequence[RunSpec], jobs: int | None) -> list:
    """:func:`_simulate` of every scenario, in order; the first scenario (in order) that fails raises."""
    threads = min(jobs or os.cpu_count() or 1, len(specs))
    if threads <= 1:
        return [_simulate(plan, model_path, spec) for spec in specs]
    grid = {**plan.defaults, **specs[0].time}
    _load(model_path, None if grid == plan.defaults else grid)  # load once, before the threads would each load it
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda spec: _simulate(plan, model_path, spec), specs))  # map raises in order


def _simulate(plan: Plan, model_path: str | os.PathLike, spec: RunSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run one scenario: the save times, and every output's values as ``(time, slots)``."""
    constants, series = overrides(plan, spec)
    grid = {**plan.defaults, **spec.time}
    model = _load(model_path, None if grid == plan.defaults else grid)
    with _lock:  # the Model compiles once per grid; each Sim is then independent
        try:
            sim = model.simulate()
        except simlin.SimlinError as error:
            raise InputError(
                source=model_path, key=None, problem=f"Simlin cannot compile this model ({_error_line(error)})", fix=USE_PYSD
            ) from None
        for slot, value in constants.items():
            set_slot(sim, slot, value, spec.name)  # raises before anything runs
    try:
        if series:
            run_with_series(sim, series, grid, spec.name)
        sim.run_to_end()
        time = sim.get_series("time")
        values = {out.variable.py_name: _series(sim, out, grid, len(time)) for out in plan.outputs}
    except simlin.SimlinError as error:
        raise ModelRunError(f"scenario '{spec.name}': Simlin failed during the run ({_error_line(error)})") from error
    return time, values


def _series(sim, output: _Output, grid: dict[str, float], steps: int) -> np.ndarray:
    """One output's values as ``(time, slots)``: a time control is the grid the run used (Simlin has no SAVEPER slot)."""
    if output.control:
        return np.full((steps, 1), grid[output.control])
    return np.stack([sim.get_series(slot) for slot in output.slots], axis=-1)


class MemberRunner:
    """Runs the members of an ensemble: one scenario, a few constants varied, a few outputs read.

    :func:`run` builds a whole Dataset of every variable (~10 ms on the bundled
    model); an ensemble keeps only a handful of outputs per member, so this reads
    just their slots into one numpy array and costs little more than Simlin's own
    run. Everything that can be checked once (names, slots, the compiled model) is
    checked when the runner is made, not per member.
    """

    def __init__(self, model_path: str | os.PathLike, spec: RunSpec, params: Sequence[Setting], outputs: Sequence[str]):
        plan = load_plan(model_path)
        self.scenario = spec.name
        constants, self._series = overrides(plan, spec)
        self.param_slots = tuple(tuple(_setting_slots(plan, *setting_coords(plan.info, p, spec.name), spec.name)) for p in params)
        for slots in self.param_slots:  # a sampled value wins over the scenario's own
            for slot in slots:
                constants.pop(slot, None)
                self._series.pop(slot, None)
        self._constants = tuple(constants.items())
        self._grid = {**plan.defaults, **spec.time}
        self._model = _load(model_path, None if self._grid == plan.defaults else self._grid)
        by_name = {output.variable.py_name: output for output in plan.outputs if not output.control}
        missing = [name for name in outputs if name not in by_name]
        if missing:
            problem = "the simlin engine has no such series"
            raise InputError(
                source=f"scenario '{spec.name}'",
                key=f"output {missing[0]}",
                problem=problem,
                fix="choose a variable of the model",
            )
        #: output name -> its subscripts' coords, in the order of ``slots``
        self.coords = {name: by_name[name].coords for name in outputs}
        self._names = [by_name[name].variable.name for name in outputs for _ in by_name[name].slots]  # each slot's variable
        self.slots = tuple(slot for name in outputs for slot in by_name[name].slots)
        self.time: np.ndarray | None = None
        with _lock:
            try:
                self._model.simulate()  # compile once, here, so a model Simlin cannot compile fails before any member
            except simlin.SimlinError as error:
                raise InputError(
                    source=model_path, key=None, problem=f"Simlin cannot compile this model ({_error_line(error)})", fix=USE_PYSD
                ) from None

    def run(self, values: Sequence[float]) -> np.ndarray:
        """One member: ``values`` for the runner's parameters in order; returns ``(len(slots), time)``.

        Raises :class:`ModelRunError` when Simlin fails or an output is not finite,
        and :class:`InputError` when Simlin refuses a value for a constant.
        """
        with _lock:
            sim = self._model.simulate()
        for slot, value in self._constants:
            set_slot(sim, slot, value, self.scenario)
        for slots, value in zip(self.param_slots, values):
            for slot in slots:
                set_slot(sim, slot, float(value), self.scenario)
        try:
            if self._series:
                run_with_series(sim, self._series, self._grid, self.scenario)
            sim.run_to_end()
            if self.time is None:
                self.time = sim.get_series("time")
            result = np.empty((len(self.slots), len(self.time)))
            for row, slot in enumerate(self.slots):
                result[row] = sim.get_series(slot)
        except simlin.SimlinError as error:
            raise ModelRunError(f"scenario '{self.scenario}': Simlin failed during the run ({_error_line(error)})") from error
        check_finite(result, self.time, self._names, self.scenario)
        return result


def member_runner(
    model_path: str | os.PathLike, spec: RunSpec, params: Sequence[Setting], outputs: Sequence[str]
) -> MemberRunner:
    """A :class:`MemberRunner` for a scenario, the constants an ensemble varies and the outputs it keeps."""
    return MemberRunner(model_path, spec, params, outputs)


def run_with_series(sim, series: dict[str, tuple[np.ndarray, np.ndarray]], grid: dict[str, float], scenario: str) -> None:
    """Step the run, setting time-series constants before each step, as PySD does.

    PySD interpolates a time-series parameter linearly and holds its end values
    (``numpy.interp``); a value set on a Simlin ``Sim`` after ``run_to(t)`` is used
    from the step after ``t``. ``run_to`` runs every step whose time is at most its
    argument, so aiming half a step past ``t`` stops at ``t`` despite rounding.
    """
    start, dt = grid["initial_time"], grid["time_step"]
    steps = round((grid["final_time"] - start) / dt)
    for slot, (times, values) in series.items():
        set_slot(sim, slot, float(np.interp(start, times, values)), scenario)
    for step in range(steps):
        sim.run_to(start + (step + 0.5) * dt)
        following = start + (step + 1) * dt
        for slot, (times, values) in series.items():
            sim.set_value(slot, float(np.interp(following, times, values)))


def set_slot(sim, slot: str, value: float, scenario: str) -> None:
    try:
        sim.set_value(slot, value)
    except simlin.SimlinError as error:
        problem = f"the simlin engine cannot set this constant ({_error_line(error)})"
        raise InputError(source=f"scenario '{scenario}'", key=f"params.{slot}", problem=problem, fix=USE_PYSD) from None


def overrides(plan: Plan, spec: RunSpec) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Simlin slot -> value, and slot -> (times, values) for time series; checked before anything runs."""
    return resolve_settings(spec, lambda setting: _setting_slots(plan, *setting_coords(plan.info, setting, spec.name), spec.name))


def resolve_settings(
    spec: RunSpec, places: Callable[[Setting], list]
) -> tuple[dict, dict[object, tuple[np.ndarray, np.ndarray]]]:
    """Each place a scenario's settings write (``places``: a setting's slots or addresses) -> its value, and
    place -> (times, values) for time series; a later setting of the same place wins."""
    constants: dict = {}
    series: dict = {}
    for setting in spec.settings:
        for place in places(setting):
            constants.pop(place, None)
            series.pop(place, None)
            if isinstance(setting.value, tuple):
                times, values = zip(*sorted(setting.value))
                series[place] = (np.asarray(times, dtype=float), np.asarray(values, dtype=float))
            else:
                constants[place] = float(setting.value)
    return constants, series


def setting_coords(info: ModelInfo, setting: Setting, scenario: str) -> tuple[Setting, Variable, dict[str, tuple[str, ...]]]:
    """The variable a setting names and the elements it sets (dim -> elements: all of them, or the one named)."""
    source, key = f"scenario '{scenario}'", f"params.{setting.py_name}"
    variable = info.variables.get(setting.py_name)
    if variable is None:
        raise InputError(source=source, key=key, problem="is not a variable of the model", fix="validate it against this model")
    coords = {dim: tuple(info.subscripts.get(dim, ())) for dim in variable.dims}
    if setting.element is not None:
        dim, element = setting.element
        if dim not in coords:
            raise InputError(source=source, key=key, problem=f"has no subscript {dim}", fix="drop the [element] part")
        coords[dim] = (element,)
    return setting, variable, coords


def check_finite(result: np.ndarray, time: np.ndarray, names: Sequence[str], scenario: str) -> None:
    """A member's outputs (``(len(names), time)``) all finite, or a ModelRunError naming the first that is not, and when."""
    bad = ~np.isfinite(result)
    if bad.any():
        step = int(bad.any(axis=0).argmax())
        row = int(bad[:, step].argmax())
        problem = f"'{names[row]}' became NaN or infinite at time {float(time[step]):g}"
        raise ModelRunError(f"scenario '{scenario}': {problem}; check the scenario's values")


def _setting_slots(
    plan: Plan, setting: Setting, variable: Variable, coords: dict[str, tuple[str, ...]], scenario: str
) -> list[str]:
    """The Simlin slots a setting changes: the variable, all its elements, or one element."""
    source, key = f"scenario '{scenario}'", f"params.{setting.py_name}"
    slots = []
    for name in _slot_names(variable, coords):
        slot = plan.slots.get(_normalise(name))
        if slot is None:
            raise InputError(source=source, key=key, problem=f"the simlin engine has no constant '{name}'", fix=USE_PYSD)
        slots.append(slot)
    return slots


def to_dataset(time: np.ndarray, series: dict[str, np.ndarray], plan: Plan, scenario: str, allow_nan: bool = False) -> xr.Dataset:
    """The same Dataset as the PySD engine's: constants without a time axis, attrs from the model.

    Built from plain arrays in one go: per-variable DataArrays would cost more than the run itself.
    """
    coords: dict[str, object] = {}
    data = {}
    for output in plan.outputs:
        variable = output.variable
        values = series[variable.py_name].reshape((len(time), *(len(e) for e in output.coords.values())))
        dims: tuple[str, ...] = ("time", *output.coords)
        if variable.kind == "constant" and unchanging(values):
            values, dims = values[0], dims[1:]  # a constant needs no time axis
        _check_finite(values, dims, time, variable, scenario, allow_nan)
        attrs = variable.attrs
        data[variable.py_name] = (dims, values.astype(float), attrs)
        coords.update({dim: list(elements) for dim, elements in output.coords.items()})
    coords["time"] = ("time", time, {"units": "year", "long_name": "Time"})
    return xr.Dataset(data, coords=coords)


def load_plan(model_path: str | os.PathLike) -> Plan:
    """Map the reference engine's variables to Simlin's slots, once per model content."""
    path = _checked(model_path)
    key = (str(path.resolve()), file_sha256(path))
    if key not in _plans:
        _refuse_vensim_features(path)
        model = _load(path, None)
        _refuse_unsupported(model, path)
        info = model_info(path)
        with _lock:
            sim = model.simulate()
            slots = {_normalise(name): name for name in sim.get_var_names()}
        outputs = []
        for variable in info.variables.values():
            if variable.py_name in TIME_CONTROLS:
                outputs.append(_Output(variable, (), {}, variable.py_name))
                continue
            if variable.py_name == "time" or variable.kind == "lookup":
                continue
            coords = {dim: tuple(info.subscripts.get(dim, ())) for dim in variable.dims}
            names = [slots.get(_normalise(name)) for name in _slot_names(variable, coords)]
            if all(names):
                outputs.append(_Output(variable, tuple(names), coords))
        order = {py_name: index for index, py_name in enumerate(_reference_info(path)[1])}
        # the model file's order, as in PySD's results
        outputs.sort(key=lambda output: order.get(output.variable.py_name, len(order)))
        _plans[key] = Plan(info, _spec_defaults(model), tuple(outputs), slots)
    return _plans[key]


def _reference_info(model_path: str | os.PathLike) -> tuple[ModelInfo, tuple[str, ...]]:
    """The reference engine's metadata and variable order, without importing PySD when it can be helped.

    When PySD is loaded in this process anyway, it answers (the same object as
    ``sdmodel.engines.pysd.model_info``); otherwise a JSON copy written the first
    time PySD answered, keyed by the model's content and PySD's version; otherwise
    Simlin's description of a Vensim model with the file's own spellings and ranges
    (:func:`describe`), which tests/test_models_like_pysd.py holds to PySD's. Only a
    model neither describes (XMILE, macros, numbered subscript ranges) pays PySD's
    import and model load on a fast engine.
    """
    path = _checked(model_path)
    key = (str(path.resolve()), file_sha256(path))
    if key in _infos and "sdmodel.engines.pysd" not in sys.modules:
        return _infos[key]
    cached = None if "sdmodel.engines.pysd" in sys.modules else (_read_info_cache(path, key[1]) or describe(path))
    if cached is None:
        from sdmodel.engines import pysd as reference

        cached = (reference.model_info(path), tuple(reference.load(path).namespace.values()))
        _write_info_cache(key[1], *cached)
    _infos[key] = cached
    return cached


#: a whole equation that is a call of a function with memory: PySD documents its variable as Stateful
_STATEFUL = re.compile(
    r"^\s*(INTEG|SMOOTH\w*|DELAY\w*|TREND|FORECAST|SAMPLE[ _]IF[ _]TRUE|INITIAL|ACTIVE[ _]INITIAL|NPV\w*)\s*\(.*\)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_NUMBER_LIST = re.compile(
    r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(\s*[,;]\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*\s*[;]?\s*$"
)
#: PySD documents the model's clock as a variable too
_TIME = Variable(py_name="time", name="Time", kind="nan", units="", comment="Current time of the model.")


def describe(model_path: str | os.PathLike) -> tuple[ModelInfo, tuple[str, ...]] | None:
    """A Vensim model's variables from Simlin's description, in PySD's names and order, without PySD.

    Simlin gives which variables there are, their kinds (from their equations), subscripts
    and documentation; the file's text gives the names and units as written (Simlin rewrites
    both), the ``[min,max]`` ranges Simlin drops, and the time controls (Simlin keeps them
    as specs, not variables).
    None when Simlin cannot read the model or the text does not name every variable
    Simlin has: the caller then asks PySD, the reference.
    """
    from sdmodel.engines import vensim_text

    path = Path(model_path)
    if path.suffix.lower() != ".mdl":
        return None
    try:
        text = vensim_text.scan(path)
        if text.reads_data:
            return None  # data variables: PySD's kind "data", which Simlin does not know
        model = _load(path, None)
    except (InputError, OSError, UnicodeError):
        return None
    project = json.loads(model.project.serialize_json())
    found: dict[str, tuple[vensim_text.Equation, str, tuple[str, ...], str, str]] = {}
    for variable in model.variables:
        key = vensim_text.canonical(variable.name)
        written = text.equations.get(key)
        if written is None:
            if key.endswith("_net_flow") and isinstance(variable, simlin.Flow):
                continue  # Simlin's own flow for a stock written INTEG(expression, ...)
            return None
        dims = tuple(text.dimensions.get(vensim_text.canonical(d), (str(d), ()))[0] for d in getattr(variable, "dimensions", ()))
        # units as written: Simlin rewrites them ("billion USD" -> "billion_USD"), and a scenario's units are the file's
        found[key] = (written, _kind(variable), dims, written.units, variable.documentation or written.comment)
    for name in vensim_text.CONTROLS:
        written = text.equations.get(vensim_text.canonical(name))
        if written is None:
            return None
        kind = (
            "constant" if _NUMBER.match(written.expression) else "auxiliary"
        )  # PySD's kinds: SAVEPER = TIME STEP is an auxiliary
        found[vensim_text.canonical(name)] = (written, kind, (), written.units, written.comment)
    subscripts = {}
    for dim in project.get("dimensions", []):
        name, elements = text.dimensions.get(vensim_text.canonical(dim["name"]), (dim["name"], ()))
        if len(elements) != len(dim.get("elements") or ()):
            elements = tuple(dim.get("elements") or ())
        subscripts[name] = tuple(elements)
    # PySD's order: Time, the time controls, then the file's order
    controls = [vensim_text.canonical(name) for name in vensim_text.CONTROLS]
    order = controls + [key for key in text.equations if key in found and key not in controls]
    py_names = vensim_text.python_names([found[key][0].name for key in order])
    variables = {}
    for key in order:
        written, kind, dims, units, comment = found[key]
        py_name = py_names[written.name]
        variables[py_name] = Variable(py_name, written.name, kind, units, comment, dims, written.lower, written.upper)
    variables["time"] = _TIME
    info = ModelInfo(path, file_sha256(path), dict(sorted(variables.items(), key=lambda item: item[1].name)), subscripts)
    return info, ("time", *(py_names[found[key][0].name] for key in order))


def _kind(variable) -> str:
    """PySD's kind of a variable Simlin describes: stock, lookup, constant (numbers only) or auxiliary."""
    if isinstance(variable, simlin.Stock):
        return "stock"
    equations = [variable.equation] if variable.equation else []
    equations += [element.equation for element in variable.element_equations]
    if variable.graphical_function is not None and not variable.equation and not variable.element_equations:
        return "lookup"
    if equations and all(_NUMBER_LIST.match(equation or "") for equation in equations):
        return "constant"
    if equations and all(_STATEFUL.match(equation or "") for equation in equations):
        return "stock"
    return "auxiliary"


def _info_cache_file(sha256: str) -> Path:
    from importlib.metadata import version  # PySD's version without importing PySD

    return cache_dir() / "model-info" / f"{sha256[:24]}-pysd-{version('pysd')}-v{INFO_CACHE_FORMAT}.json"


def _read_info_cache(path: Path, sha256: str) -> tuple[ModelInfo, tuple[str, ...]] | None:
    """The cached metadata, or None when there is none or it cannot be used (it is then rebuilt)."""
    text = read_cache(_info_cache_file(sha256))
    if text is None:  # none yet, or damaged (its checksum does not match)
        return None
    try:
        data = json.loads(text)
        variables = {row["py_name"]: Variable(**{**row, "dims": tuple(row["dims"])}) for row in data["variables"]}
        subscripts = {dim: tuple(elements) for dim, elements in data["subscripts"].items()}
        return ModelInfo(path, sha256, variables, subscripts), tuple(data["order"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_info_cache(sha256: str, info: ModelInfo, order: tuple[str, ...]) -> None:
    """Write the metadata atomically, checksummed (:func:`~sdmodel.locations.write_cache`); a cache that cannot be written only costs speed."""
    target = _info_cache_file(sha256)
    data = {
        "variables": [
            vars(variable) for variable in info.variables.values()
        ],  # floats may be +-Infinity: Python's JSON keeps them
        "subscripts": {dim: list(elements) for dim, elements in info.subscripts.items()},
        "order": list(order),
    }
    write_cache(target, json.dumps(data))


_READS_FILE = re.compile(r"\bGET[ _](XLS|DIRECT|123|DATA)[ _]\w+", re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _refuse_vensim_features(path: Path) -> None:
    """Refuse, from a Vensim file's text, what Simlin would run with wrong numbers or fail on obscurely.

    Measured on Simlin 0.8.5 with tests/models/missing.mdl, timecontrols.mdl and external/:
    ``:NA:`` becomes the number -6.5e32; a time control computed from other variables is
    ignored (the run went from 0 to 200); a data variable without equation becomes a
    lookup of time on a made-up table; ``GET XLS``/``GET DIRECT`` fail to parse.
    """
    from sdmodel.engines import vensim_text

    if path.suffix.lower() != ".mdl":
        return
    raw = path.read_text(encoding="utf-8", errors="replace").split(vensim_text.SKETCH, 1)[0]
    text = vensim_text.scan(path)
    found = _READS_FILE.search(raw)
    if found:
        raise InputError(source=path, key=None, problem=f"the simlin engine cannot read data files ({found[0]})", fix=USE_PYSD)
    if text.reads_data:
        raise InputError(source=path, key=None, problem="the simlin engine cannot run data variables", fix=USE_PYSD)
    if ":NA:" in raw.upper():
        raise InputError(
            source=path,
            key=None,
            problem=f"the simlin engine cannot keep :NA: missing (Simlin {VERSION} makes it a number)",
            fix=USE_PYSD,
        )
    for name in vensim_text.CONTROLS:
        written = text.equations.get(vensim_text.canonical(name))
        expression = written.expression if written else ""
        if written and not _NUMBER.match(expression) and not (name == "SAVEPER" and expression.upper() == "TIME STEP"):
            problem = f"the simlin engine cannot compute {name} ({expression}): Simlin {VERSION} reads only a number there"
            raise InputError(source=path, key=None, problem=problem, fix=USE_PYSD)


def _refuse_unsupported(model: simlin.Model, path: Path) -> None:
    """Refuse what Simlin imports but does not simulate as Vensim and PySD do.

    Vensim's ``DELAY FIXED`` becomes XMILE ``DELAY(...)`` in Simlin, which 0.8 computes as a
    first-order exponential delay instead of a pipeline (bpowers/simlin#346): the run would
    succeed with wrong numbers (measured on tests/models/shipping.mdl).
    """
    for variable in model.variables:
        texts = [getattr(variable, "equation", ""), getattr(variable, "initial_equation", "")]
        texts += [element.equation for element in getattr(variable, "element_equations", ())]
        if any(PIPELINE_DELAY.search(text or "") for text in texts):
            problem = f"the simlin engine cannot run DELAY FIXED (in '{variable.name}'): Simlin {VERSION} makes it first-order"
            raise InputError(source=path, key=None, problem=problem, fix=USE_PYSD)
    sizes = {
        dim["name"].lower(): len(dim.get("elements") or ())
        for dim in json.loads(model.project.serialize_json()).get("dimensions", [])
    }
    for variable in model.variables:
        elements = getattr(variable, "element_equations", ())
        dims = getattr(variable, "dimensions", ())
        if elements and dims and not getattr(variable, "has_except_default", None):
            expected = 1
            for dim in dims:
                expected *= sizes.get(str(dim).lower(), 0)
            if len({element.subscript for element in elements}) < expected:
                problem = f"'{variable.name}' leaves elements undefined, which Simlin {VERSION} makes 0 (PySD: NaN)"
                raise InputError(
                    source=path, key=None, problem=f"the simlin engine cannot run this model: {problem}", fix=USE_PYSD
                )


def _load(model_path: str | os.PathLike, grid: dict[str, float] | None) -> simlin.Model:
    """A Simlin model for a file, with its time grid set; loaded once per content and grid."""
    path = _checked(model_path)
    key = (str(path.resolve()), file_sha256(path), tuple(sorted(grid.items())) if grid else None)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    try:
        model = simlin.load(path)
    except (simlin.SimlinError, OSError) as error:
        problem = f"Simlin cannot read this model ({_error_line(error)})"
        raise InputError(source=path, key=None, problem=problem, fix="check the equations in Vensim or Stella") from None
    errors = [issue for issue in model.check() if issue.severity == "error"]
    if errors:
        where = f" in '{errors[0].variable}'" if errors[0].variable else ""
        raise InputError(
            source=path,
            key=None,
            problem=f"Simlin cannot compile this model{where} ({_error_line(errors[0].message)})",
            fix=USE_PYSD,
        )
    if grid:
        try:
            model.project.set_sim_specs(**{SPEC_KEYS[k]: v for k, v in grid.items() if k in SPEC_KEYS})
        except (simlin.SimlinError, ValueError) as error:
            problem = f"Simlin cannot use this time grid ({_error_line(error)})"
            raise InputError(source=path, key="time", problem=problem, fix="check the [time] settings") from None
    with _lock:
        _models[key] = model
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
    return model


def _spec_defaults(model: simlin.Model) -> dict[str, float]:
    """The file's time controls; ``Model.time_spec`` has no save step, so it is read from the project's specs."""
    spec = model.time_spec
    save_step = float(json.loads(model.project.serialize_json())["simSpecs"].get("saveStep") or 0.0)
    return {
        "initial_time": float(spec.start),
        "final_time": float(spec.stop),
        "time_step": float(spec.dt),
        "saveper": save_step if save_step > 0 else float(spec.dt),
    }


def _checked(model_path: str | os.PathLike) -> Path:
    path = Path(model_path)
    if not path.is_file():
        raise InputError(
            source=path, key=None, problem="model file not found", fix="give the path of a Vensim .mdl or XMILE .xmile file"
        )
    if path.suffix.lower() not in FORMATS:
        raise InputError(
            source=path,
            key=None,
            problem=f"unknown model format '{path.suffix}'",
            fix="give a Vensim .mdl or an XMILE .xmile file",
        )
    return path


def _slot_names(variable: Variable, coords: dict[str, tuple[str, ...]]) -> list[str]:
    """Vensim-style names of a variable's slots, e.g. ``Compute Capacity[incumbent]``, in ``coords`` order."""
    name = variable.name.strip().strip('"')
    if not coords:
        return [name]
    return [f"{name}[{','.join(elements)}]" for elements in product(*coords.values())]


def _normalise(name: str) -> str:
    """Simlin's canonical names ignore case, quotes, and spaces versus underscores."""
    return re.sub(r"[\s_]+", "_", name.replace('"', "").strip()).lower().replace(",_", ",").replace("_,", ",")


def _check_finite(
    values: np.ndarray, dims: tuple[str, ...], time: np.ndarray, variable: Variable, scenario: str, allow_nan: bool = False
) -> None:
    """A ModelRunError at a variable's first NaN or infinite value (with ``allow_nan``, its first infinite one)."""
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        where = ""
        if dims and dims[0] == "time":
            first = int(np.argwhere(bad.reshape(len(time), -1).any(axis=1))[0][0])
            where = f" at time {float(time[first]):g}"
        problem = f"'{variable.name}' became {'infinite' if allow_nan else 'NaN or infinite'}{where}"
        raise ModelRunError(f"scenario '{scenario}': {problem}; check the scenario's values")


def _error_line(error: BaseException | str) -> str:
    """One line of an error: Simlin's messages quote the equation over several lines first."""
    text = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    line = next((t for t in text if t.startswith("error")), text[-1] if text else "")
    if isinstance(error, str):
        return line
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
