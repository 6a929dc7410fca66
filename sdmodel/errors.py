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
        if key:
            parts.append(key)
        message = ": ".join(parts + [problem])
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class ModelRunError(RuntimeError):
    """The model was valid but its simulation failed (an exception or non-finite values)."""
