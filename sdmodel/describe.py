"""What one variable of a model is: its equation, units, range, source and causal neighbours.

Answers `sdmodel describe VARIABLE`, the question a reader of a result asks first: where does
this number come from?
"""

from __future__ import annotations

import math
from pathlib import Path

from sdmodel.locations import default_model


def describe(name: str, model: str | Path | None = None) -> dict:
    """A variable's documentation; an unknown name raises InputError with the closest match."""
    from sdmodel.engines import pysd as pysd_engine
    from sdmodel.engines.simlin_structure import canonical, causal_links, equations

    model_path = Path(model) if model else default_model()
    info = pysd_engine.model_info(model_path)
    variable = info.resolve(name, str(model_path), "VARIABLE")
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
