"""Bad input ends in one line on stderr naming the file, the key and the fix; exit 2; runs/ untouched."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from paths import BAD, MODELS

from sdmodel.cli import main

# file, the key the message must name, and a word of the fix it must give
CASES = [
    ("malformed.toml", None, "TOML"),
    ("unknown-parameter.toml", 'params."data strik fraction"', "did you mean 'data strike fraction'"),
    ("not-a-number.toml", 'params."data strike fraction"', "give a number"),
    ("out-of-range.toml", 'params."data strike fraction"', "[0, 1]"),
    ("unknown-key.toml", "descripton", "did you mean 'description'"),
    ("not-a-constant.toml", 'params."model capability"', "constants it depends on"),
    ("bad-time.toml", "time.final_time", "later than initial_time"),
    ("cycle-a.toml", "extends", "cycle"),
    ("unknown-element.toml", 'params."strike target[newcomer]"', "incumbent, challenger"),
    ("bad-extends.toml", None, "did you mean 'baseline'"),
    ("nan-value.toml", 'params."data strike fraction"', "finite"),
    ("not-utf8.toml", None, "UTF-8"),
    ("empty.toml", None, "sets nothing"),
    ("deeply-nested.toml", None, "nested too deeply"),
    ("two-spellings.toml", "params.data_strike_fraction", "once, in one spelling"),
    ("time-key-underscore.toml", 'params."collective bargaining weight".20_30', "must be times"),
    ("time-key-full-width.toml", 'params."collective bargaining weight".２０３０', "must be times"),
    ("barely-out-of-range.toml", 'params."data strike fraction"', "1.0000000001 is out of range [0, 1]"),
    ("final-time-off-grid.toml", "time.final_time", "would end at 2050; give a final time on it"),
]


def _assert_clean_failure(result, runs_dir, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.parametrize(("file", "key", "fix"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_scenario_file(command, file, key, fix, isolated_runs_dir):
    args = ["run", str(BAD / file)] if command == "run" else ["scenarios", "validate", str(BAD / file)]
    result = CliRunner().invoke(main, args)
    needles = [file, fix] + ([key] if key else [])
    _assert_clean_failure(result, isolated_runs_dir, *needles)


def test_unknown_scenario_name_suggests_the_closest(isolated_runs_dir):
    result = CliRunner().invoke(main, ["compare", "data-strik"])
    _assert_clean_failure(result, isolated_runs_dir, "data-strik", "did you mean 'data-strike'")


def test_unknown_set_name(isolated_runs_dir):
    result = CliRunner().invoke(main, ["run", "--set", "collective bargaining=0.1"])
    _assert_clean_failure(
        result, isolated_runs_dir, "--set", "collective bargaining", "did you mean 'collective bargaining weight'"
    )


def test_non_numeric_set_value(isolated_runs_dir):
    result = CliRunner().invoke(main, ["run", "--set", "collective bargaining weight=high"])
    _assert_clean_failure(result, isolated_runs_dir, "--set", "collective bargaining weight", "give a number")


def test_missing_model_file(isolated_runs_dir, tmp_path):
    missing = tmp_path / "nowhere.mdl"
    result = CliRunner().invoke(main, ["run", "--model", str(missing)])
    _assert_clean_failure(result, isolated_runs_dir, str(missing), "not found")


def test_broken_model_file(isolated_runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SDMODEL_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["run", "--model", str(MODELS / "broken.mdl")])
    _assert_clean_failure(result, isolated_runs_dir, "broken.mdl", "cannot translate")


def test_unknown_baseline(isolated_runs_dir):
    result = CliRunner().invoke(main, ["compare", "data-strike", "--baseline", "no-such-scenario"])
    _assert_clean_failure(result, isolated_runs_dir, "no-such-scenario", "no such scenario")


@pytest.mark.parametrize("model", ["overflow.mdl", "overflow_float.mdl"])
def test_failed_run_exits_1_with_the_reason(model, isolated_runs_dir):
    result = CliRunner().invoke(main, ["run", "--model", str(MODELS / model)])
    assert result.exit_code == 1, result.output
    assert "run failed" in result.stderr and "'Stock'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


# bad named-loops files: the file, the key the message must name, and a word of the fix
BAD_LOOPS = [
    ("loops-huge-integer.toml", None, "fix the TOML syntax"),
    ("loops-not-a-table.toml", "loop[0]", "[[loop]] table"),
    ("loops-variable-not-a-name.toml", "loop[0].variables", "list of variable names"),
]


@pytest.mark.parametrize(("file", "key", "fix"), BAD_LOOPS, ids=[case[0] for case in BAD_LOOPS])
def test_bad_loops_file(file, key, fix, isolated_runs_dir):
    result = CliRunner().invoke(main, ["loops", "--loops", str(BAD / file), "--final-time", "2021"])
    _assert_clean_failure(result, isolated_runs_dir, file, fix, *([key] if key else []))


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "baseline", "--engine", "simlin", "--plot", "{missing}/p.html"],
        ["compare", "baseline", "--engine", "simlin", "--plot", "{here}/p.png"],
        ["report", "baseline", "--engine", "simlin", "--no-loops", "--out", "{missing}/r.html"],
        ["sweep", "--param", "hardware life=4:6:2", "--final-time", "2022", "--plot", "{missing}/s.png"],
        ["loops", "baseline", "--final-time", "2022", "--plot", "{missing}/l.html"],
    ],
    ids=["compare-folder", "compare-suffix", "report-folder", "sweep-folder", "loops-folder"],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_the_run(command, isolated_runs_dir, tmp_path):
    """Found after the run, a bad figure path cost the run's time and left a saved run without its figure."""
    args = [part.format(missing=tmp_path / "no-such-folder", here=tmp_path) for part in command]
    result = CliRunner().invoke(main, args)
    _assert_clean_failure(result, isolated_runs_dir, "--plot" if "--plot" in args else "--out")


def test_a_chain_of_extends_too_long_to_follow_is_one_line(isolated_runs_dir, tmp_path):
    """Each step of `extends` is followed recursively: a thousand-file chain exhausted Python's stack."""
    for index in range(150):
        (tmp_path / f"s{index}.toml").write_text(f'extends = "s{index + 1}.toml"\n' if index < 149 else 'name = "end"\n')
    result = CliRunner().invoke(main, ["run", str(tmp_path / "s0.toml")])
    _assert_clean_failure(result, isolated_runs_dir, "extends", "more than 100 scenarios extend one another")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "--jobs", "0"], "--jobs"),
        (["run", "--final-time", "abc"], "--final-time"),
        (["run", "--engine", "vensim"], "--engine"),
        (["uncertainty", "models/assumptions.toml", "--seed", "-1"], "--seed"),
        (["robustness", "models/assumptions.toml", "--criterion", "hhi < 1", "--seed", "-1"], "--seed"),
        (["search-policy", "docs/levers.toml", "models/assumptions.toml", "--maximize", "hhi", "--seed", "-1"], "--seed"),
        (["plot", "latest"], "--var"),
        (["no-such-command"], "no-such-command"),
        (["runs", "prune", "--older-than", "nan"], "--older-than"),
        (["discover", "latest", "--policy", "p", "--threshold", "nan"], "--threshold"),
    ],
    ids=[
        "jobs",
        "final-time",
        "engine",
        "seed",
        "robustness-seed",
        "search-seed",
        "missing-option",
        "unknown-command",
        "prune-older-than-nan",
        "discover-threshold-nan",
    ],
)
def test_a_usage_error_is_one_line_naming_the_option(args, named, isolated_runs_dir):
    """Click's usage errors were three lines (usage, a hint, the error); like every other error they are one. NaN passed
    click's FloatRange: `runs prune --older-than nan` removed every run, `discover --threshold nan` was a traceback."""
    result = CliRunner().invoke(main, args)
    _assert_clean_failure(result, isolated_runs_dir, named, "--help")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--set", "data strike fraction=0.2", "--set", "data strike fraction=0.3"], ["--set", "given twice"]),
        (["run", "--set", "data strike fraction=0.2", "--set", "Data_Strike_Fraction=0.3"], ["--set", "one spelling"]),
        (["run", "--set", "data strike fraction=0_5"], ["--set", "'0_5' is not a number"]),
        (["run", "--set", "data strike fraction=０.５"], ["--set", "'０.５' is not a number"]),
        (["run", "--set", "data strike fraction=1.0000000001"], ["--set", "1.0000000001 is out of range [0, 1]"]),
        (["run", "--final-time", "2050.03"], ["--final-time", "time.final_time", "would end at 2050"]),
        (["sweep", "--param", "hardware life=4:6:1_0"], ["--param", "is not LO:HI:N"]),
        (["sensitivity", "models/assumptions.toml", "--output", "time"], ["--output", "time control"]),
        (["uncertainty", "models/assumptions.toml", "--output", "final time"], ["--output", "time control"]),
        (["sensitivity", "models/assumptions.toml", "--output", "hhi@２０４０"], ["--output", "is not a time"]),
        (["runs", "show", ""], ["RUN", "is empty"]),
    ],
    ids=[
        "set-twice",
        "set-two-spellings",
        "set-underscore",
        "set-full-width",
        "set-barely-out-of-range",
        "final-time-off-grid",
        "sweep-count-underscore",
        "sensitivity-output-time",
        "uncertainty-output-time-control",
        "output-year-full-width",
        "runs-show-empty",
    ],
)
def test_ambiguous_or_misread_options_are_refused(args, needles, isolated_runs_dir):
    """Each was accepted before: last-wins, "0_5" as 5, full-width digits, "1 is out of range [0, 1]", a run
    silently ending at 2050, "'Time' is a nan", and an empty RUN picking a run."""
    if args[0] != "runs":
        args = [*args, "--engine", "simlin"]
    result = CliRunner().invoke(main, args)
    _assert_clean_failure(result, isolated_runs_dir, *needles)


def test_a_scenario_overriding_its_parent_in_another_spelling_wins(tmp_path):
    """Two spellings in one file are refused; across files (or a file and --set) the later one wins, as in one spelling."""
    from sdmodel.simulate import prepare

    child = tmp_path / "child.toml"
    child.write_text('name = "child"\nextends = "data-strike"\n[params]\ndata_strike_fraction = 0.5\n')
    (spec,) = prepare([child], engine="simlin", overrides={"Data Strike Fraction": 0.25}).specs
    assert [s.value for s in spec.settings if s.py_name == "data_strike_fraction"] == [0.25]
    (spec,) = prepare([child], engine="simlin").specs
    assert [s.value for s in spec.settings if s.py_name == "data_strike_fraction"] == [0.5]


def test_an_unknown_name_in_a_model_of_ones_own_points_to_its_names(isolated_runs_dir):
    """The fix was `sdmodel scenarios show baseline --variables`, which lists the bundled model's names, not this one's."""
    model = MODELS / "decay.mdl"
    result = CliRunner().invoke(main, ["run", "--model", str(model), "--set", "zzz=1", "--engine", "simlin"])
    _assert_clean_failure(result, isolated_runs_dir, "--set", "'zzz' is not a variable of decay.mdl", f"describe --model {model}")
