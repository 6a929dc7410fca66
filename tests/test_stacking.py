"""The layout of results.nc (sdmodel/stacking.py): float variables of the same dims stacked into one array each,
everything xarray would read differently left as its own variable, and unstack giving back the Dataset stacked,
variable for variable. Saving and opening runs through the store, in both layouts, is tests/test_store.py's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from sdmodel import stacking


@pytest.fixture
def mixed() -> xr.Dataset:
    """Floats of three dims, and variables that must stay their own: an integer, an attribute that is no text, an
    attribute xarray decodes, units xarray reads as durations, and a name a stack would take."""
    rng = np.random.default_rng(1)
    scenario, time, firm = ["baseline", "lever"], [2020.0, 2021.0, 2022.0], ["a", "b"]
    return xr.Dataset(
        {
            "share": (("scenario", "time", "Firm"), rng.random((2, 3, 2)), {"units": "Dmnl", "long_name": "share"}),
            "hhi": (("scenario", "time"), rng.random((2, 3)), {"units": "Dmnl"}),
            "capital": (("scenario", "time", "Firm"), rng.random((2, 3, 2)), {"units": "billion USD"}),
            "life": (("scenario",), [5.0, 6.0], {"units": "year", "sd_kind": "constant"}),
            "labour": (("scenario", "time"), rng.random((2, 3)), {}),
            "failed": (("scenario",), np.array([0, 1], dtype="int32"), {}),
            "limit": (("scenario",), [1.0, np.nan], {"valid_max": 3.0}),
            "calendar": (("scenario",), [1.0, 2.0], {"calendar": "standard"}),
            "duration": (("scenario",), [1.0, 2.0], {"units": "days"}),
            "since": (("scenario",), [1.0, 2.0], {"units": "days since 2020-01-01"}),
            "stacked_0": (("scenario",), [3.0, 4.0], {}),
        },
        coords={"scenario": scenario, "time": time, "Firm": firm},
        attrs={"command": "sdmodel run"},
    )


def test_floats_of_the_same_dims_share_one_array_and_the_rest_stay_their_own(mixed):
    stored = stacking.stack(mixed)
    assert stacking.is_stacked(stored) and not stacking.is_stacked(mixed)
    plain = {"failed", "limit", "calendar", "duration", "since"}
    assert set(stored.data_vars) == plain | set(stacking.stacks(stored))
    assert len(stacking.stacks(stored)) == 3  # (scenario, time, Firm), (scenario, time), (scenario,)
    assert "stacked_0" not in stacking.stacks(stored)  # a name the results use is never a stack's
    members = {key: [name for name, _ in entries] for key, entries in json.loads(stored.attrs[stacking.LAYOUT])["stacks"].items()}
    assert sorted(map(sorted, members.values())) == [["capital", "share"], ["hhi", "labour"], ["life", "stacked_0"]]
    for key, names in members.items():
        for index, name in enumerate(names):
            np.testing.assert_array_equal(stored[key].values[index], mixed[name].values)
    assert stored.attrs["command"] == "sdmodel run"


def test_unstack_gives_back_the_dataset_stacked(mixed, tmp_path):
    xr.testing.assert_identical(stacking.unstack(stacking.stack(mixed)), mixed)
    assert list(stacking.unstack(stacking.stack(mixed)).data_vars) == list(mixed.data_vars)  # in its order
    stacking.stack(mixed).to_netcdf(tmp_path / "stacked.nc")
    with xr.open_dataset(tmp_path / "stacked.nc") as opened:
        xr.testing.assert_identical(stacking.unstack(opened.load()), xr.decode_cf(mixed))


def test_a_dataset_not_stacked_is_read_as_it_is(mixed):
    assert stacking.unstack(mixed) is mixed and stacking.stacks(mixed) == []


def test_another_layout_version_is_refused(mixed):
    stored = stacking.stack(mixed)
    layout = json.loads(stored.attrs[stacking.LAYOUT])
    stored.attrs[stacking.LAYOUT] = json.dumps({**layout, "version": stacking.VERSION + 1})
    with pytest.raises(ValueError, match=f"layout version {stacking.VERSION + 1}"):
        stacking.unstack(stored)


def test_a_dask_array_is_never_gathered_into_a_stack(mixed):
    pytest.importorskip("dask")
    chunked = mixed.assign(hhi=mixed["hhi"].chunk({"scenario": 1}))
    stored = stacking.stack(chunked)
    assert "hhi" in stored.data_vars and stored["hhi"].chunks is not None
