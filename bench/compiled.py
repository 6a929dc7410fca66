"""Benchmark: the compiled engine (the model in C, sdmodel/engines/compiled.py) against Simlin, per ensemble member.

Issue 14 asks for `sdmodel robustness models/assumptions.toml --samples 2000` in under 2 minutes on
2 cores: 2000 draws x 15 scenarios = 30,000 runs, about 8 ms each. Simlin's member runner costs
~70 ms per run of the bundled model at its step of 1/128 year. This prints, measured in this one
process on the same draws of models/assumptions.toml and the outputs robustness keeps:

- the serial CPU cost of one member on each engine (Simlin's and the compiled engine's member runners,
  alternating in ``--rounds`` rounds, a few scenarios each; the best round of each) and their ratio
  ``compiled / simlin`` (a ratio: another machine's speed, or other work on this one, moves it less);
- the largest difference between the two engines' outputs on those members, relative to each series'
  largest magnitude, and pointwise;
- the time to compile the model (``--cold``: into a fresh cache folder, npm's install of SDEverywhere
  included) or to load it from the cache;
- with ``--study N`` (default 2000; 0 skips it): the wall and CPU time of the robustness study itself on
  the compiled engine (sdmodel.robustness.robustness with ``RunSetup(engine="compiled")`` on ``--jobs``
  processes, in a subprocess, saving nothing), against its members x the serial cost / jobs, and
  against issue 14's 120 s.

Run::

    /work/main/.venv/bin/python bench/compiled.py                  # the 2000-draw study too: ~2 minutes on 2 cores
    /work/main/.venv/bin/python bench/compiled.py --study 0        # the per-member figures alone, in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRITERIA = ["labour_share@2040 - baseline >= 0.01", "hhi@2040 < 0.4"]
TARGET_S = 120.0  # issue 14: the 2000-draw study on 2 cores


def member_costs(samples: int, rounds: int) -> dict:
    """Serial CPU seconds per member on each engine, in alternating rounds, and how far apart their outputs are."""
    import numpy as np

    from sdmodel import ensemble
    from sdmodel.distributions import latin_hypercube, load_distributions
    from sdmodel.executors import Job, runner_for
    from sdmodel.locations import default_model
    from sdmodel.scenario import bundled_scenarios
    from sdmodel.simulate import prepare

    names = bundled_scenarios()
    prepared = prepare(names, engine="simlin")
    model_path, specs, info = prepared.model_path, prepared.specs, prepared.info
    drawn = load_distributions(default_model().parent / "assumptions.toml", info)
    design = latin_hypercube(drawn, samples, 0)
    variables = tuple(dict.fromkeys(o.variable for o in ensemble.resolve_outputs(None, info)))
    chosen = specs[:: max(1, len(specs) // 4)]  # a few scenarios: their paths, and so their costs, differ
    params = tuple(d.setting for d in drawn)
    runners = {
        engine: [runner_for(Job(engine, str(model_path), info.sha256, spec, params, variables)) for spec in chosen]
        for engine in ("simlin", "compiled")
    }
    worst_scaled = worst_point = 0.0
    for fast, compiled in zip(runners["simlin"], runners["compiled"]):
        for row in design[:5]:
            a, b = fast.run(row), compiled.run(row)
            difference = np.abs(a - b)
            scale = np.abs(a).max(axis=1, keepdims=True)
            worst_scaled = max(worst_scaled, float((difference / np.where(scale > 0, scale, 1)).max()))
            worst_point = max(worst_point, float((difference / np.maximum(np.abs(a), 1e-300)).max()))
    best = {"simlin": np.inf, "compiled": np.inf}
    for _ in range(rounds):
        for engine in ("simlin", "compiled"):
            start = time.process_time()  # CPU time: on a shared machine, wall time also counts the waits for a core
            for runner in runners[engine]:
                for row in design:
                    runner.run(row)
            best[engine] = min(best[engine], (time.process_time() - start) / (len(design) * len(chosen)))
    return {
        "scenarios": len(names),
        "members_timed": samples * len(chosen),
        "simlin_ms": round(best["simlin"] * 1000, 2),
        "compiled_ms": round(best["compiled"] * 1000, 3),
        "ratio_compiled_to_simlin": round(best["compiled"] / best["simlin"], 4),
        "max_difference_of_series_scale": worst_scaled,
        "max_difference_pointwise": worst_point,
        "outputs": list(variables),
    }


STUDY = """
import json, sys, time
from sdmodel.options import Execution, RunSetup
from sdmodel.robustness import robustness
samples, jobs, criteria = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
start = time.perf_counter()
results = robustness("{assumptions}", criteria=criteria, samples=samples, setup=RunSetup(engine="compiled"),
                     execution=Execution(jobs=jobs, progress=False))
failed = int(results["failed"].values.any(axis=0).sum()) if "failed" in results.coords else 0
print(json.dumps({{"inner_s": time.perf_counter() - start, "runs": int(results.sizes["run"]),
                  "scenarios": int(results.sizes["scenario"]), "failed": failed}}))
"""


def study(samples: int, jobs: int, root: Path) -> dict:
    """Wall and CPU time of the robustness study on the compiled engine, in a fresh process."""
    import resource

    assumptions = root / "models" / "assumptions.toml"
    with tempfile.TemporaryDirectory(prefix="sdmodel-bench-compiled-") as work:
        env = {**os.environ, "SDMODEL_RUNS_DIR": str(Path(work) / "runs"), "PYTHONPATH": str(root)}
        command = [sys.executable, "-c", STUDY.format(assumptions=assumptions), str(samples), str(jobs), json.dumps(CRITERIA)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), **inner}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30, help="Draws per scenario timed for the per-member costs.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--study", type=int, default=2000, help="Draws of the robustness study timed end to end (0: none).")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="Compile into a fresh cache folder (npm's install included).")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    with tempfile.TemporaryDirectory(prefix="sdmodel-bench-cache-") as cache:
        if args.cold:
            os.environ["SDMODEL_CACHE_DIR"] = cache  # the study's subprocess inherits it
        from sdmodel.engines import compiled
        from sdmodel.locations import default_model

        start = time.perf_counter()
        compiled.load(default_model())
        figures = {"compile_s" if args.cold else "load_s": round(time.perf_counter() - start, 2)}
        figures |= member_costs(args.samples, args.rounds)
        if args.study:
            members = args.study * figures["scenarios"]
            timed = study(args.study, args.jobs, root)
            ideal = members * figures["compiled_ms"] / 1000 / args.jobs
            figures |= {
                "study_samples": args.study,
                "study_members": members,
                "study_jobs": args.jobs,
                **{f"study_{key}": value for key, value in timed.items()},
                "study_ideal_s": round(ideal, 1),
                "study_ratio_to_runs": round(timed["wall_s"] / ideal, 3),
                "study_vs_target_120s": round(timed["wall_s"] / TARGET_S, 3),
                "simlin_study_estimate_s": round(members * figures["simlin_ms"] / 1000 / args.jobs, 1),
            }
    figures |= {"load_average": os.getloadavg(), "cpus": os.cpu_count()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
