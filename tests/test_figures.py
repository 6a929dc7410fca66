"""Seeing the results: `plot`, `report` and `loops`, as files a person opens (HTML offline, PNG) and JSON for scripts."""

from __future__ import annotations

import itertools
import json
import re
import struct

import holoviews as hv
import pytest
from click.testing import CliRunner
from paths import SHORT_HORIZON

import sdmodel
from sdmodel.cli import main

#: a tag that would load a script or a stylesheet from elsewhere (the page must open offline)
EXTERNAL = re.compile(r"""<(script|link)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+(url\()?["']?(https?:)?//""", re.IGNORECASE)
LOOP_SCENARIOS = ("baseline", "data-strike", "collective-licensing")
LOOP_HORIZON = 2045.0  # since businesses' automation diffuses (Bass), no lever changes the dominant loop before 2043


def assert_offline_html(path):
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "Bokeh" in html
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert not CSS_IMPORT.search(html)
    assert "<script src=" not in html and "<link" not in html.lower()
    return html


def assert_png(path, min_bytes=10_000, min_side=200):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= min_side and height >= min_side, (width, height)
    assert len(data) >= min_bytes, len(data)
    from PIL import Image

    with Image.open(path) as image:
        image.verify()  # a complete, decodable image
    with Image.open(path) as image:
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # something is drawn on it


@pytest.fixture
def saved_run(isolated_runs_dir):
    result = CliRunner().invoke(
        main, ["run", *LOOP_SCENARIOS, "--engine", "simlin", "--final-time", str(SHORT_HORIZON), "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["run"]


def test_plot_html_is_self_contained_and_labels_carry_units(saved_run, tmp_path):
    out = tmp_path / "capability.html"
    result = CliRunner().invoke(
        main, ["plot", saved_run, "--var", "model capability", "--var", "Financial_Capital", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = assert_offline_html(out)
    assert (
        "model capability [index]" in html and "Financial Capital [billion USD]" in html
    )  # axis labels with units, in a reader's words


def test_plot_png_by_firm_and_by_domain(saved_run, tmp_path):
    for by, variable in (("Firm", "model capability"), ("Domain", "Automated Task Share")):
        out = tmp_path / f"{by}.png"
        result = CliRunner().invoke(main, ["plot", "latest", "--var", variable, "--by", by, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert_png(out)


def test_plot_accepts_an_element_and_a_metric_key(saved_run, tmp_path):
    out = tmp_path / "one.png"
    result = CliRunner().invoke(main, ["plot", "latest", "--var", "revenue share[challenger]", "--var", "hhi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_png(out)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--var", "modle capability"], "did you mean 'model capability'"),
        (["--var", "model capability[nobody]"], "'nobody' is not an element"),
        (["--var", "model capability", "--by", "Sector"], "Invalid value for '--by'"),
    ],
)
def test_plot_bad_names_are_one_line_and_exit_2(saved_run, tmp_path, args, words):
    result = CliRunner().invoke(main, ["plot", "latest", *args, "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2, result.output
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 or "Usage:" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_an_unknown_format(saved_run, tmp_path):
    result = CliRunner().invoke(main, ["plot", "latest", "--var", "hhi", "--out", str(tmp_path / "x.svg")])
    assert result.exit_code == 2 and "the file must end in .html or .png" in result.stderr


def test_loops_json_names_the_dominant_loop_per_period_for_each_scenario(tmp_path):
    figure = tmp_path / "loops.png"
    result = CliRunner().invoke(
        main, ["loops", *LOOP_SCENARIOS, "--final-time", str(LOOP_HORIZON), "--json", "--plot", str(figure)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["scenarios"]) == set(LOOP_SCENARIOS) and report["baseline"] == "baseline"
    named = set(report["loops"]) | set(report["unscored"])
    assert named == {"R1", "R2", "R3", "R4", "R5", "B1", "B2", "B3", "B4"}  # as models/loops.toml names them
    assert {"R1", "R2", "R3", "B1", "B4"} <= set(
        report["loops"]
    )  # R4 and B2 expand past what Simlin 0.8.5 scores; R4 is measured by knockout (models/README.md)
    for reason in report["unscored"].values():
        assert "Simlin" in reason
    for name, result_ in report["scenarios"].items():
        periods = result_["periods"]
        assert periods, name
        for period in periods:
            assert period["loop"] in report["loops"] and period["name"] == report["loops"][period["loop"]]["name"]
            assert (
                0 < period["share"] <= 1 and period["start"] <= period["end"] <= LOOP_HORIZON
            )  # a switch at the last step: start == end
        assert all(a["end"] == b["start"] for a, b in itertools.pairwise(periods))  # contiguous, one loop at a time
        assert all(a["loop"] != b["loop"] for a, b in itertools.pairwise(periods))
        assert result_["dominant_at_end"] == periods[-1]["loop"]
    # the question it answers: when a lever first changes which loop drives the system. Not before the levers start in
    # 2027 (the runs are the same until then), and within the horizon for at least one of them. In steady periods (no
    # switch shorter than loops.MIN_PERIOD, measured 2026-12-05 after businesses' automation became a diffusion): the
    # baseline hands the lead from R2 to R5 in 2033 and keeps it to 2045; the data strike hands it back to R2 in 2043
    # (measured 2026-12-04, before the diffusion: the strike handed it from R2 to R5 in 2029, a year before the
    # baseline). Step by step (step_periods) the strike moves the loops' shares from 2027.
    firsts = [report["scenarios"][name]["differs_from_baseline_from"] for name in LOOP_SCENARIOS if name != "baseline"]
    assert all(first is None or 2027 <= first <= LOOP_HORIZON for first in firsts)
    assert any(first is not None for first in firsts)
    steps = [report["scenarios"][name]["step_differs_from_baseline_from"] for name in LOOP_SCENARIOS if name != "baseline"]
    assert all(step is None or 2027 <= step for step in steps)
    for result_ in report["scenarios"].values():  # the raw series stays in the JSON
        assert result_["step_periods"] and all(
            a["end"] == b["start"] for a, b in zip(result_["step_periods"], result_["step_periods"][1:])
        )
    assert report["scenarios"]["baseline"]["differs_from_baseline_from"] is None
    assert_png(figure)


def test_loops_of_a_policy_alone_are_read_against_the_baseline():
    result = CliRunner().invoke(main, ["loops", "data-strike", "--final-time", str(LOOP_HORIZON)])
    assert result.exit_code == 0, result.output
    rows = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip() and not line.startswith(" ")]
    assert {"baseline", "data-strike"} <= set(rows)
    assert (
        "Dominance differs from the baseline: data-strike from 2043" in result.stdout
    )  # R2 takes the lead back from R5, which keeps it in the baseline


def test_report_is_one_offline_page_with_every_part(isolated_runs_dir, tmp_path):
    members = tmp_path / "dist.toml"
    members.write_text('[params."data strike fraction"]\ndist = "uniform"\nlower = 0.1\nupper = 0.5\n')
    runner = CliRunner()
    ensemble = runner.invoke(
        main, ["uncertainty", str(members), "data-strike", "--samples", "8", "--final-time", "2030", "--jobs", "1", "--json"]
    )
    assert ensemble.exit_code == 0, ensemble.output
    out = tmp_path / "report.html"
    result = runner.invoke(
        main,
        [
            "report",
            *LOOP_SCENARIOS,
            "--engine",
            "simlin",
            "--final-time",
            "2030",
            "--out",
            str(out),
            "--uncertainty",
            json.loads(ensemble.stdout)["run"],
        ],
    )
    assert result.exit_code == 0, result.output
    html = assert_offline_html(out)
    for part in (
        "What the run shows",
        "Point of view:",
        "Comparison with the baseline",
        "Each scenario against the baseline",
        "Which feedback loop drives the system",
        "Uncertainty",
        "Monte Carlo bands",
        "Provenance",
        "model_sha256",
        "sdmodel report",
    ):
        assert part in html, part
    assert "<td class='name'>data-strike</td>" in html and "R4" in html
    from sdmodel.metrics import GROUPS

    assert all(f"class='group'>{group}</th>" in html for group in GROUPS)  # target, market, AI vs labour
    # the same page again from the saved run, without running anything (named by its path: `latest` sorts runs
    # by folder name, so a run saved in the same second as the ensemble might not be the latest)
    saved = re.search(r"saved (\S+)", result.stderr).group(1)
    again = runner.invoke(main, ["report", "--run", saved, "--no-loops", "--out", str(tmp_path / "again.html")])
    assert again.exit_code == 0, again.output
    assert "No Monte Carlo run given" in assert_offline_html(tmp_path / "again.html")


def test_report_refuses_bands_from_a_run_without_members_before_any_work(saved_run, tmp_path, isolated_runs_dir):
    out = tmp_path / "report.html"
    before = sorted(isolated_runs_dir.iterdir())
    result = CliRunner().invoke(main, ["report", "--engine", "simlin", "--uncertainty", saved_run, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "is a run of `sdmodel run`; this command reads runs of `sdmodel uncertainty`" in result.stderr
    assert not out.exists() and sorted(isolated_runs_dir.iterdir()) == before  # no comparison was run and saved first


def test_sweep_plot_draws_the_outcome_against_the_swept_constants(tmp_path):
    """`sweep --plot`: the final-time outcome against the first constant, a line per value of the second,
    a panel per value of the third, so a tipping threshold can be read off (models/README.md)."""
    from sdmodel.plots import sweep_figure
    from sdmodel.store import open_run

    figure = tmp_path / "tipping.html"
    grid = ["--param", "share sensitivity=2:8:4", "--param", "user adjustment time=0.5:2:2", "--param", "hardware life=4:6:3"]
    result = CliRunner().invoke(
        main, ["sweep", *grid, "--output", "hhi", "--final-time", str(SHORT_HORIZON), "--plot", str(figure)]
    )
    assert result.exit_code == 0, result.output
    html = assert_offline_html(figure)
    assert "share sensitivity" in html and "user adjustment time" in html and "hardware life = 5" in html
    run = re.search(r"saved (\S+)", result.stdout).group(1)
    layout = sweep_figure(open_run(run), "hhi")
    assert len(layout) == 3  # a panel per hardware life
    panel = layout[0]  # one line per user adjustment time, over share sensitivity, and the baseline's own value
    curves = [element for element in panel if isinstance(element, hv.Curve)]
    assert [curve.label for curve in curves] == ["0.5", "2"]  # the legend: one line per value
    assert all(curve.kdims[0].name == "share_sensitivity" for curve in curves)
    own = float(sdmodel.run(["baseline"], engine="simlin", final_time=2021)["share_sensitivity"].squeeze())
    marks = [element for element in panel if isinstance(element, hv.VLine)]
    assert len(marks) == 1 and marks[0].data == pytest.approx(own)
    assert any(isinstance(element, hv.Text) and "baseline" in element.text for element in panel)
    png = tmp_path / "tipping.png"
    assert (
        CliRunner()
        .invoke(main, ["sweep", *grid[:4], "--output", "hhi", "--final-time", str(SHORT_HORIZON), "--plot", str(png)])
        .exit_code
        == 0
    )
    assert_png(png)


def test_sweep_figure_marks_the_value_the_scenario_itself_sets(tmp_path):
    """The data-strike scenario sets the strike fraction to 0.33: the mark is there, not at the model's 0."""
    from sdmodel.ensemble import sweep
    from sdmodel.options import Execution, RunSetup
    from sdmodel.plots import sweep_figure

    results = sweep(
        ["data strike fraction=0:0.6:3"],
        "data-strike",
        outputs=["hhi"],
        setup=RunSetup(final_time=2028),
        execution=Execution(jobs=1),
    )
    assert results["data_strike_fraction"].attrs["scenario_value"] == pytest.approx(0.33)
    panel = sweep_figure(results, "hhi")[0]
    marks = [element for element in panel if isinstance(element, hv.VLine)]
    assert len(marks) == 1 and marks[0].data == pytest.approx(0.33)


def test_sweep_figure_refuses_a_run_that_is_not_a_sweep(saved_run):
    from sdmodel.errors import InputError
    from sdmodel.plots import sweep_figure
    from sdmodel.store import open_run

    with pytest.raises(InputError, match="not a sweep"):
        sweep_figure(open_run(saved_run), "hhi")


def test_sweep_with_a_bad_figure_name_runs_nothing(isolated_runs_dir, tmp_path):
    result = CliRunner().invoke(main, ["sweep", "--param", "share sensitivity=2:8:2", "--plot", str(tmp_path / "tipping.jpg")])
    assert (
        result.exit_code == 2
        and "the file must end in .html or .png" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())
