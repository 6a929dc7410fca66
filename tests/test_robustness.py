"""Robustness and scenario discovery (issue 14) on a fixture with a known answer, and the criteria language's safety.

tests/models/threshold.mdl: ``benefit`` sums ``strength (a - 0.6) - cost`` each year for 10
years, with ``a`` and ``b`` uniform on [0, 1] and ``b`` unused. So, against the baseline
(strength 0, benefit 0):

- works-above (strength 1) gains 10 (a - 0.6) by year 10: it meets ``benefit@10 - baseline > 0``
  exactly when a > 0.6, with probability 0.4; ``benefit@5 - baseline >= 1`` when a >= 0.8 (0.2);
- dominated (cost 0.1 more) is 1 worse on every draw: a > 0.7 (0.3) and a >= 0.9 (0.1);
- regret on benefit@10: the best of 0 and 10 (a - 0.6) minus each one's. Its maximum over a in
  [0, 1] is 4 for the baseline (a = 1), 6 for works-above (a = 0) and 7 for dominated.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from paths import MODELS

from sdmodel.cli import main
from sdmodel.criteria import Reference, outcomes_of, parse
from sdmodel.errors import InputError
from sdmodel.options import Execution, RunSetup

MODEL = MODELS / "threshold.mdl"
FOLDER = MODELS / "threshold"
ASSUMPTIONS = FOLDER / "assumptions.toml"
POLICIES = [str(FOLDER / "works-above.toml"), str(FOLDER / "dominated.toml")]
SAMPLES = 1000
CRITERIA = ["benefit@10 - baseline > 0", "benefit@5 - baseline >= 1"]


def sampling_error(p: float, n: int = SAMPLES) -> float:
    """Three standard errors of a share (a Latin hypercube's are smaller: this bound is loose, never tight)."""
    return 3 * math.sqrt(p * (1 - p) / n)


def robustness_cli(*args, runs_dir):
    return CliRunner().invoke(
        main,
        ["robustness", str(ASSUMPTIONS), *POLICIES, "--model", str(MODEL), "--jobs", "1", "--runs-dir", str(runs_dir), *args],
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One robustness run of the fixture through the command line: (its JSON, the runs folder)."""
    runs = tmp_path_factory.mktemp("runs")
    figure = tmp_path_factory.mktemp("figure") / "robustness.png"
    args = [f"--criterion={c}" for c in CRITERIA] + ["--samples", str(SAMPLES), "--json", "--plot", str(figure)]
    result = robustness_cli(*args, runs_dir=runs)
    assert result.exit_code == 0, result.output
    return json.loads(result.output), runs


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


# --- scenario discovery -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def discovered(study):
    summary, runs = study
    result = CliRunner().invoke(
        main,
        ["discover", summary["run"], "--policy", "works-above", "--criterion", CRITERIA[0], "--json", "--runs-dir", str(runs)],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output), runs


def test_prim_finds_the_threshold_within_five_percent(discovered):
    found, _ = discovered
    box = found["prim"][0]
    assert list(box["restricted"]) == ["assumption a"]  # b decides nothing
    assert box["quasi_p"]["assumption a"] < 1e-6
    low, high = box["restricted"]["assumption a"]
    assert low == pytest.approx(0, abs=0.01)
    assert high == pytest.approx(0.6, rel=0.05)
    assert box["coverage"] >= 0.9 and box["density"] >= 0.8
    assert found["failing"] / found["draws"] == pytest.approx(0.6, abs=sampling_error(0.6))
    assert len(box["trajectory"]) > 2 and box["trajectory"][0]["coverage"] == 1.0  # the peeling starts from every draw


def test_cart_finds_the_threshold_too(discovered):
    found, _ = discovered
    leaf = found["cart"][0]
    assert leaf["density"] == pytest.approx(1.0, abs=0.05)
    assert leaf["bounds"]["assumption a"][1] == pytest.approx(0.6, rel=0.05)


def test_a_stricter_criterion_moves_the_threshold(study):
    """benefit@5 - baseline >= 1 fails below a = 0.8: asked of the saved run, with no new model runs."""
    import sdmodel
    from sdmodel.discovery import discover, to_json

    summary, runs = study
    found = to_json(discover(sdmodel.open_run(summary["run"], runs), "works-above", [CRITERIA[1]]))
    assert found["prim"][0]["restricted"]["assumption a"][1] == pytest.approx(0.8, rel=0.05)


def test_discovery_is_saved_and_reloads(discovered):
    import sdmodel
    from sdmodel.discovery import to_json
    from sdmodel.store import read_manifest

    found, runs = discovered
    assert read_manifest(found["run"], runs)["kind"] == "discovery"
    reloaded = sdmodel.open_run(found["run"], runs)
    assert to_json(reloaded, found["run"]) == found


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


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--policy", "nobody"], "is not a scenario of the run"),
        (["--policy", "baseline"], "fails on every draw"),  # the baseline never beats itself: nothing to discover
        (["--policy", "works-above", "--criterion", "benefit@10 - baseline > -100"], "meets the criteria on every draw"),
        (["--policy", "works-above", "--criterion", "benefit[0] > 0"], "subscript"),
        (["--policy", "works-above", "--criterion", "hhi > 0"], "unknown output 'hhi'"),
    ],
)
def test_bad_discovery_input_is_one_line_exit_2(args, needle, study):
    summary, runs = study
    before = sorted(p.name for p in runs.iterdir())
    result = CliRunner().invoke(main, ["discover", summary["run"], *args, "--runs-dir", str(runs)])
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in runs.iterdir()) == before


def test_discover_refuses_a_run_of_another_kind(tmp_path):
    import xarray as xr

    from sdmodel.store import save_run

    other = save_run(xr.Dataset({"x": ("time", [1.0])}, coords={"time": [0.0]}), "other", tmp_path, kind="run")
    result = CliRunner().invoke(main, ["discover", other.name, "--policy", "p", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "this command reads runs of `sdmodel robustness`" in result.output


# --- the expression language -------------------------------------------------------------------------


def test_expressions_evaluate_over_draws():
    values = {
        Reference("hhi", 2040.0): np.array([0.3, 0.5]),
        Reference("labour_share", 2040.0): np.array([0.6, 0.55]),
        Reference("labour_share", 2040.0, True): np.array([0.58, 0.55]),
        Reference("labour_share"): np.array([0.1, 0.9]),
    }
    expression = parse("labour_share@2040 - baseline >= 0.01 and hhi@2040 < 0.4", test=True)
    assert expression.evaluate(values.__getitem__).tolist() == [True, False]
    assert parse("0.2 < hhi@2040 * 2 / 2 + -0.1 <= 0.3 or not labour_share > 0.5", test=True).evaluate(
        values.__getitem__
    ).tolist() == [True, False]
    assert parse("labour_share@2040 - 2 * hhi@2040", test=False).evaluate(values.__getitem__) == pytest.approx([0.0, -0.45])


def test_directions_come_from_the_comparisons():
    outcomes = outcomes_of(parse("hhi@2040 < 0.4 and 0.01 <= labour_share@2040 - baseline", test=True))
    assert [(o.label, o.sense) for o in outcomes] == [("hhi@2040", -1), ("labour_share@2040", 1)]


HOSTILE = [
    "__import__('os').system('touch /tmp/sdmodel-pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "hhi.__class__ > 0",
    "open('/etc/passwd') > 0",
    "(lambda: 1)() > 0",
    "hhi[0] > 0",
    "10 ** 10 ** 10 > hhi",
    "9" * 400 + " > hhi",
    "1e999 > hhi",
    "hhi < 1/0",  # met on every draw: 1/0 is inf under numpy
    "hhi / (2 - 2) > 0",
    "'a' * 10 > hhi",
    "[x for x in ()] > hhi",
    "(x := 1) > 0",
    "hhi if hhi else 0",
    "_sdref0 > 0",
    "__builtins__ > 0",
    "hhi == 0.4",
    "hhi > 0; import os",
    "hhi\x00 > 0",
    "-" * 300 + "hhi > 0",
    "(" * 210 + "hhi" + ")" * 210 + " > 0",  # beyond the parser's nesting limit
    "+".join(["hhi"] * 200) + " > 0",
    "hhi@2040@2050 > 0",
    "baseline > 0",
    "f'{hhi}' > 0",
    "True > hhi",
    "",
    "x" * 600,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_expressions_are_one_line_errors(text, tmp_path):
    with pytest.raises(InputError) as raised:
        parse(text, test=True)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 400


def test_no_expression_reaches_eval(monkeypatch):
    """Evaluating the allowed language calls neither eval, exec nor compile: the walker computes it."""
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("eval, exec or compile was called")

    expression = parse("hhi@2040 < 0.4 and labour_share > 0.5", test=True)
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    assert expression.evaluate(lambda ref: np.array([0.3, 0.7]) if ref.output == "hhi" else np.array([0.6, 0.6])).tolist() == [
        True,
        False,
    ]


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


def test_discovery_works_on_few_draws():
    """Eight draws: CART's smallest leaf would round to no draw at all (scikit-learn refuses that); it is one draw."""
    from sdmodel.discovery import discover, to_json
    from sdmodel.robustness import robustness

    run = robustness(
        ASSUMPTIONS,
        POLICIES[:1],
        criteria=[CRITERIA[0]],
        samples=8,
        setup=RunSetup(model=MODEL),
        execution=Execution(jobs=1, progress=False),
    )
    found = to_json(discover(run, "works-above"))
    assert found["cart"] and found["prim"][0]["restricted"]["assumption a"][1] == pytest.approx(0.6, abs=1 / 8)


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
