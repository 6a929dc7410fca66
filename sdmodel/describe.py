"""What one variable of a model is: its equation, units, range, source and causal neighbours.

Answers `sdmodel describe VARIABLE`, the question a reader of a result asks first: where does
this number come from?
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from sdmodel.errors import InputError
from sdmodel.locations import default_model
from sdmodel.model import SUGGESTION_CUTOFF, normalise

#: what the sign after each causal neighbour means (Simlin signs a link from its equation alone)
POLARITY_LEGEND = "(+) moves the same way, (-) the opposite way, (?) either way, depending on other values"


def describe(name: str, model: str | Path | None = None) -> dict:
    """A variable's documentation; an unknown name raises InputError with the closest match.

    ``name`` may also be a comparison measure's key (``hhi``, as `compare --json` and
    `sensitivity` name it): the answer is then its variable's, with the measure under
    ``"measure"``.
    """
    from sdmodel.engines import pysd as pysd_engine
    from sdmodel.engines.simlin_structure import canonical, causal_links, equations
    from sdmodel.metrics import METRIC_BY_KEY

    model_path = Path(model) if model else default_model()
    info = pysd_engine.model_info(model_path)
    measure = METRIC_BY_KEY.get(name)
    try:  # a variable of the model first: a model of one's own may name one like a measure
        variable = info.resolve(name, str(model_path), "VARIABLE")
        if measure and normalise(measure.variable) not in (normalise(variable.py_name), normalise(variable.name)):
            measure = None  # the model's own variable of that name, not the measure
    except InputError as error:
        if measure:
            variable = info.resolve(measure.variable, str(model_path), "VARIABLE")
        else:
            close = difflib.get_close_matches(name, list(METRIC_BY_KEY), n=1, cutoff=SUGGESTION_CUTOFF)
            if not close or (error.fix or "").startswith("did you mean"):  # a variable like it is the likelier meaning
                raise
            problem = f"'{name}' is neither a variable of {model_path.name} nor a comparison measure"
            raise InputError(model_path, "VARIABLE", problem, f"did you mean the measure '{close[0]}'?") from None
    names = {canonical(v.name): v.name for v in info.variables.values()}
    key = canonical(variable.name)
    links = causal_links(model_path)
    return {
        "name": variable.name,
        "python_name": variable.py_name,
        "kind": variable.kind,
        "dims": list(variable.dims),
        "units": variable.units,
        "range": None if math.isinf(variable.lower) and math.isinf(variable.upper) else [variable.lower, variable.upper],
        "equation": equations(model_path).get(key, ""),
        "source": variable.comment,
        "depends_on": sorted(f"{names.get(cause, cause)} ({sign})" for (cause, effect), sign in links.items() if effect == key and cause in names),
        "used_by": sorted(f"{names.get(effect, effect)} ({sign})" for (cause, effect), sign in links.items() if cause == key and effect in names),
        "measure": {"key": measure.key, "label": measure.label, "select": measure.select} if measure else None,
    }


def listing(model: str | Path | None = None) -> list[dict]:
    """Every variable's name, kind and units, by name."""
    from sdmodel.engines import pysd as pysd_engine

    info = pysd_engine.model_info(Path(model) if model else default_model())
    return [
        {"name": v.name, "kind": v.kind, "dims": list(v.dims), "units": v.units}
        for v in sorted(info.variables.values(), key=lambda v: v.name.lower())
        if v.py_name != "time"
    ]
