"""The progress bar and notes of long work (sdmodel/progress.py): on stderr when asked (by default, when stderr is a
terminal), nothing otherwise, and waits written as a person reads them. What the runs put in the bar is
tests/test_simulate.py's and tests/test_engine_pysd.py's."""

from __future__ import annotations

import pytest

from sdmodel import progress


def test_a_bar_not_shown_writes_nothing_and_takes_every_call(capsys):
    with progress.progress_bar(3, "three runs", show=False) as bar:
        bar.relabel("three runs: about 9 s")
        bar.update(1)
        bar.update(2)
    assert capsys.readouterr() == ("", "")


def test_a_bar_shown_says_its_label_and_the_new_one_on_stderr_only(capsys):
    """(click draws the bar itself only on a terminal: captured here, it writes the labels.)"""
    with progress.progress_bar(4, "four runs", show=True) as bar:
        bar.relabel("four runs: about 8 s")
        for _ in range(4):
            bar.update(1)
    out, err = capsys.readouterr()
    assert out == ""  # stdout stays the result
    assert err.index("four runs") < err.index("four runs: about 8 s")


def test_by_default_a_bar_and_a_note_show_only_on_a_terminal(capsys, monkeypatch):
    for terminal in (False, True):
        monkeypatch.setattr("sys.stderr.isatty", lambda terminal=terminal: terminal)
        with progress.progress_bar(1, "one run") as bar:
            bar.update(1)
        progress.announce("translating the model")
        err = capsys.readouterr().err
        assert ("one run" in err and "translating the model\n" in err) == terminal, err
        assert (err == "") != terminal


@pytest.mark.parametrize(
    "seconds, shown",
    [(0, "0 s"), (119, "119 s"), (120, "2 min"), (3599, "60 min"), (3600, "1 h 0 min"), (5400, "1 h 30 min")],
)
def test_a_duration_is_seconds_then_minutes_then_hours(seconds, shown):
    assert progress.duration(seconds) == shown
