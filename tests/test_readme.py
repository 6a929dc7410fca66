"""README's examples do what its text says: every `sdmodel` command in its bash blocks runs, in README's order.

Each command runs through click's CliRunner as written, on a short horizon and the fast engine where
it takes them, and ensembles with fewer members; a line that shows a command's forms stands for those
forms, a placeholder for a file the walk has made. The quickstart block is what CI itself runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner
from paths import MODELS

from sdmodel.cli import main

REPO = Path(__file__).parent.parent
README = REPO / "README.md"
QUICKSTART = "python3 -m venv .venv"

#: lines that show a command's forms rather than one command: the commands they stand for
SYNOPSES = {
    "scenarios list | show NAME [--variables] | validate FILE...": [
        "scenarios list",
        "scenarios show data-strike --variables",
        "scenarios validate models/scenarios/data-strike.toml",
    ],
    "runs list | show RUN": ["runs list", "runs show latest"],
}
#: placeholders in README's commands, and what the walk gives for them
PLACEHOLDERS = {
    "other.mdl": str(MODELS / "decay.mdl"),
    "colleague.cin": "data-strike.cin",
    "RUN": "latest",
    "history.mdl": str(MODELS / "external" / "history.mdl"),
    "prices.tab": str(MODELS / "external" / "prices.tab"),
}
#: commands not run here, and where they are tested instead
NOT_RUN = {
    "explore": "starts a server: tests/test_explore.py drives it in a browser",
    "--scheduler": "needs a running Dask cluster: tests/test_executors.py starts one",
    "calibrate": "the fit takes about 20 minutes: tests/test_calibrate.py runs it",
}
SHORT = 2030  # the levers start in 2027
SAMPLES = "8"  # ensembles: the same command, fewer members


def readme_commands() -> list[tuple[int, list[str]]]:
    """(line number, the words after `sdmodel`) for each `sdmodel` line of README's bash blocks."""
    commands, language = [], None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            language = (line[3:].strip() or "text") if language is None else None
        elif language == "bash" and line.startswith("sdmodel "):
            commands.append((number, shlex.split(line, comments=True)[1:]))
    return commands


def as_run_here(command: list[str]) -> list[str]:
    """The command's arguments as the walk runs them: short horizon, fast engine, fewer members, files it made."""
    words = [PLACEHOLDERS.get(word, str(REPO / word) if word.startswith(("models/", "docs/")) else word) for word in command]
    params = {param.name for param in _command(words).params}
    if "samples" in params:
        _set(words, "--samples", SAMPLES)
    saved = "--run" in words or any(word.startswith("latest") for word in words)  # a saved run keeps its period
    if "final_time" in params and "--model" not in words and not saved:  # so does a model of one's own
        asked = [
            int(year) for word in words for year in re.findall(r"@(\d{4})\b", word)
        ]  # an output at a year, also in a criterion
        _set(words, "--final-time", str(max([SHORT, *asked])))
    if "engine" in params and "--engine" not in words:
        words += ["--engine", "simlin"]
    return words


def _set(words: list[str], option: str, value: str) -> None:
    if option in words:
        words[words.index(option) + 1] = value
    else:
        words += [option, value]


def _command(words: list[str]):
    command = main
    for word in words:
        if not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
    return command


def forms(command: list[str]) -> list[list[str]]:
    """The commands a README line stands for: itself, or those of a synopsis."""
    synopses = {tuple(shlex.split(synopsis)): commands for synopsis, commands in SYNOPSES.items()}
    return [shlex.split(form) for form in synopses[tuple(command)]] if tuple(command) in synopses else [command]


def test_readme_names_the_commands_it_shows():
    shown = [shlex.join(command) for _, command in readme_commands()]
    assert len(shown) > 25 and "compare" in shown
    for synopsis in SYNOPSES:
        assert shlex.join(shlex.split(synopsis)) in shown, f"README no longer shows '{synopsis}': update SYNOPSES"


def test_every_readme_command_runs(tmp_path, monkeypatch, isolated_runs_dir):
    monkeypatch.chdir(tmp_path)  # the files the commands write land here
    ran = 0
    for number, command in readme_commands():
        if any(word in command for word in NOT_RUN):
            continue
        for form in forms(command):
            words = as_run_here(form)
            result = CliRunner().invoke(main, words)
            assert result.exit_code == 0, f"README.md line {number}: sdmodel {shlex.join(words)}\n{result.output}"
            ran += 1
    assert ran >= 25
