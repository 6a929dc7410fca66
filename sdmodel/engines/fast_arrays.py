"""xarray arithmetic without xarray's per-operation bookkeeping, for PySD runs.

A PySD model computes every subscripted variable as a small ``xarray.DataArray`` (three
firms, six domains), tens of thousands of times a run. For arrays that small, xarray's
work around each numpy operation (aligning indexes, merging coordinates, building the
result through its general constructor) is nearly all of a run's cost: profiled on the
bundled model, 90% of a PySD run, the model's arithmetic about 2%.

:func:`fast_arithmetic` swaps in, for the duration of a ``with`` block, shortcuts for the
four operations that cost most: binary arithmetic, numpy ufuncs, reductions over named
dims, and renaming dims (PySD renames before each ``SUM``/``VMAX``). Each shortcut takes
only the *plain* case, which is what PySD builds: a ``DataArray`` with no attributes whose
only coordinates are its dims' indexes, combined with python numbers or with arrays whose
shared dims have equal indexes (a ``Domain`` array times a ``Domain x Firm`` one
broadcasts; nothing needs aligning). There it calls the same numpy function on the same data as
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
from xarray.core.options import OPTIONS
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


def _equal_index(first: xr.DataArray, other: xr.DataArray, dim: str) -> bool:
    a, b = first._indexes[dim], other._indexes[dim]
    return a is b or a.index is b.index or a.index.equals(b.index)


def _same_grid(first: xr.DataArray, other: xr.DataArray) -> bool:
    """Plain ``other`` on the same dims, in the same order, with equal indexes: no alignment to do."""
    return other.dims == first.dims and _plain(other) and all(_equal_index(first, other, dim) for dim in first.dims)


def _broadcast_dims(first: xr.DataArray, other: xr.DataArray) -> tuple | None:
    """The dims of ``first op other`` for a plain ``other`` whose dims shared with ``first`` have equal indexes
    (nothing to align, only to broadcast): ``first``'s dims, then ``other``'s new ones, as xarray orders them."""
    if not _plain(other) or not all(_equal_index(first, other, dim) for dim in first.dims if dim in other._indexes):
        return None
    return first.dims + tuple(dim for dim in other.dims if dim not in first.dims)


def _laid_out(array: xr.DataArray, dims: tuple) -> np.ndarray:
    """``array``'s data with its axes in the order of ``dims`` and a length-1 axis for each dim it lacks."""
    data, own = array.variable._data, array.dims
    if own == dims:
        return data
    moved = data.transpose([own.index(dim) for dim in dims if dim in own])
    return moved.reshape([len(array._indexes[dim].index) if dim in own else 1 for dim in dims])


def _broadcast_result(first: xr.DataArray, other: xr.DataArray, dims: tuple, data, name) -> xr.DataArray:
    """A DataArray of ``data`` on ``dims``, each dim's coordinate and index from the operand that has it."""
    source = {dim: first if dim in first.dims else other for dim in dims}
    coords = {dim: source[dim]._coords[dim] for dim in dims}
    indexes = {dim: source[dim]._indexes[dim] for dim in dims}
    return xr.DataArray(_variable(dims, data), coords, name=name, indexes=indexes, fastpath=True)


def _variable(dims: tuple, data) -> Variable:
    """``Variable(dims, data)``, skipping its checks for what they would leave as it is: a numpy array of
    numbers or booleans (a numpy scalar, from an operation on a 0-d array, still takes the checks)."""
    return Variable(dims, data, fastpath=type(data) is np.ndarray and data.dtype.kind not in "OMm")


def _result(template: xr.DataArray, data, name) -> xr.DataArray:
    """A DataArray of ``data`` on ``template``'s dims and coordinates, built as xarray's own ``_replace`` builds it."""
    return xr.DataArray(
        _variable(template.dims, data), dict(template._coords), name=name, indexes=dict(template._indexes), fastpath=True
    )


def _name(arrays: list[xr.DataArray]):
    """xarray's rule for a result's name: the operands' one shared name, else none."""
    names = {array.name for array in arrays}
    return names.pop() if len(names) == 1 else None


@contextlib.contextmanager
def fast_arithmetic() -> Iterator[None]:
    """Run the block with xarray's DataArray arithmetic short-cut for plain arrays (see the module's docstring)."""
    binary_op, array_ufunc, reduce, rename = (
        xr.DataArray._binary_op,
        xr.DataArray.__array_ufunc__,
        xr.DataArray.reduce,
        xr.DataArray.rename,
    )
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
            # a reflexive broadcast (only an explicit ``a.__rmul__(b)``) orders dims from ``other``, and
            # arithmetic_broadcast=False refuses any broadcast: both are xarray's to handle
            if (
                not reflexive
                and OPTIONS["arithmetic_broadcast"]
                and type(other) is xr.DataArray
                and (dims := _broadcast_dims(self, other)) is not None
            ):
                a, b = _laid_out(self, dims), _laid_out(other, dims)  # e.g. [Domain] * [Domain, Firm] in a 2-D model
                with np.errstate(all="ignore"):
                    return _broadcast_result(self, other, dims, f(a, b), _name([self, other]))
        return binary_op(self, other, f, reflexive)

    def fast_array_ufunc(self, ufunc, method, *inputs, **kwargs):
        arrays = [x for x in inputs if type(x) is xr.DataArray]
        if (
            method == "__call__"
            and not kwargs
            and ufunc.signature is None
            and ufunc.nout == 1
            and arrays
            and _plain(arrays[0])
            and all(_same_grid(arrays[0], x) for x in arrays[1:])
            and all(type(x) is xr.DataArray or isinstance(x, _NUMBER) for x in inputs)
        ):
            data = ufunc(*[x.variable._data if type(x) is xr.DataArray else x for x in inputs])
            return _result(arrays[0], data, arrays[0].name)  # apply_ufunc names it after its first array
        return array_ufunc(self, ufunc, method, *inputs, **kwargs)

    def fast_reduce(self, func, dim=None, *, axis=None, keep_attrs=None, keepdims=False, **kwargs):
        if dim is None and axis is None and not keepdims and _plain(self):  # over every dim: no coordinate survives
            return xr.DataArray(Variable((), func(self.variable._data, **kwargs)), {}, name=self.name, indexes={}, fastpath=True)
        named = [dim] if type(dim) is str else list(dim) if type(dim) in (list, tuple) else None
        if (
            named
            and axis is None
            and not keepdims
            and _plain(self)
            and len(set(named)) == len(named)
            and set(named) <= set(self.dims)
        ):
            axes = tuple(self.dims.index(name) for name in named)  # over named dims, as PySD's SUM(x[Domain, Firm!])
            data = func(self.variable._data, axis=axes[0] if len(axes) == 1 else axes, **kwargs)  # xarray's own call
            kept = tuple(name for name in self.dims if name not in named)
            coords, indexes = {name: self._coords[name] for name in kept}, {name: self._indexes[name] for name in kept}
            return xr.DataArray(_variable(kept, data), coords, name=self.name, indexes=indexes, fastpath=True)
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
        xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename = (
            binary_op,
            array_ufunc,
            reduce,
            rename,
        )
