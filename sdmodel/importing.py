"""Reading other tools' formats: Vensim changes files into scenarios, and exported results back into Datasets.

A colleague's Vensim changes file (``.cin``) becomes a scenario TOML, checked
against the model like any scenario, so that a policy experiment set up in
Vensim can be run, compared and saved here. The result readers take the files
:mod:`sdmodel.export` writes (and Vensim's own tab and dat files of the same
model) and give back a Dataset shaped like ``sdmodel.run``'s, so that a
comparison with Vensim's numbers is one subtraction.

What a changes file may hold (Vensim's reference, "Constant Input Files"):
``NAME= 1.5``, ``NAME[element]= 2``, ``NAME[Dimension]= 1, 0`` (one value per
element, or one for all), blank lines and ``{comments}``; names ignore case and
treat spaces and underscores alike. Lookups (``NAME( (x,y),... )``), string
variables and optimisation ranges are refused with one line saying why:
scenarios set constants only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sdmodel.errors import InputError, read_text
from sdmodel.model import TIME_CONTROLS, ModelInfo, Variable, normalise
from sdmodel.scenario import NAME_PATTERN, Scenario, Value
from sdmodel.simulate import model_info

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", re.ASCII)  # Vensim's numbers: ASCII digits only
_CONSTANT = re.compile(r"^(?P<name>[^=\[\]()<>:]+?)\s*(\[(?P<subs>[^\]]*)\])?\s*=\s*(?P<values>.*)$")
_LOOKUP = re.compile(r"^(?P<name>[^=\[\]()<>:]+?)\s*(\[(?P<subs>[^\]]*)\])?\s*\(")
_LABEL = re.compile(r"^(?P<name>.+?)\s*(\[(?P<subs>[^\]]*)\])?$")
CONSTANT_FORM = "write constants as NAME= value or NAME[element]= value"


# --------------------------------------------------------------------------- changes files


def import_cin(path: str | Path, name: str | None = None, model: str | Path | None = None) -> Scenario:
    """A Vensim changes file as a scenario, validated against the model (bundled by default).

    Keys are the model's own names (``"data strike fraction"``,
    ``"strike target[challenger]"``), whatever case or underscores the file used;
    ``INITIAL TIME``, ``FINAL TIME``, ``TIME STEP`` and ``SAVEPER`` go to ``[time]``.
    A later line for the same constant wins, as in Vensim.
    """
    from sdmodel.locations import default_model
    from sdmodel.simulate import prepare

    path = Path(path)
    model_path = Path(model) if model else default_model()
    info = model_info(model_path)
    params: dict[str, Value] = {}
    time: dict[str, float] = {}
    origins: dict[str, str] = {}
    for number, line in _logical_lines(path):
        where = f"line {number}"
        for key, value in _changes(line, info, str(path), where):
            target = time if key in TIME_CONTROLS else params
            _assign(target, key, value)
            origins[f"time.{key}" if key in TIME_CONTROLS else key] = f"{path}: {where}"
    scenario_name = name or path.stem
    if not NAME_PATTERN.match(scenario_name):
        raise InputError(
            source="--name" if name else path,
            key=None,
            problem=f"'{scenario_name}' is not a usable scenario name",
            fix="give one with --name (letters, digits, '-', '_' or '.')",
        )
    scenario = Scenario(scenario_name, f"Imported from the Vensim changes file {path.name}", params, time, str(path), origins)
    prepare([scenario], model=model_path)  # ranges, kinds and the time grid, as for any scenario
    return scenario


def scenario_toml(scenario: Scenario) -> str:
    """A scenario as the TOML file ``load_scenario`` reads back to the same scenario."""
    import tomli_w

    return tomli_w.dumps(scenario.to_dict())


def _logical_lines(path: Path) -> Iterable[tuple[int, str]]:
    """(first line number, text) of each change: ``{comments}`` removed, ``\\`` continuations joined."""
    text = read_text(path)
    text = re.sub(r"\{[^}]*\}", lambda match: "\n" * match[0].count("\n"), text)  # comments, keeping line numbers
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = (pending + line).strip(), ""
        if logical:
            yield start, logical
    if pending.strip():
        yield start, pending.strip()


def _changes(line: str, info: ModelInfo, source: str, where: str) -> list[tuple[str, float]]:
    """The (key, value) changes one line makes, or the one-line error saying why it cannot."""
    if ":IS:" in line.upper():
        raise InputError(source=source, key=where, problem="string variables are not supported", fix=CONSTANT_FORM)
    if "<=" in line or ">=" in line:
        raise InputError(
            source=source,
            key=where,
            problem="optimisation ranges (min <= NAME = value <= max) are not supported",
            fix=CONSTANT_FORM,
        )
    constant = _CONSTANT.match(line)
    if constant is None:
        lookup = _LOOKUP.match(line)
        if lookup is not None:
            raise _lookup_error(info.resolve(lookup["name"].strip(), source, where), source, where)
        raise InputError(
            source=source, key=where, problem=f"'{_short(line)}' is not a constant or lookup change", fix=CONSTANT_FORM
        )
    variable = info.resolve(constant["name"].strip(), source, where)
    values = [v.strip() for v in constant["values"].split(",")]
    if not all(_NUMBER.match(v) for v in values):
        raise InputError(
            source=source,
            key=where,
            problem=f"'{_short(constant['values'].strip())}' is not a number",
            fix="a changes file sets constants to numbers, e.g. NAME= 0.5",
        )
    numbers = [float(v) for v in values]
    if variable.py_name in TIME_CONTROLS:
        if constant["subs"] is not None or len(numbers) != 1:
            raise InputError(
                source=source, key=where, problem=f"{variable.name} takes one number", fix=f"write {variable.name}= value"
            )
        return [(variable.py_name, numbers[0])]
    return _subscripted(variable, constant["subs"], numbers, info, source, where)


def _subscripted(
    variable: Variable, subs: str | None, numbers: list[float], info: ModelInfo, source: str, where: str
) -> list[tuple[str, float]]:
    """Keys for ``NAME``, ``NAME[element]`` or ``NAME[Dimension]`` with one value, or one per element."""
    if subs is None or not variable.dims:
        if subs is not None:
            raise InputError(
                source=source, key=where, problem=f"'{variable.name}' has no subscripts", fix=f"write {variable.name}= value"
            )
        if len(numbers) != 1:
            raise InputError(
                source=source,
                key=where,
                problem=f"'{variable.name}' takes one number, not {len(numbers)}",
                fix=f"write {variable.name}= value",
            )
        return [(variable.name, numbers[0])]
    parts = [s.strip() for s in subs.split(",")]
    if len(parts) != 1 or len(variable.dims) != 1:
        raise InputError(
            source=source,
            key=where,
            problem="only variables with one subscript range can be changed",
            fix="set one element at a time, e.g. NAME[element]= value",
        )
    dim, elements = variable.dims[0], info.subscripts.get(variable.dims[0], ())
    if normalise(parts[0]) == normalise(dim):
        if len(numbers) == 1:
            return [(variable.name, numbers[0])]
        if len(numbers) != len(elements):
            raise InputError(
                source=source,
                key=where,
                problem=f"{len(numbers)} values for the {len(elements)} elements of {dim}",
                fix=f"give one value, or one for each of: {', '.join(elements)}",
            )
        return [(f"{variable.name}[{element}]", value) for element, value in zip(elements, numbers)]
    element = next((e for e in elements if normalise(e) == normalise(parts[0])), None)
    if element is None:
        raise InputError(
            source=source,
            key=where,
            problem=f"'{parts[0]}' is not an element of {dim}",
            fix=f"use {dim} or one of: {', '.join(elements)}",
        )
    if len(numbers) != 1:
        raise InputError(
            source=source,
            key=where,
            problem=f"one element takes one number, not {len(numbers)}",
            fix=f"write {variable.name}[{element}]= value",
        )
    return [(f"{variable.name}[{element}]", numbers[0])]


def _lookup_error(variable: Variable, source: str, where: str) -> InputError:
    if variable.kind == "lookup":
        return InputError(
            source=source,
            key=where,
            problem=f"'{variable.name}' is a lookup table, and scenarios cannot change lookup tables",
            fix="change the constants it depends on instead",
        )
    return InputError(
        source=source,
        key=where,
        problem=f"'{variable.name}' is a {variable.kind}, not a lookup: a table cannot replace it",
        fix=CONSTANT_FORM,
    )


def _assign(target: dict, key: str, value: float) -> None:
    """Set a change so that later lines win: a whole-variable change drops earlier element changes."""
    target.pop(key, None)
    if "[" not in key:
        for other in [k for k in target if k.startswith(f"{key}[")]:
            del target[other]
    target[key] = value


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- results


def read_tab(paths: str | Path | Iterable[str | Path], model: str | Path | None = None) -> xr.Dataset:
    """Vensim tab files (``Time`` then a column per variable), one per scenario named by the file's stem."""
    return _read_each(paths, model, _tab_table)


def read_dat(paths: str | Path | Iterable[str | Path], model: str | Path | None = None) -> xr.Dataset:
    """Vensim / SDEverywhere ``.dat`` files (name line, then ``time<TAB>value`` lines), one per scenario."""
    return _read_each(paths, model, _dat_table)


def read_csv(path: str | Path, model: str | Path | None = None) -> xr.Dataset:
    """A tidy or wide CSV as :mod:`sdmodel.export` writes it, back into a Dataset."""
    path = Path(path)
    frame = _read_frame(path, sep=",", dtype={"scenario": str, "variable": str, "subscripts": str})
    if {"variable", "value"} <= set(frame.columns):
        tables = _tidy_tables(frame, path)
    elif {"scenario", "time"} <= set(frame.columns):
        tables = {
            str(s): (group["time"].to_numpy(float), {c: group[c].to_numpy(float) for c in frame.columns[2:]})
            for s, group in frame.groupby("scenario", sort=False)
        }
    else:
        raise InputError(
            source=path,
            key=None,
            problem="neither a tidy nor a wide sdmodel CSV",
            fix="export it again with `sdmodel export RUN --to csv`",
        )
    return _dataset(tables, model_info(model), str(path))


def _read_each(paths, model, parse) -> xr.Dataset:
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    return _dataset({path.stem: parse(path) for path in paths}, model_info(model), ", ".join(map(str, paths)))


def _read_frame(path: Path, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(path, na_values=[":NA:"], **options)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(
            source=path, key=None, problem=f"cannot read the table ({str(error).splitlines()[0]})", fix="export it again"
        ) from None


def _tab_table(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    frame = _read_frame(path, sep="\t")
    if frame.columns[0].strip().lower() != "time":
        raise InputError(
            source=path,
            key=None,
            problem=f"the first column is '{frame.columns[0]}', not Time",
            fix="export the tab file with time running down",
        )
    return frame.iloc[:, 0].to_numpy(float), {str(c): frame[c].to_numpy(float) for c in frame.columns[1:]}


def _dat_table(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    series: dict[str, dict[float, float]] = {}
    current = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(source=path, key=None, problem=f"cannot read the file ({error})", fix="check the path") from None
    for number, line in enumerate(lines, start=1):
        fields = line.strip().split("\t") if "\t" in line else line.split()
        if not line.strip():
            continue
        if len(fields) == 2 and all(_NUMBER.match(f.strip()) or f.strip() == ":NA:" for f in fields):
            if current is None:
                raise InputError(
                    source=path,
                    key=f"line {number}",
                    problem="a value before any variable name",
                    fix="start with the variable's name on a line of its own",
                )
            value = math.nan if fields[1].strip() == ":NA:" else float(fields[1])
            series[current][float(fields[0])] = value
        else:
            current = line.strip()
            series[current] = {}
    times = np.array(sorted({t for values in series.values() for t in values}), dtype=float)
    return times, {name: np.array([values.get(t, math.nan) for t in times]) for name, values in series.items()}


def _tidy_tables(frame: pd.DataFrame, path: Path) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    frame = frame.assign(subscripts=frame["subscripts"].fillna(""))
    tables = {}
    for scenario, rows in frame.groupby("scenario", sort=False):
        times = np.array(sorted(rows["time"].dropna().unique()), dtype=float)
        columns = {}
        for (variable, subscripts), group in rows.groupby(["variable", "subscripts"], sort=False):
            label = f"{variable}[{subscripts}]" if subscripts else variable
            if group["time"].isna().all():
                columns[label] = np.full(len(times), float(group["value"].iloc[0]))
            else:
                columns[label] = group.set_index("time")["value"].reindex(times).to_numpy(float)
        tables[str(scenario)] = (times, columns)
    return tables


def _dataset(tables: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], info: ModelInfo, source: str) -> xr.Dataset:
    """Per-scenario columns into one Dataset shaped like ``sdmodel.run``'s results."""
    parts = [_scenario_dataset(times, columns, info, source) for times, columns in tables.values()]
    dataset = xr.concat(
        parts, dim=xr.DataArray(list(tables), dims="scenario", name="scenario"), data_vars="all", coords="minimal"
    )
    dataset["scenario"].attrs = {"long_name": "Scenario"}
    return dataset


def _scenario_dataset(times: np.ndarray, columns: dict[str, np.ndarray], info: ModelInfo, source: str) -> xr.Dataset:
    grouped: dict[str, dict[tuple[str, ...], np.ndarray]] = {}
    for label, values in columns.items():
        match = _LABEL.match(label.strip())
        variable = info.resolve(match["name"], source, label)
        subs = tuple(s.strip() for s in match["subs"].split(",")) if match["subs"] else ()
        grouped.setdefault(variable.py_name, {})[subs] = values
    data = {}
    for py_name, elements in grouped.items():
        variable = info.variables[py_name]
        coords = {dim: list(info.subscripts.get(dim, ())) for dim in variable.dims}
        array = xr.DataArray(_fill(elements, coords, len(times)), coords={"time": times, **coords}, dims=["time", *coords])
        if variable.kind == "constant" and bool((array == array.isel(time=0)).all()):
            array = array.isel(time=0, drop=True)  # as the engines do: a constant needs no time axis
        array.attrs = variable.attrs
        data[py_name] = array
    dataset = xr.Dataset(data)
    dataset["time"].attrs = {"units": "year", "long_name": "Time"}
    return dataset


def _fill(elements: dict[tuple[str, ...], np.ndarray], coords: dict[str, list[str]], steps: int) -> np.ndarray:
    """An array (time, *dims) from one column per element; elements not in the file stay NaN."""
    shape = (steps, *(len(e) for e in coords.values()))
    array = np.full(shape, np.nan)
    index = {dim: {normalise(e): i for i, e in enumerate(names)} for dim, names in coords.items()}
    for subs, values in elements.items():
        position = tuple(index[dim].get(normalise(s), -1) for dim, s in zip(coords, subs))
        if len(subs) == len(coords) and -1 not in position:
            array[(slice(None), *position)] = values
    return array
