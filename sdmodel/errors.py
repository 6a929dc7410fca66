"""Errors that the CLI turns into one line on stderr and an exit code.

Library code raises these instead of printing, so that a notebook user gets an
exception and a terminal user gets one readable line (exit 2 for bad input,
exit 1 for a run that failed).
"""

from __future__ import annotations

import math
import re
from pathlib import Path


class InputError(ValueError):
    """Bad input from the user: where it came from, the field, what is wrong and how to fix it.

    ``source`` is the file or the command-line option the input came from (``a.toml``,
    ``--set``); ``key`` the field in it (``params.x``) or the value given to the option,
    or None. The message reads ``source: key: problem; fix``.

    >>> str(InputError(source="a.toml", key="params.x", problem="unknown variable", fix="did you mean 'y'?"))
    "a.toml: params.x: unknown variable; did you mean 'y'?"
    """

    def __init__(self, *, source: str | Path, key: str | None, problem: str, fix: str | None = None):
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


class Note(UserWarning):
    """Something a reader of a valid result should know (the CLI prints it as one line, ``sdmodel: note: ...``):
    what a library said as a RuntimeWarning and a traceback-like two lines, said once and plainly."""


def read_text(path: Path) -> str:
    """A user's text file, or an InputError saying why it cannot be read (a BOM is allowed)."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            source=path, key=None, problem=f"not UTF-8 text (byte {error.start})", fix="save the file as UTF-8"
        ) from None
    except OSError as error:
        raise InputError(
            source=path, key=None, problem=f"cannot read the file ({error.strerror})", fix="check the path and its permissions"
        ) from None


def read_toml(path: Path, example: str) -> dict:
    """A user's TOML file as a table, or an InputError naming the file (``example`` shows the fix).

    Python's ``tomllib`` raises a plain ValueError, not TOMLDecodeError, for an integer longer
    than 4,300 digits: both are malformed input.
    """
    import tomllib

    try:
        return tomllib.loads(read_text(path))
    except ValueError as error:
        raise InputError(
            source=path, key=None, problem=f"malformed TOML: {error}", fix=f"fix the TOML syntax ({example})"
        ) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise InputError(
            source=path, key=None, problem="arrays or tables nested too deeply to read", fix=f"nest less ({example})"
        ) from None


def finite_number(value: object, source: str | Path, key: str) -> float:
    """A number from a user's file or option as a float, or a one-line error naming where it came from.

    TOML integers have no size limit in Python, so ``float()`` can overflow: that is bad input too.

    >>> finite_number(10**400, "a.toml", "lower")
    Traceback (most recent call last):
    ...
    sdmodel.errors.InputError: a.toml: lower: an integer of 401 digits is too large; give a number within floating-point range
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(source=source, key=key, problem=f"{value!r} is not a number", fix="give a number, e.g. 0.5")
    try:
        number = float(value)
    except OverflowError:
        digits = len(str(abs(value)))
        raise InputError(
            source=source,
            key=key,
            problem=f"an integer of {digits} digits is too large",
            fix="give a number within floating-point range",
        ) from None
    if not math.isfinite(number):
        raise InputError(source=source, key=key, problem=f"{value!r} is not a finite number", fix="give a finite number")
    return number


def check_range(value: float, variable, source: str | Path, key: str, give: str = "a value") -> None:
    """An InputError unless ``value`` lies within ``variable``'s documented range (its ``lower``, ``upper``, ``units``).

    >>> from sdmodel.model import Variable
    >>> check_range(2, Variable("x", "x", "constant", "1/year", lower=0, upper=1), "a.toml", "params.x")
    Traceback (most recent call last):
    ...
    sdmodel.errors.InputError: a.toml: params.x: 2 is out of range [0, 1]; give a value within [0, 1] (1/year)
    """
    if not variable.lower <= value <= variable.upper:
        bounds = f"[{format_bound(variable.lower)}, {format_bound(variable.upper)}]"
        raise InputError(
            source=source,
            key=key,
            problem=f"{shown(value)} is out of range {bounds}",
            fix=f"give {give} within {bounds} ({variable.units})",
        )


def format_bound(value: float) -> str:
    """A documented bound as a message shows it: ``?`` where the range is open."""
    return "?" if math.isinf(value) else shown(value)


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare where TOML allows (ASCII letters, digits, ``_``, ``-``), else quoted.

    >>> toml_key("data_strike"), toml_key("data strike"), toml_key("größe")
    ('data_strike', '"data strike"', '"größe"')
    """
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def first_line(error: BaseException, named: bool = True) -> str:
    """The first non-blank line of an error's message, after its type's name unless ``named`` is false.

    >>> first_line(ValueError("\\n  bad value\\nmore detail")), first_line(ValueError("bad"), named=False)
    ('ValueError: bad value', 'bad')
    >>> first_line(KeyError())
    'KeyError'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0]}" if named else lines[0]


#: a number written as the docs (TOML's and the CLI's) name it: ASCII digits, a sign, a point and an exponent; also
#: inf and nan, so that :func:`finite_number` says what is wrong with them. Python's ``float()`` also reads "0_5" as 5
#: and full-width or other scripts' digits: a typo or a paste gone wrong, never meant.
NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.ASCII | re.IGNORECASE)


def number_from_text(text: str, source: str | Path, key: str) -> float:
    """A number written as text (a ``--set`` value, a time in a table's key) as a finite float, or a one-line error.

    >>> number_from_text(" 1e3", "--set", "x"), number_from_text("-.5", "--set", "x")
    (1000.0, -0.5)
    >>> number_from_text("0_5", "--set", "x")
    Traceback (most recent call last):
    ...
    sdmodel.errors.InputError: --set: x: '0_5' is not a number; give a number, e.g. 0.5 (digits 0-9, a point, an exponent)
    """
    if not NUMBER.fullmatch(text.strip()):
        raise InputError(
            source=source,
            key=key,
            problem=f"{text!r} is not a number",
            fix="give a number, e.g. 0.5 (digits 0-9, a point, an exponent)",
        )
    return finite_number(float(text), source, key)


def shown(number: float) -> str:
    """A number as short as ``:g`` writes it when that is exact, else with every digit: "1 is out of range [0, 1]"
    hid why 1.0000000001 was refused.

    >>> shown(0.33), shown(2050.0), shown(1.0000000001), shown(1e-300)
    ('0.33', '2050', '1.0000000001', '1e-300')
    """
    short = f"{number:g}"
    return short if float(short) == number else repr(float(number))
