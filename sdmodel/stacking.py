"""How a run's results lie in ``results.nc``: variables of the same dims stacked into a few arrays.

A comparison holds some 340 model variables. Written one NetCDF variable each, the
file cost most of a second to save (HDF5's price per variable, compressed or not,
plus zlib at level 4), longer than the runs it holds. Stacked by their dims, the
same values make a handful of arrays, written in a few hundredths of a second.

The layout is a detail of the store: :func:`unstack` gives back the Dataset that
was stacked, variable for variable (names, order, dims, attrs and values), so
``sdmodel.open_run`` and the exported formats are what they were. A file written
before stacking (no :data:`LAYOUT` attribute) is read as it is.

Only float variables whose attributes are strings that xarray's decoding leaves
alone are stacked (their attributes travel as JSON, which keeps strings as they
are); anything else is written as its own variable, as before.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

#: global attribute of a stacked file: the layout's version, the variables' order, and each stack's members
LAYOUT = "sdmodel_stacked_layout"
VERSION = 1
#: attributes that xarray's CF decoding reads: a variable carrying one is written plainly, to be decoded as before
DECODED_ATTRS = frozenset(
    {
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "_Unsigned",
        "dtype",
        "calendar",
        "coordinates",
        "bounds",
        "grid_mapping",
        "formula_terms",
        "compress",
        "flag_values",
        "flag_meanings",
    }
)
TIME_UNITS = frozenset({"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"})


def stack(results: xr.Dataset) -> xr.Dataset:
    """The results with every stackable data variable moved into one array per dims and dtype.

    The stacked arrays are named ``stacked_0``, ``stacked_1``, ... (skipping a name the results
    use); each has a leading dim of its own (``stacked_0_member``, ...) over its members.
    Coordinates are kept as they are.
    """
    variables = results.data_vars.variables  # Variables, not DataArrays: building ~340 DataArrays took longer than the save
    groups: dict[tuple, list[str]] = {}
    for name, variable in variables.items():
        if _stackable(variable):
            groups.setdefault((variable.dims, variable.dtype.str), []).append(str(name))
    stacked = {name for names in groups.values() for name in names}
    plain = {name: variable for name, variable in variables.items() if name not in stacked}
    stacks: dict[str, xr.Variable] = {}
    members: dict[str, list] = {}
    taken = {str(name) for name in results.variables} | {str(dim) for dim in results.dims}
    keys = (
        key
        for key in (f"stacked_{number}" for number in range(len(taken) + len(groups) + 1))
        if key not in taken and f"{key}_member" not in taken
    )
    for (dims, _), names, key in zip(groups, groups.values(), keys):  # names of the results' own never taken
        stacks[key] = xr.Variable((f"{key}_member", *dims), np.stack([variables[name].values for name in names]))
        members[key] = [[name, dict(variables[name].attrs)] for name in names]
    layout = {"version": VERSION, "order": [str(name) for name in results.data_vars], "stacks": members}
    return xr.Dataset({**plain, **stacks}, coords=results.coords, attrs={**results.attrs, LAYOUT: json.dumps(layout)})


def unstack(stored: xr.Dataset) -> xr.Dataset:
    """The Dataset that :func:`stack` was given, from a file it wrote; any other Dataset as it is."""
    if LAYOUT not in stored.attrs:
        return stored
    layout = json.loads(stored.attrs[LAYOUT])
    if layout.get("version") != VERSION:
        raise ValueError(f"results stacked in layout version {layout.get('version')}; this sdmodel reads version {VERSION}")
    variables: dict[str, xr.Variable] = {}
    for key, entries in layout["stacks"].items():
        array = stored[key].variable
        values = array.values
        for index, (name, attrs) in enumerate(entries):
            variables[name] = xr.Variable(array.dims[1:], values[index], attrs)
    for name in layout["order"]:
        if name not in variables:
            variable = stored[name].variable.copy(deep=False)
            variable.encoding = {}  # as the results were before they were saved: write options are the writer's
            variables[name] = variable
    coords = {name: _without_encoding(coord.variable) for name, coord in stored.coords.items()}
    attrs = {key: value for key, value in stored.attrs.items() if key != LAYOUT}
    return xr.Dataset({name: variables[name] for name in layout["order"]}, coords=coords, attrs=attrs)


def is_stacked(stored: xr.Dataset) -> bool:
    return LAYOUT in stored.attrs


def stacks(stored: xr.Dataset) -> list[str]:
    """The names of the stacked arrays in what :func:`stack` gave."""
    return list(json.loads(stored.attrs[LAYOUT])["stacks"]) if is_stacked(stored) else []


def _stackable(variable: xr.Variable) -> bool:
    """A float variable whose attributes JSON keeps and xarray's decoding would not touch."""
    attrs = variable.attrs
    return (
        variable.dtype.kind == "f"
        and variable.chunks is None  # a Dask array (an ensemble's) is written chunk by chunk, never gathered
        and all(isinstance(key, str) and isinstance(value, str) for key, value in attrs.items())
        and not DECODED_ATTRS.intersection(attrs)
        and not _time_units(attrs.get("units", ""))
    )


def _time_units(units: str) -> bool:
    """Units xarray may decode as dates ("days since 2000-01-01") or durations ("seconds")."""
    return " since " in units or units.strip().lower() in TIME_UNITS


def _without_encoding(variable: xr.Variable) -> xr.Variable:
    variable = variable.copy(deep=False)
    variable.encoding = {}
    return variable
