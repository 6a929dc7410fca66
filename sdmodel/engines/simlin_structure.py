"""The model's causal structure as Simlin sees it: which variable drives which, and with what sign.

Kept apart from the Simlin simulation adapter (``simlin.py``): this module answers questions
about the model's structure (for the docs, the causal-loop picture and loop analysis), not
about its trajectories.
"""

from __future__ import annotations

import json
import os
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import simlin

from sdmodel.errors import InputError, ModelRunError, first_line
from sdmodel.model import canonical

SIGNS = {"+": "+", "-": "-"}


def read(model_path: str | os.PathLike) -> simlin.Model:
    """The model as Simlin reads it, or an InputError naming the file and why (a model PySD runs, reading its
    subscripts from a file, was a SimlinRuntimeError traceback from `sdmodel describe`)."""
    try:
        return simlin.load(str(model_path))
    except (simlin.SimlinError, OSError) as error:
        raise InputError(
            source=model_path,
            key=None,
            problem=f"Simlin cannot read this model's structure ({first_line(error)})",
            fix="check the equations in Vensim or Stella; runs on `--engine pysd` do not need it",
        ) from None


def to_xmile(model_path: str | os.PathLike) -> str:
    """The model as Simlin writes it in XMILE, or an InputError where Simlin cannot translate it."""
    try:
        data = simlin.load(str(model_path)).project.to_xmile()
    except (simlin.SimlinError, OSError) as error:
        raise InputError(
            source=model_path,
            key=None,
            problem=f"Simlin cannot translate this model to XMILE ({first_line(error)})",
            fix="export tab, dat or csv results instead",
        ) from None
    return data.decode("utf-8") if isinstance(data, bytes) else data


def causal_links(model_path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """Every direct causal link ``(cause, effect) -> "+" | "-" | "?"`` in Simlin's names.

    Simlin gives a stock whose flows also feed other stocks a synthetic ``<stock>_net_flow``;
    a flow into it is read as a flow into the stock, with the net flow's sign.
    """
    links = {(link.from_var, link.to_var): SIGNS.get(str(link.polarity), "?") for link in read(model_path).get_links()}
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
    model = read(model_path)
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


# --- loop dominance (Loops That Matter) --------------------------------------------------------
#
# pysimlin 0.8.5: a model whose causal graph is too large for exhaustive loop enumeration (the bundled
# one: its element-level feedback graph is far over Simlin's 50-node limit) runs LTM in "discovery"
# mode, where ``run.loops`` holds only the loops pinned with ``set_loop_name()`` in ``model.edit()``.
# A pinned loop is named by its variable *set*; Simlin recovers the cycle and expands it over the
# subscripts: one scored loop per element-level instance (ids ``pin{n}`` or ``pin{n}⁚{j}``), each with
# a relative loop score (``Sim.get_relative_loop_score``): its signed share of the absolute loop scores
# of all scored loops in its cycle partition, per time step. Pinned loops on stocks of one partition
# are normalised against each other, so the scores say which *named* loop drives the system.
# Simlin refuses (silently: no loop, no diagnostic through the Python API) a pin whose element-level
# expansion has more than MAX_PIN_NODES nodes, and one whose variables do not close a cycle.

MAX_PIN_NODES = 50  # simlin-engine's MAX_LTM_SCC_NODES, which also bounds a pinned loop's expansion
_ltm_models: dict[tuple, simlin.Model] = {}  # (path, sha256, grid, pins) -> a model with the loops pinned


def pinned_cycle(model_path: str | os.PathLike, variables: list[str]) -> list[str]:
    """A named loop's variables (Vensim names, in causal order) as Simlin must be given them to pin it.

    Simlin routes a flow into a stock that has other flows feeding other stocks through a
    synthetic ``<stock>_net_flow`` node; a pin must name that node too, or its variables
    do not close a cycle.
    """
    raw = _raw_links(str(model_path))
    chain = [canonical(name) for name in variables]
    result = []
    for cause, effect in zip(chain, chain[1:] + chain[:1]):
        result.append(cause)
        net = f"{effect}_net_flow"
        if (cause, effect) not in raw and (cause, net) in raw and (net, effect) in raw:
            result.append(net)
    return result


def _raw_links(model_path: str) -> set[tuple[str, str]]:
    return {(link.from_var, link.to_var) for link in read(model_path).get_links()}


def element_nodes(model_path: str | os.PathLike, variables: list[str]) -> int:
    """How many element-level nodes a pinned loop's variables expand to (a subscripted variable: one per element)."""
    model = read(model_path)
    sizes = {
        dim["name"].lower(): len(dim.get("elements") or []) or int(dim.get("size", 1))
        for dim in json.loads(model.project.serialize_json()).get("dimensions", [])
    }
    total = 0
    for name in variables:
        variable = model.get_variable(name)
        count = 1
        for dim in getattr(variable, "dimensions", ()) or ():
            count *= sizes.get(str(dim).lower(), 1)
        total += count
    return total


def loop_scores(
    model_path: str | os.PathLike, loops: dict[str, list[str]], spec, grid: dict[str, float]
) -> tuple[np.ndarray, dict[str, list[tuple[str, str, np.ndarray]]], dict[str, str]]:
    """Run one scenario with Loops That Matter on the named loops.

    ``loops`` maps a loop's name (e.g. ``R1``) to its variables in causal order (Vensim names);
    ``spec`` is the scenario's :class:`~sdmodel.scenario.RunSpec` and ``grid`` its full time grid
    (initial_time, final_time, time_step, saveper). Returns the save times; per loop name, its
    element-level instances as ``(simlin id, polarity "R"/"B"/..., relative loop score per time)``;
    and per loop name that Simlin could not score, the reason.
    """
    from sdmodel.engines import simlin as engine

    path = Path(model_path)
    plan = engine.load_plan(path)  # the scenario's settings as Simlin slots, exactly as the simulation engine sets them
    constants, series = engine.overrides(plan, spec)
    cycles = {name: pinned_cycle(path, variables) for name, variables in loops.items()}
    model = _ltm_model(path, cycles, grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "discovery mode": expected, the loops are pinned
        try:
            sim = model.simulate(enable_ltm=True)
            for slot, value in constants.items():
                engine.set_slot(sim, slot, value, spec.name)
            if series:
                engine.run_with_series(sim, series, grid, spec.name)
            sim.run_to_end()
            time = sim.get_series("time")
            found: dict[str, list[tuple[str, str, np.ndarray]]] = {name: [] for name in loops}
            elements = _dimension_elements(model)
            for loop in sim.get_loops_runtime():
                if loop.name not in found:
                    continue
                slots = _loop_slots(sim, model, loop, elements)
                for slot in slots:  # an arrayed (apply-to-all) loop: one instance per element
                    score = np.asarray(sim.get_relative_loop_score(loop.id, slot), dtype=float)
                    label = loop.id if slot is None else f"{loop.id}[{', '.join(slot)}]"
                    found[loop.name].append((label, str(loop.polarity), score))
        except simlin.SimlinError as error:
            raise ModelRunError(f"scenario '{spec.name}': Simlin's loop analysis failed ({error})") from error
    unscored = {}
    for name, cycle in cycles.items():
        if not found[name]:
            nodes = element_nodes(path, cycle)
            unscored[name] = (
                f"Simlin {simlin.__version__} cannot score it: its {len(cycle)} variables expand to {nodes} element-level nodes, "
                f"over its limit of {MAX_PIN_NODES} for a pinned loop"
                if nodes > MAX_PIN_NODES
                else f"Simlin {simlin.__version__} found no cycle through its variables"
            )
            del found[name]
    return time, found, unscored


def _dimension_elements(model: simlin.Model) -> dict[str, tuple[str, ...]]:
    return {
        dim["name"].lower(): tuple(dim.get("elements") or ())
        for dim in json.loads(model.project.serialize_json()).get("dimensions", [])
    }


def _loop_slots(sim, model: simlin.Model, loop, elements: dict[str, tuple[str, ...]]) -> list[tuple[str, ...] | None]:
    """The element slots of a loop's score: ``[None]`` for a scalar loop, else one tuple of elements per slot.

    ``get_relative_loop_score(id)`` of an arrayed loop gives only the dominant slot at each step;
    each slot is a member of its partition in its own right, so shares add up over the slots.
    """
    count = sim.get_loop_element_count(loop.id)
    if count <= 1:
        return [None]
    for name in loop.variables:
        variable = model.get_variable(name.split("[")[0])
        dims = [str(d).lower() for d in (getattr(variable, "dimensions", ()) or ())]
        combos = list(product(*(elements.get(d, ()) for d in dims))) if dims else []
        if len(combos) == count:
            return combos
    raise ModelRunError(f"loop {loop.name} ({loop.id}): cannot tell which subscripts its {count} score slots belong to")


def _ltm_model(path: Path, cycles: dict[str, list[str]], grid: dict[str, float]) -> simlin.Model:
    """The model with the time grid set and the loops pinned; loaded once per content, grid and loops
    (a model of its own: the simulation engine's cached models stay as the file has them)."""
    from sdmodel.engines.simlin import SPEC_KEYS
    from sdmodel.model import file_sha256

    key = (str(path.resolve()), file_sha256(path), tuple(sorted(grid.items())), tuple((n, tuple(c)) for n, c in cycles.items()))
    if key not in _ltm_models:
        model = read(path)
        model.project.set_sim_specs(**{SPEC_KEYS[k]: v for k, v in grid.items() if k in SPEC_KEYS})
        with model.edit() as (_, patch):
            for name, cycle in cycles.items():
                patch.set_loop_name(name, cycle)
        _ltm_models.clear()  # one model at a time: each holds a compiled LTM program
        _ltm_models[key] = model
    return _ltm_models[key]
