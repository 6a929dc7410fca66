"""Any Vensim or XMILE model runs through `--model`: small models of our own against their known solutions.

Each model is small enough to check by hand: the analytic solution where there is
one, and otherwise the Euler recurrence (or the lookup and delay) written out in
numpy. Run as written (no scenario) unless a test says otherwise.
"""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from paths import MODELS

import sdmodel
from sdmodel.cli import main
from sdmodel.importing import read_csv


def _run(model: str, **options):
    return sdmodel.run(model=MODELS / model, jobs=1, **options).sel(scenario="baseline")


def _euler(derivative, start: float, step: float, steps: int) -> np.ndarray:
    """The values an Euler integration takes at every step, from ``start``."""
    values = [start]
    for _ in range(steps):
        values.append(values[-1] + step * derivative(values[-1]))
    return np.array(values)


def test_logistic_follows_euler_and_the_analytic_curve():
    results = _run("logistic.mdl")
    time = results["time"].values
    step, saves = 1 / 64, 64  # TIME STEP and SAVEPER / TIME STEP in the model
    euler = _euler(lambda p: 0.5 * p * (1 - p / 1000), 10.0, step, 20 * saves)[::saves]
    np.testing.assert_allclose(results["population"].values, euler, rtol=1e-12)
    analytic = 1000 / (1 + (1000 / 10 - 1) * np.exp(-0.5 * time))
    np.testing.assert_allclose(results["population"].values, analytic, rtol=0.01)  # Euler's error at this step
    assert 990 < results["population"].values[-1] < 1000  # it nears the carrying capacity from below


def test_the_same_model_in_xmile_gives_the_same_run():
    vensim = _run("logistic.mdl")
    xmile = _run("logistic.xmile").sel(time=vensim["time"])  # PySD's XMILE reader saves every step
    np.testing.assert_allclose(xmile["population"].values, vensim["population"].values, rtol=1e-12)
    np.testing.assert_allclose(xmile["net_growth"].values, vensim["net_growth"].values, rtol=1e-12)


def test_subscripted_decay_with_sum_vmax_and_conservation():
    results = _run("regions.mdl")
    time = results["time"].values
    initial = np.array([100.0, 50.0, 20.0])
    lifetime = np.array([1.0, 2.0, 4.0])
    expected = initial * (1 - 0.125 / lifetime) ** (time[:, None] / 0.125)  # Euler on dS/dt = -S/T
    assert list(results["Region"].values) == ["north", "south", "east"]
    assert results["stock"].dims == ("time", "Region")
    np.testing.assert_allclose(results["stock"].values, expected, rtol=1e-12)
    np.testing.assert_allclose(results["total_stock"].values, expected.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(results["largest_stock"].values, expected.max(axis=1), rtol=1e-12)
    # what left the regions is what they lost
    np.testing.assert_allclose(results["cumulative_outflow"].values, initial.sum() - expected.sum(axis=1), atol=1e-9)


def test_one_element_of_an_own_model_can_be_set():
    results = _run("regions.mdl", overrides={"lifetime[north]": 4.0})
    time = results["time"].values
    expected = 100 * (1 - 0.125 / 4) ** (time / 0.125)
    np.testing.assert_allclose(results["stock"].sel(Region="north").values, expected, rtol=1e-12)
    np.testing.assert_allclose(
        results["stock"].sel(Region="east").values * 5, expected, rtol=1e-12
    )  # same decay, a fifth the start


def test_lookup_fixed_delay_and_first_order_delay():
    results = _run("shipping.mdl")
    time = results["time"].values

    def demand(t):
        return np.interp(t, [0, 4, 10], [0, 10, 10])  # the lookup's points; ends held

    np.testing.assert_allclose(results["demand"].values, demand(time), rtol=1e-12)
    shipped = np.where(time >= 2, demand(time - 2), 0.0)  # DELAY FIXED: exactly two years later, 0 before
    np.testing.assert_allclose(results["shipments"].values, shipped, rtol=1e-12, atol=1e-12)
    # DELAY1 is a stock S with inflow demand and outflow S / 1, output S / 1, starting at demand(0) * 1
    step = 0.25
    stock = [demand(0.0) * 1.0]
    for n in range(int(10 / step)):
        stock.append(stock[-1] + step * (demand(n * step) - stock[-1] / 1.0))
    np.testing.assert_allclose(
        results["perceived_demand"].values, np.array(stock)[:: int(0.5 / step)] / 1.0, rtol=1e-12, atol=1e-12
    )


def test_run_and_export_take_any_model(tmp_path):
    runner = CliRunner()
    ran = runner.invoke(main, ["run", "--model", str(MODELS / "regions.mdl"), "--json"])
    assert ran.exit_code == 0, ran.output
    saved = sdmodel.open_run(json.loads(ran.stdout)["run"])
    assert saved.attrs["model_file"].endswith("regions.mdl") and "Region" in saved.dims
    exported = runner.invoke(
        main, ["export", "baseline", "--model", str(MODELS / "shipping.mdl"), "--to", "csv", "--out", str(tmp_path)]
    )
    assert exported.exit_code == 0, exported.output
    back = read_csv(tmp_path / "baseline.csv", model=MODELS / "shipping.mdl").sel(scenario="baseline")
    np.testing.assert_allclose(back["shipments"].values, _run("shipping.mdl")["shipments"].values, rtol=1e-12)
