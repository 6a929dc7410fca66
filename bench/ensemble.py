"""Benchmark: sdmodel's ensembles on the full bundled model, against a plain PySD loop and a bare pysimlin loop.

Measured in this one process (the memory and `compare` figures run the CLI as a
subprocess, since they include its start-up and its worker processes):

- PySD ms/run: a plain loop of ``model.run(params=..., return_columns=...)`` on
  the model PySD translated (no sdmodel code in the loop);
- bare pysimlin ms/run: a loop that only makes a ``Sim``, sets the sampled
  constants, runs it and reads the same output series as sdmodel keeps;
- sdmodel's Monte Carlo throughput with each executor: serial, local processes,
  Dask (a LocalCluster started by the command, and an already running cluster);
- peak memory (RSS summed over the process tree) of a 10,000-run `sdmodel uncertainty`;
- wall time of `sdmodel compare --engine simlin` (every bundled scenario, start-up included).

Then the ratios against the targets of issue 4. Other work on the machine moves
these numbers: each timing is the best of ``--repeat`` tries, and the load
average is printed. Run::

    /tmp/venv/bin/python bench/ensemble.py            # about two minutes, most of it PySD
    /tmp/venv/bin/python bench/ensemble.py --quick    # fewer runs, one PySD run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from sdmodel import ensemble
from sdmodel.distributions import latin_hypercube, load_distributions
from sdmodel.engines import simlin as simlin_engine
from sdmodel.locations import default_model
from sdmodel.scenario import RunSpec

# constants that every version of the bundled model has
DISTRIBUTIONS = """
[params."data strike fraction"]
dist = "uniform"
lower = 0.0
upper = 0.6

[params."collective bargaining weight"]
dist = "triangular"
lower = 0.0
mode = 0.05
upper = 0.2

[params."share sensitivity"]
dist = "truncnormal"
mean = 5
sd = 2
lower = 1
upper = 10

[params."hardware life"]
dist = "uniform"
lower = 3
upper = 7
"""
SEED = 1
GIB = 1024**3


def best_of(repeat: int, measure) -> float:
    """The shortest of ``repeat`` timings: the one least disturbed by other work on the machine."""
    return min(measure() for _ in range(repeat))


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def pysd_loop(model_path: Path, names: list[str], design: np.ndarray, outputs: list[str]) -> float:
    """Seconds per run of a plain PySD loop: ``model.run`` with the sampled params, returning the outputs."""
    import contextlib
    import io
    import warnings

    import pysd

    from sdmodel.engines import pysd as pysd_engine

    model = pysd.load(str(pysd_engine.translate(model_path)))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in design:
            model.run(params=dict(zip(names, map(float, row))), return_columns=outputs)
    return (time.perf_counter() - start) / len(design)


def bare_simlin_loop(model_path: Path, param_slots: list[str], output_slots: list[str], design: np.ndarray) -> float:
    """Seconds per run of pysimlin alone: make a Sim, set the constants, run, read the same series."""
    import simlin

    model = simlin.load(model_path)
    model.simulate().run_to_end()  # compile outside the timing, as sdmodel does once per process

    def loop() -> None:
        for row in design:
            sim = model.simulate()
            for slot, value in zip(param_slots, row):
                sim.set_value(slot, float(value))
            sim.run_to_end()
            for slot in output_slots:
                sim.get_series(slot)

    return timed(loop) / len(design)


def sdmodel_ensemble(distributions: Path, runs: int, **executor) -> float:
    """Seconds per run of ``sdmodel.ensemble.uncertainty`` (sampling, runs, streaming to NetCDF, the Dataset)."""
    results = None

    def call() -> None:
        nonlocal results
        results = ensemble.uncertainty(distributions, ["baseline"], samples=runs, seed=SEED, progress=False, **executor)

    seconds = timed(call)
    assert int(results["failed"].sum()) == 0, "members failed in the benchmark"
    return seconds / runs


def peak_memory_of(command: list[str]) -> tuple[float, float, float]:
    """(seconds, peak RSS summed over the process tree, largest single-process maxrss) of a command, in bytes."""
    import resource

    import psutil

    peak = 0
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.perf_counter()
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode()[-500:]}")
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    return seconds, float(peak), float(maxrss)


def wall_of(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4000, help="members per timed ensemble [default: 4000]")
    parser.add_argument("--pysd-runs", type=int, default=2, help="runs of the plain PySD loop (~17 s each) [default: 2]")
    parser.add_argument("--memory-runs", type=int, default=10_000, help="members of the memory run [default: 10000]")
    parser.add_argument("--repeat", type=int, default=3, help="timings per figure; the best is kept [default: 3]")
    parser.add_argument("--quick", action="store_true", help="1000 runs, one PySD run, one try each")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.pysd_runs, args.repeat = 1000, 1, 1
    cores = os.cpu_count() or 1
    print(f"sdmodel ensemble benchmark: {default_model().name}, {args.runs} runs per ensemble, {cores} cores, load average {os.getloadavg()[0]:.2f}")

    work = Path(tempfile.mkdtemp(prefix="sdmodel-bench-"))
    distributions = work / "uncertain.toml"
    distributions.write_text(DISTRIBUTIONS)
    model_path = default_model()
    info = simlin_engine.model_info(model_path)
    drawn = load_distributions(distributions, info)
    design = latin_hypercube(drawn, args.runs, SEED)  # the very values sdmodel's ensembles run
    outputs = list(dict.fromkeys(output.variable for output in ensemble.resolve_outputs(None, info)))
    runner = simlin_engine.member_runner(model_path, RunSpec("baseline", (), {}), [d.setting for d in drawn], outputs)
    param_slots = [slots[0] for slots in runner.param_slots]
    figures: dict[str, float] = {}

    sdmodel_ensemble(distributions, 20, jobs=1)  # warm up: model metadata and compiled model in this process
    measures = {
        "bare_simlin_ms": lambda: bare_simlin_loop(model_path, param_slots, list(runner.slots), design),
        "serial_ms": lambda: sdmodel_ensemble(distributions, args.runs, jobs=1),
        "processes_2_ms": lambda: sdmodel_ensemble(distributions, args.runs, jobs=2),
        "processes_ms": lambda: sdmodel_ensemble(distributions, args.runs, jobs=cores),
        "dask_local_ms": lambda: sdmodel_ensemble(distributions, args.runs, dask_local=cores),
    }
    if cores == 2:
        del measures["processes_ms"]  # the same as processes_2_ms
    timings: dict[str, list[float]] = {key: [] for key in measures}
    for _ in range(args.repeat):  # rounds, not one figure after another, so a burst of other work spoils one try of each
        for key, measure in measures.items():
            timings[key].append(measure())
    figures.update({key: min(values) * 1e3 for key, values in timings.items()})
    figures.setdefault("processes_ms", figures["processes_2_ms"])
    figures["dask_running_ms"] = dask_running_cluster(distributions, args, cores) * 1e3
    print(f"  bare pysimlin loop        {figures['bare_simlin_ms']:8.3f} ms/run  (Sim, set {len(param_slots)} constants, run, read {len(runner.slots)} series)")
    rows = [("serial_ms", "sdmodel serial"), ("processes_2_ms", "sdmodel 2 processes")]
    rows += [("processes_ms", f"sdmodel {cores} processes")] if cores != 2 else []
    rows += [("dask_local_ms", f"sdmodel dask-local {cores}"), ("dask_running_ms", f"sdmodel dask, {cores} workers up")]
    for key, label in rows:
        print(f"  {label:<25} {figures[key]:8.3f} ms/run  {1e3 / figures[key]:8.0f} runs/s")

    pysd_design = design[: args.pysd_runs]
    figures["pysd_ms"] = pysd_loop(model_path, [d.setting.py_name for d in drawn], pysd_design, outputs) * 1e3
    print(f"  plain PySD loop           {figures['pysd_ms']:8.0f} ms/run  ({args.pysd_runs} runs)")

    sdmodel_cli = str(Path(sys.executable).parent / "sdmodel")
    memory_command = [sdmodel_cli, "uncertainty", str(distributions), "--samples", str(args.memory_runs), "--runs-dir", str(work / "runs")]
    seconds, peak, maxrss = peak_memory_of(memory_command)
    figures.update(memory_runs=args.memory_runs, memory_seconds=seconds, memory_peak_gib=peak / GIB, memory_maxrss_gib=maxrss / GIB)
    print(f"  {args.memory_runs}-run `sdmodel uncertainty`: {seconds:.1f} s, peak RSS of the process tree {peak / 2**20:.0f} MiB "
          f"(largest single process {maxrss / 2**20:.0f} MiB)")

    compare = [sdmodel_cli, "compare", "--engine", "simlin", "--runs-dir", str(work / "runs")]
    first = wall_of(compare)  # may write the model-metadata cache
    figures["compare_first_s"] = first
    figures["compare_s"] = best_of(args.repeat, lambda: wall_of(compare))
    print(f"  `sdmodel compare --engine simlin`: {figures['compare_s']:.2f} s wall (first call {first:.2f} s)")
    print(f"  load average at the end {os.getloadavg()[0]:.2f}")

    best = min(figures[k] for k in ("serial_ms", "processes_ms", "dask_local_ms", "dask_running_ms"))
    targets = [
        ("ensemble throughput vs plain PySD loop", figures["pysd_ms"] / best, ">=", 5000),
        ("serial per-run vs bare pysimlin loop", figures["serial_ms"] / figures["bare_simlin_ms"], "<=", 1.2),
        ("2 processes vs serial throughput", figures["serial_ms"] / figures["processes_2_ms"], ">=", 1.7),
        (f"{args.memory_runs}-run ensemble peak memory [GiB]", figures["memory_peak_gib"], "<=", 1.0),
        ("compare --engine simlin wall [s]", figures["compare_s"], "<=", 1.0),
    ]
    print("\ntargets (issue 4)")
    for label, value, sign, target in targets:
        met = value >= target if sign == ">=" else value <= target
        print(f"  {label:<42} {value:10.3g}  target {sign} {target:<6g} {'met' if met else 'NOT MET'}")
    if args.json:
        print(json.dumps(figures, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def dask_running_cluster(distributions: Path, args, cores: int) -> float:
    """Seconds per run on a Dask cluster that is already up (the start-up of a LocalCluster left out)."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=cores, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        sdmodel_ensemble(distributions, 20, scheduler=cluster.scheduler_address)  # workers load the model
        return best_of(args.repeat, lambda: sdmodel_ensemble(distributions, args.runs, scheduler=cluster.scheduler_address))


if __name__ == "__main__":
    main()
