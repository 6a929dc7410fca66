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
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel.errors import NUMBER, InputError, Note
from sdmodel.scenario import Scenario

METHODS = ("sobol", "morris", "fast")
MORRIS_LEVELS = 4


#: SALib's FAST takes M = 4 harmonics by default and needs more than 4 M^2 samples
FAST_M = 4
FAST_MINIMUM = 4 * FAST_M**2


def split_output(text: str) -> tuple[str, float | None]:
    """``"model capability[incumbent]@2040"`` -> (``"model capability[incumbent]"``, 2040.0).

    >>> split_output("hhi@2040"), split_output("labour share")
    (('hhi', 2040.0), ('labour share', None))
    """
    name, sep, when = text.rpartition("@")
    if not sep:
        return text, None
    if not NUMBER.fullmatch(when.strip()):
        raise InputError("--output", text, f"'{when}' is not a time", "write VAR@YEAR, e.g. hhi@2040")
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
            "--output",
            text,
            f"{when:g} is not a time the run saves (every {step:g} year from {start:g} to {end:g})",
            "give a year within the run, or a later --final-time",
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
    model: str | os.PathLike | None = None,
    overrides: Mapping[str, float] | None = None,
    final_time: float | None = None,
    engine: str = "simlin",
    jobs: int | None = None,
    scheduler: str | None = None,
    dask_local: int | None = None,
    progress: bool | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """Sensitivity indices of each output (dims ``output`` and ``param``).

    ``samples`` is SALib's N: Sobol runs N(D+2) members (N(2D+2) with second order),
    Morris N(D+1), FAST N·D. With ``against`` every member also runs on that scenario
    and the output is the scenario's value minus the baseline's.
    """
    from SALib.analyze import fast as fast_analyze
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import fast_sampler
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    from sdmodel import ensemble
    from sdmodel.distributions import load_distributions, salib_problem
    from sdmodel.simulate import engine_module, prepare

    if method not in METHODS:
        raise InputError("--method", method, "unknown method", f"choose one of: {', '.join(METHODS)}")
    if samples < 2:
        raise InputError(
            "--samples", str(samples), "too few samples for an estimate", "give --samples of at least 2 (1024 is usual for Sobol)"
        )
    if method == "fast" and samples <= FAST_MINIMUM:  # SALib's own check, which came as a traceback after loading the model
        raise InputError(
            "--samples",
            str(samples),
            f"FAST needs more than 4 M^2 = {FAST_MINIMUM} samples (M = {FAST_M} harmonics)",
            f"give --samples of at least {FAST_MINIMUM + 1}",
        )
    runs = [scenario] + ([against] if against is not None else [])
    model_path, loaded, specs = prepare(runs, model=model, overrides=overrides, final_time=final_time, engine=engine)
    info = ensemble.model_info_for(engine, model_path)
    drawn = load_distributions(distributions, info)
    if len(drawn) < 2:
        raise InputError(
            distributions, "params", "sensitivity needs at least two uncertain constants", "add another [params.NAME] table"
        )
    if method == "morris" and any(d.dist != "uniform" for d in drawn):
        raise InputError(
            distributions, "params", "Morris screening samples levels of a range", 'give every parameter dist = "uniform"'
        )
    wanted = [split_output(text) for text in (outputs or _default_outputs())]
    grid = {**engine_module(engine).time_defaults(model_path), **specs[0].time}
    for text, (_, when) in zip(outputs or _default_outputs(), wanted):
        if when is not None:
            check_saved_time(text, when, grid)
    chosen = ensemble.resolve_outputs([name for name, _ in wanted], info)
    # SALib's designs: Sobol N(D+2) members, N(2D+2) with second order; Morris N(D+1); FAST N*D
    per_sample = {"sobol": 2 * len(drawn) + 2 if second_order else len(drawn) + 2, "morris": len(drawn) + 1}
    members = samples * per_sample.get(method, len(drawn))
    ensemble.check_size("--samples", members, specs, chosen, info, engine, model_path, given=str(samples))
    problem = salib_problem(drawn)
    if method == "sobol":
        design = sobol_sample.sample(problem, samples, calc_second_order=second_order, seed=seed)
    elif method == "morris":
        problem = {**problem, "bounds": [[d.args["lower"], d.args["upper"]] for d in drawn]}
        design = morris_sample.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed)
    else:
        design = fast_sampler.sample(problem, samples, seed=seed)
    varied = [d.setting for d in drawn]
    ensemble.check_levers_not_varied(distributions, drawn, specs)  # with `against`: the policy's own levers
    results, executor = ensemble.run_design(
        model_path,
        engine,
        specs,
        varied,
        design,
        chosen,
        {"scenario": len(specs), "run": len(design)},
        jobs=jobs,
        scheduler=scheduler,
        dask_local=dask_local,
        store=None,
        progress=progress,
        label=f"sensitivity ({method})",
    )
    if bool(results["failed"].any()):
        first = str(results["error"].values[results["failed"].values][0])
        raise InputError(
            distributions, "params", f"{int(results['failed'].sum())} members failed (first: {first})", "narrow the ranges"
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
            if method == "sobol":
                found = sobol_analyze.analyze(problem, y, calc_second_order=second_order, seed=seed)
            elif method == "morris":
                found = morris_analyze.analyze(problem, design, y, num_levels=MORRIS_LEVELS, seed=seed)
            else:
                found = fast_analyze.analyze(problem, y, seed=seed)
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
        **ensemble.ensemble_attributes(engine, model_path, info, loaded, command, executor, chosen, names),
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
    keys = {
        "sobol": ("S1", "S1_conf", "ST", "ST_conf"),
        "fast": ("S1", "S1_conf", "ST", "ST_conf"),
        "morris": ("mu", "mu_star", "sigma", "mu_star_conf"),
    }[method]
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
