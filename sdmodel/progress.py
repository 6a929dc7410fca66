"""A progress bar for work that takes long enough to be mistaken for a hang: PySD runs, ensembles.

One bar for every such piece of work, on stderr (so stdout stays the result), shown by default only
when stderr is a terminal: a script or a notebook's log gets no control characters.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int, label: str, show: bool | None = None) -> Iterator:
    """A bar of ``total`` steps (``bar.update(n)`` after n more, ``bar.relabel(text)`` to say more before the first);
    ``show=None``: when stderr is a terminal."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield _NoBar()
        return
    import click

    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield _Bar(bar)


class _Bar:
    def __init__(self, bar) -> None:
        self._bar = bar

    def update(self, steps: int) -> None:
        self._bar.update(steps)

    def relabel(self, label: str) -> None:
        self._bar.label = label
        self._bar.render_progress()


class _NoBar:
    def update(self, steps: int) -> None:
        pass

    def relabel(self, label: str) -> None:
        pass


def duration(seconds: float) -> str:
    """A wait as a person reads it: seconds under two minutes, else minutes, else hours and minutes.

    >>> duration(42.4), duration(700), duration(9000)
    ('42 s', '12 min', '2 h 30 min')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


def announce(text: str, show: bool | None = None) -> None:
    """One line on stderr before work that takes long with no step to count (a PySD translation); ``show=None``:
    when stderr is a terminal, as for :func:`progress_bar`."""
    if show is None:
        show = sys.stderr.isatty()
    if show:
        import click

        click.echo(text, err=True)
