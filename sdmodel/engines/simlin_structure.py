"""The model's causal structure as Simlin sees it: which variable drives which, and with what sign.

Kept apart from the Simlin simulation adapter (``simlin.py``): this module answers questions
about the model's structure (for the docs, the causal-loop picture and loop analysis), not
about its trajectories.
"""

from __future__ import annotations

import os
import re

import simlin

SIGNS = {"+": "+", "-": "-"}


def canonical(name: str) -> str:
    """Simlin's name for a variable: lower case, spaces as underscores.

    >>> canonical("Financial Capital")
    'financial_capital'
    """
    return re.sub(r"\s+", "_", name.strip().lower())


def causal_links(model_path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """Every direct causal link ``(cause, effect) -> "+" | "-" | "?"`` in Simlin's names.

    Simlin gives a stock whose flows also feed other stocks a synthetic ``<stock>_net_flow``;
    a flow into it is read as a flow into the stock, with the net flow's sign.
    """
    links = {(link.from_var, link.to_var): SIGNS.get(str(link.polarity), "?") for link in simlin.load(str(model_path)).get_links()}
    for (cause, effect), sign in list(links.items()):
        if effect.endswith("_net_flow") and (effect, effect.removesuffix("_net_flow")) in links:
            stock = effect.removesuffix("_net_flow")
            onward = links[(effect, stock)]
            links.setdefault((cause, stock), sign if onward == "+" else ("-" if sign == "+" and onward == "-" else "?"))
    return links


def equations(model_path: str | os.PathLike) -> dict[str, str]:
    """Each variable's equation as written in the model (Simlin's names as keys).

    A stock reads ``INTEG(inflows - outflows, initial)``; a subscripted variable with an
    equation per element reads ``element: equation; ...``.
    """
    model = simlin.load(str(model_path))
    result = {}
    for variable in model.variables:
        if isinstance(variable, simlin.Stock):
            flows = " + ".join(variable.inflows) + "".join(f" - {flow}" for flow in variable.outflows)
            result[variable.name] = f"INTEG({flows or '0'}, {variable.initial_equation})"
        elif variable.element_equations:
            result[variable.name] = "; ".join(f"{e.subscript}: {e.equation}" for e in variable.element_equations)
        else:
            result[variable.name] = getattr(variable, "equation", "")
    return result
