"""Benchmark: `sdmodel robustness models/assumptions.toml --samples N` on the bundled model (issue 14).

A robustness study runs every bundled scenario on each of N draws, so its cost is
(scenarios x N) member runs; what sdmodel adds on top (the Latin hypercube, the
executor, streaming to NetCDF, the analysis, the save) should be small. So the figure is
a ratio, which another machine's speed does not move much:

    ratio = wall time of the command / (members x the serial cost of one member / workers)

where the serial cost of one member is measured in this process on the same draws
(the member runner of the engine the command picks by default, ``--engine fast``: the compiled
engine where it can run, else Simlin; the outputs robustness keeps), the best of ``--repeat`` tries.
On a machine shared with other work the wall time stretches while the serial cost (one
process) barely does, so the CPU time of the command's process tree is reported against the
same members' cost too (``cpu_ratio``: what the study costs beyond its runs, whatever the
load), and with ``--paired`` the same study as a plain ``sdmodel uncertainty`` of the same
scenarios and draws, run just before (what the analysis and its save add to an ensemble).
A ratio near 1 means the study costs what its runs cost; the absolute time follows from
the model's speed, which this benchmark does not set. Run::

    /work/main/.venv/bin/python bench/robustness.py                  # --samples 2000, 2 workers
    /work/main/.venv/bin/python bench/robustness.py --samples 200    # a quicker look
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


def member_cost(samples: int, repeat: int) -> tuple[float, int, str]:
    """CPU seconds per member, serially, on a few scenarios (a lever changes the run's path), the scenario count and the engine."""
    import numpy as np

    from sdmodel import ensemble
    from sdmodel.distributions import latin_hypercube, load_distributions
    from sdmodel.executors import Job, runner_for
    from sdmodel.locations import default_model
    from sdmodel.scenario import bundled_scenarios
    from sdmodel.simulate import prepare

    names = bundled_scenarios()
    prepared = prepare(names, engine="fast")  # the command's default: the compiled engine where it can run, else Simlin
    model_path, specs, info = prepared.model_path, prepared.specs, prepared.info
    drawn = load_distributions(default_model().parent / "assumptions.toml", info)
    design = latin_hypercube(drawn, samples, 0)
    outputs = ensemble.resolve_outputs(None, info)
    variables = tuple(dict.fromkeys(o.variable for o in outputs))
    best = np.inf
    for _ in range(repeat):
        elapsed, count = 0.0, 0
        for spec in specs[:: max(1, len(specs) // 4)]:  # a few scenarios: their paths, and so their costs, differ
            runner = runner_for(
                Job(prepared.engine.NAME, str(model_path), info.sha256, spec, tuple(d.setting for d in drawn), variables)
            )
            runner.run(design[0])  # compiled outside the timing, as each worker does once
            start = time.process_time()  # CPU time: on a shared machine, wall time also counts the waits for a core
            for row in design:
                runner.run(row)
            elapsed += time.process_time() - start
            count += len(design)
        best = min(best, elapsed / count)
    return float(best), len(names), prepared.engine.NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--member-samples", type=int, default=40, help="Draws per scenario timed for the serial member cost.")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--paired", action="store_true", help="Also time `sdmodel uncertainty` of the same scenarios and draws.")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    cost, scenarios, engine = member_cost(args.member_samples, args.repeat)
    members = scenarios * args.samples
    with tempfile.TemporaryDirectory(prefix="sdmodel-bench-robustness-") as work:
        env = {**os.environ, "SDMODEL_RUNS_DIR": str(Path(work) / "runs"), "PYTHONPATH": str(root)}
        assumptions = str(root / "models" / "assumptions.toml")
        common = ["--samples", str(args.samples), "--jobs", str(args.jobs), "--json"]
        figures = {}
        if args.paired:
            from sdmodel.scenario import bundled_scenarios

            wall, cpu, _ = run_timed(
                [sys.executable, "-m", "sdmodel.cli", "uncertainty", assumptions, *bundled_scenarios(), *common], env
            )
            figures |= {"uncertainty_wall_s": round(wall, 1), "uncertainty_cpu_s": round(cpu, 1)}
        command = [
            sys.executable,
            "-m",
            "sdmodel.cli",
            "robustness",
            assumptions,
            *common,
            *(f"--criterion={c}" for c in CRITERIA),
        ]
        wall, cpu, stdout = run_timed(command, env)
        summary = json.loads(stdout)
        size = sum(p.stat().st_size for p in Path(summary["run"]).iterdir())
    ideal = members * cost / args.jobs
    if args.paired:
        figures |= {
            "wall_vs_uncertainty": round(wall / figures["uncertainty_wall_s"], 3),
            "cpu_vs_uncertainty": round(cpu / figures["uncertainty_cpu_s"], 3),
        }
    print(
        json.dumps(
            {
                "samples": args.samples,
                "scenarios": scenarios,
                "members": members,
                "jobs": args.jobs,
                "engine": engine,
                "member_ms_serial": round(cost * 1000, 2),
                "ideal_s": round(ideal, 1),
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "ratio_to_runs": round(wall / ideal, 3),
                "cpu_ratio": round(cpu / (members * cost), 3),
                **figures,
                "saved_MB": round(size / 2**20, 1),
                "policies_in_json": len(summary["policies"]),
                "load_average": os.getloadavg(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


def run_timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process tree, stdout) of a command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


if __name__ == "__main__":
    main()
