"""The model files themselves: documented constants, balanced units, and the XMILE twin that
Stella-family tools see, held to the Vensim source."""

from __future__ import annotations

import re

import numpy as np
import pytest
import simlin
import xarray as xr

import sdmodel
from sdmodel.engines import pysd as pysd_engine
from sdmodel.locations import default_model, models_dir

XMILE = models_dir() / "ai_power.xmile"
# a source (an author and year, a dataset, a deal) or a stated assumption
SOURCED = re.compile(r"\b(19|20)\d\d\b|Assumption|Calibrated|Unit conversion|Unit of|Baseline:")


def test_every_constant_has_units_and_a_source_or_assumption():
    info = pysd_engine.model_info(default_model())
    constants = [v for v in info.variables.values() if v.kind == "constant"]
    assert len(constants) > 60
    for variable in constants:
        assert variable.units, f"{variable.name} has no units"
        assert SOURCED.search(variable.comment), (
            f"{variable.name}: the comment names no source or assumption: {variable.comment!r}"
        )


def test_every_variable_is_documented():
    for variable in pysd_engine.model_info(default_model()).variables.values():
        if variable.py_name != "time":  # PySD's own clock
            assert variable.comment and variable.units, variable.name


@pytest.mark.parametrize("path", [default_model(), XMILE], ids=["mdl", "xmile"])
def test_units_balance_and_simlin_finds_no_issue(path):
    model = simlin.load(str(path))
    issues = [issue.message for issue in model.check()]
    assert issues == []
    run = model.simulate()
    run.run_to_end()
    assert len(run.get_series("time")) > 100


def test_pysd_gives_the_same_results_from_both_files():
    from_mdl = sdmodel.run(["baseline"], final_time=2027, jobs=1)
    from_xmile = sdmodel.run(["baseline"], model=XMILE, final_time=2027, jobs=1)
    from_xmile = from_xmile.sel(time=from_mdl["time"])  # PySD's XMILE reader saves every step
    assert set(from_mdl.data_vars) <= set(from_xmile.data_vars)
    for name in from_mdl.data_vars:
        if name == "saveper":  # saved like any variable: the XMILE's is its TIME STEP, since PySD saves it every step
            every_step = np.unique(from_xmile["time_step"]).tolist()
            assert np.unique(from_xmile["saveper"]).tolist() == every_step != np.unique(from_mdl["saveper"]).tolist()
            continue
        xr.testing.assert_allclose(from_mdl[name], from_xmile[name], rtol=1e-6)


def test_simlin_gives_the_pysd_results_from_the_xmile():
    reference = sdmodel.run(["data-strike"], final_time=2027, jobs=1)
    fast = sdmodel.run(["data-strike"], model=XMILE, final_time=2027, engine="simlin")
    for name in ("model_capability", "revenue_share", "automated_task_share", "data_producer_income", "labour_share"):
        xr.testing.assert_allclose(reference[name], fast[name], rtol=1e-6)
