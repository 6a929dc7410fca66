"""Scenario files and their checks (sdmodel/scenario.py), called directly: ``extends`` merged with each value's
origin kept, cycles named, time series sorted, command-line settings winning, ``--set`` parsed, and a scenario
validated against a model built here into an engine's settings, with its time grid checked.

Every kind of bad file through the command line is tests/test_bad_input.py's table; any file at all,
tests/test_properties.py's (Hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sdmodel.errors import InputError
from sdmodel.model import ModelInfo, Variable
from sdmodel.scenario import (
    RunSpec,
    Scenario,
    Setting,
    bundled_scenarios,
    find_scenario,
    load_scenario,
    parse_assignments,
    validate,
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_extends_merges_the_parent_and_remembers_who_set_what(tmp_path):
    parent = write(tmp_path, "parent", "[params]\nx = 1\ny = 2\n[time]\nfinal_time = 2040\ntime_step = 0.5\n")
    child = write(
        tmp_path, "child", 'extends = "parent"\n[params]\ny = 3\n"z" = { "2030" = 0.5, "2025" = 0 }\n[time]\nfinal_time = 2050\n'
    )
    scenario = load_scenario(child)
    assert scenario.name == "child"  # no name given: the file's
    assert scenario.params == {"x": 1.0, "y": 3.0, "z": ((2025.0, 0.0), (2030.0, 0.5))}  # a series, sorted by time
    assert scenario.time == {"final_time": 2050.0, "time_step": 0.5}
    assert scenario.origins == {
        "x": str(parent),
        "y": str(child),
        "z": str(child),
        "time.final_time": str(child),
        "time.time_step": str(parent),
    }


def test_a_name_is_looked_up_beside_the_referring_file_before_the_bundled_ones(tmp_path):
    write(tmp_path, "baseline", 'name = "my-baseline"\n[params]\nx = 1\n')
    child = write(tmp_path, "child", 'extends = "baseline"\n')
    assert load_scenario(child).params == {"x": 1.0}  # the user's baseline, not the bundled one
    assert find_scenario("baseline").parent != tmp_path and find_scenario("baseline", near=tmp_path).parent == tmp_path


def test_an_extends_cycle_is_named(tmp_path):
    write(tmp_path, "a", 'extends = "b"\n')
    write(tmp_path, "b", 'extends = "c"\n')
    write(tmp_path, "c", 'extends = "a"\n')
    with pytest.raises(InputError) as raised:
        load_scenario(tmp_path / "a.toml")
    assert "a.toml -> b.toml -> c.toml -> a.toml" in str(raised.value) and raised.value.key == "extends"


def test_a_missing_parent_is_blamed_on_the_file_that_extends_it(tmp_path):
    child = write(tmp_path, "child", 'extends = "baselin"\n')
    with pytest.raises(InputError, match="did you mean 'baseline'") as raised:
        load_scenario(child)
    assert raised.value.source == str(child) and raised.value.key == "extends"


def test_command_line_settings_win_and_are_their_own_origin():
    scenario = Scenario("s", params={"x": 1.0, "y": 2.0}, time={"final_time": 2040.0}, source="s.toml")
    changed = scenario.with_overrides({"x": 5.0}, {"final_time": 2030.0}, "--set")
    assert changed.params == {"x": 5.0, "y": 2.0} and changed.time == {"final_time": 2030.0}
    assert changed.origins == {"x": "--set", "time.final_time": "--set"}
    assert scenario.params["x"] == 1.0  # the file's scenario is left as it was
    assert Scenario("t", params={"z": ((2020.0, 0.0), (2030.0, 1.0))}).to_dict() == {
        "name": "t",
        "description": "",
        "params": {"z": {"2020.0": 0.0, "2030.0": 1.0}},
    }


def test_a_constant_set_twice_on_the_command_line_is_refused():
    assert parse_assignments(["a = 1", "b=2e-3"]) == {"a": 1.0, "b": 0.002}
    with pytest.raises(InputError, match=r"is given twice \(1 and 2\)"):
        parse_assignments(["a=1", "b=0", "a=2"])
    for bad in ("a", "=1", "a=one", "a=nan"):
        with pytest.raises(InputError):
            parse_assignments([bad])


def test_the_bundled_scenarios_start_with_the_baseline():
    names = bundled_scenarios()
    assert names[0] == "baseline" and names[1:] == sorted(names[1:]) and len(names) > 1


# --------------------------------------------------------------------------- validate, against a model built here

MODEL = ModelInfo(
    path=Path("toy.mdl"),
    sha256="0" * 64,
    variables={
        v.py_name: v
        for v in (
            Variable("strike_fraction", "strike fraction", "constant", "Dmnl", lower=0.0, upper=1.0),
            Variable("target", "target", "constant", "Dmnl", dims=("Firm",)),
            Variable("capital", "Capital", "stock", "USD"),
            Variable("initial_time", "INITIAL TIME", "constant", "year"),
            Variable("final_time", "FINAL TIME", "constant", "year"),
            Variable("time_step", "TIME STEP", "constant", "year", lower=0.0),
            Variable("saveper", "SAVEPER", "constant", "year", lower=0.0),
        )
    },
    subscripts={"Firm": ("incumbent", "challenger")},
)
DEFAULTS = {"initial_time": 2020.0, "final_time": 2030.0, "time_step": 0.25, "saveper": 1.0}


def test_a_scenario_becomes_settings_in_the_models_names():
    scenario = Scenario("s", params={"Strike Fraction": 0.5, "target[CHALLENGER]": 1.0}, time={"final_time": 2040.0})
    assert validate(scenario, MODEL, DEFAULTS) == RunSpec(
        "s",
        (Setting("strike_fraction", 0.5), Setting("target", 1.0, ("Firm", "challenger"))),
        {"final_time": 2040.0},
    )


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"strike fraction": 1.5}, "out of range [0, 1]"),
        ({"strike fraction": ((2020.0, 0.0), (2030.0, 2.0))}, "out of range [0, 1]"),  # every point of a series
        ({"capital": 1.0}, "'Capital' is a stock computed by the model, not a constant"),
        ({"final time": 2040.0}, "is a simulation-control setting"),
        ({"target[newcomer]": 1.0}, "'newcomer' is not an element of Firm"),
        ({"strike fraction[incumbent]": 1.0}, "the variable has no subscripts"),
        ({"strike fraction": 0.1, "strike_fraction": 0.2}, "sets 'strike fraction' a second time"),
    ],
)
def test_a_setting_the_model_cannot_take_is_refused(params, problem):
    with pytest.raises(InputError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        validate(Scenario("s", params=params, source="s.toml"), MODEL, DEFAULTS)


def test_a_child_may_override_its_parent_in_another_spelling():
    scenario = Scenario(
        "child",
        params={"strike fraction": 0.1, "strike_fraction": 0.2},
        origins={"strike fraction": "parent.toml", "strike_fraction": "child.toml"},
    )
    assert validate(scenario, MODEL, DEFAULTS).settings == (Setting("strike_fraction", 0.2),)


@pytest.mark.parametrize(
    "time, problem",
    [
        ({"final_time": 2020.0}, "final_time 2020 is not after initial_time 2020"),
        ({"saveper": 0.1}, "saveper is shorter than time_step"),
        ({"saveper": 0.6}, "saveper 0.6 is not a multiple of time_step 0.25"),
        ({"time_step": 1e-5}, "more than 100000"),
        ({"final_time": 2030.5}, "the run would end at 2030"),  # saved every year from 2020
        ({"final_time": math.inf}, "finite"),
    ],
)
def test_a_time_grid_no_engine_can_step_through_is_refused(time, problem):
    with pytest.raises(InputError, match=problem):
        validate(Scenario("s", time=time), MODEL, DEFAULTS)
