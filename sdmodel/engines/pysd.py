"""The reference engine: PySD, with translation cached by the model file's content.

Only this module imports PySD. It hides PySD's traps, measured in this project:
translation writes ``<stem>.py`` beside the source (so we translate a copy in a
cache folder keyed by content hash and PySD version); ``params=`` persist across
runs until ``reload()`` (so every run starts from a reload); PySD prints to
stdout (so that output is captured, never shown); most of a run is xarray's bookkeeping
around tiny arrays that already share their coordinates (so runs skip that alignment and
use :mod:`sdmodel.engines.fast_arrays`, see :func:`_simulate`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import math
import os
import re
import shutil
import time as time_module
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import pysd
import xarray as xr

from sdmodel.engines import cached, unchanging
from sdmodel.engines.fast_arrays import fast_arithmetic
from sdmodel.errors import InputError, ModelRunError, first_line
from sdmodel.locations import cache_dir, read_cache, write_cache
from sdmodel.model import TIME_CONTROLS, ModelInfo, Variable, file_sha256
from sdmodel.progress import announce
from sdmodel.scenario import RunSpec, Setting

NAME = "pysd"
VERSION = pysd.__version__
READS_DATA_FILES = True  # data variables' values from files (``--data``, PySD's ``data_files``)
REUSE_STORED = True  # a run takes seconds; reading a stored one back, milliseconds (sdmodel.reuse)
member_runner = None  # ensembles run a Dataset per member: a run takes seconds, building its Dataset nothing
READERS = {".mdl": pysd.read_vensim, ".xmile": pysd.read_xmile, ".stmx": pysd.read_xmile, ".itmx": pysd.read_xmile}
KINDS = {"Constant": "constant", "Stateful": "stock", "Auxiliary": "auxiliary", "Lookup": "lookup", "Data": "data"}

TRANSLATING = ".translating-"  # the prefix of a translation's working folder, renamed into place when done
#: a translation's checksum file, written last, over every other file of the translation (:mod:`sdmodel.engines.cached`)
CHECKSUM = "translation.sha256"
TRANSLATED_NAME = "model"  # every translation's file name in its cache folder (model.py), whatever the source is called
_loaded: dict[
    tuple[str, tuple[str, ...]], pysd.py_backend.model.Model
] = {}  # per process: (translated file, data files) -> model
_infos: dict[str, ModelInfo] = {}
_time_defaults: dict[str, dict[str, float]] = {}  # read at load: PySD keeps a run's time settings afterwards


def translate(model_path: str | os.PathLike) -> Path:
    """Translate a Vensim or XMILE file once per content (its own and that of the data files it reads), and return the Python file.

    The translation runs on a copy in a cache folder, with copies of the data files the
    model names (``GET XLS DATA('inputs.xlsx', ...)``) at the same places relative to it:
    PySD resolves those names against the translated file's folder, when it translates
    (``GET DIRECT SUBSCRIPT``) and when it loads.
    """
    source = Path(model_path)
    if not source.is_file():
        raise InputError(
            source=source, key=None, problem="model file not found", fix="give the path of a Vensim .mdl or XMILE .xmile file"
        )
    reader = READERS.get(source.suffix.lower())
    if reader is None:
        raise InputError(
            source=source,
            key=None,
            problem=f"unknown model format '{source.suffix}'",
            fix="give a Vensim .mdl or an XMILE .xmile file",
        )
    files = external_files(source)
    depth = max((_ups(name) for name in files), default=0)  # '../x.csv' needs the copy one folder down
    folder = cache_dir() / f"pysd-{VERSION}" / _content_key(source, files)
    # The folder is named by content, so its files are too: two copies of one model under different
    # names share a translation (named by the first copy's file, the second found none and failed to load).
    translated = folder.joinpath(*["_"] * depth, f"{TRANSLATED_NAME}.py")
    if cached.intact(folder, CHECKSUM):
        return translated
    work = None
    try:
        with cached.writing("the translation cache"):
            work = cached.working_folder(folder.parent, TRANSLATING)  # and what killed translations left goes
            work.mkdir()
            home = work.joinpath(*["_"] * depth)
            home.mkdir(parents=True, exist_ok=True)
            copy = home / f"{TRANSLATED_NAME}{source.suffix.lower()}"
            shutil.copyfile(source, copy)
            for name, path in files.items():
                if not Path(name).is_absolute():  # PySD reads an absolute name where it is
                    target = (home / name).resolve()
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        announce(f"translating {source.name} through PySD, once for this content (a large model takes minutes)")
        with _quiet():
            reader(str(copy))
        with cached.writing("the translation cache"):
            cached.finish(work, folder, CHECKSUM)  # a translation cut short has no checksum
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 (PySD raises many types on bad models; all mean the same to a user)
        raise InputError(
            source=source,
            key=None,
            problem=f"PySD cannot translate this model ({first_line(error)})",
            fix="check the equations in Vensim or Stella",
        ) from None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return translated


#: Vensim's functions that read a file named by their first argument, e.g. GET XLS DATA('inputs.xlsx', ...)
_READS_FILE = re.compile(r"\bGET[ _](?:XLS|DIRECT|123|DATA)[ _]\w+\s*\(\s*'([^']+)'", re.IGNORECASE)


def external_files(model_path: str | os.PathLike) -> dict[str, Path]:
    """The data files a model reads, by the name it gives them (relative to its folder), each checked to exist.

    A missing one is bad input: the error names the file and where it was looked for, instead of
    PySD's translation error. An indirect name (``'?inputs'``, Vensim's file list) is left to PySD.
    """
    source = Path(model_path)
    names = dict.fromkeys(_READS_FILE.findall(source.read_text(encoding="utf-8", errors="replace")))
    files = {}
    for name in names:
        if name.startswith("?"):
            continue
        path = source.parent / name
        if not path.is_file():
            raise InputError(
                source=source,
                key=None,
                problem=f"the model reads the data file '{name}', which is not at {path}",
                fix="put the file there, or correct its name in the model",
            )
        files[name] = path
    return files


def _ups(name: str) -> int:
    """How far above the model's folder a relative name reaches ('../../x.csv': 2)."""
    if Path(name).is_absolute():
        return 0
    level = lowest = 0
    for part in Path(name).parts:
        level += -1 if part == ".." else (0 if part == "." else 1)
        lowest = min(lowest, level)
    return -lowest


def _content_key(source: Path, files: dict[str, Path]) -> str:
    """The translation's cache key: the model's content, and each data file's name and content, so a changed spreadsheet translates again."""
    if not files:
        return file_sha256(source)[:24]  # as before data files were copied: existing translations stay valid
    digest = hashlib.sha256(file_sha256(source).encode())
    for name, path in sorted(files.items()):
        digest.update(f"\0{name}\0{file_sha256(path)}".encode())
    return digest.hexdigest()[:24]


def load(model_path: str | os.PathLike, data_files: tuple[str, ...] = ()):
    """A loaded PySD model for a model file (and the files holding its data variables), loaded once per process."""
    translated = translate(model_path)
    key = str(translated)
    loaded = (key, tuple(data_files))
    if loaded not in _loaded:
        try:
            with _quiet():
                _loaded[loaded] = pysd.load(key, data_files=list(data_files) or None)
            _time_defaults[key] = {name: float(getattr(_loaded[loaded].components, name)()) for name in TIME_CONTROLS}
        except Exception as error:  # noqa: BLE001 (loading or a computed time control can fail in any way; one line for all)
            where = f"{model_path} with --data {', '.join(data_files)}" if data_files else model_path
            raise InputError(
                source=where,
                key=None,
                problem=f"PySD cannot load this model ({first_line(error)})",
                fix="check the equations in Vensim or Stella",
            ) from None
    return _loaded[loaded]


def model_info(model_path: str | os.PathLike) -> ModelInfo:
    """Names, kinds, units and limits of a model's variables, from PySD's documentation."""
    translated = str(translate(model_path))
    if translated not in _infos:
        model = load(model_path)
        variables = {}
        for row in model.doc.to_dict("records"):
            lower, upper = _limits(row["Limits"])
            variables[row["Py Name"]] = Variable(
                py_name=row["Py Name"],
                name=row["Real Name"],
                kind=KINDS.get(row["Type"], str(row["Type"]).lower()),
                units=_text(row["Units"]),
                comment=_text(row["Comment"]),
                dims=tuple(row["Subscripts"] or ()),
                lower=lower,
                upper=upper,
            )
        subscripts = {dim: tuple(elements) for dim, elements in model.subscripts.items()}
        _infos[translated] = ModelInfo(Path(model_path), file_sha256(Path(model_path)), variables, subscripts)
    info = _infos[translated]
    # one translation serves every copy of a model's content: the info names the file asked about
    return info if info.path == Path(model_path) else dataclasses.replace(info, path=Path(model_path))


def time_defaults(model_path: str | os.PathLike) -> dict[str, float]:
    """The model's own simulation period and steps."""
    load(model_path)
    return dict(_time_defaults[str(translate(model_path))])


def run(model_path: str | os.PathLike, spec: RunSpec, allow_nan: bool = False) -> xr.Dataset:
    """Run one scenario and return its trajectories (dims ``time`` and subscripts).

    A NaN or infinite value is a :class:`ModelRunError` (it guards the bundled model's promises); with
    ``allow_nan`` NaN is kept as the model computed it (a model's own ``:NA:``), and only an infinity
    (a value that overflowed) fails the run.
    """
    model = load(model_path, spec.data_files)
    info = model_info(model_path)
    with _quiet():
        model.reload()  # PySD keeps params from the previous run otherwise
        params = _params(model, spec.settings)
        time = dict(spec.time)
        initial = time.pop("initial_time", None)
        options = {
            "params": params,
            "initial_condition": "original" if initial is None else "current",  # "current": as _simulate starts it
            "final_time": time.get("final_time"),
            "time_step": time.get("time_step"),
            "saveper": time.get("saveper"),
            "flatten_output": False,
        }
        began = time_module.perf_counter()
        try:
            frame = _simulate(model, options, initial)
        except Exception as error:
            raise ModelRunError(f"scenario '{spec.name}': PySD failed during the run ({first_line(error)})") from error
    results = _to_dataset(frame, info, spec.name, allow_nan)
    steps = _steps(time_defaults(model_path), spec)
    write_cache(_speed_file(info.sha256), repr((time_module.perf_counter() - began) / steps))
    return results


def _speed_file(model_sha256: str) -> Path:
    """Where the last measured cost of a time step of this model on this machine is kept (:func:`expected_seconds`)."""
    return cache_dir() / "speed" / f"pysd-{model_sha256[:24]}"


def _steps(defaults: dict[str, float], spec: RunSpec) -> float:
    grid = {**defaults, **spec.time}
    return max(1.0, (grid["final_time"] - grid["initial_time"]) / grid["time_step"])


def expected_seconds(model_path: str | os.PathLike, specs: Sequence[RunSpec]) -> float | None:
    """How long running ``specs`` one after another should take here: the time steps they take, at the cost of a step
    in the last run of this model on this machine (a run's cost is its steps'); None before any run was measured.

    A cold ``sdmodel compare`` said "about 10 s per scenario", measured on another machine: a run took 80 s here.
    """
    text = read_cache(_speed_file(model_info(model_path).sha256))
    try:
        per_step = float(text or "")
    except ValueError:
        return None
    if not (math.isfinite(per_step) and per_step > 0):
        return None
    defaults = time_defaults(model_path)
    return per_step * sum(_steps(defaults, spec) for spec in specs)


def _simulate(model, options: dict, initial: float | None = None) -> pd.DataFrame:
    """``model.run(**options)`` from ``initial`` (default: the model's own initial time), first
    without xarray's alignment of coordinates, which is most of a run.

    PySD's own way to move the initial time, ``initial_condition=(time, {})``, keeps the stocks it
    initialised at the model's initial time, so a stock whose initial value depends on time (a
    SMOOTH of a STEP's output) would start from the wrong value; so the model is initialised here
    at ``initial`` and run from its current state (tests/test_engine_parity.py, time controls).

    PySD builds every array of a subscript on the same coordinates, so aligning them (xarray's
    default join, at each of ~270,000 operations a run) finds nothing to do: with
    ``arithmetic_join="exact"`` the bundled model runs in 0.7 of the time, and with
    :func:`~sdmodel.engines.fast_arrays.fast_arithmetic` as well in about 0.3 of that, bit for
    bit the same (tests/test_engine_pysd.py, bench/pysd_run.py). A model whose arrays do differ
    in coordinates (a subrange added to its range) raises an alignment error there, and runs
    again with the default.
    """
    try:
        with xr.set_options(arithmetic_join="exact"), fast_arithmetic():
            _start(model, options["params"], initial)
            return model.run(**options)
    except ValueError as error:
        if "exact" not in str(error):  # xarray: "cannot align objects with join='exact'"
            raise
    model.reload()
    _start(model, options["params"], initial)
    return model.run(**options)


def _start(model, params: dict, initial: float | None) -> None:
    """Initialise every stock at ``initial``, with ``params`` set (nothing to do for the model's own initial time)."""
    if initial is None:
        return
    model.set_components(params)
    model.time.set_control_vars(initial_time=initial)
    model.initialize()


def run_scenarios(
    model_path: str | os.PathLike,
    specs: list[RunSpec],
    jobs: int | None = None,
    done: Callable[[int], None] | None = None,
    allow_nan: bool = False,
) -> xr.Dataset:
    """Run scenarios into one Dataset with a leading ``scenario`` dim, in parallel processes.

    A run of the full model takes seconds, so scenarios run side by side, one per core (or
    ``jobs``); each worker is forked with the model already translated and loaded, since
    PySD models cannot be pickled. ``done(1)`` is called as each scenario finishes.
    """
    done = done or (lambda count: None)
    workers = min(len(specs), jobs or os.cpu_count() or 1)
    if workers <= 1:
        results = []
        for spec in specs:
            results.append(run(model_path, spec, allow_nan))
            done(1)
    else:
        from sdmodel.executors import worker_pool

        for data_files in {spec.data_files for spec in specs}:
            load(model_path, data_files)  # translate and load once, before forking
        with worker_pool(workers) as pool:
            futures = [pool.submit(run, model_path, spec, allow_nan) for spec in specs]
            for _ in as_completed(futures):
                done(1)
            results = [future.result() for future in futures]
    names = xr.DataArray([spec.name for spec in specs], dims="scenario", name="scenario")
    return xr.concat(results, dim=names, data_vars="all", coords="minimal")


def _params(model, settings: tuple[Setting, ...]) -> dict:
    """PySD ``params``: one value per variable, merging settings of single subscript elements.

    A number stays a number; a time series becomes a ``pandas.Series`` that PySD
    interpolates; settings of single elements become one array (or one series of
    arrays, when any of them varies over time) built on the variable's default.
    """
    grouped: dict[str, list[Setting]] = {}
    for setting in settings:
        grouped.setdefault(setting.py_name, []).append(setting)
    return {name: _value(getattr(model.components, name)(), group) for name, group in grouped.items()}


def _value(default, group: list[Setting]):
    times = sorted({t for setting in group if isinstance(setting.value, tuple) for t, _ in setting.value})
    if not isinstance(default, xr.DataArray):
        value = group[-1].value
        if isinstance(value, tuple):
            times, values = zip(*value)
            return pd.Series(values, index=times)
        return value

    def array_at(time: float | None) -> xr.DataArray:
        array = default.astype(float).copy()
        for setting in group:
            value = setting.value
            if isinstance(value, tuple):
                value = float(np.interp(time, *zip(*value)))
            array.loc[{setting.element[0]: setting.element[1]} if setting.element else {}] = value
        return array

    if not times:
        return array_at(None)
    # PySD interpolates arrays with xarray, which gives NaN outside the knots; np.interp (used
    # for numbers) holds the end values instead, so hold them here too with two far knots.
    times = [times[0] - 1e6, *times, times[-1] + 1e6]
    return pd.Series([array_at(t) for t in times], index=times)


def _to_dataset(frame: pd.DataFrame, info: ModelInfo, scenario: str, allow_nan: bool = False) -> xr.Dataset:
    """PySD's results as a Dataset: every variable of the model, the time controls too (a model may compute them).

    The ``time`` coordinate is always there, even when no variable varies over time (a model of constants).
    """
    by_name = {variable.name: variable for variable in info.variables.values()}
    time = frame.index.to_numpy(dtype=float)
    data = {}
    for column in frame.columns:
        variable = by_name.get(column)
        if variable is None:
            continue
        values = frame[column].to_list()
        if isinstance(values[0], xr.DataArray):
            array = _stack(values, time)
        else:
            try:
                numbers = np.asarray(values, dtype=float)
            except OverflowError:  # PySD computes in Python ints when every input is an integer
                raise ModelRunError(
                    f"scenario '{scenario}': '{variable.name}' grew beyond floating-point range; check the scenario's values"
                ) from None
            array = xr.DataArray(numbers, coords={"time": time}, dims=["time"])
        array = array.astype(float)  # PySD may hand back object arrays
        if variable.kind == "constant" and unchanging(array.values):
            array = array.isel(time=0, drop=True)  # a constant needs no time axis
        _check_finite(array, variable, scenario, allow_nan)
        array.attrs = variable.attrs
        data[variable.py_name] = array
    return xr.Dataset(data, coords={"time": ("time", time, {"units": "year", "long_name": "Time"})})


def _stack(values: list[xr.DataArray], time: np.ndarray) -> xr.DataArray:
    """A subscripted variable's saved values along a new ``time`` axis.

    PySD builds each saved value on the same subscripts, so one ``np.stack`` does what
    ``xr.concat`` does at a tenth of the cost (it aligned every value, 8% of a run);
    values of another shape (a model that changes a variable's subscripts) still go through concat.
    """
    first = values[0]
    if any(value.dims != first.dims or value.shape != first.shape for value in values):
        return xr.concat(values, dim=pd.Index(time, name="time"))
    coords = {"time": time, **{dim: first.indexes[dim] for dim in first.dims if dim in first.indexes}}
    return xr.DataArray(np.stack([value.values for value in values]), coords=coords, dims=("time", *first.dims))


def _check_finite(array: xr.DataArray, variable: Variable, scenario: str, allow_nan: bool = False) -> None:
    """A ModelRunError at a variable's first NaN or infinite value (with ``allow_nan``, its first infinite one)."""
    bad = np.isinf(array.values) if allow_nan else ~np.isfinite(array.values)
    if bad.any():
        where = ""
        if "time" in array.dims:
            first = int(np.argwhere(bad.reshape(array.sizes["time"], -1).any(axis=1))[0][0])
            where = f" at time {float(array['time'][first]):g}"
        what = "infinite" if allow_nan else "NaN or infinite"
        raise ModelRunError(f"scenario '{scenario}': '{variable.name}' became {what}{where}; check the scenario's values")


def _limits(limits) -> tuple[float, float]:
    """PySD's ``(lower, upper)`` with NaN or None for an open end, as floats with infinities."""
    lower, upper = (tuple(limits or ()) + (None, None))[:2]
    lower = -math.inf if lower is None or math.isnan(lower) else float(lower)
    upper = math.inf if upper is None or math.isnan(upper) else float(upper)
    return lower, upper


def _text(value) -> str:
    """PySD documents a missing comment or unit as NaN."""
    return value if isinstance(value, str) else ""


@contextlib.contextmanager
def _quiet():
    """Keep PySD's prints and warnings away from our stdout and stderr."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
