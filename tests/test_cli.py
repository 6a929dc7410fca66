"""The CLI as a user meets it, through click's CliRunner (and one real process for --help)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from paths import MODELS, SHORT_HORIZON

from sdmodel.cli import main
from sdmodel.locations import default_model
from sdmodel.metrics import GROUPS
from sdmodel.scenario import bundled_scenarios
from sdmodel.store import open_run

METRIC_KEYS = {
    "incumbent_capital_share",
    "incumbent_revenue_share",
    "hhi",
    "incumbent_capability",
    "data_payments_cumulative",
    "commons_grants_cumulative",
}


def test_help_imports_no_heavy_library():
    code = "import sys; from sdmodel.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\nprint(sorted(m for m in ('pysd', 'xarray', 'hvplot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: " in out and out.strip().endswith("[]")


DASK_LOADED = "print(sorted(m for m, module in sys.modules.items() if m.split('.')[0] in ('dask', 'distributed') and module))"


def test_program_keeps_dask_out_of_commands_that_cannot_use_it(tmp_path):
    """xarray imports dask.array and distributed just to check array types; `compare` has no use for them."""
    argv = [
        "sdmodel",
        "compare",
        "data-strike",
        "--engine",
        "simlin",
        "--final-time",
        str(SHORT_HORIZON),
        "--runs-dir",
        str(tmp_path),
    ]
    code = f"import sys; sys.argv = {argv!r}; from sdmodel.cli import program\ntry: program()\nexcept SystemExit: pass\n{DASK_LOADED}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "saved" in result.stdout and result.stdout.strip().endswith("[]"), result.stdout + result.stderr
    assert len(list(tmp_path.iterdir())) == 1  # the comparison itself ran and was saved


def test_program_leaves_dask_to_commands_that_can_use_it():
    code = f"import sys; from sdmodel.cli import _keep_dask_out\n_keep_dask_out(['sweep'])\nimport dask.array, distributed\n{DASK_LOADED}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'dask.array'" in out and "'distributed'" in out


def test_compare_json_lists_every_bundled_scenario(isolated_runs_dir, tmp_path):
    figure = tmp_path / "figure.html"
    result = CliRunner().invoke(
        main, ["compare", "--json", "--engine", "simlin", "--final-time", str(SHORT_HORIZON), "--plot", str(figure)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["baseline"] == "baseline"
    assert set(report["scenarios"]) == set(bundled_scenarios())
    for name, metrics in report["scenarios"].items():
        assert METRIC_KEYS <= set(metrics), name
        for values in metrics.values():
            assert set(values) == {"final", "vs_baseline"}
    assert all(v["vs_baseline"] == 0 for v in report["scenarios"]["baseline"].values())
    assert {report["metrics"][key]["group"] for key in METRIC_KEYS} == set(GROUPS)  # target firm, market, AI vs labour
    saved = open_run(report["run"])
    assert list(saved["scenario"].values) == list(report["scenarios"])
    # the saved comparison agrees with the results stored beside it
    strike = saved["model_capability"].sel(scenario="data-strike", Firm="incumbent").isel(time=-1).item()
    assert report["scenarios"]["data-strike"]["incumbent_capability"]["final"] == strike
    html = figure.read_text()
    assert "Bokeh" in html and "<script src=" not in html
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']https?://""", html)


def test_run_then_list_and_show(isolated_runs_dir):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "data-strike", "--set", "data strike fraction=0.5", "--final-time", "2026", "--json"])
    assert result.exit_code == 0, result.output
    path = json.loads(result.stdout)["run"]
    saved = open_run(path)
    assert float(saved["data_strike_fraction"].sel(scenario="data-strike")) == 0.5
    assert "--set" in saved.attrs["command"]
    listing = runner.invoke(main, ["runs", "list"])
    assert listing.exit_code == 0 and path.rsplit("/", 1)[-1] in listing.stdout
    shown = runner.invoke(main, ["runs", "show", "latest", "--json"])
    assert json.loads(shown.stdout)["path"] == path


def test_runs_dir_option_wins_over_environment(tmp_path):
    chosen = tmp_path / "elsewhere"
    result = CliRunner().invoke(main, ["run", "--final-time", "2021", "--runs-dir", str(chosen), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"].startswith(str(chosen))


def test_scenarios_list_show_validate():
    runner = CliRunner()
    listing = runner.invoke(main, ["scenarios", "list", "--json"])
    assert [s["name"] for s in json.loads(listing.stdout)] == bundled_scenarios()
    shown = runner.invoke(main, ["scenarios", "show", "strike-and-licensing"])
    assert '"organising rate" = 0.5' in shown.stdout and '"data strike fraction" = 0.33' in shown.stdout
    valid = runner.invoke(main, ["scenarios", "validate", "models/scenarios/data-strike.toml"])
    assert valid.exit_code == 0 and "ok" in valid.stdout


def test_compare_with_the_fast_engine_agrees_with_pysd(isolated_runs_dir):
    runner = CliRunner()
    reports = {}
    for engine in ("pysd", "simlin"):
        result = runner.invoke(main, ["compare", "data-strike", "--final-time", "2030", "--engine", engine, "--json"])
        assert result.exit_code == 0, result.output
        reports[engine] = json.loads(result.stdout)
    assert open_run(reports["simlin"]["run"]).attrs["engine"] == "simlin"
    for name, metrics in reports["pysd"]["scenarios"].items():
        for key, values in metrics.items():
            fast = reports["simlin"]["scenarios"][name][key]["final"]
            assert abs(fast - values["final"]) <= 1e-6 * max(abs(values["final"]), 1e-12), (name, key)


def test_compare_with_a_model_of_ones_own_runs_the_bundled_scenarios_it_can(isolated_runs_dir):
    """Every bundled scenario but those that set only the strike sets a lever this model lacks: they are left out, and the user told."""
    model = MODELS / "strike_only.mdl"  # one of the bundled levers and one of compare's measures
    result = CliRunner().invoke(main, ["compare", "--model", str(model), "--engine", "simlin", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["scenarios"]) == {"baseline", "data-strike"}
    assert report["scenarios"]["data-strike"]["labour_share"]["vs_baseline"] == pytest.approx(
        -0.1 * 0.33
    )  # the model's equation, from 2027
    skipped = len(bundled_scenarios()) - 2
    assert (
        f"comparing the 2 bundled scenarios it can run (baseline, data-strike); {skipped} set constants it lacks" in result.stderr
    )
    named = CliRunner().invoke(main, ["compare", "collective-licensing", "--model", str(model), "--engine", "simlin"])
    assert named.exit_code == 2 and "organising" in named.stderr  # a scenario the user names is never skipped: its error says why


def test_scenarios_show_variables_lists_what_a_scenario_may_set_with_the_models_values():
    shown = CliRunner().invoke(main, ["scenarios", "show", "baseline", "--variables"])
    assert shown.exit_code == 0, shown.output
    listed = [line[4:] for line in shown.stdout.splitlines() if line.startswith("#   ")]
    assert "data strike fraction [Dmnl] 0..1 = 0" in listed
    assert "strike target[Firm] [Dmnl] 0..1 = incumbent: 1; challenger: 0; open: 0" in listed
    # unit conversions have one right value: not an assumption to set; nor are the time controls ([time] sets them)
    assert not [
        line
        for line in listed
        if line.startswith(("seconds per year", "USD per billion USD", "one token", "one parameter", "TIME STEP", "FINAL TIME"))
    ]
    assert len(listed) > 100


def test_plot_latest_reads_the_latest_run_it_can_draw(isolated_runs_dir, tmp_path):
    """After a sensitivity run, "latest" for plot is the comparison before it; named, the sensitivity run is refused for what it is."""
    horizon = ["--final-time", str(SHORT_HORIZON)]
    assert CliRunner().invoke(main, ["compare", "data-strike", "--engine", "simlin", *horizon]).exit_code == 0
    assumptions = str(default_model().parent / "assumptions.toml")
    assert CliRunner().invoke(main, ["sensitivity", assumptions, "--samples", "2", "--output", "hhi", *horizon]).exit_code == 0
    drawn = CliRunner().invoke(main, ["plot", "latest", "--var", "model capability", "--out", str(tmp_path / "capability.html")])
    assert drawn.exit_code == 0, drawn.output
    refused = CliRunner().invoke(
        main, ["plot", "latest:sensitivity", "--var", "model capability", "--out", str(tmp_path / "no.html")]
    )
    assert (
        refused.exit_code == 2
        and "is a run of `sdmodel sensitivity`; this command reads runs of `sdmodel run`, `sdmodel compare`, `sdmodel uncertainty` or `sdmodel sweep`"
        in refused.stderr
    )
    assert not (tmp_path / "no.html").exists()


def test_run_prints_the_headline_measures(isolated_runs_dir):
    shown = CliRunner().invoke(main, ["run", "data-strike", "--engine", "simlin", "--final-time", str(SHORT_HORIZON)])
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert (
        "scenario" in rows and "data-strike" in rows and f"At {SHORT_HORIZON:g}." in shown.stdout
    )  # one scenario: nothing to compare with
    assert shown.stdout.rstrip().splitlines()[-1].startswith("Ran data-strike (2020-2035); saved ")
    both = CliRunner().invoke(main, ["run", "baseline", "data-strike", "--engine", "simlin", "--final-time", str(SHORT_HORIZON)])
    assert "in brackets, the change from 'baseline'" in both.stdout
    own = CliRunner().invoke(main, ["run", "--model", str(MODELS / "decay.mdl"), "--engine", "simlin"])  # none of the measures
    assert own.exit_code == 0 and own.stdout.startswith("Ran baseline (0-10); saved ")
    # PySD saves a constant without a time axis; a measure's variable without its subscript is not measured
    some = CliRunner().invoke(main, ["run", "--model", str(MODELS / "strike_only.mdl"), "--engine", "pysd"])
    assert some.exit_code == 0, some.output
    header = next(line for line in some.stdout.splitlines() if line.startswith("scenario"))
    assert header.split() == ["scenario", "AI", "capital", "share", "labour", "share"]


def test_readers_see_a_share_or_an_index_where_the_model_says_dmnl(tmp_path, isolated_runs_dir):
    """Tables, figures (axes and hover text), reports and describe say what a unitless number is; the saved
    results keep the model's own units (Dmnl), as exports must."""
    runner = CliRunner()
    compared = runner.invoke(
        main,
        ["compare", "data-strike", "--engine", "simlin", "--final-time", str(SHORT_HORIZON), "--plot", str(tmp_path / "c.html")],
    )
    assert compared.exit_code == 0, compared.output
    assert "HHI: Herfindahl index of AI revenue (0-1) [index]" in compared.stdout
    assert "revenue share: Incumbent's share of AI revenue [share]" in compared.stdout and "[billion USD]" in compared.stdout
    plotted = runner.invoke(main, ["plot", "latest:compare", "--var", "revenue share", "--out", str(tmp_path / "p.html")])
    reported = runner.invoke(main, ["report", "--run", "latest:compare", "--no-loops", "--out", str(tmp_path / "r.html")])
    assert plotted.exit_code == 0 and reported.exit_code == 0, plotted.output + reported.output
    assert (
        '"revenue share [share]"' in (tmp_path / "p.html").read_text()
        and "<small>index</small>" in (tmp_path / "r.html").read_text()
    )
    for shown in (compared.stdout, *((tmp_path / name).read_text() for name in ("c.html", "p.html", "r.html"))):
        assert "Dmnl" not in shown
    assert "units:      Dmnl (index)" in runner.invoke(main, ["describe", "hhi"]).stdout
    assert open_run("latest:compare")["revenue_concentration_index"].attrs["units"] == "Dmnl"
