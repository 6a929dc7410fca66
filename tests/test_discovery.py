"""Scenario discovery (sdmodel/discovery.py, `sdmodel discover`): PRIM and CART on the robustness study of
tests/models/threshold.mdl, whose answer is known (tests/test_robustness.py's docstring derives it).

works-above gains 10 (a - 0.6) by year 10, with ``a`` uniform on [0, 1] and ``b`` unused: it fails
``benefit@10 - baseline > 0`` exactly when a <= 0.6 and ``benefit@5 - baseline >= 1`` when a < 0.8, so discovery
should box ``a`` below 0.6 (0.8) and leave ``b`` free.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from paths import THRESHOLD_ASSUMPTIONS as ASSUMPTIONS
from paths import THRESHOLD_CRITERIA as CRITERIA
from paths import THRESHOLD_MODEL as MODEL
from paths import THRESHOLD_POLICIES as POLICIES
from paths import sampling_error

from sdmodel.cli import main
from sdmodel.options import Execution, RunSetup


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
