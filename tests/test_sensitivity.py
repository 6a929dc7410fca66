"""Global sensitivity against answers known analytically, and a policy effect on the full model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from paths import MODELS

from sdmodel.errors import InputError
from sdmodel.options import Execution, RunSetup
from sdmodel.sensitivity import format_table, sensitivity

RANGES = MODELS / "ishigami-ranges.toml"
MODEL = MODELS / "ishigami.mdl"
# Ishigami and Homma 1990 with a = 7, b = 0.1 on [-pi, pi]^3 (e.g. Saltelli et al. 2008, Global Sensitivity Analysis)
ISHIGAMI_S1 = [0.3139, 0.4424, 0.0]
ISHIGAMI_ST = [0.5576, 0.4424, 0.2437]
LINEAR = [4.0, 2.0, 1.0]  # coefficients of `linear`


def test_sobol_matches_the_ishigami_and_linear_indices():
    found = sensitivity(RANGES, outputs=["y", "linear"], samples=1024, setup=RunSetup(model=MODEL), execution=Execution(jobs=1))
    ishigami = found.sel(output="y@1")
    for index, truth in (("S1", ISHIGAMI_S1), ("ST", ISHIGAMI_ST)):
        error = np.abs(ishigami[index].values - truth)
        assert (error <= ishigami[f"{index}_conf"].values + 0.01).all(), (index, ishigami[index].values)
    linear = found.sel(output="linear@1")
    expected = np.square(LINEAR) / np.square(LINEAR).sum()  # additive: S1 = ST = a_i^2 / sum a^2
    assert np.abs(linear["S1"].values - expected).max() <= linear["S1_conf"].values.max()
    assert np.abs(linear["ST"].values - expected).max() <= linear["ST_conf"].values.max()
    assert "x1" in format_table(found)


def test_morris_mu_star_is_the_slope_times_the_range():
    found = sensitivity(
        RANGES, outputs=["linear"], method="morris", samples=20, setup=RunSetup(model=MODEL), execution=Execution(jobs=1)
    ).sel(output="linear@1")
    np.testing.assert_allclose(found["mu_star"].values, np.array(LINEAR) * 2 * math.pi, rtol=1e-6)
    np.testing.assert_allclose(found["sigma"].values, 0, atol=1e-9)  # a linear function has one elementary effect


def test_sensitivity_of_a_policy_effect(tmp_path):
    ranges = tmp_path / "ranges.toml"
    ranges.write_text(
        '[params."share sensitivity"]\ndist = "uniform"\nlower = 2\nupper = 8\n'
        '[params."user adjustment time"]\ndist = "uniform"\nlower = 0.5\nupper = 4\n'
    )
    found = sensitivity(
        ranges,
        "data-strike",
        against="baseline",
        method="morris",
        samples=4,
        outputs=["revenue share[incumbent]@2035"],
        setup=RunSetup(final_time=2035),
        execution=Execution(jobs=1),
    )
    effect = found.sel(output="revenue share[incumbent]@2035")
    assert found.attrs["policy_effect_against"] == "baseline"
    # how strongly users follow capability decides how much market the strike moves
    assert (effect["mu_star"].values > 0).all()
    lever = tmp_path / "lever.toml"
    lever.write_text(ranges.read_text() + '[params."data strike fraction"]\ndist = "uniform"\nlower = 0.1\nupper = 0.5\n')
    with pytest.raises(InputError, match="lever"):
        sensitivity(
            lever,
            "data-strike",
            against="baseline",
            method="morris",
            samples=4,
            setup=RunSetup(final_time=2035),
            execution=Execution(jobs=1),
        )


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"method": "delta"}, "unknown method"),
        ({"samples": 1}, "too few samples"),
        ({"method": "fast", "samples": 64}, "FAST needs more than 4 M.2 = 64 samples"),
    ],
)
def test_bad_options(options, needle):
    with pytest.raises(InputError, match=needle):
        sensitivity(RANGES, outputs=["y"], **options, setup=RunSetup(model=MODEL))


def test_cli_prints_ranked_indices_and_saves_them(isolated_runs_dir):
    import json

    from click.testing import CliRunner

    from sdmodel.cli import main
    from sdmodel.store import open_run

    result = CliRunner().invoke(
        main,
        [
            "sensitivity",
            str(RANGES),
            "--model",
            str(MODEL),
            "--output",
            "linear",
            "--method",
            "morris",
            "--samples",
            "10",
            "--jobs",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["indices"]["linear@1"]["x1"]["mu_star"] > report["indices"]["linear@1"]["x2"]["mu_star"]
    assert open_run(report["run"]).attrs["method"] == "morris"
    assert report["policy_effect"] is None and "effect" not in format_table(open_run(report["run"]))


def test_cli_says_the_outputs_are_a_policys_effects_against_the_baseline(tmp_path, isolated_runs_dir):
    """With --against, 'revenue share[incumbent]@2035' is the strike's effect on the share, not the share: the table says so."""
    import json

    from click.testing import CliRunner

    from sdmodel.cli import main

    ranges = tmp_path / "ranges.toml"
    ranges.write_text(
        '[params."share sensitivity"]\ndist = "uniform"\nlower = 2\nupper = 8\n'
        '[params."user adjustment time"]\ndist = "uniform"\nlower = 0.5\nupper = 4\n'
    )
    command = [
        "sensitivity",
        str(ranges),
        "data-strike",
        "--against",
        "baseline",
        "--method",
        "morris",
        "--samples",
        "4",
        "--output",
        "revenue share[incumbent]@2035",
        "--final-time",
        "2035",
        "--jobs",
        "1",
    ]
    table = CliRunner().invoke(main, command)
    assert table.exit_code == 0, table.output
    assert table.stdout.startswith(
        "Policy effect of data-strike against baseline: each output is data-strike's value minus baseline's"
    )
    assert "effect of data-strike vs baseline on revenue share[incumbent]@2035  (morris, ranked by mu_star)" in table.stdout
    report = json.loads(CliRunner().invoke(main, [*command, "--json"]).stdout)
    assert report["policy_effect"] == {
        "of": "data-strike",
        "against": "baseline",
        "output": "the policy's value minus the baseline's",
    }


@pytest.mark.parametrize("bad", ["dist-lower-above-upper.toml", "dist-unknown-parameter.toml"])
def test_cli_bad_ranges_exit_2_with_one_line(bad, isolated_runs_dir):
    from click.testing import CliRunner
    from paths import BAD

    from sdmodel.cli import main

    result = CliRunner().invoke(main, ["sensitivity", str(BAD / bad)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and bad in result.stderr
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


@pytest.mark.parametrize("output", ["y@5", "y@-1", "y@nan", "y@0.5"])  # the fixture saves y at 0 and 1
def test_cli_refuses_a_time_the_run_does_not_save(output, isolated_runs_dir):
    """Read at the nearest saved time, y@5 of a run to 1 would be labelled 5 and hold the value at 1."""
    from click.testing import CliRunner

    from sdmodel.cli import main

    command = ["sensitivity", str(RANGES), "--model", str(MODEL), "--output", output, "--samples", "4"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "is not a time the run saves" in line and "--output" in line
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


@pytest.mark.parametrize(
    ("method", "notes"),
    [("sobol", ["the same in every member"]), ("fast", ["the same in every member", "FAST's confidence intervals"])],
)
def test_library_warnings_become_notes_of_one_line(method, notes, tmp_path):
    """At 2022 no assumption has moved some outputs yet: SALib divided by their zero variance (numpy's RuntimeWarning,
    two lines of source on stderr), and FAST warned of its intervals. Now: one note each, and the indices stay NaN."""
    samples = "64" if method == "sobol" else "80"
    command = ["sensitivity", "models/assumptions.toml", "--final-time", "2022", "--samples", samples, "--method", method]
    env = {**os.environ, "SDMODEL_RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run(
        [sys.executable, "-m", "sdmodel.cli", *command, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(notes) and all(line.startswith("sdmodel: note: ") for line in lines), lines
    assert all(note in line for note, line in zip(notes, lines))
    unmoved = lines[0].split(": ")[2].split(", ")
    indices = json.loads(done.stdout)["indices"]
    assert unmoved and all(math.isnan(indices[label][param]["S1"]) for label in unmoved for param in indices[label])
