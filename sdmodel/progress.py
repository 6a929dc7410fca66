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
    """A bar of ``total`` steps (``bar.update(n)`` after n more); ``show=None``: when stderr is a terminal."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield _NoBar()
        return
    import click

    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


class _NoBar:
    def update(self, steps: int) -> None:
        pass


def announce(text: str, show: bool | None = None) -> None:
    """One line on stderr before work that takes long with no step to count (a PySD translation); ``show=None``:
    when stderr is a terminal, as for :func:`progress_bar`."""
    if show is None:
        show = sys.stderr.isatty()
    if show:
        import click

        click.echo(text, err=True)
