"""Each shortcut of sdmodel.engines.fast_arrays gives what xarray gives, bit for bit, errors included.

Every case computes the same expression twice, with xarray as it is and inside
``fast_arithmetic()``, and requires identical results (values, dtype, dims, coordinates,
name, attributes) or the same error. Whole model runs are held to xarray by
tests/test_engine_pysd.py.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from sdmodel.engines.fast_arrays import fast_arithmetic

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and overflow warn the same both ways

FIRMS = ["incumbent", "challenger", "open model"]
DOMAINS = ["legal", "health"]
OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.gt, operator.le, operator.eq]
values = st.floats(allow_nan=True, allow_infinity=True, width=64)
triples = st.lists(values, min_size=3, max_size=3)


def firm_array(data, name=None, **kwargs) -> xr.DataArray:
    """An array as PySD builds one: its own coordinate index, built from a list each time."""
    return xr.DataArray(np.asarray(data, dtype=float), {"Firm": list(FIRMS)}, ["Firm"], name=name, **kwargs)


def outcome(expression):
    """What ``expression()`` returns, or the type and message of what it raises."""
    try:
        return expression()
    except Exception as error:  # the comparison is the point: the same error both ways
        return (type(error), str(error))


def assert_same_both_ways(expression) -> None:
    plain = outcome(expression)
    with fast_arithmetic():
        fast = outcome(expression)
    if isinstance(plain, tuple):
        assert fast == plain
        return
    assert type(fast) is type(plain)
    if isinstance(plain, xr.DataArray):
        xr.testing.assert_identical(fast, plain)
        assert fast.dtype == plain.dtype and fast.name == plain.name and fast.attrs == plain.attrs
        np.testing.assert_array_equal(fast.values, plain.values)  # NaN in the same places, every other value equal
        assert np.array_equal(np.signbit(fast.values), np.signbit(plain.values)) if fast.dtype.kind == "f" else True
    else:
        assert fast == plain or (np.isnan(fast) and np.isnan(plain))


@settings(max_examples=60, deadline=None)
@given(a=triples, b=triples, number=values, op=st.sampled_from(OPERATORS))
def test_arithmetic_between_arrays_and_with_numbers(a, b, number, op):
    assert_same_both_ways(lambda: op(firm_array(a), firm_array(b)))
    assert_same_both_ways(lambda: op(firm_array(a), number))
    assert_same_both_ways(lambda: op(number, firm_array(a)))  # reflexive: number - array
    assert_same_both_ways(lambda: op(firm_array(a), 7))
    assert_same_both_ways(lambda: op(firm_array(a).sum(), number))  # 0-d arrays: numpy gives back a scalar
    assert_same_both_ways(lambda: op(firm_array(a).sum(), firm_array(b).max()))


@pytest.mark.parametrize("names", [("x", "x"), ("x", "y"), ("x", None), (None, None)])
def test_a_result_is_named_as_xarray_names_it(names):
    assert_same_both_ways(lambda: firm_array([1, 2, 3], names[0]) * firm_array([4, 5, 6], names[1]))
    assert_same_both_ways(lambda: np.maximum(firm_array([1, 2, 3], names[0]), firm_array([4, 0, 6], names[1])))


@pytest.mark.parametrize(
    "other",
    [
        xr.DataArray([1.0, 2.0, 3.0], {"Firm": ["challenger", "incumbent", "open model"]}, ["Firm"]),  # other order: aligned
        xr.DataArray([1.0, 2.0], {"Firm": FIRMS[:2]}, ["Firm"]),  # a subrange: inner join, or an error under exact
        xr.DataArray([1.0, 2.0, 3.0], {"Firm": FIRMS}, ["Firm"], attrs={"units": "USD"}),  # attributes are merged
        xr.DataArray([1.0, 2.0, 3.0], {"Firm": FIRMS, "scenario": "baseline"}, ["Firm"]),  # a scalar coordinate
        xr.DataArray(
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], {"Domain": DOMAINS, "Firm": FIRMS[::-1]}, ["Domain", "Firm"]
        ),  # aligned, broadcast
        xr.DataArray([1.0, 2.0, 3.0], dims=["Firm"]),  # no index at all
        np.array([1.0, 2.0, 3.0]),
    ],
)
@pytest.mark.parametrize("join", ["inner", "exact"])
def test_what_is_not_plain_goes_to_xarray_unchanged(other, join):
    with xr.set_options(arithmetic_join=join):
        assert_same_both_ways(lambda: firm_array([1, 2, 3]) + other)
        assert_same_both_ways(lambda: other - firm_array([1, 2, 3]))
        assert_same_both_ways(lambda: np.minimum(firm_array([1, 2, 3]), other))


@settings(max_examples=40, deadline=None)
@given(a=triples, b=st.lists(values, min_size=6, max_size=6), op=st.sampled_from(OPERATORS))
def test_arithmetic_that_broadcasts_between_firm_domain_and_domain_by_firm_arrays(a, b, op):
    grid = xr.DataArray(np.reshape(b, (2, 3)), {"Domain": list(DOMAINS), "Firm": list(FIRMS)}, ["Domain", "Firm"], name="g")
    domains = xr.DataArray(np.asarray(b[:2]), {"Domain": list(DOMAINS)}, ["Domain"])
    pairs = [
        (firm_array(a), grid),
        (grid, firm_array(a)),
        (domains, grid),
        (grid, domains),
        (domains, firm_array(a, "g")),
        (grid.transpose(), grid),
    ]
    for first, second in pairs:
        assert_same_both_ways(lambda: op(first, second))
    assert_same_both_ways(lambda: op(grid.sum(), grid))  # a 0-d array times a grid
    assert_same_both_ways(lambda: firm_array(a).__rmul__(grid))  # reflexive: xarray orders the dims from the other
    with xr.set_options(arithmetic_broadcast=False):
        assert_same_both_ways(lambda: op(domains, grid))  # xarray's own error


@settings(max_examples=40, deadline=None)
@given(a=triples, number=values)
def test_ufuncs_of_arrays_and_numbers(a, number):
    for ufunc in (np.exp, np.log, np.sqrt, np.negative, np.isnan):
        assert_same_both_ways(lambda: ufunc(firm_array(a)))
    for ufunc in (np.maximum, np.minimum, np.fmax, np.power):
        assert_same_both_ways(lambda: ufunc(firm_array(a), number))
        assert_same_both_ways(lambda: ufunc(number, firm_array(a)))
        assert_same_both_ways(lambda: ufunc(firm_array(a), firm_array(a[::-1])))
    assert_same_both_ways(lambda: np.add.reduce(firm_array(a)))  # not a plain call: xarray refuses it, both ways
    assert_same_both_ways(lambda: np.maximum(firm_array(a), 0, out=np.empty(3)))


@settings(max_examples=40, deadline=None)
@given(a=triples)
def test_reductions(a):
    for method in ("sum", "max", "min", "prod", "mean"):
        assert_same_both_ways(lambda: getattr(firm_array(a, "x"), method)())
        assert_same_both_ways(lambda: getattr(firm_array(a), method)(dim="Firm"))
        assert_same_both_ways(lambda: getattr(firm_array(a), method)(skipna=False))
    grid = xr.DataArray(np.outer([1.0, 2.0], a), {"Domain": DOMAINS, "Firm": FIRMS}, ["Domain", "Firm"])
    assert_same_both_ways(lambda: grid.sum())
    for method in ("sum", "max", "min", "mean"):
        reduce = getattr(grid, method)
        assert_same_both_ways(lambda: reduce(dim="Firm"))
        assert_same_both_ways(lambda: reduce(dim=["Domain"]))
        assert_same_both_ways(lambda: reduce(dim=("Firm", "Domain")))
    assert_same_both_ways(lambda: grid.sum(dim=["Firm", "Firm"]))  # xarray's own answer to a repeated dim
    assert_same_both_ways(lambda: grid.sum(dim=["Sector"]))  # an unknown dim: xarray's own error
    assert_same_both_ways(lambda: grid.max(keepdims=True))


def test_renaming_dims_as_pysd_does_before_a_sum():
    grid = xr.DataArray(np.arange(6.0).reshape(2, 3), {"Domain": DOMAINS, "Firm": FIRMS}, ["Domain", "Firm"], name="g")
    assert_same_both_ways(lambda: grid.rename({"Firm": "Firm!"}))
    assert_same_both_ways(lambda: grid.rename({"Firm": "Firm!", "Domain": "Domain!"}))
    assert_same_both_ways(lambda: grid.rename({"Firm": "Firm!"}).sum(dim=["Firm!"]))
    assert_same_both_ways(lambda: float(firm_array([1, 2, 3]).rename({"Firm": "Firm!"}).sum()))
    assert_same_both_ways(lambda: grid.rename("new name"))
    assert_same_both_ways(lambda: grid.rename({"Sector": "x"}))  # an unknown dim: xarray's own error
    assert_same_both_ways(lambda: grid.rename(Firm="Firm!"))
    with fast_arithmetic():  # the second rename reuses the first's index: still its own labels
        first, second = firm_array([1, 2, 3]).rename({"Firm": "Firm!"}), firm_array([4, 5, 6]).rename({"Firm": "Firm!"})
        other = xr.DataArray([1.0, 2.0], {"Firm": ["a", "b"]}, ["Firm"]).rename({"Firm": "Firm!"})
    assert list(first["Firm!"].values) == FIRMS and list(second["Firm!"].values) == FIRMS
    assert list(other["Firm!"].values) == ["a", "b"]


def test_plain_arrays_skip_xarrays_general_path(monkeypatch):
    """The shortcuts are taken (not only harmless): alignment and apply_ufunc are never reached for plain arrays."""

    def refuse(*args, **kwargs):
        raise AssertionError("xarray's general path was taken")

    monkeypatch.setattr("xarray.core.dataarray.align", refuse)
    monkeypatch.setattr("xarray.computation.apply_ufunc.apply_ufunc", refuse)
    a, b = firm_array([1, 2, 3]), firm_array([4, 5, 6])
    with fast_arithmetic():
        total = float((np.maximum(a * b, 5) - np.exp(2 - a)).rename({"Firm": "Firm!"}).sum())
        grid = xr.DataArray([2.0, 3.0], {"Domain": DOMAINS}, ["Domain"]) * a  # broadcasts: Domain x Firm
        by_domain = grid.rename({"Firm": "Firm!"}).sum(dim=["Firm!"])
    assert total == pytest.approx(np.sum(np.maximum([4, 10, 18], 5) - np.exp(2 - np.array([1, 2, 3]))))
    assert by_domain.dims == ("Domain",) and list(by_domain.values) == [12.0, 18.0]
    with pytest.raises(AssertionError, match="general path"):
        a * b


def test_xarray_is_itself_again_after_the_block_even_after_an_error():
    originals = (xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename)
    with pytest.raises(ZeroDivisionError), fast_arithmetic():
        assert xr.DataArray.reduce is not originals[2]
        raise ZeroDivisionError
    assert (xr.DataArray._binary_op, xr.DataArray.__array_ufunc__, xr.DataArray.reduce, xr.DataArray.rename) == originals
