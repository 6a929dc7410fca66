"""Errors that the CLI turns into one line on stderr and an exit code.

Library code raises these instead of printing, so that a notebook user gets an
exception and a terminal user gets one readable line (exit 2 for bad input,
exit 1 for a run that failed).
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input from the user: a file, a key in it, what is wrong and how to fix it.

    >>> str(InputError("a.toml", "params.x", "unknown variable", "did you mean 'y'?"))
    "a.toml: params.x: unknown variable; did you mean 'y'?"
    """

    def __init__(self, source: str | Path, key: str | None, problem: str, fix: str | None = None):
        self.source = str(source)
        self.key = key
        self.problem = problem
        self.fix = fix
        parts = [self.source]
        if key is not None:
            parts.append(key or '""')  # an empty key (TOML allows "" = 1) is still named
        message = ": ".join(parts + [problem])
        if fix:
            message += f"; {fix}"
        super().__init__(one_line(message))


def one_line(text: str) -> str:
    r"""Text with its unprintable characters (newlines, control codes) escaped, so a message stays one line.

    >>> one_line("a.toml: bad\nkey\x1e: unknown key")
    'a.toml: bad\\nkey\\x1e: unknown key'
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ModelRunError(RuntimeError):
    """The model was valid but its simulation failed (an exception or non-finite values)."""


class NonFiniteWarning(UserWarning):
    """A model of the user's own computed NaN; it is kept as a result (the CLI prints one line per variable)."""


def read_text(path: Path) -> str:
    """A user's text file, or an InputError saying why it cannot be read (a BOM is allowed)."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start})", "save the file as UTF-8") from None
    except OSError as error:
        raise InputError(path, None, f"cannot read the file ({error.strerror})", "check the path and its permissions") from None
