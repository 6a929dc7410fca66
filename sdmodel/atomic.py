"""Every file sdmodel writes is written whole or not at all.

One context manager (pooch's ``temporary_file`` pattern): the caller writes a
temporary file in the target's folder; when the block ends the file is renamed onto
the target (``os.replace``: atomic within one file system), and when the block raises
it is removed. A reader, or a crash, never sees half a file under the final name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_file(target: str | os.PathLike) -> Iterator[Path]:
    """A path beside ``target`` to write to: renamed onto ``target`` on success, removed on failure.

    The temporary name starts with a dot (hidden from listings), is unique to the process
    and the call, and keeps the target's suffix.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with temporary_file(folder / "a.txt") as temporary:
    ...     _ = temporary.write_text("whole")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    target = Path(target)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return its path."""
    with temporary_file(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)


def check_target(path: str | os.PathLike, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """A file to write a figure or page to, checked before the work: its suffix one of ``suffixes``, its folder there.

    Raises an :class:`~sdmodel.errors.InputError` naming ``option`` and the path.

    >>> check_target("figure.gif", (".html", ".png"))
    Traceback (most recent call last):
    ...
    sdmodel.errors.InputError: --out: figure.gif: the file must end in .html or .png; give a file name ending in .html or .png
    """
    from sdmodel.errors import InputError

    target = Path(path)
    ends = " or ".join(suffixes)
    if not target.name.lower().endswith(suffixes):
        raise InputError(
            source=option, key=str(path), problem=f"the file must end in {ends}", fix=f"give a file name ending in {ends}"
        )
    if not target.parent.is_dir():
        raise InputError(
            source=option, key=str(path), problem=f"folder {target.parent} does not exist", fix="create it or choose another path"
        )
    return target
