"""The calibration tool (sdmodel.calibrate) recovers what it should: known constants from the model's own output,
and the committed baseline from the real reference data. (tests/test_model_calibration.py holds the bundled
model's baseline to the history it was calibrated to.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from paths import BAD as BAD_FILES

import sdmodel
from sdmodel.calibrate import calibrate, current_value, format_report, targets
from sdmodel.distributions import load_distributions
from sdmodel.engines import pysd as pysd_engine
from sdmodel.errors import InputError
from sdmodel.locations import default_model, models_dir
from sdmodel.reference import read_series
from sdmodel.scenario import Scenario

TRUTH = {"share sensitivity": 6.0, "user adjustment time": 1.6}


def _write_series(folder, name, variable, units, years, values):
    path = folder / f"{name}.csv"
    rows = "\n".join(f"{y:g},{float(v)!r}" for y, v in zip(years, values))
    path.write_text(
        f"# series: {name}\n# variable: {variable}\n# units: {units}\n# source: synthetic, from the model itself\n"
        f"# retrieved: 2026-11-30\nyear,value\n{rows}\n"
    )
    return path


def test_recovers_known_constants_from_synthetic_data(tmp_path):
    truth = sdmodel.run([Scenario("truth", params=TRUTH)], engine="simlin", final_time=2035).sel(scenario="truth")
    years = np.arange(2024.0, 2036.0)  # the challenger has users from its launch (2023.2)
    users = truth["ai_users"].sel(Firm="challenger").interp(time=years).values
    share = truth["revenue_share"].sel(Firm="incumbent").interp(time=years).values
    data = [
        _write_series(tmp_path, "users", "AI Users[challenger]", "person", years, users),
        _write_series(tmp_path, "share", "revenue share[incumbent]", "Dmnl", years, share),
    ]
    params = tmp_path / "params.toml"
    params.write_text(
        '[params."share sensitivity"]\ndist = "uniform"\nlower = 1\nupper = 10\n'
        '[params."user adjustment time"]\ndist = "uniform"\nlower = 0.5\nupper = 4\n'
    )
    fit = calibrate(params, data, scenario=Scenario("start", time={"final_time": 2035.0}), starts=3)
    for name, value in TRUTH.items():
        assert fit.values[name] == pytest.approx(value, rel=0.01), name
    assert all(row["mape"] < 1e-3 for row in fit.report)
    assert "share sensitivity" in format_report(fit)
    assert not fit.at_bound


def test_calibration_needs_bounds(tmp_path):
    params = tmp_path / "params.toml"
    params.write_text('[params."share sensitivity"]\ndist = "normal"\nmean = 4\nsd = 1\n')
    with pytest.raises(InputError, match="needs bounds|unbounded"):
        calibrate(params)


@pytest.mark.slow
def test_real_data_gives_the_baselines_values():
    """`sdmodel calibrate --params models/calibration.toml` on the bundled series gives the committed constants."""
    info = pysd_engine.model_info(default_model())
    fit = calibrate(models_dir() / "calibration.toml")
    for distribution in load_distributions(models_dir() / "calibration.toml", info):
        assert fit.values[distribution.name] == pytest.approx(current_value(info, distribution.setting), rel=0.01), (
            distribution.name
        )


def test_cli_writes_the_fitted_scenario(tmp_path):
    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.scenario import load_scenario

    truth = sdmodel.run([Scenario("truth", params={"share sensitivity": 6.0})], engine="simlin", final_time=2030).sel(
        scenario="truth"
    )
    years = np.arange(2021.0, 2031.0)
    data = _write_series(
        tmp_path,
        "share",
        "revenue share[incumbent]",
        "Dmnl",
        years,
        truth["revenue_share"].sel(Firm="incumbent").interp(time=years).values,
    )
    params = tmp_path / "params.toml"
    params.write_text('[params."share sensitivity"]\ndist = "uniform"\nlower = 1\nupper = 10\n')
    out = tmp_path / "fitted.toml"
    result = CliRunner().invoke(
        main, ["calibrate", "--params", str(params), "--data", str(data), "--starts", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "U^M" in result.stdout
    assert load_scenario(out).params["share sensitivity"] == pytest.approx(6.0, rel=0.01)


def test_bootstrap_intervals_cover_the_truth_and_flag_what_the_data_cannot_pin_down(tmp_path):
    """A constant the series depend on gets a narrow interval around its true value; one they do not
    depend on at all (the deletion time, with no strike) is flagged as not pinned down."""
    truth = sdmodel.run([Scenario("truth", params=TRUTH)], engine="simlin", final_time=2030).sel(scenario="truth")
    years = np.arange(2021.0, 2031.0)
    noise = np.random.default_rng(1).normal(0, 0.02, years.size)  # 2% errors, so the intervals have a width
    share = truth["revenue_share"].sel(Firm="incumbent").interp(time=years).values * np.exp(noise)
    data = [_write_series(tmp_path, "share", "revenue share[incumbent]", "Dmnl", years, share)]
    params = tmp_path / "params.toml"
    params.write_text(
        '[params."share sensitivity"]\ndist = "uniform"\nlower = 1\nupper = 10\n'
        '[params."deletion time"]\ndist = "uniform"\nlower = 0.1\nupper = 10\n'
    )
    fit = calibrate(
        params,
        data,
        scenario=Scenario("start", params={"user adjustment time": 1.6}, time={"final_time": 2030.0}),
        starts=2,
        bootstrap=12,
    )
    low, high = fit.intervals["share sensitivity"]
    assert low <= TRUTH["share sensitivity"] <= high and high - low < 2
    assert fit.not_identified == ["deletion time"]
    assert "not pinned down" in format_report(fit) and "95% interval" in format_report(fit)


@pytest.mark.parametrize(
    ("header", "variable", "field", "fix"),
    [
        ("# period: quarter\n", "revenue share[incumbent]", "period", "'# period: year'"),
        ("# statistic: gini\n", "AI revenue", "statistic", "'# statistic: herfindahl'"),
        ("# statistic: herfindahl\n", "total AI revenue", "variable", "one subscript"),
        ("# statistic: herfindahl\n", "AI revenue[incumbent]", "variable", "one subscript"),
    ],
)
def test_a_series_with_a_bad_period_or_statistic_is_one_line_naming_the_file_and_field(tmp_path, header, variable, field, fix):
    from click.testing import CliRunner

    from sdmodel.cli import main

    data = _write_series(tmp_path, "share", variable, "Dmnl", [2024.0], [0.6])
    data.write_text(data.read_text().replace("# units:", header + "# units:"))
    params = tmp_path / "params.toml"
    params.write_text('[params."share sensitivity"]\ndist = "uniform"\nlower = 1\nupper = 10\n')
    result = CliRunner().invoke(main, ["calibrate", "--params", str(params), "--data", str(data)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert str(data) in result.stderr and field in result.stderr and fix in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("file", "fix"),
    [
        ("data-short-row.csv", "write rows as 2024,246"),
        ("data-nan-row.csv", "give finite years and values"),
        ("data-huge-row.csv", "give finite years and values"),
        ("data-underscore-row.csv", "write rows as 2024,246"),  # float() read "2_024" as 2024
    ],
)
def test_a_reference_row_that_is_no_finite_number_is_one_line(file, fix, isolated_runs_dir):
    """A short row was a TypeError; nan or 1e999 reached the fit as non-finite residuals."""
    from click.testing import CliRunner
    from paths import BAD

    from sdmodel.cli import main

    result = CliRunner().invoke(
        main, ["calibrate", "--params", str(models_dir() / "calibration.toml"), "--data", str(BAD / file)]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert file in result.stderr and "year,value" in result.stderr and fix in result.stderr


def test_a_series_naming_a_subscripted_variable_whole_is_refused():
    """It was compared with the variable's first element (the incumbent's capability), silently."""
    data = BAD_FILES / "data-subscripted-whole.csv"
    info = pysd_engine.model_info(default_model())
    with pytest.raises(InputError) as caught:
        targets([read_series(data)], info, (2020.0, 2050.0))
    assert str(caught.value) == (
        f"{data}: variable: model capability is subscripted by Firm, and a series is one number a year; "
        "name one element, e.g. 'model capability[incumbent]'"
    )
    (target,) = targets([replace(read_series(data), variable="Model Capability[CHALLENGER]")], info, (2020.0, 2050.0))
    assert target.select == {"Firm": "challenger"}  # elements in any case, as scenarios write them


def test_a_year_given_twice_is_refused():
    """The later row replaced the earlier, silently: the fit saw one of the two observations."""
    with pytest.raises(InputError, match=r"data-year-twice.csv: year,value: the year 2023 is given twice; give one value a"):
        read_series(BAD_FILES / "data-year-twice.csv")


def test_a_series_before_the_simulated_years_says_to_give_years_within_them():
    """The fix was "add a '# variable: NAME' header line" to a file that has one."""
    info = pysd_engine.model_info(default_model())
    with pytest.raises(InputError, match=r"give years within 2020 to 2050 \(a yearly flow's year ending by then\)"):
        targets([read_series(BAD_FILES / "data-before-the-model.csv")], info, (2020.0, 2050.0))


@pytest.mark.parametrize(
    "file",
    sorted(path.name for path in BAD_FILES.glob("dist-*.toml") if path.name != "dist-policy-lever.toml")
    + ["deeply-nested.toml", "malformed.toml", "empty.toml"],
)
def test_a_bad_parameters_file_is_one_line_naming_it(file, isolated_runs_dir):
    """`calibrate --params` reads a distributions file: each bad one of the corpus is one line naming it, before any fit.
    (Drawing a policy's own lever is bad only beside that policy: calibrating the baseline may fit it.)"""
    from click.testing import CliRunner

    from sdmodel.cli import main

    result = CliRunner().invoke(
        main, ["calibrate", "--params", str(BAD_FILES / file), "--data", str(models_dir() / "data" / "big4_capex.csv")]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert file in result.stderr and "Traceback" not in result.output
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())
