"""Provenance (sdmodel/provenance.py): the git commit of a model's checkout, the command as a user would retype
it, the fingerprint of sdmodel's own source, and the attributes a result carries. Each is checked against a
case built here (a throwaway git repository, a throwaway source tree); the results contract that every run
carries them is tests/test_simulate.py's."""

from __future__ import annotations

import shlex
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from sdmodel import provenance


def git(folder, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A git repository with one committed file, that git looks no further up from."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "model.mdl").write_text("x = 1\n")
    git(folder, "add", "model.mdl")
    git(folder, "commit", "-q", "-m", "a model")
    return folder


def test_git_commit_is_the_checkouts_head_and_dirty_only_for_tracked_changes(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    assert len(head) == 40
    assert provenance.git_commit(checkout) == head
    (checkout / "notes.txt").write_text("untracked\n")  # an untracked file changes no result
    assert provenance.git_commit(checkout) == head
    (checkout / "model.mdl").write_text("x = 2\n")
    assert provenance.git_commit(checkout) == head + "-dirty"
    git(checkout, "commit", "-q", "-am", "x = 2")
    assert provenance.git_commit(checkout) == git(checkout, "rev-parse", "HEAD") != head


def test_git_commit_is_empty_outside_git_and_for_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    assert provenance.git_commit(tmp_path / "plain") == ""
    assert provenance.git_commit(tmp_path / "missing") == ""


def test_command_line_is_retyped_as_the_same_words():
    argv = ["/home/me/.venv/bin/sdmodel", "run", "my scenario.toml", "--criterion", "hhi@2040 < 0.4", "it's"]
    line = provenance.command_line(argv)
    assert line.startswith("sdmodel run ")  # the program by its name, not the install path
    assert shlex.split(line) == ["sdmodel", *argv[1:]]  # a shell gives back the very arguments
    other = ["/usr/bin/python3", "-m", "sdmodel"]  # only a program named sdmodel is shortened
    assert shlex.split(provenance.command_line(other)) == other


def fingerprint_of(folder, monkeypatch) -> str:
    """code_fingerprint of a source tree in ``folder``, as if provenance.py lived there (uncached)."""
    monkeypatch.setattr(provenance, "__file__", str(folder / "provenance.py"))
    return provenance.code_fingerprint.__wrapped__()


def test_code_fingerprint_follows_the_python_sources_only(tmp_path, monkeypatch):
    def tree(name, files):
        folder = tmp_path / name
        for relative, text in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)
        return fingerprint_of(folder, monkeypatch)

    sources = {"provenance.py": "", "a.py": "A = 1\n", "engines/b.py": "B = 2\n"}
    reference = tree("reference", sources)
    assert len(reference) == 64 and int(reference, 16) >= 0  # a SHA-256 in hex
    assert tree("written-backwards", dict(reversed(sources.items()))) == reference  # not the order files were made
    assert tree("with-data", sources | {"README.md": "words", "data.csv": "1,2"}) == reference
    assert tree("changed", sources | {"a.py": "A = 2\n"}) != reference
    assert tree("renamed", {"provenance.py": "", "c.py": "A = 1\n", "engines/b.py": "B = 2\n"}) != reference
    assert tree("moved", {"provenance.py": "", "a.py": "A = 1\n", "b.py": "B = 2\n"}) != reference
    assert tree("added", sources | {"d.py": ""}) != reference  # even an empty module


def test_attributes_say_how_the_result_was_made(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    model = tmp_path / "m.mdl"
    model.write_text("x = 1\n")
    scenarios = [{"name": "baseline", "params": {}}, {"name": "strike", "params": {"data strike fraction": 0.33}}]
    before = datetime.now(UTC).replace(microsecond=0)
    attrs = provenance.attributes(
        engine="simlin", engine_version="1.2", model=model, model_sha256="abc", scenarios=scenarios, command="sdmodel run"
    )
    after = datetime.now(UTC)
    assert attrs["title"] == "sdmodel results: baseline, strike"
    assert attrs["Conventions"] == "CF-1.10"
    assert attrs["engine"] == "simlin" and attrs["engine_version"] == attrs["simlin_version"] == "1.2"
    assert attrs["source"] == "system-dynamics model m.mdl run with simlin 1.2"
    assert tomllib.loads(attrs["scenarios_toml"]) == {"scenario": scenarios}  # the scenarios, whole, read back
    created = datetime.strptime(attrs["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created <= after + timedelta(seconds=1)
    assert attrs["history"] == f"{attrs['created']}: sdmodel run"
    assert attrs["model_file"] == str(model.resolve()) and attrs["model_sha256"] == "abc"
    assert attrs["git_commit"] == ""  # the model is in no checkout
    assert all(isinstance(value, str) for value in attrs.values())  # netCDF attributes
