"""Policy search (issue 14 item 3) on the fixture of tests/test_robustness.py, whose answer is known.

In tests/models/threshold.mdl the policy gains ``10 (strength (a - 0.6) - cost)`` by year 10.
A cost buys nothing, so no Pareto-optimal candidate pays one; any strength above 0 meets
``benefit@10 - baseline > 0`` exactly when a > 0.6 (on a Latin hypercube of 40 draws of a,
16 of them), while the mean benefit, 10 strength (0.5 - 0.6), falls with strength: the
Pareto set is a barely positive strength at no cost, meeting the criterion on 40% of draws.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from paths import THRESHOLD_FOLDER as FOLDER
from paths import THRESHOLD_MODEL as MODEL

from sdmodel.cli import main


def search(*args, tmp_path):
    return CliRunner().invoke(
        main,
        [
            "search-policy",
            str(FOLDER / "levers.toml"),
            str(FOLDER / "assumption-a.toml"),
            "--model",
            str(MODEL),
            "--jobs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            *args,
        ],
    )


def test_the_pareto_set_is_known_runs_and_reloads(tmp_path):
    import sdmodel
    from sdmodel.store import read_manifest

    result = search(
        "--maximize",
        "benefit@10",
        "--criterion",
        "benefit@10 - baseline > 0",
        "--samples",
        "40",
        "--population",
        "8",
        "--generations",
        "6",
        "--out",
        str(tmp_path / "pareto"),
        "--json",
        tmp_path=tmp_path,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["pareto"]
    for entry in summary["pareto"]:
        assert entry["levers"]["policy cost"] < 0.05
        assert entry["objectives"]["share meeting benefit@10 - baseline > 0"] <= 0.4 + 1e-9  # a > 0.6 at best
        assert entry["objectives"]["mean benefit@10"] == pytest.approx(
            -entry["levers"]["policy strength"] - 10 * entry["levers"]["policy cost"], abs=0.05
        )
    assert any(e["objectives"]["share meeting benefit@10 - baseline > 0"] == pytest.approx(0.4) for e in summary["pareto"])
    assert read_manifest(summary["run"], tmp_path / "runs")["kind"] == "search"
    reloaded = sdmodel.open_run(summary["run"], tmp_path / "runs")
    assert int(reloaded["pareto"].sum()) >= len(summary["pareto"]) and reloaded.sizes["candidate"] == 8 * 6
    ran = CliRunner().invoke(
        main,
        ["run", summary["pareto"][0]["file"], "--model", str(MODEL), "--engine", "simlin", "--runs-dir", str(tmp_path / "runs")],
    )
    assert ran.exit_code == 0, ran.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--maximize", "benefit@10"], "one objective"),
        ([], "no objective given"),
        (["--maximize", "benefit@10", "--minimize", "nothing@10"], "unknown output 'nothing'"),
        (["--maximize", "benefit@10", "--minimize", "open('x')"], "function call"),
        # one outcome both ways (every candidate is Pareto-optimal), or twice: they ran the whole search
        (["--maximize", "benefit@10", "--minimize", "(benefit @ 10)"], "is already an objective (--maximize benefit@10)"),
        (["--criterion", "benefit@10 > 1", "--criterion", "benefit@10>1"], "is already an objective (--criterion"),
    ],
)
def test_bad_search_input_is_one_line_exit_2(args, needle, tmp_path):
    result = search(*args, "--out", str(tmp_path / "pareto"), tmp_path=tmp_path)
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "pareto").exists()


def test_a_search_too_large_is_refused_before_its_first_run(tmp_path):
    """Each generation was checked alone, so a search of a billion generations began running."""
    result = search("--maximize", "benefit@10", "--minimize", "benefit@5", "--generations", str(10**9), tmp_path=tmp_path)
    assert result.exit_code == 2, result.output
    assert "--generations" in result.output and "more than the limit" in result.output
    assert "--yes" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_lever_cannot_also_be_drawn(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "search-policy",
            str(FOLDER / "levers.toml"),
            str(FOLDER / "levers.toml"),
            "--model",
            str(MODEL),
            "--maximize",
            "benefit@10",
            "--minimize",
            "benefit@5",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 2 and "is also a lever" in result.output


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"setup": {"overrides": {"cost": 1.0}}}, "set it in the base scenario"),
        ({"execution": {"store": "members.nc"}}, "a search keeps no members"),
    ],
)
def test_options_a_search_cannot_use_are_refused_before_any_run(options, needle):
    """A constant set in every candidate would be a lever not searched; candidates' members are not kept."""
    from sdmodel.errors import InputError
    from sdmodel.options import Execution, RunSetup
    from sdmodel.search import search_policy

    setup = RunSetup(model=MODEL, **options.get("setup", {}))
    execution = Execution(jobs=1, **options.get("execution", {}))
    with pytest.raises(InputError, match=needle):
        search_policy(
            FOLDER / "levers.toml",
            FOLDER / "assumption-a.toml",
            maximize=["benefit@10"],
            minimize=["cost"],
            setup=setup,
            execution=execution,
        )
