"""What a Vensim file says that Simlin's model description drops: names as written, ranges, time controls.

Simlin (0.8) describes a model's variables (kind, equation, units, documentation,
subscripts) but in its canonical names (``compute_capacity``, elements lower-cased)
and without Vensim's ``[min,max]`` ranges or the time controls as variables. These
come from the file's own text: each equation is ``definition ~ units [range] ~
comment |``. Only what is needed beside Simlin is read here; a file this reading
does not understand makes :func:`scan` return what it found, and the caller asks
PySD for the rest (see :func:`sdmodel.engines.simlin.model_info`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

SKETCH = "\\\\\\---///"  # the sketch (diagram) follows the equations
CONTROLS = {"INITIAL TIME": "initial_time", "FINAL TIME": "final_time", "TIME STEP": "time_step", "SAVEPER": "saveper"}
_MACRO = re.compile(r":MACRO:.*?:END OF MACRO:", re.IGNORECASE | re.DOTALL)
_RANGE = re.compile(r"\[([^\]]*)\]\s*$")
_NAME = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[^=(\[:~|]+?)\s*(?=[=(\[:]|$)')
_DATA = re.compile(r":=|:(INTERPOLATE|RAW|HOLD BACKWARD|LOOK FORWARD):|\bGET[ _](XLS|DIRECT|123|DATA)\b", re.IGNORECASE)
_SUBSCRIPT = re.compile(r'^\s*("[^"]*"|[^=(\[:~|"]+?)\s*:(?![=A-Z ]*:)(?!=)\s*(.*)$', re.DOTALL)


@dataclass
class Equation:
    """One equation's name as written, units (without the range), limits, comment, and expression (after ``=``)."""

    name: str
    units: str
    lower: float
    upper: float
    comment: str
    expression: str = ""


@dataclass
class VensimText:
    """Every equation by canonical name (in the file's order), and each subscript range's elements as written."""

    equations: dict[str, Equation] = field(default_factory=dict)
    dimensions: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # canonical -> (name, elements)
    reads_data: bool = False  # data variables (``:=``, ``:INTERPOLATE:``) or data files (``GET XLS ...``)


def canonical(name: str) -> str:
    """The key that Simlin's names and a file's spellings share: no quotes, lower case, runs of spaces or _ as one _.

    >>> canonical('"Odd-Name (x)"'), canonical("Compute  Capacity")
    ('odd-name_(x)', 'compute_capacity')
    """
    return re.sub(r"[\s_]+", "_", name.strip().strip('"').strip()).lower()


def scan(path: str | Path) -> VensimText:
    """The equations and subscript ranges of a Vensim file, as its text writes them (macros left out)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    text = _MACRO.sub("", text.split(SKETCH, 1)[0]).removeprefix("\ufeff")
    text = re.sub(r"^\s*\{UTF-8\}", "", text)
    found = VensimText()
    for chunk in text.split("|"):
        parts = chunk.split("~")
        if len(parts) < 3:
            continue
        definition = re.sub(r"\{[^}]*\}", "", parts[0]).strip()
        if not definition or definition.startswith("*"):  # a group's heading
            continue
        subscript = _SUBSCRIPT.match(definition)
        if subscript and "=" not in definition and "<->" not in definition:
            _add_dimension(found, subscript[1], subscript[2])
            continue
        name = _NAME.match(definition)
        if name is None:
            continue
        found.reads_data |= bool(_DATA.search(definition))
        units, lower, upper = _units(parts[1])
        key = canonical(name[1])
        expression = " ".join(definition[name.end() :].partition("=")[2].split())
        if key not in found.equations:  # a variable defined element by element: its first equation speaks for it
            found.equations[key] = Equation(name[1].strip(), units, lower, upper, _comment(parts[2]), expression)
    return found


def _add_dimension(found: VensimText, name: str, body: str) -> None:
    """A subscript range's elements as written; a numbered range (``(r1-r9)``) is left to Simlin's spelling."""
    elements = tuple(element.strip() for element in body.split("->", 1)[0].split(","))
    if any("(" in element or not element for element in elements):
        return
    found.dimensions[canonical(name)] = (name.strip(), elements)


def _units(text: str) -> tuple[str, float, float]:
    """``year [0,?]`` -> ``("year", 0.0, inf)``: the units and the range, ``?`` for an open end."""
    text = text.strip()
    bounds = _RANGE.search(text)
    lower, upper = -math.inf, math.inf
    if bounds:
        text = text[: bounds.start()].strip()
        ends = [end.strip() for end in bounds[1].split(",")] + ["?", "?"]
        lower = _bound(ends[0], -math.inf)
        upper = _bound(ends[1], math.inf)
    return text, lower, upper


def _bound(text: str, open_end: float) -> float:
    try:
        return float(text)
    except ValueError:
        return open_end


def _comment(text: str) -> str:
    """A comment as one paragraph, as PySD documents it (Vensim wraps long comments with tabs)."""
    return " ".join(text.split())


#: Words PySD (3.14) gives a ``_1`` suffix besides Python's keywords and builtins: the lower-case names its
#: generated code imports. tests/test_models_like_pysd.py checks the list against the installed PySD.
PYSD_RESERVED = frozenset(
    [
        "active_initial",
        "allocate_available",
        "allocate_by_priority",
        "compute_shape",
        "constant_cache",
        "dataclass",
        "datetime",
        "deepcopy",
        "detect_encoding",
        "erfc",
        "get_current_computer_time",
        "get_key_and_value_by_insensitive_key_or_value",
        "get_return_elements",
        "get_time_value",
        "if_then_else",
        "importlib",
        "incomplete",
        "inspect",
        "integer",
        "invert_matrix",
        "itertools",
        "json",
        "least_squares",
        "load_model_data",
        "load_modules",
        "load_outputs",
        "load_workbook",
        "modulo",
        "not_implemented_function",
        "np",
        "os",
        "p",
        "pd",
        "print_objects_format",
        "prod",
        "progressbar",
        "pulse",
        "quantum",
        "ramp",
        "random",
        "re",
        "rearrange",
        "step",
        "utils",
        "vector_rank",
        "vector_reorder",
        "vector_select",
        "vector_sort_order",
        "vmax",
        "vmin",
        "warn",
        "warnings",
        "wraps",
        "xidz",
        "xr",
        "xrsplit",
        "zidz",
    ]
)


def python_names(names: list[str]) -> dict[str, str]:
    """PySD's Python name for each model name, given in PySD's order (a clash takes ``_1``, ``_2``... in that order).

    The rule of PySD's ``NamespaceManager.make_python_identifier``, so that results and scenarios
    name variables alike whichever engine described the model.

    >>> python_names(["Compute  Capacity", '"Odd-Name (x)"', "step", "123 abc"])
    {'Compute  Capacity': 'compute_capacity', '"Odd-Name (x)"': 'oddname_x', 'step': 'step_1', '123 abc': 'nvs_123_abc'}
    """
    import builtins
    import keyword
    import unicodedata

    used = set(PYSD_RESERVED) | set(keyword.kwlist) | set(dir(builtins))
    result = {}
    for name in names:
        clean = re.sub(r"[\s_]+", "_", name.lower())
        clean = unicodedata.normalize("NFD", clean).encode("ascii", "ignore").decode("utf-8")
        clean = re.sub(r"[^0-9a-zA-Z_]", "", clean)
        if re.match(r"^[0-9]", clean) or not clean:
            clean = "nvs_" + clean
        elif clean.startswith("_"):
            clean = "nvs" + clean
        clean = re.sub(r"_+", "_", clean)
        identifier, number = clean, 1
        while identifier in used:
            identifier, number = f"{clean}_{number}", number + 1
        used.add(identifier)
        result[name] = identifier
    return result
