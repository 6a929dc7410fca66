"""Policy scenarios: small TOML files of differences from the model as written.

A scenario names the constants it changes (``[params]``) and optionally the
simulation period (``[time]``); ``extends`` inherits another scenario's settings.
Loading checks the file's shape; :func:`validate` checks it against a model
(names, kinds, ranges) and returns what an engine needs to run it. Every problem
is an :class:`~sdmodel.errors.InputError` naming the file, the key and the fix.

>>> s = load_scenario("data-strike")
>>> s.name, s.params["data strike fraction"]
('data-strike', 0.33)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sdmodel.errors import NUMBER, InputError, check_range, finite_number, number_from_text, read_toml, shown, toml_key
from sdmodel.locations import scenarios_dir
from sdmodel.model import TIME_CONTROLS, ModelInfo

#: A constant's value: a number, or a time series as ((time, value), ...).
Value = float | tuple[tuple[float, float], ...]

#: how many scenarios may extend one another in a chain (a real chain is a few long)
MAX_EXTENDS = 100
TOP_LEVEL_KEYS = ("name", "description", "extends", "params", "time")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # at most 100: it names the run's folder
#: More steps than this is a mistake (the bundled model takes 480): the run would take hours or exhaust memory.
MAX_STEPS = 100_000
#: A time step must be this large relative to the times, or adding it to the time changes nothing.
TIME_RESOLUTION = 1e-9
ELEMENT_PATTERN = re.compile(r"^(?P<name>.+?)\s*\[\s*(?P<element>[^\]]+?)\s*\]$")


@dataclass(frozen=True)
class Scenario:
    """A scenario with ``extends`` already merged in.

    ``origins`` remembers which file set each parameter, so an error about a value
    inherited from a parent scenario names the parent file.
    """

    name: str
    description: str = ""
    params: dict[str, Value] = field(default_factory=dict)
    time: dict[str, float] = field(default_factory=dict)
    source: str = "<inline>"
    origins: dict[str, str] = field(default_factory=dict)

    def with_overrides(self, params: dict[str, Value], time: dict[str, float], source: str) -> Scenario:
        """A copy with command-line settings applied on top (they win over the file)."""
        return Scenario(
            name=self.name,
            description=self.description,
            params={**self.params, **params},
            time={**self.time, **time},
            source=self.source,
            origins={**self.origins, **{key: source for key in params}, **{f"time.{k}": source for k in time}},
        )

    def to_dict(self) -> dict:
        """The resolved scenario as plain data, the way it is written into provenance."""
        params = {k: ({str(t): v for t, v in val} if isinstance(val, tuple) else val) for k, val in self.params.items()}
        data: dict = {"name": self.name, "description": self.description, "params": params}
        if self.time:
            data["time"] = dict(self.time)
        return data


@dataclass(frozen=True)
class Setting:
    """One validated change to a model constant, in the engine's own names."""

    py_name: str
    value: Value
    element: tuple[str, str] | None = None  # (dimension, element) for one subscript element


@dataclass(frozen=True)
class RunSpec:
    """What an engine needs to run one scenario."""

    name: str
    settings: tuple[Setting, ...]
    time: dict[str, float]
    #: absolute paths of files holding the values of the model's data variables (PySD's ``data_files``)
    data_files: tuple[str, ...] = ()


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped with the model, baseline first."""
    names = sorted(path.stem for path in scenarios_dir().glob("*.toml"))
    return sorted(names, key=lambda n: n != "baseline")


def find_scenario(ref: str | Path, near: Path | None = None) -> Path:
    """The file for a scenario reference: a path to a TOML file, or a scenario's name.

    A name is looked up beside the referring file first (so user scenarios can
    extend each other), then among the bundled scenarios.
    """
    text = str(ref)
    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text
    if looks_like_path:
        path = Path(text)
        if near is not None and not path.is_absolute():
            path = near / path
        if path.is_file():
            return path
        raise InputError(
            source=text, key=None, problem="scenario file not found", fix="check the path, or give a bundled scenario's name"
        )
    candidates = ([near / f"{text}.toml"] if near is not None else []) + [scenarios_dir() / f"{text}.toml"]
    for path in candidates:
        if path.is_file():
            return path
    known = bundled_scenarios()
    close = difflib.get_close_matches(text, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"bundled scenarios are: {', '.join(known)}"
    raise InputError(source=text, key=None, problem="no such scenario", fix=hint)


def with_baseline(scenarios: Iterable[str | Path | Scenario], baseline: str | Path) -> list[Scenario]:
    """The scenarios, loaded, with the baseline first unless they already hold it: a result is read against it."""
    chosen = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    base = load_scenario(baseline)
    return chosen if base.name in [s.name for s in chosen] else [base, *chosen]


def load_scenario(ref: str | Path) -> Scenario:
    """Load a scenario by bundled name or TOML path, with ``extends`` resolved."""
    return _load(find_scenario(ref), chain=())


def _load(path: Path, chain: tuple[Path, ...]) -> Scenario:
    resolved_path = path.resolve()
    if resolved_path in chain:
        cycle = " -> ".join(p.name for p in (*chain, resolved_path))
        raise InputError(
            source=path, key="extends", problem=f"scenarios extend each other in a cycle ({cycle})", fix="remove one `extends`"
        )
    if len(chain) >= MAX_EXTENDS:  # each step is a recursive call: a chain of a thousand files exhausts Python's stack
        raise InputError(
            source=path,
            key="extends",
            problem=f"more than {MAX_EXTENDS} scenarios extend one another",
            fix="extend a scenario nearer the baseline",
        )
    document = _read_toml(path)
    _check_shape(document, path)
    name = document.get("name", path.stem)
    params = {key: _parse_value(value, path, f"params.{toml_key(key)}") for key, value in document.get("params", {}).items()}
    time = {key: _parse_time(key, value, path) for key, value in document.get("time", {}).items()}
    origins = {key: str(path) for key in params} | {f"time.{key}": str(path) for key in time}
    if "extends" in document:
        try:
            parent_path = find_scenario(document["extends"], near=path.parent)
        except InputError as error:  # name the file that says `extends`, not just the missing name
            raise InputError(
                source=path, key="extends", problem=f"'{document['extends']}': {error.problem}", fix=error.fix
            ) from None
        parent = _load(parent_path, chain=(*chain, resolved_path))
        params = {**parent.params, **params}
        time = {**parent.time, **time}
        origins = {**parent.origins, **origins}
    return Scenario(
        name=name, description=document.get("description", ""), params=params, time=time, source=str(path), origins=origins
    )


def _read_toml(path: Path) -> dict:
    document = read_toml(path, "see models/scenarios/ for examples")
    if not document:  # empty or only comments: almost always a truncated or wrong file, never meant as the baseline
        raise InputError(
            source=path,
            key=None,
            problem="the file sets nothing (it is empty or holds only comments)",
            fix='give the scenario at least a name and what it sets, e.g. name = "my-strike" and [params]',
        )
    return document


def _check_shape(document: dict, path: Path) -> None:
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"allowed keys are {', '.join(TOP_LEVEL_KEYS)}"
            raise InputError(source=path, key=key, problem="unknown key", fix=fix)
    for key in ("name", "description", "extends"):
        if key in document and not isinstance(document[key], str):
            raise InputError(source=path, key=key, problem="must be a string", fix=f'write it in quotes, e.g. {key} = "..."')
        if key in document and "\x00" in document[key]:  # NetCDF would cut the text there
            raise InputError(source=path, key=key, problem="contains a NUL character (\\u0000)", fix="remove it")
    if "name" in document and not NAME_PATTERN.match(document["name"]):
        problem = f"'{document['name']}' is not a usable scenario name"
        raise InputError(source=path, key="name", problem=problem, fix="use up to 100 letters, digits, '-', '_' or '.'")
    for key in ("params", "time"):
        if key in document and not isinstance(document[key], dict):
            raise InputError(source=path, key=key, problem="must be a table", fix=f"write it as a [{key}] section")


def _parse_value(value: object, source: str | Path, key: str) -> Value:
    """A number, or a table of time -> value (a time series the engine interpolates)."""
    if not isinstance(value, dict):
        return finite_number(value, source, key)
    if not value:
        raise InputError(
            source=source, key=key, problem="the time series is empty", fix='give at least one point, e.g. {"2030" = 0.5}'
        )
    points = []
    for time_text, point in value.items():
        time = float(time_text) if NUMBER.fullmatch(time_text.strip()) else math.nan
        if not math.isfinite(time):  # float() also reads "nan", "inf" and "1e400", and "20_30" as 2030
            fix = 'write them as years, e.g. "2030" = 0.5'
            raise InputError(source=source, key=f"{key}.{time_text}", problem="time series keys must be times", fix=fix)
        points.append((time, finite_number(point, source, f"{key}.{time_text}")))
    return tuple(sorted(points))


def _parse_time(key: str, value: object, source: Path) -> float:
    if key not in TIME_CONTROLS:
        close = difflib.get_close_matches(key, list(TIME_CONTROLS), n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"allowed keys are {', '.join(TIME_CONTROLS)}"
        raise InputError(source=source, key=f"time.{key}", problem="unknown key", fix=fix)
    number = finite_number(value, source, f"time.{key}")
    if key in ("time_step", "saveper") and number <= 0:
        raise InputError(
            source=source, key=f"time.{key}", problem=f"{number:g} is not positive", fix="give a step above 0, e.g. 0.0625"
        )
    return number


def parse_assignment(text: str) -> tuple[str, float]:
    """Parse a command-line ``NAME=VALUE``.

    >>> parse_assignment("data strike fraction=0.5")
    ('data strike fraction', 0.5)
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InputError(source="--set", key=text, problem="expected NAME=VALUE", fix='e.g. --set "data strike fraction=0.5"')
    return name.strip(), number_from_text(value, "--set", name.strip())


def parse_assignments(texts: Iterable[str]) -> dict[str, float]:
    """Every ``--set NAME=VALUE``, refusing a name given twice (its last value won, silently).

    >>> parse_assignments(["x=1", "y=2"])
    {'x': 1.0, 'y': 2.0}
    """
    found: dict[str, float] = {}
    for text in texts:
        name, value = parse_assignment(text)
        if name in found:
            problem = f"is given twice ({shown(found[name])} and {shown(value)})"
            raise InputError(source="--set", key=name, problem=problem, fix="give each constant once")
        found[name] = value
    return found


def validate(scenario: Scenario, model: ModelInfo, defaults: dict[str, float]) -> RunSpec:
    """Check a scenario against a model and turn it into engine settings.

    ``defaults`` holds the model's own time controls, so that a scenario that only
    moves ``final_time`` is still checked against the model's ``initial_time``.
    """
    settings: dict[tuple[str, tuple[str, str] | None], tuple[Setting, str, str]] = {}
    for key, value in scenario.params.items():
        source = scenario.origins.get(key, scenario.source)
        setting = _setting(key, value, model, source)
        slot = (setting.py_name, setting.element)
        if slot in settings:
            _, other, other_source = settings.pop(slot)
            if other_source == source:  # one file, or --set, names it twice in two spellings: which did it mean?
                name = model.variables[setting.py_name].name
                problem = f"sets '{name}' a second time (also as {toml_key(other)})"
                raise InputError(
                    source=source, key=f"params.{toml_key(key)}", problem=problem, fix="set each constant once, in one spelling"
                )
            # else a scenario, or --set, overrides the one it extends in another spelling: it wins, as in the same spelling
        settings[slot] = (setting, key, source)
    time = dict(scenario.time)
    _check_time(scenario, time, {**defaults, **time}, model)
    return RunSpec(name=scenario.name, settings=tuple(setting for setting, _, _ in settings.values()), time=time)


def _check_time(scenario: Scenario, time: dict[str, float], merged: dict[str, float], model: ModelInfo) -> None:
    """The scenario's time grid: finite, in the model's documented ranges, and one an engine can step through."""

    def source(key: str) -> str:
        return scenario.origins.get(key, scenario.source)

    def blame(*keys: str) -> str:  # the first of these the scenario sets (else the last: the model's own)
        return next((f"time.{k}" for k in keys if k in time), f"time.{keys[-1]}")

    for name, value in time.items():  # the file's values are checked on loading; --final-time's are not
        finite_number(value, source(f"time.{name}"), f"time.{name}")
        control = model.variables.get(name)
        if control is not None:
            check_range(value, control, source(f"time.{name}"), f"time.{name}")
    if merged.get("final_time", math.inf) <= merged.get("initial_time", -math.inf):
        key = blame("final_time", "initial_time")
        problem = f"final_time {merged['final_time']:g} is not after initial_time {merged['initial_time']:g}"
        if key == "time.final_time" and "initial_time" in time and source("time.initial_time") != source(key):
            problem += f" (time.initial_time is set in {source('time.initial_time')})"  # e.g. --final-time against a file
        raise InputError(source=source(key), key=key, problem=problem, fix="make final_time later than initial_time")
    if merged.get("saveper", math.inf) < merged.get("time_step", 0):
        key = blame("saveper", "time_step")
        raise InputError(
            source=source(key), key=key, problem="saveper is shorter than time_step", fix="make saveper a multiple of time_step"
        )
    if not {"initial_time", "final_time", "time_step"} <= merged.keys():
        return  # no grid to check (a model of unknown time controls)
    start, stop, step = merged["initial_time"], merged["final_time"], merged["time_step"]
    if step < TIME_RESOLUTION * max(abs(start), abs(stop)):
        key = "time.time_step" if "time_step" in time else blame("initial_time", "final_time")
        largest = max(abs(start), abs(stop))
        problem = f"time_step {step:g} is too small for times near {largest:g}: adding it would not move the time"
        raise InputError(
            source=source(key), key=key, problem=problem, fix="give times nearer the model's years, or a larger time_step"
        )
    if (stop - start) / step > MAX_STEPS:
        key = blame("time_step", "initial_time", "final_time")
        problem = f"{(stop - start) / step:.3g} time steps from {start:g} to {stop:g} is more than {MAX_STEPS}"
        raise InputError(source=source(key), key=key, problem=problem, fix="give a larger time_step or a shorter period")
    if ("saveper" in time or "time_step" in time) and "saveper" in merged:
        ratio = merged["saveper"] / step
        if abs(ratio - round(ratio)) > 1e-6 * ratio:  # else engines disagree on which times to save, and drop some
            key = blame("saveper", "time_step")
            problem = f"saveper {merged['saveper']:g} is not a multiple of time_step {step:g}"
            raise InputError(
                source=source(key), key=key, problem=problem, fix="make saveper a multiple of time_step, e.g. 4 steps"
            )
    save = merged.get("saveper", step)
    saves = (stop - start) / save
    if time and abs(saves - round(saves)) > 1e-6 * max(1.0, saves):  # engines stop at the last save before it
        key = blame("final_time", "initial_time", "saveper", "time_step")
        last = float(f"{start + math.floor(saves) * save:.12g}")
        problem = f"final_time {shown(stop)} is not on the save grid (every {shown(save)} from {shown(start)}): the run would end at {shown(last)}"
        fix = f"give a final time on it, e.g. {shown(last)} or {shown(float(f'{last + save:.12g}'))}"
        raise InputError(source=source(key), key=key, problem=problem, fix=fix)


def _setting(key: str, value: Value, model: ModelInfo, source: str) -> Setting:
    where = f"params.{toml_key(key)}"
    match = ELEMENT_PATTERN.match(key)
    element = None
    name = key
    if match:
        name = match["name"]
    variable = model.resolve(name, source, where)
    if variable.py_name in TIME_CONTROLS:
        raise InputError(
            source=source,
            key=where,
            problem="is a simulation-control setting",
            fix=f"set it in the [time] table as {variable.py_name}",
        )
    if variable.kind != "constant":
        raise InputError(
            source=source,
            key=where,
            problem=f"'{variable.name}' is a {variable.kind} computed by the model, not a constant",
            fix="set one of the constants it depends on (see models/README.md)",
        )
    if match:
        element = find_element(variable.dims, match["element"], model, source, where)
    numbers = [v for _, v in value] if isinstance(value, tuple) else [value]
    for number in numbers:
        check_range(number, variable, source, where)
    return Setting(py_name=variable.py_name, value=value, element=element)


def find_element(dims: tuple[str, ...], element: str, model: ModelInfo, source: str, where: str) -> tuple[str, str]:
    """The (dim, element) a written element names, whatever its case, or an InputError listing the elements."""
    element = element.strip()
    for dim in dims:
        elements = model.subscripts.get(dim, ())
        for known in elements:
            if known.lower() == element.lower():
                return dim, known
    choices = [e for dim in dims for e in model.subscripts.get(dim, ())]
    if not choices:
        raise InputError(source=source, key=where, problem="the variable has no subscripts", fix="drop the [element] part")
    raise InputError(
        source=source,
        key=where,
        problem=f"'{element}' is not an element of {', '.join(dims)}",
        fix=f"use one of: {', '.join(choices)}",
    )
