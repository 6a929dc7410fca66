"""Scenario discovery: where in the space of assumptions a policy fails its criterion.

A robustness study says how often a policy fails; a decision maker next asks *when*: "the
strike fails whenever users are insensitive to model quality" is a statement one can watch
for. PRIM (the Patient Rule Induction Method, Friedman and Fisher 1999), as used in Robust
Decision Making (Bryant and Lempert 2010), finds boxes (a range per assumption) where the
failures concentrate, trading coverage (the share of all failures inside the box) against
density (the share of draws inside the box that fail). CART (a classification tree) gives
a second, independent set of boxes: where both agree, the finding does not hang on a method.

Both come from the EMA Workbench's analysis module (Kwakkel 2017), a maintained package
that is the reference implementation in this field; it is not rewritten here. The workbench
imports slowly (seconds) and warns about optional extras, so it is imported here, when
discovery runs, with those warnings silenced.

The draws and outputs come from a saved robustness run (:mod:`sdmodel.robustness`): any
criterion can be asked of it afterwards without running the model again.
"""

from __future__ import annotations

import json
import math
import warnings
from contextlib import contextmanager
from datetime import UTC

import numpy as np
import xarray as xr

from sdmodel import criteria as crit
from sdmodel.errors import InputError

THRESHOLD = 0.8  # a box must be at least this dense in failures (the EMA Workbench's usual default)
PEEL_ALPHA = 0.05  # the share of the box peeled at each step (Friedman and Fisher's alpha)
MASS_MIN = 0.05  # the smallest box, as a share of the draws
MAX_BOXES = 3
SIGNIFICANT = 0.05  # restrictions with a larger quasi-p value are listed in the JSON only: with many assumptions, PRIM
# also trims a little off several that do not matter, and a reader should see the ones that do


def discover(
    run: xr.Dataset,
    policy: str,
    criteria: list[str] | None = None,
    *,
    threshold: float = THRESHOLD,
    peel_alpha: float = PEEL_ALPHA,
    mass_min: float = MASS_MIN,
    max_boxes: int = MAX_BOXES,
    cart: bool = True,
    command: str | None = None,
    source: str = "",
) -> xr.Dataset:
    """PRIM boxes (and CART leaves) of the draws on which ``policy`` fails ``criteria`` (default: the run's criteria).

    A draw fails when the policy does not meet every criterion on it. Boxes are chosen on
    each PRIM peeling trajectory as the one with the greatest coverage among those at least
    ``threshold`` dense; the whole trajectory is returned too, for a reader who would trade
    differently. Draws on which a scenario failed to run are left out.
    """
    from sdmodel.robustness import Reader

    names = [str(s) for s in run["scenario"].values] if "scenario" in run.dims else []
    params = json.loads(run.attrs.get("ensemble_params", "[]"))
    if run.attrs.get("ensemble") != "robustness" or not params or not names:
        raise InputError(
            source=source or "RUN", key=None, problem="is not a robustness run", fix="give a run of `sdmodel robustness`"
        )
    if policy not in names:
        raise InputError(
            source="--policy", key=policy, problem="is not a scenario of the run", fix=f"choose one of: {', '.join(names)}"
        )
    baseline = run.attrs.get("robustness_baseline", "baseline")
    texts = list(criteria) if criteria else json.loads(run.attrs.get("robustness_criteria", "[]"))
    parsed = [crit.parse(text, test=True) for text in texts]
    if not parsed:
        raise InputError(
            source="--criterion", key=None, problem="no criterion given", fix='give one, e.g. --criterion "hhi@2040 < 0.4"'
        )
    reader = Reader(run)
    for expression in parsed:
        crit.check_outputs(
            expression,
            lambda name: name in reader.outputs or any(o.variable == name and not o.select for o in reader.outputs.values()),
        )
    valid = ~run["failed"].values.any(axis=0) if "failed" in run.coords else np.ones(run.sizes["run"], bool)
    index, at = names.index(policy), names.index(baseline) if baseline in names else names.index(policy)
    met = np.ones(run.sizes["run"], dtype=bool)
    for expression in parsed:
        met &= np.broadcast_to(np.asarray(expression.evaluate(lambda ref: reader.values(ref, index, at)), dtype=bool), met.shape)
    fails = ~met[valid]
    if fails.all() or not fails.any():
        what = "fails on every draw" if fails.all() else "meets the criteria on every draw"
        raise InputError(
            source="--policy",
            key=policy,
            problem=f"{what}: there is no region to discover",
            fix="ask a criterion it sometimes meets and sometimes fails",
        )
    x = _draws(run, params, valid)
    with _workbench() as (prim, cart_module):
        boxes = _prim_boxes(prim, x, fails, threshold, peel_alpha, mass_min, max_boxes)
        leaves = _cart_leaves(cart_module, x, fails, mass_min, int(run.attrs.get("seed", 0))) if cart else []
    if not boxes:
        raise InputError(
            source="--policy",
            key=policy,
            problem=f"PRIM found no box at least {threshold:.0%} dense in failures",
            fix="the failures are spread thinly: lower --threshold, or give more --samples",
        )
    return _arrange(
        run,
        x,
        params,
        boxes,
        leaves,
        policy=policy,
        texts=texts,
        fails=fails,
        source=source,
        command=command,
        settings={"threshold": threshold, "peel_alpha": peel_alpha, "mass_min": mass_min},
    )


@contextmanager
def _workbench():
    """The EMA Workbench's PRIM and CART, imported with its notices about optional extras silenced."""
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ipyparallel/altair absent; pandas deprecations inside the workbench
        logging.getLogger("EMA").setLevel(logging.WARNING)
        from ema_workbench.analysis import cart, prim

        yield prim, cart


def _draws(run: xr.Dataset, params: list[str], valid: np.ndarray):
    import pandas as pd

    return pd.DataFrame({name: np.asarray(run[name].values, dtype=float)[valid] for name in params})


def _prim_boxes(prim, x, fails: np.ndarray, threshold: float, peel_alpha: float, mass_min: float, max_boxes: int) -> list[dict]:
    """Up to ``max_boxes`` boxes, each found among the draws the earlier ones leave out (PRIM's covering)."""
    finder = prim.Prim(x, fails.astype(int), threshold=threshold, peel_alpha=peel_alpha, mass_min=mass_min)
    found = []
    for _ in range(max_boxes):
        box = finder.find_box()
        if box is None:
            break
        trajectory = box.peeling_trajectory
        dense = trajectory[trajectory["density"] >= threshold]
        if dense.empty:
            break  # the workbench's "dump box": what remains has no dense region
        chosen = int(dense.sort_values(["coverage", "density"], kind="stable").index[-1])
        box.select(chosen)
        limits = box.box_lims[chosen]
        quasi = box.qp[chosen] if chosen < len(box.qp) else {}
        found.append(
            {
                "quasi_p": [_quasi_p(quasi.get(name)) for name in x.columns],
                "step": chosen,
                "lower": [float(limits[name].iloc[0]) for name in x.columns],
                "upper": [float(limits[name].iloc[1]) for name in x.columns],
                "coverage": float(trajectory["coverage"].iloc[chosen]),
                "density": float(trajectory["density"].iloc[chosen]),
                "mass": float(trajectory["mass"].iloc[chosen]),
                "n": int(trajectory["n"].iloc[chosen]),
                "trajectory": {key: trajectory[key].to_numpy(dtype=float) for key in ("coverage", "density", "mass", "res_dim")},
            }
        )
    return found


def _quasi_p(sides) -> float:
    """A restriction's quasi-p value (Bryant and Lempert 2010: a one-sided binomial test of the density it adds), the
    smaller of its two sides'; the workbench writes -1 for a side not restricted. NaN: the assumption is not restricted."""
    valid = [float(v) for v in (sides or []) if v is not None and float(v) >= 0]
    return min(valid) if valid else math.nan


def _cart_leaves(cart_module, x, fails: np.ndarray, mass_min: float, seed: int) -> list[dict]:
    """CART's leaves, densest in failures first.

    scikit-learn breaks ties between equally good splits at random, from NumPy's global generator
    when the workbench gives it no seed: seeded here (and restored), the same run gives the same leaves.
    """
    # the workbench makes the smallest leaf int(mass_min x draws): at least one draw, or scikit-learn refuses
    tree = cart_module.CART(x, fails.astype(int), mass_min=max(mass_min, 1.0 / len(x)))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        tree.build_tree()
    finally:
        np.random.set_state(state)
    leaves = []
    for limits, stats in zip(tree.boxes, tree.stats):
        leaves.append(
            {
                "lower": [float(limits[name].iloc[0]) for name in x.columns],
                "upper": [float(limits[name].iloc[1]) for name in x.columns],
                "coverage": float(stats["coverage"]),
                "density": float(stats["density"]),
                "mass": float(stats["mass"]),
            }
        )
    return sorted(leaves, key=lambda leaf: (-leaf["density"], -leaf["coverage"]))


def _arrange(run, x, params, boxes, leaves, *, policy, texts, fails, source, command, settings) -> xr.Dataset:
    from sdmodel import provenance

    lo, hi = x.min().to_numpy(dtype=float), x.max().to_numpy(dtype=float)
    steps = max(len(b["trajectory"]["coverage"]) for b in boxes)

    def padded(key: str) -> np.ndarray:
        return np.array(
            [np.pad(b["trajectory"][key], (0, steps - len(b["trajectory"][key])), constant_values=np.nan) for b in boxes]
        )

    lower = np.array([b["lower"] for b in boxes])
    upper = np.array([b["upper"] for b in boxes])
    data = {
        "prim_lower": (("box", "param"), lower, {"long_name": "PRIM box: lowest value of the assumption inside"}),
        "prim_upper": (("box", "param"), upper, {"long_name": "PRIM box: highest value of the assumption inside"}),
        "prim_restricted": (
            ("box", "param"),
            (lower > lo + 1e-12 * np.abs(lo)) | (upper < hi - 1e-12 * np.abs(hi)),
            {"long_name": "The box restricts this assumption (the others span every draw)"},
        ),
        "prim_quasi_p": (
            ("box", "param"),
            np.array([b["quasi_p"] for b in boxes]),
            {
                "long_name": "Quasi-p value of the box's restriction of the assumption (Bryant and Lempert 2010); NaN: unrestricted"
            },
        ),
        "prim_coverage": (("box",), [b["coverage"] for b in boxes], {"long_name": "Share of all failing draws inside the box"}),
        "prim_density": (("box",), [b["density"] for b in boxes], {"long_name": "Share of the draws inside the box that fail"}),
        "prim_mass": (("box",), [b["mass"] for b in boxes], {"long_name": "Share of all draws inside the box"}),
        "prim_step": (("box",), [b["step"] for b in boxes], {"long_name": "The box's step on its peeling trajectory"}),
        "trajectory_coverage": (
            ("box", "step"),
            padded("coverage"),
            {"long_name": "Coverage along the peeling and pasting trajectory"},
        ),
        "trajectory_density": (
            ("box", "step"),
            padded("density"),
            {"long_name": "Density along the peeling and pasting trajectory"},
        ),
        "trajectory_mass": (("box", "step"), padded("mass"), {"long_name": "Mass along the peeling and pasting trajectory"}),
        "trajectory_restricted": (
            ("box", "step"),
            padded("res_dim"),
            {"long_name": "Assumptions restricted along the trajectory"},
        ),
    }
    if leaves:
        data |= {
            "cart_lower": (
                ("leaf", "param"),
                np.array([leaf["lower"] for leaf in leaves]),
                {"long_name": "CART leaf: lowest value"},
            ),
            "cart_upper": (
                ("leaf", "param"),
                np.array([leaf["upper"] for leaf in leaves]),
                {"long_name": "CART leaf: highest value"},
            ),
            "cart_coverage": (
                ("leaf",),
                [leaf["coverage"] for leaf in leaves],
                {"long_name": "Share of all failing draws in the leaf"},
            ),
            "cart_density": (
                ("leaf",),
                [leaf["density"] for leaf in leaves],
                {"long_name": "Share of the leaf's draws that fail"},
            ),
            "cart_mass": (("leaf",), [leaf["mass"] for leaf in leaves], {"long_name": "Share of all draws in the leaf"}),
        }
    coords = {
        "box": np.arange(1, len(boxes) + 1),
        "param": params,
        "param_long_name": ("param", [str(run[name].attrs.get("long_name", name)) for name in params]),
        "param_units": ("param", [str(run[name].attrs.get("units", "")) for name in params]),
        "param_lowest": ("param", lo, {"long_name": "Lowest draw of the assumption"}),
        "param_highest": ("param", hi, {"long_name": "Highest draw of the assumption"}),
        "step": np.arange(steps),
    }
    if leaves:
        coords["leaf"] = np.arange(1, len(leaves) + 1)
    kept = {
        key: run.attrs[key]
        for key in (
            "engine",
            "engine_version",
            "sdmodel_version",
            "model_file",
            "model_sha256",
            "git_commit",
            "distributions_toml",
            "samples",
            "seed",
        )
        if key in run.attrs
    }
    from datetime import datetime
    from importlib.metadata import version

    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    attrs = kept | {
        "title": f"sdmodel scenario discovery: where {policy} fails",
        "ensemble": "discovery",
        "created": created,
        "command": command or provenance.command_line(),
        "discovery_source_run": source,
        "discovery_policy": policy,
        "discovery_criteria": json.dumps(texts),
        "discovery_failing_draws": int(fails.sum()),
        "discovery_draws": int(fails.size),
        "discovery_method": f"PRIM (Friedman and Fisher 1999) and CART from ema_workbench {version('ema_workbench')}",
        "discovery_box_choice": f"on each peeling trajectory, the greatest coverage among boxes at least {settings['threshold']:.0%} dense",
        **{f"discovery_{key}": value for key, value in settings.items()},
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def to_json(found: xr.Dataset, run_path: str | None = None) -> dict:
    """``{"policy", "criteria", "failing", "draws", "prim": [{"coverage", "density", "mass", "restricted": {param: [lo, hi]}, ...}], "cart": [...]}``."""
    names = [str(n) for n in found["param_long_name"].values]

    def bounds(lower, upper, restricted=None) -> dict:
        keep = restricted if restricted is not None else np.ones(len(names), bool)
        return {name: [float(lo), float(hi)] for name, lo, hi, k in zip(names, lower, upper, keep) if k}

    prim = []
    for i in range(found.sizes["box"]):
        prim.append(
            {
                "coverage": float(found["prim_coverage"][i]),
                "density": float(found["prim_density"][i]),
                "mass": float(found["prim_mass"][i]),
                "restricted": bounds(
                    found["prim_lower"].values[i], found["prim_upper"].values[i], found["prim_restricted"].values[i]
                ),
                "bounds": bounds(found["prim_lower"].values[i], found["prim_upper"].values[i]),
                "quasi_p": {
                    name: _n(q)
                    for name, q, k in zip(names, found["prim_quasi_p"].values[i], found["prim_restricted"].values[i])
                    if k
                },
                "trajectory": [
                    {"coverage": _n(c), "density": _n(d), "mass": _n(m), "restricted": _n(r)}
                    for c, d, m, r in zip(
                        *(found[f"trajectory_{k}"].values[i] for k in ("coverage", "density", "mass", "restricted"))
                    )
                    if math.isfinite(float(c))
                ],
                "step": int(found["prim_step"][i]),
            }
        )
    cart = []
    if "leaf" in found.dims:
        for i in range(found.sizes["leaf"]):
            cart.append(
                {
                    "coverage": float(found["cart_coverage"][i]),
                    "density": float(found["cart_density"][i]),
                    "mass": float(found["cart_mass"][i]),
                    "bounds": bounds(found["cart_lower"].values[i], found["cart_upper"].values[i]),
                }
            )
    return {
        "run": run_path,
        "source_run": found.attrs.get("discovery_source_run"),
        "policy": found.attrs["discovery_policy"],
        "criteria": json.loads(found.attrs["discovery_criteria"]),
        "failing": int(found.attrs["discovery_failing_draws"]),
        "draws": int(found.attrs["discovery_draws"]),
        "method": found.attrs["discovery_method"],
        "box_choice": found.attrs["discovery_box_choice"],
        "ranges": {
            name: [float(lo), float(hi)]
            for name, lo, hi in zip(names, found["param_lowest"].values, found["param_highest"].values)
        },
        "prim": prim,
        "cart": cart,
    }


def format_report(found: xr.Dataset) -> str:
    """The boxes as text: per box its coverage and density and the assumptions it restricts; CART's densest leaves."""
    summary = to_json(found)
    opening = (
        f"'{summary['policy']}' fails {' and '.join(summary['criteria'])} on {summary['failing']} of {summary['draws']} draws "
        f"({summary['failing'] / summary['draws']:.0%}). Where the failures concentrate:"
    )
    lines = [opening, ""]
    for number, box in enumerate(summary["prim"], 1):
        lines.append(
            f"PRIM box {number}: coverage {box['coverage']:.0%} (of the failures), density {box['density']:.0%} "
            f"(of the draws inside fail), mass {box['mass']:.0%} of the draws"
        )
        significant = sorted(
            (q if q is not None else 1.0, name) for name, q in box["quasi_p"].items() if q is not None and q < SIGNIFICANT
        )
        for q, name in significant:
            (lo, hi), full = box["restricted"][name], summary["ranges"][name]
            lines.append(f"  {lo:.4g} <= {name} <= {hi:.4g}    (drawn {full[0]:.4g} to {full[1]:.4g}; quasi-p {q:.2g})")
        weak = len(box["restricted"]) - len(significant)
        if not box["restricted"]:
            lines.append("  (restricts nothing)")
        elif weak:
            lines.append(f"  and {weak} restriction(s) with quasi-p >= {SIGNIFICANT:g}, likely noise (all in --json)")
        trail = ", ".join(
            f"{s['coverage']:.2f}/{s['density']:.2f}" for s in box["trajectory"][:: max(1, len(box["trajectory"]) // 8)]
        )
        lines.append(
            f"  peeling trajectory (coverage/density, step {box['step']} of {len(box['trajectory']) - 1} chosen): {trail}"
        )
    if summary["cart"]:
        lines += ["", "CART leaves at least half failing:"]
        for leaf in (leaf for leaf in summary["cart"] if leaf["density"] >= 0.5):
            restricted = [
                f"{lo:.4g} <= {name} <= {hi:.4g}"
                for name, (lo, hi) in leaf["bounds"].items()
                if [lo, hi] != summary["ranges"][name]
            ]
            lines.append(
                f"  coverage {leaf['coverage']:.0%}, density {leaf['density']:.0%}: " + (" and ".join(restricted) or "everywhere")
            )
    lines += ["", f"{summary['method']}; {summary['box_choice']}."]
    return "\n".join(lines)


def _n(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
