"""Benchmark: issue 20's figures in one run, from the benchmarks that measure each (README's speed table comes from here).

1. One PySD run of the baseline, with xarray's own arithmetic and with sdmodel's shortcuts (``pysd_run.py``): the ratio.
2. `sdmodel compare --engine simlin`, start-up included, split into start-up, imports, run and save, against a bare
   ``import xarray, simlin`` and, with ``--before REF``, against sdmodel at commit REF (``compare.py``).
3. Peak RSS of `sdmodel uncertainty` at 1,000, 10,000 and 50,000 members (``ensemble.py``).
4. sdmodel's ensembles serial against a bare pysimlin loop, and on 2 processes against serial (``ensemble.py``).

It names the machine (processor, cores, memory) and the load average, since other work moves every figure.
Run (about ten minutes; the memory figures' 61,000 members run to ``--memory-final-time``)::

    .venv/bin/python bench/run_all.py --before 4ba74f0
    .venv/bin/python bench/run_all.py --quick            # shorter: fewer rounds and runs, memory at 1k/5k
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks, run as a script or not

import compare
import ensemble as ensemble_bench
import pysd_run

from sdmodel.locations import default_model


def machine() -> str:
    """The processor, cores and memory, as /proc says (Linux), else what Python knows."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REF", help="also time `sdmodel compare` as git commit REF has it (issue 20: 0.6x)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the compare timings [default: 7]")
    parser.add_argument("--runs", type=int, default=2000, help="members per timed ensemble [default: 2000]")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the ensemble timings; the best is kept [default: 3]")
    parser.add_argument(
        "--pysd-final-time", type=float, default=None, metavar="YEAR", help="last year of the PySD run [default: the model's]"
    )
    parser.add_argument("--scaling-runs", default="1000,10000,50000", metavar="N,N,...", help="members of the memory figures")
    parser.add_argument(
        "--memory-final-time",
        type=float,
        default=2030.0,
        metavar="YEAR",
        help="last year of the memory runs' members, to keep 61,000 members cheap [default: 2030]",
    )
    parser.add_argument(
        "--quick", action="store_true", help="defaults of 3 compare rounds, 500 members, one try, memory at 1k/5k, PySD to 2030"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    if "--quick" in sys.argv[1:]:  # shorter defaults; options given still win
        parser.set_defaults(rounds=3, runs=500, repeat=1, scaling_runs="1000,5000", pysd_final_time=2030.0)
    args = parser.parse_args()
    print(f"sdmodel benchmarks (issue 20) on {machine()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    figures: dict[str, dict] = {}

    print("\n1. one PySD run of the baseline: xarray's arithmetic, then sdmodel's shortcuts (pysd_run.py)", flush=True)
    figures["pysd_run"] = pysd_run.measure(["baseline"], args.pysd_final_time)

    print("\n2. `sdmodel compare --engine simlin` (compare.py)", flush=True)
    figures["compare"] = compare.measure(args.rounds, args.before)
    compare.report(figures["compare"], args.before)

    model_path = default_model()
    work = Path(tempfile.mkdtemp(prefix="sdmodel-bench-"))
    try:
        distributions = ensemble_bench.DISTRIBUTIONS
        print("\n3. ensemble memory (ensemble.py)", flush=True)
        cli = str(Path(sys.executable).parent / "sdmodel")
        sizes = [int(size) for size in args.scaling_runs.split(",")]
        figures["memory"] = ensemble_bench.memory_scaling(cli, distributions, model_path, work, sizes, args.memory_final_time)

        print(f"\n4. ensemble throughput, {args.runs} members, best of {args.repeat} (ensemble.py)", flush=True)
        _, design, _, runner, slots = ensemble_bench.ensemble_setup(model_path, distributions, args.runs)
        measures = ensemble_bench.serial_and_processes(model_path, distributions, args.runs, design, runner, slots)
        timings = ensemble_bench.best_in_rounds(measures, args.repeat)
        timings["serial_vs_bare"] = timings["serial_ms"] / timings["bare_simlin_ms"]
        timings["processes_2_vs_serial"] = timings["serial_ms"] / timings["processes_2_ms"]
        figures["ensemble"] = timings
        print(f"  bare pysimlin loop  {timings['bare_simlin_ms']:7.3f} ms/run")
        print(
            f"  sdmodel serial      {timings['serial_ms']:7.3f} ms/run: {timings['serial_vs_bare']:.2f}x the bare loop  target <= 1.2 "
            f"{'met' if timings['serial_vs_bare'] <= 1.2 else 'NOT MET'}"
        )
        print(
            f"  sdmodel 2 processes {timings['processes_2_ms']:7.3f} ms/run: {timings['processes_2_vs_serial']:.2f}x serial throughput  "
            f"target >= 1.7 {'met' if timings['processes_2_vs_serial'] >= 1.7 else 'NOT MET'}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
