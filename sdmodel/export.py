"""Writing other tools' formats, so results and scenarios travel to colleagues who use other tools.

- ``cin``: a Vensim changes file of a scenario's constants (Vensim loads it under
  Simulation Control > Changes). A changes file can only set a Constant to a
  number or replace a Lookup's table; our time series change *constants* over
  time, which Vensim cannot express in a changes file, so they are refused
  rather than written as a lookup that would mean something else.
- ``tab``: Vensim's tab-delimited dataset, time running down: ``Time`` then one
  column per variable, Vensim names, ``Name[element]`` for subscripts; one file
  per scenario (Vensim datasets hold one run each).
- ``dat``: the Vensim / SDEverywhere ``.dat`` layout: a variable's name on a
  line of its own, then ``time<TAB>value`` lines; one file per scenario.
- ``csv``: a tidy table (``scenario, variable, subscripts, time, value``) for
  pandas, R and spreadsheets, and a wide one (a row per scenario and time).
- ``netcdf``: the Dataset as the run store keeps it.
- ``xmile``: the model with a scenario's constants written into it, as XMILE
  that both PySD and Simlin open and run (see :func:`xmile_text`).

Constants have no time axis in a Dataset; the tab, dat and wide CSV layouts
have a value per time, so constants are repeated at every time there. Numbers
are written with Python's shortest round-trip ``repr``, so reading a file back
gives the very same floats.

**Where files go** (``--out``): a folder, created if missing (default: the
current folder). Per-scenario formats (cin, tab, dat, xmile) write
``<scenario>.<ext>``; whole-run formats write ``<name>.nc`` or ``<name>.csv`` and
``<name>-wide.csv``, where ``<name>`` is the run's folder name or the
scenario's name. If ``--out`` ends with the format's own suffix (``.cin``,
``.tab``, ``.dat``, ``.csv``, ``.nc``, ``.xmile``) and the export makes one file,
that is the file written (for csv, the wide table goes beside it as
``<stem>-wide.csv``). Existing files are replaced, each atomically.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sdmodel import atomic
from sdmodel.errors import InputError
from sdmodel.model import ModelInfo, normalise
from sdmodel.scenario import Scenario, Setting, Value, bundled_scenarios, load_scenario
from sdmodel.store import TRAJECTORY_KINDS

FORMATS = ("cin", "tab", "dat", "csv", "netcdf", "xmile")
SUFFIXES = {"cin": ".cin", "tab": ".tab", "dat": ".dat", "csv": ".csv", "netcdf": ".nc", "xmile": ".xmile"}
NON_SUBSCRIPT_DIMS = ("scenario", "run", "time")
TIDY_COLUMNS = ("variable", "subscripts", "time", "value")

XMILE_NS = "http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"
ISEE_NS = "http://iseesystems.com/XMILE"
_X = f"{{{XMILE_NS}}}"
#: array functions over a whole dimension (``SUM(x[*])``), written element by element
REDUCTIONS = ("SUM", "PROD", "MEAN", "MAX", "MIN")
_REDUCTION = re.compile(
    rf"\b(?P<func>{'|'.join(REDUCTIONS)})\s*\(\s*(?P<name>[A-Za-z_][\w.]*|\"[^\"]+\")\s*\[(?P<subs>[^\]]*)\]\s*\)", re.IGNORECASE
)
_WILDCARD = re.compile(r"\[[^\]]*(\*|!)[^\]]*\]")


# --------------------------------------------------------------------------- tables


def to_dataframe(results: xr.Dataset) -> pd.DataFrame:
    """The results as a tidy table: ``scenario, variable, subscripts, time, value``, one row per number.

    Tidy rows are what pandas, R and plotting libraries group and filter by.
    ``variable`` is the Dataset's (PySD's Python) name; ``subscripts`` the element
    names joined by commas ('' for none); ``time`` is NaN for a constant, which has
    no time axis in the Dataset (the table is an exact image of it). An ensemble's
    ``run`` dimension becomes a column after ``scenario``.
    """
    leading = [dim for dim in ("scenario", "run") if dim in results.dims]
    frames = [_tidy(str(name), results[name], leading) for name in results.data_vars]
    if not frames:
        return pd.DataFrame(columns=[*leading, *TIDY_COLUMNS])
    frame = pd.concat(frames, ignore_index=True)
    if leading:  # group by scenario, in the Dataset's order of scenarios
        order = {dim: {value: i for i, value in enumerate(results[dim].values)} for dim in leading}
        frame = frame.sort_values(leading, kind="stable", ignore_index=True, key=lambda column: column.map(order[column.name]))
    return frame


def _tidy(name: str, array: xr.DataArray, leading: list[str]) -> pd.DataFrame:
    subscripts = [dim for dim in array.dims if dim not in NON_SUBSCRIPT_DIMS]
    frame = array.to_series().rename("value").reset_index() if array.dims else pd.DataFrame({"value": [float(array.item())]})
    frame["variable"] = name
    frame["subscripts"] = frame[subscripts].astype(str).agg(",".join, axis=1) if subscripts else ""
    if "time" not in frame:
        frame["time"] = np.nan
    for dim in leading:
        if dim not in frame:
            frame[dim] = None  # a variable without the dimension (not made by sdmodel)
    return frame[[*leading, *TIDY_COLUMNS]]


def to_wide(results: xr.Dataset, vensim_names: bool = False) -> pd.DataFrame:
    """A row per scenario (and run) and time, a column per variable and element (``name[element]``).

    The layout spreadsheets and Vensim's tab files use. Constants are repeated at
    every time, and a variable without a scenario or run dimension (a robustness
    run's shares) in every row. A Dataset without a time axis (a search or discovery
    run) has a row per scenario and run, or one row. ``vensim_names`` labels columns
    with the model's own names (``long_name``) instead of the Dataset's Python names.
    """
    rows = [dim for dim in ("scenario", "run", "time") if dim in results.dims]
    columns: dict[str, np.ndarray] = {}
    for name, array in results.data_vars.items():
        label = str(array.attrs.get("long_name") or name) if vensim_names else str(name)
        columns.update(_columns(label, array, results, rows))
    if not rows:
        return pd.DataFrame(columns, index=[0])
    index = pd.MultiIndex.from_product([results[dim].values for dim in rows], names=rows)
    return pd.DataFrame(columns, index=index).reset_index()


def _columns(label: str, array: xr.DataArray, results: xr.Dataset, rows: list[str]) -> dict[str, np.ndarray]:
    """One column per element of a variable, broadcast over the Dataset's row dimensions (``rows``)."""
    subscripts = [dim for dim in array.dims if dim not in NON_SUBSCRIPT_DIMS]
    missing = {dim: results[dim] for dim in rows if dim not in array.dims}  # the Dataset's coordinates: the array may lack them
    array = array.expand_dims(missing) if missing else array
    array = array.transpose(*rows, *subscripts)
    values = array.values.reshape(int(np.prod([array.sizes[dim] for dim in rows])), -1)
    if not subscripts:
        return {label: values[:, 0]}
    elements = itertools.product(*(array[dim].values for dim in subscripts))
    return {f"{label}[{','.join(map(str, combo))}]": values[:, i] for i, combo in enumerate(elements)}


def tab_text(results: xr.Dataset) -> str:
    """Vensim's tab-delimited dataset of one scenario: ``Time`` then a column per variable (Vensim names)."""
    table = to_wide(_one_scenario(results), vensim_names=True)
    header = "\t".join(["Time", *table.columns[1:]])
    rows = ("\t".join(number(v) for v in row) for row in table.itertuples(index=False))
    return "\n".join([header, *rows]) + "\n"


def dat_text(results: xr.Dataset) -> str:
    """The Vensim / SDEverywhere ``.dat`` layout of one scenario: a name line, then ``time<TAB>value`` lines."""
    table = to_wide(_one_scenario(results), vensim_names=True)
    times = [number(t) for t in table["time"]]
    lines = []
    for column in table.columns[1:]:
        lines.append(str(column))
        lines.extend(f"{t}\t{number(v)}" for t, v in zip(times, table[column]))
    return "\n".join(lines) + "\n"


def _one_scenario(results: xr.Dataset) -> xr.Dataset:
    if "scenario" in results.dims:
        if results.sizes["scenario"] != 1:
            raise ValueError("tab and dat files hold one scenario each; select one first")
        return results.isel(scenario=0, drop=True)
    return results


def number(value: float) -> str:
    """A number as Vensim, SDEverywhere and CSV readers take it, and exactly the same float when read back.

    >>> number(2027.0), number(0.33), number(1e18)
    ('2027', '0.33', '1e+18')
    """
    value = float(value)
    if math.isnan(value):
        return ":NA:"  # Vensim's missing value
    text = repr(value)
    return text.removesuffix(".0")


# --------------------------------------------------------------------------- changes files


def cin_text(scenario: str | Path | Scenario, model: str | Path | None = None) -> str:
    """A Vensim changes file setting a scenario's constants: ``NAME= value``, ``NAME[element]= value``.

    Names are the model's own (Vensim) names, whatever the scenario wrote, because
    those are what Vensim looks up. A constant set as a whole on a subscripted
    variable becomes ``NAME[Dimension]= value``. The scenario's ``[time]`` settings
    become ``FINAL TIME= ...`` and the like, which are constants in Vensim. Time
    series cannot be written: see the module's documentation.
    """
    loaded, info, setting_pairs, time = _validated(scenario, model)
    lines = []
    for (key, value), setting in setting_pairs:
        variable = info.variables[setting.py_name]
        if isinstance(value, tuple):
            raise InputError(
                source=loaded.origins.get(key, loaded.source),
                key=f'params."{key}"',
                problem="is a time series, and a Vensim changes file can only set a constant to one number "
                "(a lookup there replaces a lookup table, it does not make a constant vary over time)",
                fix="export the scenario as xmile, or give one number",
            )
        lines.append(f"{_vensim_target(variable.name, variable.dims, setting)}= {number(value)}")
    for key, value in time.items():
        lines.append(f"{_time_control_name(info, key)}= {number(value)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _vensim_target(name: str, dims: tuple[str, ...], setting: Setting) -> str:
    if setting.element is not None:
        return f"{name}[{setting.element[1]}]"
    return f"{name}[{','.join(dims)}]" if dims else name


def _time_control_name(info: ModelInfo, key: str) -> str:
    variable = info.variables.get(key)
    return variable.name if variable is not None else key.replace("_", " ").upper()


def _validated(scenario: str | Path | Scenario, model: str | Path | None):
    """The scenario checked against the model, with each parameter beside its engine setting."""
    from sdmodel.simulate import prepare

    prepared = prepare([scenario], model=model)
    loaded, spec = prepared.scenarios[0], prepared.specs[0]
    return loaded, prepared.info, list(zip(loaded.params.items(), spec.settings)), dict(spec.time)


# --------------------------------------------------------------------------- XMILE


def xmile_text(scenario: str | Path | Scenario, model: str | Path | None = None) -> str:
    """The model as XMILE with the scenario's constants and ``[time]`` written in.

    Simlin translates the Vensim model to XMILE (the most complete .mdl to XMILE
    translator available to us); this function then writes the scenario in and
    makes the file portable between XMILE dialects, because PySD's reader differs
    from the standard that Simlin and Stella follow:

    - ``SUM(x[*])``, ``MAX(x[*])`` and the like are written out element by element
      (``(x[a] + x[b])``, ``MAX(x[a], x[b])``): PySD wants ``x[Dim!]``, Simlin the
      standard ``x[*]``, and both read the explicit form;
    - flow names in ``<inflow>``/``<outflow>`` use underscores, as in equations
      (PySD parses them as expressions, where a space is an error);
    - ``STARTTIME`` becomes ``INIT(TIME)``, and ``STOPTIME`` and ``DT`` become their
      numbers (PySD knows only ``TIME``);
    - a variable ``y = LOOKUP(table, x)`` carries the table's ``<gf>`` itself, with
      ``x`` as its equation (an embedded graphical function), and the table's own
      equation-less ``<aux>`` goes: PySD reads neither ``LOOKUP()`` nor an ``<aux>``
      without an equation, Simlin no standalone ``<gf>``; both read the embedded form;
    - a ``<gf>`` with ``<xpts>`` loses its ``<xscale>`` (a display range where the
      points are given): PySD spreads the points evenly over an ``<xscale>``
      whenever there is one, ignoring ``<xpts>``.

    A time series becomes a piecewise-linear expression in ``TIME`` that holds its
    end values, as PySD and Simlin interpolate scenario time series. PySD's XMILE
    reader saves every time step (it ignores ``isee:save_interval``), so compare at
    the scenario's save times.
    """
    loaded, info, setting_pairs, time = _validated(scenario, model)
    model_path = info.path
    root = _simlin_xmile(model_path)
    _apply_time(root, time)
    for _, setting in setting_pairs:
        _apply_setting(root, info, setting, model_path)
    _make_portable(root, model_path)
    _embed_lookups(root, model_path)
    ET.indent(root, space="    ")  # equations written in above get the file's layout
    note = f"sdmodel export: {model_path.name} (sha256 {info.sha256[:12]}) with scenario '{loaded.name}' applied"
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n<!-- {_comment(note)} -->\n{body}\n'


def _simlin_xmile(model_path: Path) -> ET.Element:
    from sdmodel.engines.simlin_structure import to_xmile  # only this export needs Simlin's translator

    text = to_xmile(model_path)
    ET.register_namespace("", XMILE_NS)  # XMILE elements unprefixed, as every XMILE reader expects
    for prefix, uri in re.findall(r'xmlns:(\w+)="([^"]+)"', text):
        ET.register_namespace(prefix, uri)  # keep ``isee:`` and ``simlin:`` as Stella and Simlin write them
    return ET.fromstring(text.encode("utf-8"))


def _apply_time(root: ET.Element, time: Mapping[str, float]) -> None:
    specs = root.find(f"{_X}sim_specs")
    tags = {"initial_time": "start", "final_time": "stop", "time_step": "dt"}
    for key, value in time.items():
        if key == "saveper":
            specs.set(f"{{{ISEE_NS}}}save_interval", number(value))
            continue
        node = specs.find(f"{_X}{tags[key]}")
        if node is None:
            node = ET.SubElement(specs, f"{_X}{tags[key]}")
        node.attrib.pop("reciprocal", None)
        node.text = number(value)


def _apply_setting(root: ET.Element, info: ModelInfo, setting: Setting, model_path: Path) -> None:
    """Write one scenario setting into the variable's equation (or one element's)."""
    variable = info.variables[setting.py_name]
    node = _variable_node(root, variable.name)
    if node is None:
        raise InputError(
            source=model_path,
            key=variable.name,
            problem="is missing from Simlin's XMILE translation",
            fix="export tab, dat or csv results instead",
        )
    expression = _expression(setting.value)
    if setting.element is None:
        for child in node.findall(f"{_X}element") + node.findall(f"{_X}eqn"):
            node.remove(child)
        _insert_eqn(node, expression)
        return
    dim_names = [dim.get("name") for dim in node.findall(f"{_X}dimensions/{_X}dim")]
    dim, element = setting.element
    position = next((i for i, name in enumerate(dim_names) if normalise(name) == normalise(dim)), None)
    if position is None:
        raise InputError(
            source=model_path,
            key=variable.name,
            problem=f"has no dimension {dim} in Simlin's XMILE translation",
            fix="export tab, dat or csv results instead",
        )
    _spread_elements(node, [_elements(root, name) for name in dim_names])
    for child in node.findall(f"{_X}element"):
        if normalise(child.get("subscript", "").split(",")[position]) == normalise(element):
            child.find(f"{_X}eqn").text = expression


def _variable_node(root: ET.Element, name: str) -> ET.Element | None:
    wanted = normalise(name.strip('"'))
    for node in root.iterfind(f"{_X}model/{_X}variables/*"):
        if normalise(node.get("name", "").strip('"')) == wanted:
            return node
    return None


def _insert_eqn(node: ET.Element, expression: str) -> None:
    dimensions = node.find(f"{_X}dimensions")
    eqn = ET.Element(f"{_X}eqn")
    eqn.text = expression
    node.insert(list(node).index(dimensions) + 1 if dimensions is not None else 0, eqn)


def _spread_elements(node: ET.Element, elements: list[list[str]]) -> None:
    """Give an apply-to-all arrayed equation one ``<element>`` per element, so one can change alone."""
    if node.find(f"{_X}element") is not None:
        return
    eqn = node.find(f"{_X}eqn")
    text = eqn.text if eqn is not None else "0"
    if eqn is not None:
        node.remove(eqn)
    dimensions = node.find(f"{_X}dimensions")
    position = list(node).index(dimensions) + 1 if dimensions is not None else 0
    for offset, combo in enumerate(itertools.product(*elements)):
        child = ET.Element(f"{_X}element", {"subscript": ",".join(combo)})
        ET.SubElement(child, f"{_X}eqn").text = text
        node.insert(position + offset, child)


def _elements(root: ET.Element, dim: str) -> list[str]:
    for node in root.iterfind(f"{_X}dimensions/{_X}dim"):
        if normalise(node.get("name", "")) == normalise(dim):
            names = [elem.get("name") for elem in node.findall(f"{_X}elem")]
            return names or [str(i) for i in range(1, int(node.get("size", "0")) + 1)]
    return []


def _expression(value: Value) -> str:
    """A number, or a time series as a piecewise-linear function of TIME that holds its ends.

    ``v0 + (v1 - v0) / (t1 - t0) * (MIN(MAX(TIME, t0), t1) - t0) + ...`` is
    ``numpy.interp`` written in XMILE, which is how the engines interpolate
    scenario time series.

    >>> _expression(((2021.0, 0.05), (2023.0, 0.2)))
    '0.05 + (0.2 - 0.05) / (2023 - 2021) * (MIN(MAX(TIME, 2021), 2023) - 2021)'
    """
    if not isinstance(value, tuple):
        return number(value)
    points = sorted(value)
    terms = [number(points[0][1])]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t1 > t0 and v1 != v0:
            slope = f"({number(v1)} - {number(v0)}) / ({number(t1)} - {number(t0)})"  # the points as given, not rounded
            terms.append(f"{slope} * (MIN(MAX(TIME, {number(t0)}), {number(t1)}) - {number(t0)})")
    return " + ".join(terms)


def _make_portable(root: ET.Element, model_path: Path) -> None:
    """Rewrite the XMILE that one of PySD and Simlin would refuse into a form both read."""
    dims_of = {
        normalise(node.get("name", "").strip('"')): [d.get("name") for d in node.findall(f"{_X}dimensions/{_X}dim")]
        for node in root.iterfind(f"{_X}model/{_X}variables/*")
    }
    specs = root.find(f"{_X}sim_specs")
    constants = {"STOPTIME": specs.findtext(f"{_X}stop"), "DT": _dt(specs)}
    for gf in root.iter(f"{_X}gf"):
        if gf.find(f"{_X}xpts") is not None and gf.find(f"{_X}xscale") is not None:
            gf.remove(gf.find(f"{_X}xscale"))
    for node in root.iterfind(f"{_X}model/{_X}variables/*"):
        for flow in node.findall(f"{_X}inflow") + node.findall(f"{_X}outflow"):
            flow.text = re.sub(r"\s+", "_", (flow.text or "").strip())
        for eqn in node.iter(f"{_X}eqn"):
            text = _expand_reductions(
                eqn.text or "", lambda name: dims_of.get(normalise(name.strip('"')), []), lambda dim: _elements(root, dim)
            )
            text = re.sub(r"\bSTARTTIME\b", "INIT(TIME)", text, flags=re.IGNORECASE)
            for word, value in constants.items():
                text = re.sub(rf"\b{word}\b", value, text, flags=re.IGNORECASE)
            if _WILDCARD.search(text):
                raise InputError(
                    source=model_path,
                    key=node.get("name"),
                    problem=f"uses an array expression PySD's XMILE reader cannot read ({text})",
                    fix="export tab, dat or csv results instead",
                )
            eqn.text = text


_LOOKUP_CALL = re.compile(
    r"^\s*LOOKUP\s*\(\s*(?P<table>[A-Za-z_][\w.]*|\"[^\"]+\")\s*,(?P<input>.*)\)\s*$", re.IGNORECASE | re.DOTALL
)


def _embed_lookups(root: ET.Element, model_path: Path) -> None:
    """``y = LOOKUP(table, x)`` -> ``y`` with equation ``x`` and the table's ``<gf>`` (see :func:`xmile_text`)."""
    variables = root.find(f"{_X}model/{_X}variables")
    tables = {
        normalise(node.get("name", "").strip('"')): node
        for node in variables
        if node.find(f"{_X}gf") is not None and node.find(f"{_X}eqn") is None and node.find(f"{_X}element") is None
    }
    if not tables:
        return
    for node in variables:
        for eqn in node.iter(f"{_X}eqn"):
            call = _LOOKUP_CALL.match(eqn.text or "")
            if call and normalise(call["table"].strip('"')) in tables:
                eqn.text = call["input"].strip()
                holder = _eqn_holder(node, eqn)
                holder.insert(
                    list(holder).index(eqn) + 1, copy.deepcopy(tables[normalise(call["table"].strip('"'))].find(f"{_X}gf"))
                )
            elif re.search(r"\bLOOKUP\s*\(", eqn.text or "", re.IGNORECASE):
                raise InputError(
                    source=model_path,
                    key=node.get("name"),
                    problem="calls a lookup inside a larger expression, which PySD's and Simlin's XMILE differ on",
                    fix="give the lookup's result a variable of its own in the model",
                )
    for table in tables.values():
        variables.remove(table)


def _eqn_holder(node: ET.Element, eqn: ET.Element) -> ET.Element:
    """The element an ``<eqn>`` sits in: the variable, or one of its ``<element>`` children."""
    return next((child for child in node.iter() if eqn in list(child)), node)


def _dt(specs: ET.Element) -> str:
    node = specs.find(f"{_X}dt")
    if node.get("reciprocal", "").lower() == "true":
        return number(1 / float(node.text))
    return node.text


def _expand_reductions(text: str, dims_of: Callable[[str], list[str]], elements_of: Callable[[str], list[str]]) -> str:
    """``SUM(x[*])`` -> ``(x[a] + x[b])``, ``MAX(x[*])`` -> ``MAX(x[a], x[b])``, and so on.

    >>> _expand_reductions("y / SUM(y[*])", lambda n: ["Firm"], lambda d: ["a", "b"])
    'y / (y[a] + y[b])'
    >>> _expand_reductions("MAX(c[*])", lambda n: ["Firm"], lambda d: ["a", "b", "c"])
    'MAX(MAX(c[a], c[b]), c[c])'
    """

    def expand(match: re.Match) -> str:
        subscripts = [s.strip() for s in match["subs"].split(",")]
        dims = dims_of(match["name"])
        if not any(s == "*" or s.endswith("!") for s in subscripts) or len(dims) != len(subscripts):
            return match[0]
        choices = [elements_of(dim) if s == "*" or s.endswith("!") else [s] for s, dim in zip(subscripts, dims)]
        refs = [f"{match['name']}[{','.join(combo)}]" for combo in itertools.product(*choices)]
        if not refs:
            return match[0]
        func = match["func"].upper()
        if func in ("MAX", "MIN"):
            return reduce(lambda a, b: f"{func}({a}, {b})", refs)
        if func == "MEAN":
            return f"(({' + '.join(refs)}) / {len(refs)})"
        return f"({(' * ' if func == 'PROD' else ' + ').join(refs)})"

    return _REDUCTION.sub(expand, text)


def _comment(text: str) -> str:
    return text.replace("--", "- -")


# --------------------------------------------------------------------------- files


def export_files(
    source: str | Path | Scenario,
    to: str,
    out: str | Path = ".",
    *,
    model: str | Path | None = None,
    overrides: Mapping[str, float] | None = None,
    final_time: float | None = None,
    runs_dir: str | Path | None = None,
    command: str | None = None,
    engine: str = "pysd",
    reuse: bool = False,
) -> list[Path]:
    """Export a saved run or a scenario (run first when results are needed) and return the files written.

    ``source`` is a run (folder, name, prefix or ``latest``) or a scenario (bundled
    name, TOML path or :class:`~sdmodel.scenario.Scenario`); ``model``,
    ``overrides`` and ``final_time`` apply to a scenario only. See the module's
    documentation for what ``out`` means. With ``reuse``, a scenario whose results a
    run in ``runs_dir`` holds is read from there (see :func:`sdmodel.simulate.run`).
    """
    fmt = _check_format(to)
    # a Vensim or XMILE file holds scenarios over time; NetCDF and CSV hold any run, an ensemble's too
    kind, target = resolve_source(source, runs_dir, TRAJECTORY_KINDS if fmt in ("tab", "dat", "cin", "xmile") else None)
    if kind == "run" and (model or overrides or final_time is not None):
        raise InputError(
            source=str(source),
            key=None,
            problem="--model, --set and --final-time apply to a scenario, not to a saved run",
            fix="export the run as saved, or name a scenario",
        )
    if fmt in ("cin", "xmile"):
        scenarios, model_path = _scenarios_to_write(kind, target, model, overrides, final_time, fmt)
        render = cin_text if fmt == "cin" else xmile_text
        texts = {s.name: render(s, model_path) for s in scenarios}
        return _write_texts(texts, out, fmt)
    results, name = _results(kind, target, model, overrides, final_time, command, engine, reuse, runs_dir)
    if fmt in ("tab", "dat"):
        render = tab_text if fmt == "tab" else dat_text
        names = [str(s) for s in results["scenario"].values]
        return _write_texts({s: render(results.sel(scenario=[s])) for s in names}, out, fmt)
    if fmt == "csv":
        tidy, wide = _destinations(out, [name, f"{name}-wide"], fmt)
        tables = {tidy: to_dataframe(results), wide: to_wide(results)}  # both made before either is written
        for path, table in tables.items():
            _write_atomically(path, lambda tmp, table=table: table.to_csv(tmp, index=False, float_format=_repr))
        return [tidy, wide]
    (path,) = _destinations(out, [name], fmt)
    if kind == "run":
        from sdmodel.store import copy_plain

        _write_atomically(path, lambda tmp: copy_plain(target, tmp))
    else:
        encoding = {v: {"zlib": True, "complevel": 4} for v in results.data_vars}
        _write_atomically(path, lambda tmp: results.to_netcdf(tmp, engine="netcdf4", encoding=encoding))
    return [path]


def _repr(value: float) -> str:
    """Shortest text that reads back as the same float (a CSV cell)."""
    return repr(float(value))


def _check_format(to: str) -> str:
    fmt = str(to).strip().lower()
    if fmt not in FORMATS:
        raise InputError(
            source="--to",
            key=None,
            problem=f"'{to}' is not a format sdmodel can export",
            fix=f"choose one of: {', '.join(FORMATS)}",
        )
    return fmt


def resolve_source(
    source: str | Path | Scenario, runs_dir: str | Path | None = None, kinds: Collection[str] | None = None
) -> tuple[str, Path | str | Scenario]:
    """``("run", folder)`` or ``("scenario", reference)`` for what the user named.

    A ``.toml`` path or a bundled scenario's name is a scenario; anything else is
    looked up in the run store (a folder, a name, a prefix, or ``latest``), among
    runs of ``kinds`` (any, if None).
    """
    from sdmodel.store import WrongRunKind, find_run

    if isinstance(source, Scenario):
        return "scenario", source
    text = str(source)
    if text.endswith(".toml"):
        return "scenario", text
    if Path(text).is_dir() and (Path(text) / "manifest.json").is_file():
        return "run", find_run(text, runs_dir, kinds)
    if "/" not in text and "\\" not in text and text in bundled_scenarios():
        return "scenario", text
    try:
        return "run", find_run(text, runs_dir, kinds)
    except InputError as error:
        if isinstance(error, WrongRunKind):  # a run, of a kind export cannot read: its own message says so
            raise
        raise InputError(
            source=text,
            key=None,
            problem=f"no such run or scenario ({error.problem})",
            fix="see `sdmodel runs list` and `sdmodel scenarios list`",
        ) from None


def _results(
    kind: str, target, model, overrides, final_time, command, engine="pysd", reuse=False, runs_dir=None
) -> tuple[xr.Dataset, str]:
    if kind == "run":
        from sdmodel.store import open_run

        return open_run(target), Path(target).name
    from sdmodel.simulate import run

    results = run(
        [target],
        model=model,
        overrides=overrides,
        final_time=final_time,
        jobs=1,
        command=command,
        engine=engine,
        reuse=reuse,
        runs_dir=runs_dir,
        progress=False,
    )
    return results, str(results["scenario"].values[0])


def _scenarios_to_write(kind: str, target, model, overrides, final_time, fmt: str) -> tuple[list[Scenario], Path | None]:
    """The scenarios to write as cin or xmile, and the model they belong to."""
    if kind == "scenario":
        scenario = target if isinstance(target, Scenario) else load_scenario(target)
        scenario = scenario.with_overrides(dict(overrides or {}), {}, "--set")
        if final_time is not None:
            scenario = scenario.with_overrides({}, {"final_time": float(final_time)}, "--final-time")
        return [scenario], Path(model) if model else None
    return saved_scenarios(target, check_model=fmt == "xmile")


def saved_scenarios(run_folder: str | Path, check_model: bool = True) -> tuple[list[Scenario], Path]:
    """The resolved scenarios a saved run recorded, and its model file.

    ``check_model`` refuses a model file that changed since the run: the XMILE
    written from it would not reproduce the run.
    """
    from sdmodel.model import file_sha256
    from sdmodel.store import open_run

    folder = Path(run_folder)
    attrs = open_run(folder).attrs
    model_path = Path(attrs.get("model_file", ""))
    if not model_path.is_file():
        raise InputError(
            source=folder,
            key="model_file",
            problem=f"the run's model {model_path} is not here",
            fix="export the scenario by name with --model",
        )
    if check_model and attrs.get("model_sha256") and file_sha256(model_path) != attrs["model_sha256"]:
        raise InputError(
            source=folder,
            key="model_file",
            problem=f"{model_path.name} changed since this run",
            fix="run the scenario again, or export the scenario by name",
        )
    documents = tomllib.loads(attrs.get("scenarios_toml", "")).get("scenario", [])
    scenarios = [
        Scenario(
            name=doc["name"],
            description=doc.get("description", ""),
            params={key: _stored_value(value) for key, value in doc.get("params", {}).items()},
            time={key: float(value) for key, value in doc.get("time", {}).items()},
            source=f"run {folder.name}",
        )
        for doc in documents
    ]
    return scenarios, model_path


def _stored_value(value) -> Value:
    if isinstance(value, dict):
        return tuple(sorted((float(t), float(v)) for t, v in value.items()))
    return float(value)


def _write_texts(texts: Mapping[str, str], out: str | Path, fmt: str) -> list[Path]:
    paths = _destinations(out, list(texts), fmt)
    for path, text in zip(paths, texts.values()):
        _write_atomically(path, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))
    return paths


def _destinations(out: str | Path, stems: list[str], fmt: str) -> list[Path]:
    """Where each file goes: ``out`` itself for one file named with the format's suffix, else inside the folder ``out``."""
    suffix = SUFFIXES[fmt]
    out = Path(out)
    single = len(stems) == 1 or (fmt == "csv" and len(stems) == 2)
    as_file = out.suffix.lower() == suffix
    if as_file and not single:
        raise InputError(
            source="--out",
            key=str(out),
            problem=f"this export writes {len(stems)} files",
            fix="give a folder instead of a file name",
        )
    folder = out.parent if as_file else out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            source="--out",
            key=str(folder),
            problem=f"cannot create the folder ({error.strerror})",
            fix="choose a writable folder",
        ) from None
    if as_file:
        return [out] if len(stems) == 1 else [out, out.with_name(f"{out.stem}-wide{suffix}")]
    return [out / f"{stem}{suffix}" for stem in stems]


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write beside the target and rename, so a crash never leaves half a file under the final name."""
    try:
        with atomic.temporary_file(path) as temporary:
            write(temporary)
    except OSError as error:
        raise InputError(
            source="--out",
            key=str(path),
            problem=f"cannot write the file ({error.strerror or error})",
            fix="choose a writable folder",
        ) from None
