"""Robustness (issue 14) on a fixture with a known answer: sdmodel/robustness.py and `sdmodel robustness`.

tests/models/threshold.mdl: ``benefit`` sums ``strength (a - 0.6) - cost`` each year for 10
years, with ``a`` and ``b`` uniform on [0, 1] and ``b`` unused. So, against the baseline
(strength 0, benefit 0):

- works-above (strength 1) gains 10 (a - 0.6) by year 10: it meets ``benefit@10 - baseline > 0``
  exactly when a > 0.6, with probability 0.4; ``benefit@5 - baseline >= 1`` when a >= 0.8 (0.2);
- dominated (cost 0.1 more) is 1 worse on every draw: a > 0.7 (0.3) and a >= 0.9 (0.1);
- regret on benefit@10: the best of 0 and 10 (a - 0.6) minus each one's. Its maximum over a in
  [0, 1] is 4 for the baseline (a = 1), 6 for works-above (a = 0) and 7 for dominated.

The study itself is the `study` fixture of tests/conftest.py, which tests/test_discovery.py reads too; the
criteria language is tested in tests/test_criteria.py.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from paths import THRESHOLD_ASSUMPTIONS as ASSUMPTIONS
from paths import THRESHOLD_CRITERIA as CRITERIA
from paths import THRESHOLD_MODEL as MODEL
from paths import THRESHOLD_POLICIES as POLICIES
from paths import THRESHOLD_SAMPLES as SAMPLES
from paths import robustness_cli, sampling_error

from sdmodel.cli import main
from sdmodel.options import Execution, RunSetup

# --- robustness against the analytic answer --------------------------------------------------------


def test_satisficing_shares_match_the_analytic_probabilities(study):
    summary, _ = study
    policies = summary["policies"]
    expected = {"works-above": (0.4, 0.2), "dominated": (0.3, 0.1), "baseline": (0.0, 0.0)}
    for name, shares in expected.items():
        for criterion, share in zip(CRITERIA, shares):
            assert abs(policies[name]["criteria"][criterion] - share) <= sampling_error(share) + 1 / SAMPLES, (name, criterion)
        assert (
            abs(policies[name]["satisficing"] - min(shares)) <= sampling_error(min(shares)) + 1 / SAMPLES
        )  # a >= 0.8 implies a > 0.6


def test_regret_matches_theory_and_ranks_the_dominated_policy_last(study):
    summary, _ = study
    policies = summary["policies"]
    assert summary["outcomes"][0] == {"label": "benefit@10", "better": "higher"}  # from the criterion's `>`
    for name, worst in {"baseline": 4.0, "works-above": 6.0, "dominated": 7.0}.items():
        assert policies[name]["regret"]["benefit@10"]["max"] == pytest.approx(
            worst, abs=10 * 2 / SAMPLES
        )  # LHS reaches within 1/N of the ends
    assert list(policies) == ["baseline", "works-above", "dominated"]  # Savage: least maximum regret first
    assert policies["dominated"]["rank"] == 3


def test_effect_percentiles_are_those_of_10_times_a_minus_the_threshold(study):
    summary, _ = study
    effects = summary["policies"]["works-above"]["effects"]["benefit@10"]
    for q in (5, 25, 50, 75, 95):
        assert effects[f"p{q}"] == pytest.approx(10 * (q / 100 - 0.6), abs=0.05)
    assert "effects" not in summary["policies"]["baseline"]


def test_the_run_is_saved_with_provenance_and_reloads(study):
    import sdmodel
    from sdmodel.robustness import analysis_of, to_json
    from sdmodel.store import read_manifest

    summary, runs = study
    manifest = read_manifest(summary["run"], runs)
    assert manifest["kind"] == "robustness"
    assert manifest["model_sha256"] and manifest["command"].startswith("sdmodel robustness")
    assert manifest["robustness"]["policies"].keys() == summary["policies"].keys()
    reloaded = sdmodel.open_run(summary["run"], runs)
    assert reloaded.sizes["run"] == SAMPLES and reloaded.sizes["scenario"] == 3
    assert to_json(analysis_of(reloaded), summary["run"]) == {k: v for k, v in summary.items() if k != "figure"}


# --- bad input: one line, exit 2, nothing saved ------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--criterion", "benefit@10 >"], "not a valid expression"),
        (["--criterion", "nonsense@10 > 0"], "unknown output 'nonsense'"),
        (["--criterion", "benefit@99 > 0"], "outside the run"),
        (["--criterion", "benefit@2.5 > 0"], "not a saved time"),
        (["--criterion", "benefit@10"], "not a criterion"),
        (["--criterion", "__import__('os').system('true') > 0"], "function call"),
        (["--criterion", "benefit > 0", "--maximize", "benefit > 0"], "not a number"),
        (["--criterion", "benefit > 0", "missing-policy"], "missing-policy"),
        (["--criterion", "benefit > 0", "--maximize", "benefit", "--minimize", "benefit"], "is also given to --minimize"),
        (["--criterion", "benefit@10 > benefit@5"], "says no direction for regret"),
        (["--criterion", "benefit > 0", "--plot", "x.gif"], "the file must end in .html or .png"),
    ],
)
def test_bad_robustness_input_is_one_line_exit_2(args, needle, tmp_path):
    result = robustness_cli(*args, runs_dir=tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# --- the bundled model ---------------------------------------------------------------------------------


def test_bundled_policies_are_all_studied_and_reported(tmp_path):
    """Default POLICY: every bundled scenario; the JSON has each one's effects, shares and regret; the report gets a section."""
    from sdmodel.locations import default_model
    from sdmodel.scenario import bundled_scenarios

    assumptions = default_model().parent / "assumptions.toml"
    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        main,
        [
            "robustness",
            str(assumptions),
            "--samples",
            "3",
            "--final-time",
            "2035",
            "--jobs",
            "1",
            "--json",
            "--criterion",
            "labour_share@2035 - baseline >= 0.001",
            "--criterion",
            "hhi@2035 < 0.5",
            "--runs-dir",
            str(runs),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary["policies"]) == set(bundled_scenarios())
    for name, entry in summary["policies"].items():
        assert set(entry["criteria"]) == {"labour_share@2035 - baseline >= 0.001", "hhi@2035 < 0.5"}
        assert entry["satisficing"] is not None and set(entry["regret"]) == {"labour_share@2035", "hhi@2035"}
        if name != "baseline":
            assert {"labour_share@2035", "hhi@2035"} <= set(entry["effects"])
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "data-strike",
            "--engine",
            "simlin",
            "--final-time",
            "2035",
            "--no-loops",
            "--robustness",
            summary["run"],
            "--out",
            str(report),
            "--runs-dir",
            str(runs),
        ],
    )
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "Which policy holds up across the assumptions" in text and "satisficing" in text


def test_robustness_runs_on_dask_as_serially(tmp_path):
    """Item 5: the study goes through the ensembles' executors, so a Dask cluster gives the same answer as one process."""
    from sdmodel.robustness import analysis_of, robustness, to_json

    options = {"criteria": [CRITERIA[0]], "samples": 60, "seed": 3, "setup": RunSetup(model=MODEL)}
    serial = to_json(analysis_of(robustness(ASSUMPTIONS, POLICIES, **options, execution=Execution(jobs=1, progress=False))))
    on_dask = to_json(
        analysis_of(robustness(ASSUMPTIONS, POLICIES, **options, execution=Execution(dask_local=1, progress=False)))
    )
    assert on_dask == serial


def test_a_thinned_study_keeps_the_years_asked(tmp_path):
    """--thin saves the outputs at the question's years and the final time: discovery works there, and says so elsewhere."""
    runs = tmp_path / "runs"
    result = robustness_cli("--criterion", CRITERIA[1], "--samples", "100", "--thin", "--json", runs_dir=runs)
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)["run"]
    import sdmodel

    saved = sdmodel.open_run(run, runs)
    assert saved["time"].values.tolist() == [5.0, 10.0]
    found = CliRunner().invoke(
        main, ["discover", run, "--policy", "works-above", "--criterion", CRITERIA[0], "--json", "--runs-dir", str(runs)]
    )
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["prim"][0]["restricted"]["assumption a"][1] == pytest.approx(0.6, rel=0.05)
    elsewhere = CliRunner().invoke(
        main, ["discover", run, "--policy", "works-above", "--criterion", "benefit@3 > 0", "--runs-dir", str(runs)]
    )
    assert elsewhere.exit_code == 2 and "not a saved time" in elsewhere.output
