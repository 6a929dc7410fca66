"""The compiled engine: the model translated to C by SDEverywhere's compiler, built into a shared library, run by ctypes.

An ensemble of thousands of members needs runs of milliseconds: Simlin's member runner costs ~70 ms
per run of the bundled model at its step of 1/128 year, this engine's ~5.8 ms (0.08-0.10x, measured
in one process by bench/compiled.py). The engine compiles a model once per content into the cache
folder (:func:`sdmodel.locations.cache_dir`), keyed by the model's sha256, SDEverywhere's version and
this module's build format, and loads the library with ctypes; every run then sets its constants in
the library's memory, runs the model's own code and copies the outputs at each save point. A build, like
the npm install below, is sealed by a checksum and made again when damaged (:mod:`sdmodel.engines.cached`).

What it relies on, outside Python:

- **node and npm**: SDEverywhere's compiler (``@sdeverywhere/compile``, pinned to :data:`SDE_VERSION`)
  is a Node package; the engine installs it once into the cache folder with npm. Its dependency on
  ``xlsx`` (for ``GET DIRECT DATA`` spreadsheets) points at a server outside npm's registry, so a stub
  stands in for it: a model reading spreadsheets fails to translate, with a one-line error.
- **a C compiler** (``$CC``, else ``gcc``; ``cc`` or ``clang`` if there is no gcc).
- SDEverywhere's C runtime (``sde.h``, ``vensim.c``) ships only in its command-line package, which npm's
  registry does not hold; :data:`RUNTIME` is this engine's own, with the functions the generated code
  calls for the models sdmodel runs (IF THEN ELSE, MIN, MAX, ZIDZ, XIDZ, STEP, RAMP, EXP, LN, lookups,
  ...). SDEverywhere expands SMOOTH, SMOOTH3, DELAY1, DELAY3, TREND and NPV into levels of their own;
  a model calling anything else (PULSE, PULSE TRAIN, QUANTUM, SAMPLE IF TRUE, ...) is refused when it
  is compiled, by name, in one line. What Simlin's engine refuses (DELAY FIXED, data variables,
  ``:NA:``) is refused here too: this engine reads the model's variables through it.

Semantics, checked against Simlin on bundled scenarios (tests/test_engine_compiled.py): Euler steps;
the functions as PySD, the reference, computes them: ``STEP`` from ``time + dt/2 > start``, ``MODULO``
with the divisor's sign, ``INTEGER`` truncating, ``ZIDZ`` and ``XIDZ`` dividing only by at least 1e-6
in magnitude (Simlin 0.8 floors ``INTEGER`` and divides by anything but zero: the engines differ
there, not on the bundled model); lookups linear between points and held at their ends; values saved
every ``SAVEPER``. SDEverywhere's folding of constants into conditionals is switched off, so any
constant can be set at run time. The model's variables, kinds and units are Simlin's engine's answer
(the same as PySD's), and so is its list of outputs: the Datasets are built by
:func:`sdmodel.engines.simlin.to_dataset`, so they have the same layout as Simlin's.

The library holds the model's state in global variables: one run at a time per process (a lock);
ensembles run members in worker processes, each with its own copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel.engines import cached
from sdmodel.engines import simlin as reference
from sdmodel.errors import InputError, ModelRunError
from sdmodel.locations import cache_dir
from sdmodel.model import ModelInfo, Variable, file_sha256
from sdmodel.scenario import RunSpec, Setting

NAME = "compiled"
SDE_VERSION = "0.7.28"  #: the version of ``@sdeverywhere/compile`` the engine installs and uses
BUILD_FORMAT = 4  #: bump when the runtime, the driver or the build's layout changes: every model is compiled again
VERSION = f"sdeverywhere-compile {SDE_VERSION}, build {BUILD_FORMAT}"
REUSE_STORED = False  # a run takes milliseconds
READS_DATA_FILES = False
USE_SIMLIN = "run it with `--engine simlin`"
TOOLS = "the compiled engine needs node, npm and a C compiler"
TIMEOUT = 900  # seconds for npm's install or a compile: a stuck tool fails instead of hanging a run
SEAL = "sdmodel.sha256"  #: a build's and npm's install's checksum file, written last (:mod:`sdmodel.engines.cached`)
BUILDING, INSTALLING = ".build-", ".npm-"  # the prefixes of their working folders, renamed into place when done
CACHE = "the compiled engine's cache"

_lock = threading.Lock()  # the library's state is global: one run at a time in a process
_programs: dict[tuple[str, str], Program] = {}
_LONG = np.dtype(f"i{ctypes.sizeof(ctypes.c_long)}")  # C's long, as numpy stores it

# --- the C runtime and driver (this engine's own code, compiled with each model) ----------------------

#: what the generated code includes as "sde.h": the functions sdmodel's models call, with Vensim's semantics
RUNTIME = r"""/* sdmodel's runtime for C generated by SDEverywhere (sdmodel/engines/compiled.py). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern double _time;
extern double _time_step;
#define SDM_SMALL 1e-6
#define _IF_THEN_ELSE(c, t, f) ((bool)(c) ? (t) : (f))
#define _MIN(a, b) fmin((a), (b))
#define _MAX(a, b) fmax((a), (b))
#define _ABS(x) fabs(x)
#define _EXP(x) exp(x)
#define _LN(x) log(x)
#define _SQRT(x) sqrt(x)
#define _SIN(x) sin(x)
#define _COS(x) cos(x)
#define _TAN(x) tan(x)
#define _ARCSIN(x) asin(x)
#define _ARCCOS(x) acos(x)
#define _ARCTAN(x) atan(x)
#define _POW(a, b) pow((a), (b))
#define _INTEGER(x) trunc(x)
#define _MODULO(a, b) ((a) - (b) * floor((a) / (b)))
#define _INTEG(value, rate) ((value) + (rate) * _time_step)
static inline double _ZIDZ(double a, double b) { return fabs(b) < SDM_SMALL ? 0.0 : a / b; }
static inline double _XIDZ(double a, double b, double x) { return fabs(b) < SDM_SMALL ? x : a / b; }
static inline double _STEP(double height, double step_time) { return _time + _time_step / 2.0 > step_time ? height : 0.0; }
static inline double _RAMP(double slope, double start, double end) {
  if (_time > start) return slope * ((_time < end ? _time : end) - start);
  return 0.0;
}
#define outputVar(x) ((void)(x))

/* Lookups: (x, y) pairs, x increasing; linear between points, the end values held beyond them (Vensim's). */
typedef struct Lookup {
  size_t n;
  const double *points;
} Lookup;
Lookup *__new_lookup(size_t n, bool copy, double *points);
static inline double _LOOKUP(const Lookup *lookup, double x) {
  const double *p = lookup->points;
  size_t n = lookup->n;
  if (n == 0) return NAN;
  if (x <= p[0]) return p[1];
  if (x >= p[2 * (n - 1)]) return p[2 * (n - 1) + 1];
  size_t i = 1;
  while (p[2 * i] < x) i++;
  double x0 = p[2 * (i - 1)], y0 = p[2 * (i - 1) + 1], x1 = p[2 * i], y1 = p[2 * i + 1];
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}
#define _WITH_LOOKUP(x, lookup) _LOOKUP((lookup), (x))
"""
#: the functions :data:`RUNTIME` defines; a generated call of any other is refused by name
SUPPORTED = frozenset(
    ("IF_THEN_ELSE", "MIN", "MAX", "ABS", "EXP", "LN", "SQRT", "SIN", "COS", "TAN", "ARCSIN", "ARCCOS", "ARCTAN")
    + ("POW", "INTEGER", "MODULO", "INTEG", "ZIDZ", "XIDZ", "STEP", "RAMP", "LOOKUP", "WITH_LOOKUP")
)

#: the run loop: constants set, time-series constants interpolated before each step, outputs copied at each save
DRIVER = r"""/* sdmodel's driver for C generated by SDEverywhere (sdmodel/engines/compiled.py). */
#include "sde.h"
#include <stdlib.h>
#include <string.h>
double _time;
extern double _initial_time, _final_time, _saveper;
void initConstants(void);
void initLevels(void);
void evalAux(void);
void evalLevels(void);

Lookup *__new_lookup(size_t n, bool copy, double *points) {
  Lookup *lookup = malloc(sizeof(Lookup));
  double *kept = points;
  if (copy) {
    kept = malloc(2 * n * sizeof(double));
    memcpy(kept, points, 2 * n * sizeof(double));
  }
  lookup->n = n;
  lookup->points = kept;
  return lookup;
}

static double sdm_interp(long n, const double *t, const double *v, double x) {
  if (x <= t[0]) return v[0];
  if (x >= t[n - 1]) return v[n - 1];
  long i = 1;
  while (t[i] < x) i++;
  return v[i - 1] + (v[i] - v[i - 1]) * (x - t[i - 1]) / (t[i] - t[i - 1]);
}

static void sdm_series(long n_series, double *const *ptr, const long *len, const double *t, const double *v) {
  for (long k = 0, at = 0; k < n_series; at += len[k], k++) *ptr[k] = sdm_interp(len[k], t + at, v + at, _time);
}

/* One run: returns the number of save points written, or -1 when there would be more than max_save. */
long sdm_run(double t0, long steps, double dt, long every,
             long n_set, double *const *set_ptr, const double *set_val,
             long n_series, double *const *series_ptr, const long *series_len, const double *series_t,
             const double *series_v, long n_out, double *const *out_ptr, double *out, double *times, long max_save) {
  initConstants();
  _initial_time = t0;
  _time_step = dt;
  _final_time = t0 + steps * dt;
  _saveper = every * dt;
  for (long k = 0; k < n_set; k++) *set_ptr[k] = set_val[k];
  long saved = 0;
  _time = t0;
  sdm_series(n_series, series_ptr, series_len, series_t, series_v);
  initLevels();
  for (long step = 0;; step++) {
    _time = t0 + step * dt;
    sdm_series(n_series, series_ptr, series_len, series_t, series_v);
    evalAux();
    if (step % every == 0) {
      if (saved >= max_save) return -1;
      for (long k = 0; k < n_out; k++) out[k * max_save + saved] = *out_ptr[k];
      times[saved++] = _time;
    }
    if (step >= steps) break;
    evalLevels();
  }
  return saved;
}
"""

#: runs SDEverywhere's compiler: the model's C code and its listing of variables
GENERATE = r"""// sdmodel: translate a Vensim model to C with SDEverywhere's compiler (sdmodel/engines/compiled.py).
process.env.SDE_NONPUBLIC_REDUCE_VARIABLES = '0' // keep every constant settable: no folding into conditionals
const [compiler, model, code, listing] = process.argv.slice(2)
const fs = await import('fs')
const path = await import('path')
const sde = await import(compiler)
const dir = path.dirname(path.resolve(model))
const parsed = sde.parseModel(fs.readFileSync(model, 'utf8'), 'vensim', dir)
const options = { spec: {}, operations: ['generateC'], extData: new Map(), directData: new Map(), modelDirname: dir }
fs.writeFileSync(code, sde.generateCode(parsed, options))
fs.writeFileSync(listing, JSON.stringify(sde.getModelListing().full))
"""

#: npm's project for the compiler; ``xlsx`` (only for spreadsheets) is fetched from outside the registry, so a stub
PACKAGE = {
    "name": "sdmodel-sdeverywhere",
    "private": True,
    "dependencies": {"@sdeverywhere/compile": SDE_VERSION},
    "overrides": {"xlsx": "file:./xlsx-stub"},
}
XLSX_STUB = {
    "package.json": json.dumps({"name": "xlsx", "version": "0.0.0-sdmodel-stub", "type": "module", "main": "index.js"}),
    "index.js": "const XLSX = { set_fs() {}, readFile() { throw new Error('sdmodel: spreadsheet data is not supported') },"
    " utils: {} }\nexport default XLSX\n",
}


# --- the engine's interface ----------------------------------------------------------------------------


def model_info(model_path: str | os.PathLike) -> ModelInfo:
    """The model's variables: the reference engine's, as Simlin's engine gives them (PySD's names and kinds)."""
    with through_simlin():
        return reference.model_info(model_path)


def time_defaults(model_path: str | os.PathLike) -> dict[str, float]:
    """The model's own time controls."""
    with through_simlin():
        return reference.time_defaults(model_path)


@contextlib.contextmanager
def through_simlin():
    """Say why Simlin's engine speaks when it refuses a model on `--engine compiled`, which did not name it."""
    try:
        yield
    except InputError as error:
        problem = f"the compiled engine reads models through Simlin, and {error.problem}"
        raise InputError(source=error.source, key=error.key, problem=problem, fix=error.fix) from None


def expected_seconds(model_path: str | os.PathLike, specs: Sequence[RunSpec]) -> float | None:
    """None: a run takes milliseconds (compiling a model the first time takes seconds, once)."""
    return None


def run(model_path: str | os.PathLike, spec: RunSpec, allow_nan: bool = False) -> xr.Dataset:
    """One scenario's results, laid out as Simlin's engine lays them out."""
    program = load(model_path)
    time, values = program.simulate(spec)
    return reference.to_dataset(time, values, program.plan, spec.name, allow_nan)


def run_scenarios(
    model_path: str | os.PathLike,
    specs: Sequence[RunSpec],
    jobs: int | None = None,
    done: Callable[[int], None] | None = None,
    allow_nan: bool = False,
) -> xr.Dataset:
    """Scenarios in one Dataset with a leading ``scenario`` dim, one after another (milliseconds each)."""
    program = load(model_path)
    runs = [program.simulate(spec) for spec in specs]
    if done:
        done(len(specs))
    return reference.scenarios_dataset(program.plan, specs, runs, allow_nan)


class MemberRunner:
    """Runs the members of an ensemble as :class:`sdmodel.engines.simlin.MemberRunner` does, on the compiled model.

    Everything that can be checked once (names, which constants can be set, the library) is checked
    when the runner is made; a member then costs one call into the library.
    """

    def __init__(self, model_path: str | os.PathLike, spec: RunSpec, params: Sequence[Setting], outputs: Sequence[str]):
        program = load(model_path)
        self.program = program
        self.scenario = spec.name
        self.grid = program.grid(spec)
        self.param_addresses = [program.setting_addresses(p, spec.name) for p in params]
        varied = {address for addresses in self.param_addresses for address in addresses}
        constants, series = program.overrides(spec)
        self._constants = {a: v for a, v in constants.items() if a not in varied}  # a sampled value wins
        self._series = {a: s for a, s in series.items() if a not in varied}
        by_name = {output.variable.py_name: output for output in program.plan.outputs if not output.control}
        missing = [name for name in outputs if name not in by_name]
        if missing:
            raise InputError(
                source=f"scenario '{spec.name}'",
                key=f"output {missing[0]}",
                problem="the compiled engine has no such series",
                fix="choose a variable of the model",
            )
        #: output name -> its subscripts' coords, in the order of ``slots``
        self.coords = {name: by_name[name].coords for name in outputs}
        chosen = [by_name[name] for name in outputs]
        self._names = [output.variable.name for output in chosen for _ in output.slots]
        self.slots = tuple(slot for output in chosen for slot in output.slots)
        self._out = [address for output in chosen for address in program.output_addresses(output)]
        self.time: np.ndarray | None = None

    def run(self, values: Sequence[float]) -> np.ndarray:
        """One member: ``values`` for the runner's parameters in order; returns ``(len(slots), time)``."""
        constants = dict(self._constants)
        for addresses, value in zip(self.param_addresses, values):
            for address in addresses:
                constants[address] = float(value)
        time, result = self.program.execute(self.grid, constants, self._series, self._out, self.scenario)
        self.time = time if self.time is None else self.time
        reference.check_finite(result, time, self._names, self.scenario)
        return result


def member_runner(
    model_path: str | os.PathLike, spec: RunSpec, params: Sequence[Setting], outputs: Sequence[str]
) -> MemberRunner:
    """A :class:`MemberRunner` for a scenario, the constants an ensemble varies and the outputs it keeps."""
    return MemberRunner(model_path, spec, params, outputs)


# --- the compiled model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CVariable:
    name: str  # the C global, e.g. ``_ai_capital``
    families: tuple[str, ...]  # C dimension families, one per subscript
    settable: bool  # a constant in every element (set once, in initConstants)


class Program:
    """A model compiled and loaded: its library, its C variables and the reference engine's plan of outputs."""

    def __init__(self, path: Path, folder: Path, plan: reference.Plan):
        self.path = path
        self.plan = plan
        self.info = plan.info
        self._every_output: list[int] | None = None  # the addresses of every output, in the plan's order
        listing = json.loads((folder / "listing.json").read_text(encoding="utf-8"))
        self.library = ctypes.CDLL(str(folder / "model.so"))
        self.library.sdm_run.restype = ctypes.c_long
        self.library.sdm_run.argtypes = [ctypes.c_double, ctypes.c_long, ctypes.c_double, ctypes.c_long]
        self.library.sdm_run.argtypes += [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.library.sdm_run.argtypes += [ctypes.c_long] + [ctypes.c_void_p] * 4
        self.library.sdm_run.argtypes += [ctypes.c_long] + [ctypes.c_void_p] * 3 + [ctypes.c_long]
        #: C family -> its elements (canonical), in the order of the C arrays
        self.families = {
            d["name"]: [_canonical(e) for e in d["modelValue"]] for d in listing["dimensions"] if d["name"] == d["family"]
        }
        found: dict[str, tuple[str, tuple[str, ...], set[str]]] = {}
        for row in listing["variables"]:
            key = _canonical(row["modelLHS"].split("[", 1)[0])
            found.setdefault(key, (row["varName"], tuple(row.get("families") or ()), set()))[2].add(row["varType"])
        self.variables = {key: _CVariable(name, families, kinds == {"const"}) for key, (name, families, kinds) in found.items()}

    # addresses of values in the library's memory

    def addresses(self, variable: Variable, coords: dict[str, tuple[str, ...]]) -> list[int]:
        """The addresses of a variable's elements (``coords``: dim -> elements), flattened in ``coords`` order."""
        cvar = self.variables.get(_canonical(variable.name))
        if cvar is None or len(cvar.families) != len(coords):
            raise InputError(
                source=self.path,
                key=None,
                problem=f"the compiled engine has no C variable for '{variable.name}'",
                fix=USE_SIMLIN,
            )
        sizes = [len(self.families[family]) for family in cvar.families]
        array = (ctypes.c_double * int(np.prod(sizes, dtype=int))).in_dll(self.library, cvar.name)
        base = ctypes.addressof(array)
        found = []
        for elements in product(*coords.values()):
            flat = 0
            for family, size, element in zip(cvar.families, sizes, elements):
                flat = flat * size + self.families[family].index(_canonical(element))
            found.append(base + flat * ctypes.sizeof(ctypes.c_double))
        return found

    def setting_addresses(self, setting: Setting, scenario: str) -> list[int]:
        """The addresses a setting changes (the variable, all its elements, or one); only constants can be set."""
        _, variable, coords = reference.setting_coords(self.info, setting, scenario)
        cvar = self.variables.get(_canonical(variable.name))
        if cvar is None or not cvar.settable:
            problem = f"the compiled engine can set only constants, and '{variable.name}' is computed in the model"
            raise InputError(source=f"scenario '{scenario}'", key=f"params.{setting.py_name}", problem=problem, fix=USE_SIMLIN)
        return self.addresses(variable, coords)

    def output_addresses(self, output) -> list[int]:
        return self.addresses(output.variable, output.coords)

    def overrides(self, spec: RunSpec) -> tuple[dict[int, float], dict[int, tuple[np.ndarray, np.ndarray]]]:
        """Address -> value, and address -> (times, values) for time series; a later setting wins, as in Simlin's."""
        return reference.resolve_settings(spec, lambda setting: self.setting_addresses(setting, spec.name))

    def grid(self, spec: RunSpec) -> dict[str, float]:
        """The run's time controls, checked: the driver steps from the start and saves every whole number of steps."""
        grid = {**self.plan.defaults, **spec.time}
        steps = (grid["final_time"] - grid["initial_time"]) / grid["time_step"]
        every = grid["saveper"] / grid["time_step"]
        for ratio, what in ((steps, "the period"), (every, "SAVEPER")):
            if ratio < 0 or abs(ratio - round(ratio)) > 1e-9 * max(1.0, abs(ratio)):
                raise InputError(
                    source=f"scenario '{spec.name}'",
                    key="time",
                    problem=f"the compiled engine needs {what} to be a whole number of time steps",
                    fix=USE_SIMLIN,
                )
        return grid

    # running

    def simulate(self, spec: RunSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run a scenario: the save times, and every output's values as ``(time, slots)`` (as Simlin's engine)."""
        grid = self.grid(spec)
        constants, series = self.overrides(spec)
        if self._every_output is None:
            outputs = [output for output in self.plan.outputs if not output.control]
            self._every_output = [address for output in outputs for address in self.output_addresses(output)]
        time, result = self.execute(grid, constants, series, self._every_output, spec.name)
        values: dict[str, np.ndarray] = {}
        row = 0
        for output in self.plan.outputs:
            if output.control:
                values[output.variable.py_name] = np.full((len(time), 1), grid[output.control])
            else:
                values[output.variable.py_name] = result[row : row + len(output.slots)].T.copy()
                row += len(output.slots)
        return time, values

    def execute(
        self,
        grid: dict[str, float],
        constants: dict[int, float],
        series: dict[int, tuple[np.ndarray, np.ndarray]],
        outputs: Sequence[int],
        scenario: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One run: the save times and the outputs' values, ``(len(outputs), time)``."""
        start, dt = grid["initial_time"], grid["time_step"]
        steps = round((grid["final_time"] - start) / dt)
        every = max(1, round(grid["saveper"] / dt))
        saves = steps // every + 1
        set_ptr = np.fromiter(constants.keys(), dtype=np.uintp, count=len(constants))
        set_val = np.fromiter(constants.values(), dtype=float, count=len(constants))
        series_ptr = np.fromiter(series.keys(), dtype=np.uintp, count=len(series))
        series_len = np.array([len(t) for t, _ in series.values()], dtype=_LONG)
        series_t = np.concatenate([t for t, _ in series.values()]) if series else np.zeros(1)
        series_v = np.concatenate([v for _, v in series.values()]) if series else np.zeros(1)
        out_ptr = np.asarray(outputs, dtype=np.uintp)
        out = np.empty((len(outputs), saves))
        times = np.empty(saves)
        with _lock:
            written = self.library.sdm_run(
                start, steps, dt, every,
                len(set_ptr), set_ptr.ctypes.data, set_val.ctypes.data,
                len(series_ptr), series_ptr.ctypes.data, series_len.ctypes.data, series_t.ctypes.data, series_v.ctypes.data,
                len(out_ptr), out_ptr.ctypes.data, out.ctypes.data, times.ctypes.data, saves,
            )  # fmt: skip
        if written != saves:
            raise ModelRunError(f"scenario '{scenario}': the compiled model saved {written} points, not {saves}")
        return times, out


def load(model_path: str | os.PathLike) -> Program:
    """The model compiled (once per content, into the cache) and loaded (once per process)."""
    with through_simlin():
        plan = reference.load_plan(model_path)  # refuses what Simlin refuses: the same variables and outputs
    path = Path(model_path)
    if path.suffix.lower() != ".mdl":
        raise InputError(source=path, key=None, problem="the compiled engine reads Vensim .mdl files only", fix=USE_SIMLIN)
    key = (str(path.resolve()), file_sha256(path))
    program = _programs.get(key)
    if program is None:
        folder = build(path, key[1])
        try:
            program = Program(path, folder, plan)
        except (OSError, ValueError, KeyError) as error:  # a damaged build: compile it again, once
            shutil.rmtree(folder, ignore_errors=True)
            try:
                program = Program(path, build(path, key[1]), plan)
            except (OSError, ValueError, KeyError):
                problem = f"the compiled model cannot be loaded ({type(error).__name__}: {_line(str(error))})"
                raise InputError(source=path, key=None, problem=problem, fix=USE_SIMLIN) from None
        _programs[key] = program
    return program


# --- building ----------------------------------------------------------------------------------------------


def build_folder(sha256: str) -> Path:
    """Where a model's build is cached: its C code, listing and library."""
    return cache_dir() / "compiled" / f"{sha256[:24]}-sde-{SDE_VERSION}-v{BUILD_FORMAT}"


def build(path: Path, sha256: str) -> Path:
    """Translate and compile a model into its cache folder, unless it is there intact; the folder appears whole or not
    at all (:mod:`sdmodel.engines.cached`), and one whose files changed since it was sealed is built again."""
    folder = build_folder(sha256)
    if cached.intact(folder, SEAL):
        return folder
    node, cc = _tool("node"), _compiler()
    compiler = _sde_compiler()
    work = None
    try:
        with cached.writing(CACHE):
            work = cached.working_folder(folder.parent, BUILDING)  # and what killed builds left goes
            work.mkdir()
            (work / "generate.mjs").write_text(GENERATE, encoding="utf-8")
            (work / "sde.h").write_text(RUNTIME, encoding="utf-8")
            (work / "driver.c").write_text(DRIVER, encoding="utf-8")
        code, listing = work / "model.c", work / "listing.json"
        done = _call([node, str(work / "generate.mjs"), compiler.as_uri(), str(path.resolve()), str(code), str(listing)])
        if done.returncode != 0:
            problem = f"SDEverywhere {SDE_VERSION} cannot translate this model ({_error_line(done.stderr)})"
            raise InputError(source=path, key=None, problem=problem, fix=USE_SIMLIN)
        text = code.read_text(encoding="utf-8")
        unsupported = sorted(set(re.findall(r"\b_([A-Z][A-Z0-9_]*[A-Z0-9])\s*\(", text)) - SUPPORTED)
        if unsupported:
            problem = f"the compiled engine cannot run {', '.join(unsupported)} (yet)"
            raise InputError(source=path, key=None, problem=problem, fix=USE_SIMLIN)
        # -O3 and no errno: 14% faster than -O2, the same numbers; no fused multiply-adds: Simlin's rounding
        flags = ["-O3", "-fno-math-errno", "-fPIC", "-shared", "-ffp-contract=off", "-Werror=implicit-function-declaration"]
        # the compiler's own temporary files in the working folder, so a compile killed outright leaves them there
        done = _call([cc, *flags, "-o", str(work / "model.so"), str(code), str(work / "driver.c"), "-lm"], cwd=work, tmp=work)
        if done.returncode != 0:
            problem = f"the C compiler cannot build this model ({_error_line(done.stderr)})"
            raise InputError(source=path, key=None, problem=problem, fix=USE_SIMLIN)
        with cached.writing(CACHE):
            cached.finish(work, folder, SEAL)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    for stale in folder.parent.glob(f"{sha256[:24]}-*"):  # this model built by another SDEverywhere or build format
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def _sde_compiler() -> Path:
    """SDEverywhere's compiler (its ``src/index.js``), installed into the cache by npm the first time, and again when
    a file of the install changed since (:mod:`sdmodel.engines.cached`)."""
    prefix = cache_dir() / f"sdeverywhere-compile-{SDE_VERSION}"
    entry = prefix / "node_modules" / "@sdeverywhere" / "compile" / "src" / "index.js"
    if cached.intact(prefix, SEAL):
        return entry
    npm = _tool("npm")
    work = None
    try:
        with cached.writing(CACHE):
            work = cached.working_folder(prefix.parent, INSTALLING)  # and what killed installs left goes
            work.mkdir()
            (work / "package.json").write_text(json.dumps(PACKAGE, indent=2), encoding="utf-8")
            (work / "xlsx-stub").mkdir()
            for name, text in XLSX_STUB.items():
                (work / "xlsx-stub" / name).write_text(text, encoding="utf-8")
        # a registry out of reach fails within a minute or two, not npm's default of 5 minutes a request, 3 tries:
        # `--engine fast` falls back to Simlin then, and an ensemble should not wait long to be told so
        patience = ["--fetch-timeout=60000", "--fetch-retries=1"]
        install = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", *patience, "--prefix", str(work)]
        done = _call(install, cwd=work)
        if done.returncode != 0 or not (work / entry.relative_to(prefix)).is_file():
            problem = f"npm cannot install @sdeverywhere/compile {SDE_VERSION} ({_error_line(done.stderr)})"
            raise InputError(
                source="--engine compiled", key=None, problem=problem, fix=f"check npm's access to its registry, or {USE_SIMLIN}"
            )
        with cached.writing(CACHE):
            cached.finish(work, prefix, SEAL)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return entry


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InputError(
            source="--engine compiled", key=None, problem=f"{TOOLS}: '{name}' is not on PATH", fix=f"install it, or {USE_SIMLIN}"
        )
    return found


def _compiler() -> str:
    """``$CC``, else the first of gcc, cc and clang on PATH."""
    wanted = os.environ.get("CC")
    for name in [wanted] if wanted else ["gcc", "cc", "clang"]:
        found = shutil.which(name)
        if found:
            return found
    missing = wanted or "gcc"
    raise InputError(
        source="--engine compiled", key=None, problem=f"{TOOLS}: '{missing}' is not on PATH", fix=f"install it, or {USE_SIMLIN}"
    )


def _call(command: list[str], cwd: Path | None = None, tmp: Path | None = None) -> subprocess.CompletedProcess:
    """Run a tool, killed with this process however it ends (:func:`sdmodel.executors.child_dies_with_us`): a
    command killed outright mid-build left npm, node or the compiler running. ``tmp``: the tool's TMPDIR."""
    from sdmodel.executors import child_dies_with_us

    env = None if tmp is None else {**os.environ, "TMPDIR": str(tmp)}
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            preexec_fn=child_dies_with_us(),  # between fork and exec the child only calls prctl
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = f"{Path(command[0]).name} failed ({type(error).__name__}: {_line(str(error))})"
        raise InputError(source="--engine compiled", key=None, problem=problem, fix=USE_SIMLIN) from None


def _error_line(stderr: str) -> str:
    """The most telling line of a tool's error output: its first line naming an error, else its last."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return _line(line)
    return _line(lines[-1]) if lines else "no message"


def _line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canonical(name: str) -> str:
    """A name as SDEverywhere and Vensim compare them: case, quotes, spaces and underscores ignored."""
    return re.sub(r"[\s_]+", "_", name.replace('"', "").strip()).lower()
