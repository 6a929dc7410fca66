"""xarray arithmetic without xarray's per-operation bookkeeping, for PySD runs.

A PySD model computes every subscripted variable as a small ``xarray.DataArray`` (three
firms, six domains), tens of thousands of times a run. For arrays that small, xarray's
work around each numpy operation (aligning indexes, merging coordinates, building the
result through its general constructor) is nearly all of a run's cost: profiled on the
bundled model, 90% of a PySD run, the model's arithmetic about 2%.

:func:`fast_arithmetic` swaps in, for the duration of a ``with`` block, shortcuts for the
four operations that cost most: binary arithmetic, numpy ufuncs, reductions over every
dim, and renaming dims (PySD renames before each ``SUM``/``VMAX``). Each shortcut takes
only the *plain* case, which is what PySD builds: a ``DataArray`` with no attributes whose
only coordinates are its dims' indexes, combined with python numbers or with arrays on
equal dims and indexes. There it calls the same numpy function on the same data as
xarray does and wraps the result as xarray's own fast constructor does, so results are
bit for bit xarray's (tests/test_fast_arrays.py holds each shortcut, and whole model runs,
to that). Anything else goes to xarray unchanged, errors included.

This patches ``xarray.DataArray`` methods while the block runs: in a PySD worker process
that is the run itself. The shortcuts use private attributes of xarray objects
(``_coords``, ``_indexes``, ``_attrs``), which is why they are tested against xarray's own
results on every install.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import xarray as xr
from xarray.core.variable import Variable

_NUMBER = (int, float)  # python numbers (bool and numpy float64 are subclasses): numpy takes them as xarray passes them


def _plain(array) -> bool:
    """A DataArray as PySD builds it: no attributes, and no coordinates but one index per dim."""
    return (
        type(array) is xr.DataArray
        and not array.variable._attrs
        and type(array.variable._data) is np.ndarray
        and len(array._coords) == len(array.dims)
        and all(dim in array._indexes for dim in array.dims)
    )


def _same_grid(first: xr.DataArray, other: xr.DataArray) -> bool:
    """Plain ``other`` on the same dims, in the same order, with equal indexes: no alignment to do."""
    if other.dims != first.dims or not _plain(other):
        return False
    for dim in first.dims:
        a, b = first._indexes[dim], other._indexes[dim]
        if a is not b and a.index is not b.index and not a.index.equals(b.index):
            return False
    return True


def _variable(dims: tuple, data) -> Variable:
    """``Variable(dims, data)``, skipping its checks for what they would leave as it is: a numpy array of
    numbers or booleans (a numpy scalar, from an operation on a 0-d array, still takes the checks)."""
    return Variable(dims, data, fastpath=type(data) is np.ndarray and data.dtype.kind not in "OMm")


def _result(template: xr.DataArray, data, name) -> xr.DataArray:
    """A DataArray of ``data`` on ``template``'s dims and coordinates, built as xarray's own ``_replace`` builds it."""
    return xr.DataArray(_variable(template.dims, data), dict(template._coords), name=name, indexes=dict(template._indexes), fastpath=True)


def _name(arrays: list[xr.DataArray]):
    """xarray's rule for a result's name: the operands' one shared name, else none."""
    names = {array.name for array in arrays}
    return names.pop() if len(names) == 1 else None


@contextlib.contextmanager
def fast_arithmetic() -> Iterator[None]:
    """Run the block with xarray's DataArray arithmetic short-cut for plain arrays (see the module's docstring)."""
    binary_op, array_ufunc, reduce, rename = xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename
    renamed_indexes: dict[tuple, tuple] = {}  # (dim, new name, dtype, labels) -> xarray's renamed index and coordinate

    def fast_binary_op(self, other, f, reflexive=False):
        if _plain(self):
            if isinstance(other, _NUMBER):
                data = self.variable._data
                with np.errstate(all="ignore"):
                    return _result(self, f(other, data) if reflexive else f(data, other), self.name)
            if type(other) is xr.DataArray and _same_grid(self, other):
                a, b = self.variable._data, other.variable._data
                with np.errstate(all="ignore"):
                    return _result(self, f(b, a) if reflexive else f(a, b), _name([self, other]))
        return binary_op(self, other, f, reflexive)

    def fast_array_ufunc(self, ufunc, method, *inputs, **kwargs):
        arrays = [x for x in inputs if type(x) is xr.DataArray]
        if (
            method == "__call__" and not kwargs and ufunc.signature is None and ufunc.nout == 1
            and arrays and _plain(arrays[0]) and all(_same_grid(arrays[0], x) for x in arrays[1:])
            and all(type(x) is xr.DataArray or isinstance(x, _NUMBER) for x in inputs)
        ):
            data = ufunc(*[x.variable._data if type(x) is xr.DataArray else x for x in inputs])
            return _result(arrays[0], data, arrays[0].name)  # apply_ufunc names it after its first array
        return array_ufunc(self, ufunc, method, *inputs, **kwargs)

    def fast_reduce(self, func, dim=None, *, axis=None, keep_attrs=None, keepdims=False, **kwargs):
        if dim is None and axis is None and not keepdims and _plain(self):  # over every dim: no coordinate survives
            return xr.DataArray(Variable((), func(self.variable._data, **kwargs)), {}, name=self.name, indexes={}, fastpath=True)
        return reduce(self, func, dim, axis=axis, keep_attrs=keep_attrs, keepdims=keepdims, **kwargs)

    def fast_rename(self, new_name_or_name_dict=None, **names):
        mapping = new_name_or_name_dict
        if type(mapping) is dict and not names and _plain(self) and set(mapping) <= set(self.dims):
            coords, indexes = {}, {}
            for dim in self.dims:
                new = mapping.get(dim, dim)
                index = self._indexes[dim].index
                key = (dim, new, str(index.dtype), tuple(index))
                if key not in renamed_indexes:  # xarray's own renamed index, made once per subscript range
                    one = xr.DataArray(np.zeros(len(index)), {dim: index}, [dim]) if dim != new else self
                    done = rename(one, {dim: new}) if dim != new else one
                    renamed_indexes[key] = (done._indexes[new], done._coords[new])
                indexes[new], coords[new] = renamed_indexes[key]
            dims = tuple(mapping.get(dim, dim) for dim in self.dims)
            return xr.DataArray(_variable(dims, self.variable._data), coords, name=self.name, indexes=indexes, fastpath=True)
        return rename(self, new_name_or_name_dict, **names)

    xr.DataArray._binary_op = fast_binary_op
    xr.DataArray.__array_ufunc__ = fast_array_ufunc
    xr.DataArray.reduce = fast_reduce
    xr.DataArray.rename = fast_rename
    try:
        yield
    finally:
        xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename = binary_op, array_ufunc, reduce, rename
