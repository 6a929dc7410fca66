"""Policy search: levers set by a multi-objective optimiser, each candidate judged across the assumptions.

The bundled scenarios are a handful of hand-made points in the space of levers. A search
asks the reverse question: which settings of the levers do best on our objectives, where
each candidate is judged not on one future but on the same draws of the uncertain
assumptions (common random numbers, so candidates differ by their levers, not by luck)?
With several objectives there is no single best; NSGA-II (Deb et al. 2002, from pymoo)
returns the Pareto set, the candidates no other beats on every objective, and each is
written as a scenario TOML file that ``sdmodel run`` runs.

An objective is an outcome's mean over the draws (``--maximize``/``--minimize``, in the
language of :mod:`sdmodel.criteria`) or the share of draws meeting a criterion
(``--criterion``, maximised). Candidates run through :func:`sdmodel.ensemble.run_design`,
so through the same executors (processes, Dask) as every ensemble, a generation at a time.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr

from sdmodel import atomic
from sdmodel import criteria as crit
from sdmodel.errors import InputError
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import Scenario

PENALTY = 1e12  # a candidate whose runs all failed: worse than anything that ran (pymoo minimises)


def search_policy(
    levers: str | os.PathLike,
    distributions: str | os.PathLike,
    *,
    criteria: Sequence[str] = (),
    maximize: Sequence[str] = (),
    minimize: Sequence[str] = (),
    base: str | os.PathLike | Scenario = "baseline",
    samples: int = 20,
    population: int = 20,
    generations: int = 10,
    seed: int = 0,
    setup: RunSetup = RunSetup(),
    execution: Execution = Execution(),
    command: str | None = None,
) -> xr.Dataset:
    """NSGA-II over the levers in ``levers`` (uniform ranges), each candidate run on ``samples`` draws of ``distributions``.

    Returns every candidate evaluated (dims ``candidate``, ``lever``, ``objective``) with
    ``pareto`` marking the final Pareto set. ``base`` is the scenario the levers are set
    in (and the one ``baseline`` in an expression refers to). ``setup`` gives the model, the
    horizon and the engine (no ``overrides``: set them in ``base``); ``execution`` how the
    candidates run (no ``store``: a search keeps only its candidates' objectives).
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem
    from pymoo.problems.static import StaticProblem
    from pymoo.termination import get_termination

    from sdmodel import ensemble
    from sdmodel.distributions import latin_hypercube, load_distributions, param_name
    from sdmodel.robustness import Reader, check_names, check_years

    if population < 4 or generations < 1 or samples < 1:
        raise InputError(
            source="--population",
            key=str(population),
            problem="too small a search",
            fix="give --population of at least 4, --generations and --samples of at least 1",
        )
    parsed = [crit.parse(text, test=True) for text in criteria]
    outcomes = [crit.outcome(t, 1, "--maximize") for t in maximize] + [crit.outcome(t, -1, "--minimize") for t in minimize]
    if not parsed and not outcomes:
        raise InputError(
            source="--maximize",
            key=None,
            problem="no objective given",
            fix='give --maximize, --minimize or --criterion, e.g. --maximize "labour_share@2040"',
        )
    if len(parsed) + len(outcomes) < 2:
        raise InputError(
            source="--maximize",
            key=None,
            problem="one objective: NSGA-II searches for trade-offs between several",
            fix="give at least two of --maximize, --minimize, --criterion",
        )
    given: dict[str, str] = {}  # an objective's expression -> the option that gave it
    options = [("--criterion", e) for e in parsed] + [
        ("--maximize" if o.sense > 0 else "--minimize", o.expression) for o in outcomes
    ]
    for option, expression in options:
        if expression.canonical in given:  # twice, or both ways: a front of every candidate, or weighted twice
            raise InputError(
                source=option,
                key=expression.text,
                problem=f"is already an objective ({given[expression.canonical]} {expression.canonical})",
                fix="give each objective once",
            )
        given[expression.canonical] = option
    if setup.overrides:  # a constant set in every candidate is a lever not searched: give it in the base scenario
        raise InputError(
            source="overrides",
            key=None,
            problem="a search sets no constant for every candidate",
            fix="set it in the base scenario",
        )
    if execution.store is not None:
        raise InputError(
            source="store", key=str(execution.store), problem="a search keeps no members", fix="leave Execution.store out"
        )
    prepared = setup.prepare([base])
    specs, info = prepared.specs, prepared.info
    check_names(parsed, outcomes, info)
    check_years(parsed, outcomes, prepared.grid)
    lever_ranges = _levers(levers, info)
    drawn = load_distributions(distributions, info)
    _check_apart(levers, lever_ranges, distributions, drawn)
    design = latin_hypercube(drawn, samples, seed)
    varied = [d.setting for d in drawn]
    named = [r.output for e in (*parsed, *(o.expression for o in outcomes)) for r in e.references()]
    kept = ensemble.resolve_outputs(list(dict.fromkeys(named)), info)
    # the whole search, before its first run: the baseline and NSGA-II's population in every generation, each on
    # every draw (each generation's own check comes too late for a search of a million generations)
    searched = f"{samples} draws x (1 + {population} candidates x {generations} generations)"
    ensemble.check_size("--generations", samples * (1 + population * generations), prepared, kept, searched, [specs[0]])
    outputs_json = json.dumps([{**vars(o), "select": dict(o.select)} for o in kept])

    def run(candidate_specs) -> Reader:
        results, _ = ensemble.run_design(
            prepared,
            candidate_specs,
            varied,
            design,
            kept,
            {"scenario": len(candidate_specs), "run": samples},
            execution=execution,
            label="search-policy",
        )
        results.attrs["ensemble_outputs"] = outputs_json
        return Reader(results)

    baseline = run([specs[0]])
    objectives = [f"mean {o.label}" for o in outcomes] + [f"share meeting {c.text}" for c in parsed]
    senses = np.array([o.sense for o in outcomes] + [1] * len(parsed), dtype=float)

    def evaluate(values: np.ndarray) -> np.ndarray:
        candidates = [
            replace(specs[0], name=f"candidate-{i}", settings=(*specs[0].settings, *_settings(lever_ranges, row)))
            for i, row in enumerate(values)
        ]
        reader = run(candidates)
        failed = reader.results["failed"].values  # candidate x run
        scores = np.empty((len(values), len(objectives)))
        for i in range(len(values)):

            def lookup(ref, i=i):
                return baseline.array(ref.output, ref.year)[0] if ref.of_baseline else reader.array(ref.output, ref.year)[i]

            ok = ~failed[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                row = [
                    float(np.nanmean(np.broadcast_to(o.expression.evaluate(lookup), ok.shape)[ok])) if ok.any() else math.nan
                    for o in outcomes
                ]
                row += [
                    float(np.mean(np.broadcast_to(c.evaluate(lookup), ok.shape)[ok])) if ok.any() else math.nan for c in parsed
                ]
            scores[i] = row
        return scores

    problem = Problem(
        n_var=len(lever_ranges),
        n_obj=len(objectives),
        xl=np.array([r[1] for r in lever_ranges]),
        xu=np.array([r[2] for r in lever_ranges]),
    )
    algorithm = NSGA2(pop_size=population)
    algorithm.setup(problem, termination=get_termination("n_gen", generations), seed=seed, verbose=False)
    tried, scored, generation = [], [], []
    while algorithm.has_next():
        offspring = algorithm.ask()
        values = offspring.get("X")
        scores = evaluate(values)
        minimised = np.where(np.isfinite(scores), -scores * senses, PENALTY)
        Evaluator().eval(StaticProblem(problem, F=minimised), offspring)
        algorithm.tell(infills=offspring)
        tried.append(values)
        scored.append(scores)
        generation += [algorithm.n_gen - 1] * len(values)
    result = algorithm.result()
    tried_all, scored_all = np.concatenate(tried), np.concatenate(scored)
    final = np.atleast_2d(result.X)
    pareto = np.array([any(np.allclose(row, x) for x in final) for row in tried_all])
    names = [param_name(setting) for *_, setting in lever_ranges]
    dataset = xr.Dataset(
        {
            "lever_value": (("candidate", "lever"), tried_all, {"long_name": "The lever's value in the candidate"}),
            "objective_value": (
                ("candidate", "objective"),
                scored_all,
                {"long_name": "The objective over the draws (a mean, or a share of draws)"},
            ),
            "generation": (
                ("candidate",),
                np.asarray(generation, dtype=np.int32),
                {"long_name": "The generation that proposed the candidate"},
            ),
            "pareto": (
                ("candidate",),
                pareto,
                {"long_name": "In the final Pareto set (no candidate is better on every objective)"},
            ),
        },
        coords={
            "candidate": np.arange(len(tried_all)),
            "lever": names,
            "lever_long_name": ("lever", [r[0] for r in lever_ranges]),
            "lever_lower": ("lever", [r[1] for r in lever_ranges]),
            "lever_upper": ("lever", [r[2] for r in lever_ranges]),
            "objective": objectives,
            "objective_sense": ("objective", senses.astype(int), {"long_name": "+1: more is better; -1: less is better"}),
        },
    )
    dataset.attrs = ensemble.ensemble_attributes(prepared, command, "search-policy", kept, [param_name(s) for s in varied]) | {
        "ensemble": "search",
        "search_method": "NSGA-II (Deb et al. 2002) from pymoo " + _version("pymoo"),
        "search_base": prepared.scenarios[0].name,
        "search_base_params": json.dumps(prepared.scenarios[0].to_dict()["params"]),
        "samples": samples,
        "seed": seed,
        "population": population,
        "generations": generations,
        "levers_toml": Path(levers).read_text(encoding="utf-8"),
        "distributions_toml": Path(distributions).read_text(encoding="utf-8"),
    }
    return dataset


def _levers(path: str | os.PathLike, info) -> list[tuple]:
    """(name, lower, upper) per lever: the file has the distributions format, each lever ``dist = "uniform"`` over its range."""
    from sdmodel.distributions import load_distributions

    found = []
    for distribution in load_distributions(path, info):
        if distribution.dist != "uniform":
            raise InputError(
                source=path,
                key=f'params."{distribution.name}"',
                problem="a lever is searched over a range",
                fix='give dist = "uniform" with lower and upper',
            )
        found.append((distribution.name, distribution.args["lower"], distribution.args["upper"], distribution.setting))
    return found


def _settings(lever_ranges, row: np.ndarray):
    return [replace(setting, value=float(value)) for (_, _, _, setting), value in zip(lever_ranges, row)]


def _check_apart(levers, lever_ranges, distributions, drawn) -> None:
    """A constant both searched and drawn would be overridden by the draws: the search would find nothing."""
    searched = {setting.py_name for *_, setting in lever_ranges}
    for distribution in drawn:
        if distribution.setting.py_name in searched:
            raise InputError(
                source=distributions,
                key=f'params."{distribution.name}"',
                problem=f"is also a lever in {levers}",
                fix="draw assumptions, and search levers: a constant cannot be both",
            )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def pareto_scenarios(found: xr.Dataset) -> list[Scenario]:
    """The Pareto set as scenarios: the base scenario's settings with the candidate's levers, described by its objectives."""
    base = json.loads(found.attrs.get("search_base_params", "{}"))
    chosen = np.flatnonzero(found["pareto"].values)
    order = chosen[np.argsort(-found["objective_value"].values[chosen, 0] * found["objective_sense"].values[0], kind="stable")]
    scenarios = []
    for number, index in enumerate(order, 1):
        levers = {
            str(name): float(f"{value:.6g}")
            for name, value in zip(found["lever_long_name"].values, found["lever_value"].values[index])
        }
        scores = ", ".join(
            f"{name} {value:.4g}" for name, value in zip(found["objective"].values, found["objective_value"].values[index])
        )
        scenarios.append(
            Scenario(
                name=f"pareto-{number}",
                description=f"Pareto-optimal levers from sdmodel search-policy over "
                f"{found.attrs['samples']} draws of the assumptions: {scores}",
                params={**base, **levers},
            )
        )
    return scenarios


def write_scenarios(scenarios: Sequence[Scenario], folder: str | os.PathLike) -> list[Path]:
    """Write each scenario as ``<name>.toml`` in ``folder`` (made if missing), each file written whole or not at all."""
    from sdmodel.importing import scenario_toml

    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for scenario in scenarios:
            path = target / f"{scenario.name}.toml"
            atomic.write_text(path, f"# written by sdmodel search-policy\n{scenario_toml(scenario)}")
            written.append(path)
    except OSError as error:
        raise InputError(
            source="--out",
            key=str(folder),
            problem=f"cannot write the scenarios ({error.strerror})",
            fix="choose a writable folder",
        ) from None
    return written


def to_json(found: xr.Dataset, run_path: str | None = None, files: Sequence[Path] = ()) -> dict:
    """``{"run", "method", "objectives", "levers", "evaluated", "pareto": [{"levers": {...}, "objectives": {...}, "file"}]}``."""
    scenarios = pareto_scenarios(found)
    files = list(files) or [None] * len(scenarios)
    senses = found["objective_sense"].values
    return {
        "run": run_path,
        "method": found.attrs.get("search_method"),
        "objectives": [
            {"label": str(o), "better": "higher" if s > 0 else "lower"} for o, s in zip(found["objective"].values, senses)
        ],
        "levers": {
            str(n): [float(lo), float(hi)]
            for n, lo, hi in zip(found["lever_long_name"].values, found["lever_lower"].values, found["lever_upper"].values)
        },
        "evaluated": int(found.sizes["candidate"]),
        "samples": int(found.attrs.get("samples", 0)),
        "pareto": [
            {
                "name": s.name,
                "file": str(f) if f else None,
                "levers": {k: v for k, v in s.params.items() if k in set(map(str, found["lever_long_name"].values))},
                "objectives": dict(zip(map(str, found["objective"].values), _objectives_of(found, s))),
            }
            for s, f in zip(scenarios, files)
        ],
    }


def _objectives_of(found: xr.Dataset, scenario: Scenario) -> list[float]:
    names = list(map(str, found["lever_long_name"].values))
    target = np.array([scenario.params[n] for n in names], dtype=float)
    index = int(np.argmin(np.abs(found["lever_value"].values - target).sum(axis=1)))
    return [float(v) for v in found["objective_value"].values[index]]


def format_table(summary: Mapping) -> str:
    """The Pareto set: a row per scenario, a column per lever and objective."""
    from sdmodel.ensemble import text_table

    levers, objectives = list(summary["levers"]), [o["label"] for o in summary["objectives"]]
    rows = [["scenario", *levers, *objectives]]
    for entry in summary["pareto"]:
        rows.append(
            [
                entry["name"],
                *(f"{entry['levers'][k]:.4g}" for k in levers),
                *(f"{entry['objectives'][k]:.4g}" for k in objectives),
            ]
        )
    note = (
        f"{len(summary['pareto'])} Pareto-optimal of {summary['evaluated']} candidates, each run on the same {summary['samples']} draws; "
        f"{summary['method']}. " + "; ".join(f"{o['label']}: {o['better']} is better" for o in summary["objectives"])
    )
    return text_table(rows) + "\n" + note
