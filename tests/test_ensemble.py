"""Sweeps and Monte Carlo ensembles: dims and values, reproducibility, bands, failures, executors, bad input.

Ensembles run the bundled model to a short horizon with a few members each, so
the whole file takes seconds. Only the comparison metrics and constants that
every version of the model has are named here.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from paths import BAD, DATA, MODELS

from sdmodel import ensemble
from sdmodel.cli import main
from sdmodel.distributions import load_distributions, salib_problem
from sdmodel.engines import simlin as simlin_engine
from sdmodel.errors import InputError
from sdmodel.locations import default_model
from sdmodel.metrics import METRICS
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import RunSpec, Setting
from sdmodel.simulate import prepare
from sdmodel.store import open_run

FINAL_TIME = 2030.0  # the levers start in 2027; short runs keep the file quick


@pytest.fixture
def distributions():
    return DATA / "distributions.toml"


def small_uncertainty(distributions, samples=12, seed=7, **execution):
    """A short uncertainty run of two scenarios; ``execution``: fields of :class:`sdmodel.options.Execution`."""
    execution = {"jobs": 1, "progress": False, **execution}
    return ensemble.uncertainty(
        distributions,
        ["baseline", "data-strike"],
        samples=samples,
        seed=seed,
        setup=RunSetup(final_time=FINAL_TIME),
        execution=Execution(**execution),
    )


def test_sweep_has_one_dim_per_parameter_with_its_values():
    results = ensemble.sweep(
        ["data strike fraction=0:0.5:3", "hardware life=3:6:2"],
        "data-strike",
        setup=RunSetup(final_time=FINAL_TIME),
        execution=Execution(jobs=1, progress=False),
    )
    assert results["capital_share"].dims == ("data_strike_fraction", "hardware_life", "time", "Firm")
    assert results["data_strike_fraction"].values.tolist() == [0.0, 0.25, 0.5]
    assert results["hardware_life"].values.tolist() == [3.0, 6.0]
    assert float(results["time"][-1]) == FINAL_TIME
    assert set(results.data_vars) == {metric.variable for metric in METRICS}
    assert not results["failed"].any()
    final = results["capital_share"].sel(Firm="incumbent").isel(time=-1)
    assert final.sel(data_strike_fraction=0.5, hardware_life=3.0) < final.sel(data_strike_fraction=0.0, hardware_life=3.0)
    assert results["capital_share"].attrs["units"] and results["capital_share"].attrs["long_name"]


def test_sweep_member_equals_a_single_run():
    """A member is the scenario with the swept values set, as `sdmodel run --set` would run it."""
    results = ensemble.sweep(
        {"data strike fraction": [0.2, 0.4], "collective bargaining weight": [0.1]},
        "data-strike",
        setup=RunSetup(final_time=FINAL_TIME),
        execution=Execution(jobs=1),
    )
    prepared = prepare(
        ["data-strike"],
        overrides={"data strike fraction": 0.4, "collective bargaining weight": 0.1},
        final_time=FINAL_TIME,
        engine="simlin",
    )
    model_path, (spec,) = prepared.model_path, prepared.specs
    single = simlin_engine.run(model_path, spec)
    member = results.sel(data_strike_fraction=0.4, collective_bargaining_weight=0.1)
    for name in results.data_vars:
        np.testing.assert_array_equal(member[name].transpose("time", ...).values, single[name].transpose("time", ...).values)


def test_same_seed_gives_identical_results(distributions):
    first, second = small_uncertainty(distributions), small_uncertainty(distributions)
    xr.testing.assert_identical(first.drop_attrs(), second.drop_attrs())
    assert first.attrs["seed"] == 7 and first.attrs["samples"] == 12
    other = small_uncertainty(distributions, seed=8)
    assert not np.array_equal(first["usable_share_of_interactions"].values, other["usable_share_of_interactions"].values)


def test_uncertainty_samples_are_a_latin_hypercube_within_the_bounds(distributions):
    results = small_uncertainty(distributions)
    assert results["capital_share"].dims == ("scenario", "run", "time", "Firm")
    assert results["scenario"].values.tolist() == ["baseline", "data-strike"]
    usable = results["usable_share_of_interactions"].values
    assert usable.shape == (12,) and ((0.01 <= usable) & (usable <= 0.05)).all()
    strata = np.floor((usable - 0.01) / 0.04 * 12).astype(int)  # Latin hypercube: one draw per twelfth of the range
    assert sorted(strata.tolist()) == list(range(12))
    assert ((1 <= results["share_sensitivity"]) & (results["share_sensitivity"] <= 10)).all()
    assert results["hardware_life"].attrs["units"] == "year"


def test_percentile_bands_are_ordered(distributions):
    bands = ensemble.percentile_bands(small_uncertainty(distributions, samples=20))
    assert bands["percentile"].values.tolist() == [5, 25, 50, 75, 95]
    for name in bands.data_vars:
        if "percentile" not in bands[name].dims:
            continue
        values = bands[name].transpose("percentile", ...).values
        assert np.isfinite(values).all(), name
        assert (np.diff(values, axis=0) >= -1e-12).all(), name
    assert bands["members"].values.tolist() == [20, 20]
    table = ensemble.format_bands(bands)
    assert "95%" in table and "data-strike" in table and METRICS[0].label in table


def test_streamed_bands_equal_percentiles_over_the_whole_ensemble(distributions, tmp_path, monkeypatch):
    """percentile_bands reads a block of time steps at a time; its bands are np.nanpercentile over every member at once."""
    monkeypatch.setattr(ensemble, "BAND_BLOCK_BYTES", 1000)  # a few time steps per block, the last one short
    with small_uncertainty(distributions, samples=15, store=tmp_path / "members.nc") as streamed:
        assert streamed["capital_share"].chunks is not None  # Dask arrays over the file: read a block at a time
        bands = ensemble.percentile_bands(streamed)
        whole = streamed.load()
    # a failed member is NaN: left out of its columns' bands, and a column with no member left has NaN bands
    failed = whole.copy(deep=True)
    failed["capital_share"][0, :4] = np.nan
    failed["labour_share"][1] = np.nan
    failed_bands = ensemble.percentile_bands(failed)
    for ensemble_values, found in ((whole, bands), (failed, failed_bands)):
        for name, array in ensemble_values.data_vars.items():
            assert array.dims[:3] == ("scenario", "run", "time")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN columns
                expected = np.moveaxis(np.nanpercentile(array.values, ensemble.PERCENTILES, axis=1), 0, 1)
            assert found[name].dims == ("scenario", "percentile", *array.dims[2:])
            np.testing.assert_array_equal(found[name].values, expected, err_msg=name)
    assert np.isnan(failed_bands["labour_share"].sel(scenario="data-strike")).all()
    assert np.isfinite(failed_bands["capital_share"]).all()


def test_failing_member_is_recorded_and_the_others_kept():
    """tests/models/overflow_float.mdl overflows when growth is fast: those members fail, the slow one runs."""
    results = ensemble.sweep(
        ["growth rate=0.5:1000:3"],
        outputs=["Stock"],
        setup=RunSetup(model=MODELS / "overflow_float.mdl"),
        execution=Execution(jobs=1),
    )
    assert results["failed"].values.tolist() == [False, True, True]
    assert "became NaN or infinite" in str(results["error"].sel(growth_rate=1000.0).values)
    assert str(results["error"].sel(growth_rate=0.5).values) == ""
    assert np.isfinite(results["stock"].sel(growth_rate=0.5)).all()
    assert np.isnan(results["stock"].sel(growth_rate=1000.0)).all()


def test_failing_member_from_the_cli_saves_the_run_and_warns(isolated_runs_dir):
    result = CliRunner().invoke(
        main,
        [
            "sweep",
            "--param",
            "growth rate=0.5:1000:3",
            "--model",
            str(MODELS / "overflow_float.mdl"),
            "--output",
            "Stock",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 of 3 members failed" in result.stderr
    summary = json.loads(result.stdout)
    assert [point["failed"] for point in summary["points"]] == [False, True, True]
    saved = xr.open_dataset(summary["run"] + "/results.nc")
    assert saved["failed"].values.tolist() == [False, True, True]
    saved.close()


def test_every_member_failing_is_a_failed_run(isolated_runs_dir):
    result = CliRunner().invoke(
        main, ["sweep", "--param", "growth rate=500:1000:2", "--model", str(MODELS / "overflow_float.mdl"), "--output", "Stock"]
    )
    assert result.exit_code == 1, result.output
    assert "every member failed" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


def test_processes_give_the_serial_results(distributions):
    serial = small_uncertainty(distributions)
    processes = small_uncertainty(distributions, jobs=2)
    assert processes.attrs["executor"] == "2 processes"
    xr.testing.assert_identical(serial.drop_attrs(), processes.drop_attrs())


def test_dask_local_cluster_gives_the_serial_results(distributions):
    serial = small_uncertainty(distributions, samples=8)
    dask = small_uncertainty(distributions, samples=8, dask_local=2, jobs=None)
    assert dask.attrs["executor"] == "dask LocalCluster of 2"
    xr.testing.assert_identical(serial.drop_attrs(), dask.drop_attrs())


def test_pysd_engine_gives_the_simlin_results():
    """Ensembles run on the reference engine too (through whole runs); a small model keeps PySD quick."""
    options = {"outputs": ["Stock", "outflow"], "execution": Execution(jobs=1)}
    fast = ensemble.sweep(["lifetime=1:3:3"], setup=RunSetup(model=MODELS / "decay.mdl"), **options)
    reference = ensemble.sweep(["lifetime=1:3:3"], setup=RunSetup(model=MODELS / "decay.mdl", engine="pysd"), **options)
    xr.testing.assert_allclose(fast.drop_attrs(), reference.drop_attrs(), rtol=1e-6)


def test_member_runner_reads_the_same_numbers_as_run():
    model = default_model()
    spec = RunSpec("strike", (Setting("data_strike_fraction", 0.33),), {"final_time": FINAL_TIME})
    runner = simlin_engine.member_runner(
        model, spec, [Setting("hardware_life", 0.0)], ["capital_share", "revenue_concentration_index"]
    )
    rows = runner.run([4.0])
    full = simlin_engine.run(model, RunSpec("strike", (*spec.settings, Setting("hardware_life", 4.0)), spec.time))
    firms = list(full["Firm"].values)
    np.testing.assert_array_equal(rows[: len(firms)].T, full["capital_share"].values)
    np.testing.assert_array_equal(rows[len(firms)], full["revenue_concentration_index"].values)
    assert runner.slots == (*(f"capital_share[{firm}]" for firm in firms), "revenue_concentration_index")


def test_streamed_results_stay_in_the_given_file(distributions, tmp_path):
    store = tmp_path / "members.nc"
    with small_uncertainty(distributions, store=store) as results:
        assert store.is_file()
        assert results["capital_share"].chunks is not None  # Dask arrays over the file: read lazily, not held
        in_memory = small_uncertainty(distributions)
        xr.testing.assert_identical(results.load().drop_attrs(), in_memory.drop_attrs())


def test_uncertainty_cli_prints_bands_and_saves_with_provenance(distributions, isolated_runs_dir):
    args = [
        "uncertainty",
        str(distributions),
        "baseline",
        "data-strike",
        "--samples",
        "10",
        "--seed",
        "3",
        "--final-time",
        "2030",
        "--jobs",
        "1",
    ]
    result = CliRunner().invoke(main, [*args, "--json", "--output", "hhi", "--output", "capital share[challenger]"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["seed"] == 3 and summary["samples"] == 10 and summary["failed"] == {"baseline": 0, "data-strike": 0}
    assert set(summary["scenarios"]["data-strike"]) == {"hhi", "capital share[challenger]"}
    bands = summary["scenarios"]["baseline"]["hhi"]
    assert bands["p5"] <= bands["p25"] <= bands["p50"] <= bands["p75"] <= bands["p95"]
    manifest = json.loads((isolated_runs_dir / summary["run"].rsplit("/", 1)[-1] / "manifest.json").read_text())
    from sdmodel.simulate import engine_module

    ran = engine_module("fast").NAME  # the default: the compiled engine where it can run, else Simlin
    assert manifest["kind"] == "uncertainty" and manifest["ensemble"]["seed"] == 3
    assert manifest["engine"] == manifest["ensemble"]["engine"] == ran
    assert manifest["scenarios"] == ["baseline", "data-strike"]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0 and "50%" in table.stdout and "seed 3" in table.stdout


def test_salib_problem_from_the_same_file(distributions):
    info = simlin_engine.model_info(default_model())
    problem = salib_problem(load_distributions(distributions, info))
    assert problem["names"] == [
        "usable_share_of_interactions",
        "collective_bargaining_weight",
        "share_sensitivity",
        "hardware_life",
    ]
    assert problem["dists"] == ["unif", "triang", "truncnorm", "unif"]
    assert problem["bounds"][1] == [0.0, 0.2, 0.25]


@pytest.mark.parametrize(
    "command",
    [["uncertainty", "baseline", "data-strike"], ["sensitivity", "data-strike", "--against", "baseline"]],
    ids=["uncertainty", "sensitivity-against"],
)
def test_a_policys_own_lever_is_not_drawn_across_scenarios(command, isolated_runs_dir):
    """Each draw would override the lever in every scenario alike: the policy's bands would equal the baseline's."""
    lever = BAD / "dist-policy-lever.toml"
    result = CliRunner().invoke(main, [command[0], str(lever), *command[1:], "--samples", "4"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert all(
        needle in line
        for needle in (
            lever.name,
            'params."data strike fraction"',
            "scenario 'data-strike' sets",
            "leave the scenarios' own levers out",
        )
    )
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


def test_drawing_another_element_of_a_policys_lever_is_an_assumption(tmp_path):
    """eval-data-withholding sets the legal and health elements: a draw of finance's overrides neither, a draw of legal's does."""

    def draw(element: str):
        drawn = tmp_path / f"{element}.toml"
        drawn.write_text(f'[params."eval withholding share[{element}]"]\ndist = "uniform"\nlower = 0.1\nupper = 0.5\n')
        return ensemble.uncertainty(
            drawn,
            ["baseline", "eval-data-withholding"],
            samples=2,
            setup=RunSetup(final_time=FINAL_TIME),
            execution=Execution(jobs=1, progress=False),
        )

    assert not draw("finance")["failed"].any()
    with pytest.raises(InputError, match="is a lever that scenario 'eval-data-withholding' sets"):
        draw("legal")


def test_one_scenario_may_draw_its_own_lever(isolated_runs_dir):
    """How big a strike? With one scenario the draws replace its value, and nothing is compared."""
    result = CliRunner().invoke(
        main,
        ["uncertainty", str(BAD / "dist-policy-lever.toml"), "data-strike", "--samples", "4", "--final-time", "2030", "--json"],
    )
    assert result.exit_code == 0, result.output
    drawn = open_run(json.loads(result.stdout)["run"])["data_strike_fraction"]
    assert float(drawn.min()) >= 0.1 and float(drawn.max()) <= 0.5 and drawn.size == 4


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (["data strike fraction=0.1:0.5"], "NAME=LO:HI:N"),
        (["data strike fraction=0.5:0.1:3"], "make LO less than HI"),
        (["data strike fraction=0:2:3"], "out of range [0, 1]"),
        (["data strik fraction=0:1:3"], "did you mean 'data strike fraction'"),
        (["data strike fraction=0:1:2", "data strike fraction=0:0.5:2"], "vary each constant once"),
        (
            [
                "hardware life=3:4:2",
                "share sensitivity=1:2:2",
                "data strike fraction=0:1:2",
                "collective bargaining weight=0:0.1:2",
            ],
            "1 to 3",
        ),
    ],
    ids=["no-count", "lo-above-hi", "out-of-range", "unknown", "twice", "four"],
)
def test_bad_sweep_param(params, needle, isolated_runs_dir):
    args = ["sweep"] + [arg for param in params for arg in ("--param", param)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_a_constant_both_set_and_varied_is_refused():
    with pytest.raises(InputError, match="also varied"):
        ensemble.sweep(["data strike fraction=0:1:2"], setup=RunSetup(overrides={"data strike fraction": 0.3}))


def test_simlin_scenarios_in_one_dataset_equal_the_concatenated_runs():
    """`sdmodel run/compare --engine simlin` build one Dataset from arrays instead of concatenating per-scenario runs."""
    from sdmodel.scenario import Scenario, bundled_scenarios

    ramp = Scenario(name="ramp", params={"data strike fraction": ((2022.0, 0.0), (2028.0, 0.4))})
    prepared = prepare([*bundled_scenarios(), ramp], final_time=FINAL_TIME, engine="simlin")
    model_path, specs = prepared.model_path, prepared.specs
    parts = [simlin_engine.run(model_path, spec) for spec in specs]
    concatenated = xr.concat(
        parts, dim=xr.DataArray([s.name for s in specs], dims="scenario", name="scenario"), data_vars="all", coords="minimal"
    )
    combined = simlin_engine.run_scenarios(model_path, specs)
    xr.testing.assert_identical(combined, concatenated)
    assert list(combined.coords) == list(concatenated.coords)
    assert combined["data_strike_fraction"].dims == (
        "scenario",
        "time",
    )  # a time series in one scenario gives every one a time axis


# --- bounded work: past the stated limits an ensemble is refused before anything is drawn or run, unless --yes

DECAY_SWEEP = ["sweep", "--model", str(MODELS / "decay.mdl"), "--output", "Stock", "--param"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["sweep", "--param", "hardware life=4:6:100000000", "--final-time", "2022"], "--param: hardware life=4:6:100000000"),
        (["uncertainty", "models/assumptions.toml", "--samples", "1000000000", "--final-time", "2022"], "--samples: 1000000000"),
        (["sensitivity", "models/assumptions.toml", "--samples", "100000000", "--final-time", "2022"], "--samples: 100000000"),
    ],
    ids=["sweep", "uncertainty", "sensitivity"],
)
def test_an_ensemble_past_the_limits_is_refused_before_it_runs(args, named, isolated_runs_dir):
    """These ran out of memory drawing their designs (a MemoryError), or would have run for days."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"sdmodel: error: {named}: "), line
    assert f"{ensemble.MAX_STEPS:.0e}" in line and "--yes" in line
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


@pytest.mark.parametrize("limit", ["MAX_STEPS", "MAX_KEPT_BYTES"])
def test_yes_runs_an_ensemble_past_a_limit_and_only_that_command(limit, monkeypatch, isolated_runs_dir):
    """Each limit set just below what a 3-point sweep of the decay model needs (80 steps a run, 11 saved values)."""
    monkeypatch.setattr(ensemble, limit, 3 * 80 - 1 if limit == "MAX_STEPS" else 3 * 11 * 8 - 1)
    refused = CliRunner().invoke(main, [*DECAY_SWEEP, "lifetime=1:3:3"])
    assert refused.exit_code == 2 and "--yes" in refused.stderr, refused.output
    assert "model steps" in refused.stderr if limit == "MAX_STEPS" else "GiB of outputs" in refused.stderr
    fits = CliRunner().invoke(main, [*DECAY_SWEEP, "lifetime=1:3:2"])
    assert fits.exit_code == 0, fits.output
    allowed = CliRunner().invoke(main, [*DECAY_SWEEP, "lifetime=1:3:3", "--yes", "--json"])
    assert allowed.exit_code == 0, allowed.output
    assert len(json.loads(allowed.stdout)["points"]) == 3
    again = CliRunner().invoke(main, [*DECAY_SWEEP, "lifetime=1:3:3"])  # --yes was for that command alone
    assert again.exit_code == 2, again.output


def test_the_library_lifts_the_limits_inside_any_size(monkeypatch):
    monkeypatch.setattr(ensemble, "MAX_STEPS", 10)
    sweep = {"scenario": "baseline", "setup": RunSetup(model=MODELS / "decay.mdl"), "outputs": ["Stock"]}
    with pytest.raises(InputError, match="more than the limit of 1e\\+01"):
        ensemble.sweep(["lifetime=1:3:3"], **sweep)
    with ensemble.any_size():
        assert ensemble.sweep(["lifetime=1:3:3"], **sweep).sizes["lifetime"] == 3
