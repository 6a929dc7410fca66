"""Global sensitivity: which assumptions drive an outcome, or a policy's effect on it.

SALib draws the design and estimates the indices (Sobol first, total and second order with
bootstrap confidence intervals; Morris mu* and sigma; FAST); sdmodel only runs the design through
the ensemble machinery and arranges the answer. An output may be read at a time (``VAR@2040``)
and, with ``against``, as the difference between a scenario and a baseline run on the same draws:
"how much does the strike lower concentration, and which assumptions decide that?" is the policy
analyst's question.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel.errors import NUMBER, InputError, Note
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import Scenario

MORRIS_LEVELS = 4

#: SALib's FAST takes M = 4 harmonics by default and needs more than 4 M^2 samples
FAST_M = 4
FAST_MINIMUM = 4 * FAST_M**2


@dataclass(frozen=True)
class Method:
    """One of SALib's methods: how it draws the design, how it estimates the indices, and which indices it gives."""

    sample: Callable[[dict, int, bool, int], np.ndarray]  #: (problem, N, second order, seed) -> design
    analyse: Callable[[dict, np.ndarray, np.ndarray, bool, int], dict]  #: (problem, design, outputs, second order, seed)
    indices: tuple[str, ...]  #: the first-order indices, by output and parameter


def _sobol_sample(problem, samples, second_order, seed):
    from SALib.sample import sobol

    return sobol.sample(problem, samples, calc_second_order=second_order, seed=seed)


def _sobol_analyse(problem, design, y, second_order, seed):
    from SALib.analyze import sobol

    return sobol.analyze(problem, y, calc_second_order=second_order, seed=seed)


def _morris_sample(problem, samples, second_order, seed):
    from SALib.sample import morris

    return morris.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed)


def _morris_analyse(problem, design, y, second_order, seed):
    from SALib.analyze import morris

    return morris.analyze(problem, design, y, num_levels=MORRIS_LEVELS, seed=seed)


def _fast_sample(problem, samples, second_order, seed):
    from SALib.sample import fast_sampler

    return fast_sampler.sample(problem, samples, seed=seed)


def _fast_analyse(problem, design, y, second_order, seed):
    from SALib.analyze import fast

    return fast.analyze(problem, y, seed=seed)


#: method name -> what SALib does for it; the CLI's --method choices
METHODS = {
    "sobol": Method(_sobol_sample, _sobol_analyse, ("S1", "S1_conf", "ST", "ST_conf")),
    "morris": Method(_morris_sample, _morris_analyse, ("mu", "mu_star", "sigma", "mu_star_conf")),
    "fast": Method(_fast_sample, _fast_analyse, ("S1", "S1_conf", "ST", "ST_conf")),
}


def split_output(text: str) -> tuple[str, float | None]:
    """``"model capability[incumbent]@2040"`` -> (``"model capability[incumbent]"``, 2040.0).

    >>> split_output("hhi@2040"), split_output("labour share")
    (('hhi', 2040.0), ('labour share', None))
    """
    name, sep, when = text.rpartition("@")
    if not sep:
        return text, None
    if not NUMBER.fullmatch(when.strip()):
        raise InputError(source="--output", key=text, problem=f"'{when}' is not a time", fix="write VAR@YEAR, e.g. hhi@2040")
    return name, float(when)


def check_saved_time(text: str, when: float, grid: Mapping[str, float]) -> None:
    """Refuse ``VAR@YEAR`` unless YEAR is a time the run saves: read "nearest", 2060 would be labelled 2060 and hold 2050.

    >>> check_saved_time("hhi@2060", 2060.0, {"initial_time": 2020, "final_time": 2050, "saveper": 0.5})
    Traceback (most recent call last):
    ...
    sdmodel.errors.InputError: --output: hhi@2060: 2060 is not a time the run saves (every 0.5 year from 2020 to 2050); give a year within the run, or a later --final-time
    """
    start, end, step = grid["initial_time"], grid["final_time"], grid.get("saveper") or grid["time_step"]
    steps = (when - start) / step if math.isfinite(when) else math.nan
    if not (start - 1e-9 <= when <= end + 1e-9) or abs(steps - round(steps)) > 1e-6:
        raise InputError(
            source="--output",
            key=text,
            problem=f"{when:g} is not a time the run saves (every {step:g} year from {start:g} to {end:g})",
            fix="give a year within the run, or a later --final-time",
        )


def sensitivity(
    distributions: str | os.PathLike,
    scenario: str | os.PathLike | Scenario = "baseline",
    *,
    method: str = "sobol",
    samples: int = 1024,
    outputs: Sequence[str] | None = None,
    against: str | os.PathLike | Scenario | None = None,
    second_order: bool = False,
    seed: int = 0,
    setup: RunSetup = RunSetup(),
    execution: Execution = Execution(),
    command: str | None = None,
) -> xr.Dataset:
    """Sensitivity indices of each output (dims ``output`` and ``param``).

    ``samples`` is SALib's N: Sobol runs N(D+2) members (N(2D+2) with second order),
    Morris N(D+1), FAST N·D. With ``against`` every member also runs on that scenario
    and the output is the scenario's value minus the baseline's.
    """
    from sdmodel import ensemble
    from sdmodel.distributions import load_distributions, salib_problem

    if method not in METHODS:
        raise InputError(source="--method", key=method, problem="unknown method", fix=f"choose one of: {', '.join(METHODS)}")
    if samples < 2:
        raise InputError(
            source="--samples",
            key=str(samples),
            problem="too few samples for an estimate",
            fix="give --samples of at least 2 (1024 is usual for Sobol)",
        )
    if method == "fast" and samples <= FAST_MINIMUM:  # SALib's own check, which came as a traceback after loading the model
        raise InputError(
            source="--samples",
            key=str(samples),
            problem=f"FAST needs more than 4 M^2 = {FAST_MINIMUM} samples (M = {FAST_M} harmonics)",
            fix=f"give --samples of at least {FAST_MINIMUM + 1}",
        )
    runs = [scenario] + ([against] if against is not None else [])
    prepared = setup.prepare(runs)
    specs, info = prepared.specs, prepared.info
    drawn = load_distributions(distributions, info)
    if len(drawn) < 2:
        raise InputError(
            source=distributions,
            key="params",
            problem="sensitivity needs at least two uncertain constants",
            fix="add another [params.NAME] table",
        )
    if method == "morris" and any(d.dist != "uniform" for d in drawn):
        raise InputError(
            source=distributions,
            key="params",
            problem="Morris screening samples levels of a range",
            fix='give every parameter dist = "uniform"',
        )
    wanted = [split_output(text) for text in (outputs or _default_outputs())]
    grid = prepared.grid
    for text, (_, when) in zip(outputs or _default_outputs(), wanted):
        if when is not None:
            check_saved_time(text, when, grid)
    chosen = ensemble.resolve_outputs([name for name, _ in wanted], info)
    # SALib's designs: Sobol N(D+2) members, N(2D+2) with second order; Morris N(D+1); FAST N*D
    per_sample = {"sobol": 2 * len(drawn) + 2 if second_order else len(drawn) + 2, "morris": len(drawn) + 1}
    members = samples * per_sample.get(method, len(drawn))
    ensemble.check_size("--samples", members, prepared, chosen, given=str(samples))
    problem = salib_problem(drawn)
    if method == "morris":  # levels of the range: every distribution is uniform (checked above)
        problem = {**problem, "bounds": [[d.args["lower"], d.args["upper"]] for d in drawn]}
    design = METHODS[method].sample(problem, samples, second_order, seed)
    varied = [d.setting for d in drawn]
    ensemble.check_levers_not_varied(distributions, drawn, specs)  # with `against`: the policy's own levers
    results, executor = ensemble.run_design(
        prepared,
        specs,
        varied,
        design,
        chosen,
        {"scenario": len(specs), "run": len(design)},
        execution=execution,
        label=f"sensitivity ({method})",
    )
    if bool(results["failed"].any()):
        first = str(results["error"].values[results["failed"].values][0])
        raise InputError(
            source=distributions,
            key="params",
            problem=f"{int(results['failed'].sum())} members failed (first: {first})",
            fix="narrow the ranges",
        )
    labels, values = [], []
    for text, (_, when), output in zip(outputs or _default_outputs(), wanted, chosen):
        series = results[output.variable].sel(output.select)
        series = series.isel(time=-1) if when is None else series.sel(time=when, method="nearest")  # a saved time (checked above)
        y = series.isel(scenario=0) - (series.isel(scenario=1) if against is not None else 0)
        labels.append(text if when is not None else f"{text}@{float(results['time'][-1]):g}")
        values.append(np.asarray(y, dtype=float))
    names = problem["names"]
    indices = {}
    for label, y in zip(labels, values):
        with warnings.catch_warnings():
            # an output no assumption moves has no variance to share out: SALib divides by it (NaN indices, kept,
            # and said below once, not as numpy's RuntimeWarning); its FAST intervals are bootstrapped (noted below)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning, "SALib")
            warnings.filterwarnings("ignore", "FAST confidence intervals are estimated via bootstrap", UserWarning)
            found = METHODS[method].analyse(problem, design, y, second_order, seed)
        if method != "morris" and np.ptp(y) == 0:  # a share of no variance is undefined: SALib gave 0 (Sobol) or NaN (FAST)
            found = {key: np.full(np.shape(value), np.nan) for key, value in found.items() if key != "names"}
        indices[label] = found
    unmoved = [label for label, y in zip(labels, values) if np.ptp(y) == 0]
    if unmoved and method != "morris":  # Morris's effects are 0 there, which is right
        warnings.warn(
            f"{', '.join(unmoved)}: the same in every member (no assumption moves {'it' if len(unmoved) == 1 else 'them'}),"
            f" so {'its' if len(unmoved) == 1 else 'their'} indices are NaN (undefined); ask about a later year or another output",
            Note,
            stacklevel=2,
        )
    if method == "fast":
        warnings.warn(
            "FAST's confidence intervals (S1_conf, ST_conf) are SALib's bootstrap estimates, known to be unreliable for "
            "FAST (SALib issue 649): read them as indicative; Sobol's are not",
            Note,
            stacklevel=2,
        )
    dataset = _arrange(indices, labels, names, method, second_order)
    dataset = dataset.assign_coords(param_long_name=("param", [d.name for d in drawn]))
    dataset.attrs = {
        **ensemble.ensemble_attributes(prepared, command, executor, chosen, names),
        "ensemble": "sensitivity",
        "method": method,
        "samples": samples,
        "members": len(design),
        "seed": seed,
        "policy_effect_of": specs[0].name if against is not None else "",
        "policy_effect_against": specs[1].name if against is not None else "",
        "distributions_file": str(Path(distributions).resolve()),
    }
    return dataset


def _default_outputs() -> list[str]:
    from sdmodel.metrics import METRICS

    return [metric.key for metric in METRICS]


def _arrange(indices: dict, labels: list[str], names: list[str], method: str, second_order: bool) -> xr.Dataset:
    """SALib's dicts as one Dataset: an index per variable, dims (output, param)."""
    keys = METHODS[method].indices
    data = {
        key: (("output", "param"), np.array([np.asarray(indices[label][key], dtype=float) for label in labels])) for key in keys
    }
    if method == "sobol" and second_order:
        for key in ("S2", "S2_conf"):
            data[key] = (
                ("output", "param", "param2"),
                np.array([np.asarray(indices[label][key], dtype=float) for label in labels]),
            )
    coords = {"output": labels, "param": names}
    if method == "sobol" and second_order:
        coords["param2"] = names
    return xr.Dataset(data, coords=coords)


def policy_effect(indices: xr.Dataset) -> tuple[str, str] | None:
    """(policy, baseline) when the outputs are a policy's effects (``--against``), else None."""
    against = indices.attrs.get("policy_effect_against", "")
    return (indices.attrs.get("policy_effect_of", "") or "the scenario", against) if against else None


def to_json(indices: xr.Dataset, run_path: str | os.PathLike | None = None) -> dict:
    """The indices for scripts (``--json``): per output and parameter each index, and the policy effect, if any."""
    table = {
        str(output): {
            str(param): {
                key: float(indices[key].sel(output=output, param=param))
                for key in indices.data_vars
                if indices[key].dims == ("output", "param")
            }
            for param in indices["param"].values
        }
        for output in indices["output"].values
    }
    effect = policy_effect(indices)
    policy = {"of": effect[0], "against": effect[1], "output": "the policy's value minus the baseline's"} if effect else None
    method = indices.attrs.get("method", "")
    return {"run": str(run_path) if run_path else None, "method": method, "policy_effect": policy, "indices": table}


def format_table(indices: xr.Dataset) -> str:
    """Per output, the parameters ranked by total effect (Sobol, FAST) or mu* (Morris).

    With ``--against`` each output is a policy's effect, not a level: the table says so above
    and in every output's title, since "hhi@2050" alone reads as the concentration itself.
    """
    rank = "ST" if "ST" in indices else "mu_star"
    columns = ("S1", "S1_conf", "ST", "ST_conf") if rank == "ST" else ("mu_star", "mu_star_conf", "sigma")
    effect = policy_effect(indices)
    lines = []
    if effect:
        lines += [
            (
                f"Policy effect of {effect[0]} against {effect[1]}: each output is {effect[0]}'s value minus {effect[1]}'s, "
                "member by member on the same draws;"
            ),
            "the indices say which assumptions decide the size of that effect.",
            "",
        ]
    for output in indices["output"].values:
        title = f"effect of {effect[0]} vs {effect[1]} on {output}" if effect else str(output)
        lines.append(f"{title}  ({indices.attrs.get('method', '')}, ranked by {rank})")
        row = indices.sel(output=output)
        order = np.argsort(-np.nan_to_num(row[rank].values, nan=-np.inf))
        width = max(len(str(p)) for p in indices["param"].values)
        lines.append("  " + "param".ljust(width) + "".join(f"{c:>13}" for c in columns))
        for i in order:
            lines.append(
                "  "
                + str(indices["param"].values[i]).ljust(width)
                + "".join(f"{float(row[c].values[i]):>13.4g}" for c in columns)
            )
        lines.append("")
    return "\n".join(lines).rstrip()
