"""What a model offers to scenarios: its variables, their units, limits and kinds.

Scenario files name variables the way people write them ("data strike fraction")
or the way PySD does (``data_strike_fraction``); this module resolves both, and
suggests the closest name when there is no match, so that a typo costs one line
of error instead of a silently ignored parameter.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sdmodel.errors import InputError
from sdmodel.locations import default_model

#: how alike (difflib's ratio) a name must be to be offered as "did you mean": at 0.5,
#: 'producer_payments_cumulative' (a measure's key) was offered 'deployment gate'; a typo scores 0.9 or more
SUGGESTION_CUTOFF = 0.6

#: Vensim's simulation-control constants; scenarios set these in their ``[time]`` table.
TIME_CONTROLS = ("initial_time", "final_time", "time_step", "saveper")


@dataclass(frozen=True)
class Variable:
    """One model variable as documented in the model file."""

    py_name: str
    name: str
    kind: str  # "constant", "stock", "auxiliary", "lookup", "data", ...
    units: str = ""
    comment: str = ""
    dims: tuple[str, ...] = ()
    lower: float = -math.inf
    upper: float = math.inf

    @property
    def attrs(self) -> dict[str, str]:
        """What a result's array of this variable carries: ``units``, ``long_name`` (the Vensim name), ``description``,
        ``sd_kind``."""
        return {"units": self.units, "long_name": self.name, "description": self.comment, "sd_kind": self.kind}

    @property
    def is_unit_conversion(self) -> bool:
        """A constant that only converts units ("Unit conversion." or "Unit of ..." in its comment, as the model
        writes them): it has one right value, so it is no assumption to set or vary."""
        return self.kind == "constant" and self.comment.startswith(("Unit conversion", "Unit of "))


@dataclass(frozen=True)
class ModelInfo:
    """The variables and subscript ranges of one model file."""

    path: Path
    sha256: str
    variables: dict[str, Variable]  # by py_name
    subscripts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def resolve(self, name: str, source: str, key: str) -> Variable:
        """Find a variable by its Vensim or Python name, or raise with the closest match."""
        wanted = normalise(name)
        if wanted in self._by_normalised_name:
            return self._by_normalised_name[wanted]
        names = [v.name for v in self.variables.values()]
        close = difflib.get_close_matches(name, names, n=1, cutoff=SUGGESTION_CUTOFF) or difflib.get_close_matches(
            wanted, [normalise(n) for n in names], n=1, cutoff=SUGGESTION_CUTOFF
        )
        listing = "scenarios show baseline --variables" if self.path == default_model() else f"describe --model {self.path}"
        fix = f"did you mean '{_original(close[0], names)}'?" if close else f"run `sdmodel {listing}` for the names"
        raise InputError(source=source, key=key, problem=f"'{name}' is not a variable of {self.path.name}", fix=fix)

    @cached_property
    def _by_normalised_name(self) -> dict[str, Variable]:
        """Both spellings of every name, normalised: a scenario resolves dozens of names."""
        index: dict[str, Variable] = {}
        for variable in reversed(self.variables.values()):  # the first variable wins, as a scan would find it
            index.update({normalise(variable.py_name): variable, normalise(variable.name): variable})
        return index


def normalise(name: str) -> str:
    """Vensim names ignore case, and treat spaces and underscores alike.

    >>> normalise("Data  strike_Fraction")
    'data strike fraction'
    """
    return re.sub(r"[\s_]+", " ", name).strip().lower()


def canonical(name: str) -> str:
    """Simlin's name for a variable: lower case, spaces as underscores.

    >>> canonical("Financial Capital")
    'financial_capital'
    """
    return re.sub(r"\s+", "_", name.strip().lower())


#: how model files write "no units" (Vensim's Dmnl, XMILE's dimensionless or 1)
DIMENSIONLESS = frozenset({"dmnl", "dimensionless", "1"})
_INDEX = re.compile(r"\b(index|capability|efficiency|ratio|quality|attractiveness|herfindahl|hhi)\b")
_SHARE = re.compile(r"\b(shares?|fraction|coverage|rate)\b")
_NOT_A_SHARE = re.compile(r"\b(sensitivity|elasticity|steepness|weight|alpha|beta)\b")


def reader_units(units: str, name: str = "") -> str:
    """Units as a reader of a table, chart or report reads them: a share, an index, or the model's own.

    The model writes every unitless number as Dmnl, which tells a reader only what it is
    not; the variable's name says whether it is a share of something (0 to 1) or an index.
    Model files and exports keep Dmnl: this is for display only.

    >>> reader_units("Dmnl", "revenue share"), reader_units("Dmnl", "revenue_concentration_index"), reader_units("USD/year", "x")
    ('share', 'index', 'USD/year')
    >>> reader_units("Dmnl", "share sensitivity"), reader_units("", "revenue share")
    ('dimensionless', '')
    """
    if units.strip().lower() not in DIMENSIONLESS:  # no units written is unknown units, not none
        return units
    words = normalise(name)
    if _INDEX.search(words):
        return "index"
    if _SHARE.search(words) and not _NOT_A_SHARE.search(words):
        return "share"
    return "dimensionless"


def with_units(label: str, units: str, name: str = "") -> str:
    """'label [units]' in a reader's units (:func:`reader_units`; ``name`` is the variable's, if the label is not)."""
    shown = reader_units(units, name or label)
    return f"{label} [{shown}]" if shown else label


def _original(match: str, names: list[str]) -> str:
    for name in names:
        if normalise(name) == match or name == match:
            return name
    return match


def file_sha256(path: Path) -> str:
    """Content hash of a model file: the key for caches and the provenance record."""
    with open(path, "rb") as handle:  # in blocks, not the whole file in memory
        return hashlib.file_digest(handle, "sha256").hexdigest()
