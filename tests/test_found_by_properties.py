"""Cases the property tests (tests/test_properties.py) found, kept as plain examples.

Each failed before its fix in sdmodel/scenario.py: the run hung, the engine aborted
the process with a Rust panic, results were silently wrong, or the error did not
name the file and the key.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sdmodel.cli import main

SIMLIN = ["--engine", "simlin"]

# the document's text, and the key the one-line message must name
CASES = {
    # `float("nan")` reads a NaN time: the run used it (Simlin: NaN trajectories; exit 1 or garbage)
    "nan-time-in-series": ('[params]\n"data strike fraction" = {"nan" = 0.5, "2030" = 1}\n', 'params."data strike fraction".nan'),
    "inf-time-in-series": ('[params]\n"data strike fraction" = {"inf" = 0.5}\n', 'params."data strike fraction".inf'),
    "overflowing-time-in-series": ('[params]\n"data strike fraction" = {"1e400" = 0.5}\n', 'params."data strike fraction".1e400'),
    # 3e301 steps: Simlin and PySD ran until killed
    "tiny-time-step": ("[time]\ntime_step = 1e-300\nsaveper = 1e-300\n", "time.time_step"),
    # 3e301 steps from -1e300: Simlin aborted the process (a Rust panic and a stack trace, exit 134)
    "far-initial-time": ("[time]\ninitial_time = -1e300\n", "time.initial_time"),
    # a step below the floating-point resolution of the time: time never advanced (PySD hung; Simlin
    # returned 41 "time points" all equal to 1e15)
    "time-step-below-resolution": ("[time]\ninitial_time = 1e15\nfinal_time = 1.00000000000001e15\n", "time.initial_time"),
    # PySD saved only the times on both grids (2020 and 2021.5 of 2020-2022), Simlin every 5th step
    "saveper-not-a-multiple": ("[time]\nsaveper = 0.3\n", "time.saveper"),
    # the model documents TIME STEP [0,1]
    "time-step-out-of-documented-range": ("[time]\ntime_step = 2\nsaveper = 2\n", "time.time_step"),
    # the run folder's name overflowed the file system's 255 bytes: the message named only the runs folder
    "name-too-long": (f'name = "{"a" * 300}"\n', "name"),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_time_and_names_are_input_errors(case, command, tmp_path, isolated_runs_dir):
    text, key = CASES[case]
    file = tmp_path / f"{case}.toml"
    file.write_text(text)
    args = ["scenarios", "validate", str(file)] if command == "validate" else ["run", *SIMLIN, str(file)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(file) in lines[0] and f"{key}:" in lines[0], lines[0]
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


@pytest.mark.parametrize("value", ["nan", "inf", "1e300"])
def test_final_time_option_must_be_a_usable_time(value, isolated_runs_dir):
    """`--final-time nan` reached Simlin as a JSON patch it could not parse; 1e300 made it abort."""
    result = CliRunner().invoke(main, ["run", *SIMLIN, "--final-time", value])
    assert result.exit_code == 2, (result.output, result.exception)
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("sdmodel: error: --final-time: time.final_time:"), line
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())


def test_final_time_option_before_the_files_initial_time_names_both(tmp_path, isolated_runs_dir):
    """The message named only --final-time, not the file whose initial_time it conflicts with."""
    file = tmp_path / "late-start.toml"
    file.write_text("[time]\ninitial_time = 2030\n")
    result = CliRunner().invoke(main, ["run", *SIMLIN, "--final-time", "2025", str(file)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "--final-time" in line and str(file) in line and "time.initial_time" in line, line


# A key or value with a control character (TOML allows "\r", "\u001e", ... in quoted keys and strings)
# split the message over two lines; an empty key ("" = 0) was left out of the message.
ONE_LINE_CASES = {
    "carriage-return-key": ('"\\r" = 0\n', "\\r"),
    "record-separator-in-name": ('name = "\\u001e"\n', "name"),
    "line-separator-in-series-time": (
        '[params]\n"data strike fraction" = {"20\\u202830" = 0.5}\n',
        'params."data strike fraction".20\\u202830',
    ),
    "newline-in-time-key": ('[time]\n"final\\ntime" = 2030\n', "time.final\\ntime"),
    "empty-key": ('"" = 0\n', '""'),
}


@pytest.mark.parametrize("case", list(ONE_LINE_CASES))
def test_messages_stay_on_one_line_and_show_the_key(case, tmp_path):
    text, key = ONE_LINE_CASES[case]
    file = tmp_path / f"{case}.toml"
    file.write_text(text)
    result = CliRunner().invoke(main, ["scenarios", "validate", str(file)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{file}: {key}: " in result.stderr, result.stderr


def test_a_huge_integer_is_out_of_range_not_a_crash(tmp_path, isolated_runs_dir):
    """TOML integers have no size limit in Python: float(10**400) raised OverflowError (a traceback)."""
    file = tmp_path / "huge.toml"
    file.write_text(f'[params]\n"initial users[incumbent]" = {10**400}\n')
    for args in (["scenarios", "validate", str(file)], ["run", *SIMLIN, "--final-time", "2021", str(file)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (result.output, result.exception)
        line = result.stderr.strip()
        assert "\n" not in line and f'{file}: params."initial users[incumbent]": ' in line, line


def test_an_integer_beyond_pythons_digit_limit_is_malformed_toml(tmp_path):
    """tomllib raises a plain ValueError (not TOMLDecodeError) for integers over 4300 digits: a traceback."""
    file = tmp_path / "digits.toml"
    file.write_text(f'[params]\n"initial users[incumbent]" = {"9" * 5000}\n')
    result = CliRunner().invoke(main, ["scenarios", "validate", str(file)])
    assert result.exit_code == 2, (result.output, result.exception)
    line = result.stderr.strip()
    assert "\n" not in line and f"{file}: malformed TOML" in line, line


def test_a_nul_character_in_the_description_is_an_input_error(tmp_path, isolated_runs_dir):
    """NetCDF stores strings up to their first NUL: a description "a\\u0000b" was saved as "a"."""
    file = tmp_path / "nul.toml"
    file.write_text('description = "before\\u0000after"\n')
    for args in (["scenarios", "validate", str(file)], ["run", *SIMLIN, "--final-time", "2021", str(file)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (result.output, result.exception)
        line = result.stderr.strip()
        assert "\n" not in line and f"{file}: description: " in line, line
    assert not isolated_runs_dir.exists() or not any(isolated_runs_dir.iterdir())
