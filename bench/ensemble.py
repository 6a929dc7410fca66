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
- how that peak grows with the members: `sdmodel uncertainty` at 1,000, 10,000 and
  50,000 members, and the ratio of the largest to the smallest (issue 20: flat
  ensembles, target <= 1.2);
- wall time of `sdmodel compare --engine simlin` (every bundled scenario, start-up included).

Then the ratios against the targets of issue 4. Other work on the machine moves
these numbers: each timing is the best of ``--repeat`` tries, and the load
average is printed. Run::

    /tmp/venv/bin/python bench/ensemble.py            # a few minutes, then the 61,000 members of the memory figures
    /tmp/venv/bin/python bench/ensemble.py --quick    # fewer runs, one PySD run
    /tmp/venv/bin/python bench/ensemble.py --memory-only --memory-final-time 2030   # the memory figures alone, shorter runs
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
from sdmodel.options import Execution, RunSetup
from sdmodel.scenario import RunSpec

#: the test suite's distributions file: four of the bundled model's assumptions
DISTRIBUTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "distributions.toml"
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


def sdmodel_ensemble(distributions: Path, runs: int, model: Path, **execution) -> float:
    """Seconds per run of ``sdmodel.ensemble.uncertainty`` (sampling, runs, streaming to NetCDF, the Dataset);
    ``execution``: the fields of :class:`sdmodel.options.Execution` (jobs, scheduler, dask_local)."""
    results = None

    def call() -> None:
        nonlocal results
        results = ensemble.uncertainty(
            distributions,
            ["baseline"],
            samples=runs,
            seed=SEED,
            setup=RunSetup(model=model),
            execution=Execution(progress=False, **execution),
        )

    seconds = timed(call)
    assert int(results["failed"].sum()) == 0, "members failed in the benchmark"
    return seconds / runs


def peak_memory_of(command: list[str]) -> tuple[float, float, float]:
    """(seconds, peak RSS summed over the process tree, largest single-process maxrss) of a command, in bytes.

    The tree's RSS is polled (every 20 ms); the maxrss is the kernel's exact high-water
    mark of the largest process in the command's tree (``wait4``), this command's alone.
    """
    import psutil

    peak = 0
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        watched = psutil.Process(process.pid)
        start = time.perf_counter()
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    tree = [watched, *watched.children(recursive=True)]
                    peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
                except psutil.Error:
                    pass
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        done.set()
        watcher.join()
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {stderr.read().decode()[-500:]}")
    maxrss = usage.ru_maxrss * 1024  # KiB on Linux
    return seconds, float(peak), float(maxrss)


def uncertainty_command(cli: str, distributions: Path, members: int, model: Path, work: Path, final_time: float | None) -> list:
    """`sdmodel uncertainty` as a user runs it (the default executor: one process per core), saving into ``work``."""
    command = [cli, "uncertainty", str(distributions), "--samples", str(members), "--model", str(model)]
    command += ["--runs-dir", str(work / "runs")]
    return command + (["--final-time", f"{final_time:g}"] if final_time is not None else [])


def memory_scaling(cli: str, distributions: Path, model: Path, work: Path, sizes: list[int], final_time: float | None) -> dict:
    """Peak RSS of `sdmodel uncertainty` (the CLI, start-up, workers and saving included) at each ensemble size.

    Flat ensembles (issue 20) keep the peak nearly the same from the smallest size to
    the largest: memory holds a few batches, the bands and the save go chunk by chunk.
    """
    figures: dict[str, float] = {}
    horizon = f", to {final_time:g}" if final_time is not None else ""
    print(f"  peak memory of `sdmodel uncertainty` by members{horizon} (issue 20: flat ensembles)")
    for size in sizes:
        seconds, peak, maxrss = peak_memory_of(uncertainty_command(cli, distributions, size, model, work, final_time))
        figures |= {f"peak_mib_{size}": peak / 2**20, f"maxrss_mib_{size}": maxrss / 2**20, f"seconds_{size}": seconds}
        print(
            f"  {size:>7} members  {seconds:7.1f} s  peak RSS of the process tree {peak / 2**20:6.0f} MiB  "
            f"(largest single process {maxrss / 2**20:.0f} MiB)",
            flush=True,
        )
        shutil.rmtree(work / "runs", ignore_errors=True)
    ratio = figures[f"peak_mib_{sizes[-1]}"] / figures[f"peak_mib_{sizes[0]}"]
    figures["peak_ratio"] = ratio
    print(f"  peak {sizes[-1]} / {sizes[0]} members: {ratio:.2f}  target <= 1.2 {'met' if ratio <= 1.2 else 'NOT MET'}")
    return figures


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
    parser.add_argument(
        "--scaling-runs",
        default="1000,10000,50000",
        metavar="N,N,...",
        help="ensemble sizes of the memory-scaling figures [default: 1000,10000,50000]",
    )
    parser.add_argument("--memory-only", action="store_true", help="only the memory figures")
    parser.add_argument("--model", type=Path, default=None, help="the model file [default: the bundled model]")
    parser.add_argument(
        "--memory-final-time",
        type=float,
        default=None,
        metavar="YEAR",
        help="last year of the memory runs' members, to keep them cheap [default: the model's]",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.pysd_runs, args.repeat = 1000, 1, 1
    cores = os.cpu_count() or 1
    model_path = args.model or default_model()
    print(
        f"sdmodel ensemble benchmark: {model_path.name}, {args.runs} runs per ensemble, {cores} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    work = Path(tempfile.mkdtemp(prefix="sdmodel-bench-"))
    distributions = DISTRIBUTIONS
    sdmodel_cli = str(Path(sys.executable).parent / "sdmodel")
    if args.memory_only:
        figures = memory_figures(sdmodel_cli, distributions, model_path, work, args)
        if args.json:
            print(json.dumps(figures, indent=2))
        shutil.rmtree(work, ignore_errors=True)
        return
    drawn, design, outputs, runner, param_slots = ensemble_setup(model_path, distributions, args.runs)
    figures: dict[str, float] = {}

    measures = serial_and_processes(model_path, distributions, args.runs, design, runner, param_slots)
    measures |= {
        "processes_ms": lambda: sdmodel_ensemble(distributions, args.runs, model=model_path, jobs=cores),
        "dask_local_ms": lambda: sdmodel_ensemble(distributions, args.runs, model=model_path, dask_local=cores),
    }
    if cores == 2:
        del measures["processes_ms"]  # the same as processes_2_ms
    figures.update(best_in_rounds(measures, args.repeat))
    figures.setdefault("processes_ms", figures["processes_2_ms"])
    figures["dask_running_ms"] = dask_running_cluster(distributions, model_path, args, cores) * 1e3
    print(
        f"  bare pysimlin loop        {figures['bare_simlin_ms']:8.3f} ms/run  (Sim, set {len(param_slots)} constants, run, read {len(runner.slots)} series)"
    )
    rows = [("serial_ms", "sdmodel serial"), ("processes_2_ms", "sdmodel 2 processes")]
    rows += [("processes_ms", f"sdmodel {cores} processes")] if cores != 2 else []
    rows += [("dask_local_ms", f"sdmodel dask-local {cores}"), ("dask_running_ms", f"sdmodel dask, {cores} workers up")]
    for key, label in rows:
        print(f"  {label:<25} {figures[key]:8.3f} ms/run  {1e3 / figures[key]:8.0f} runs/s")

    pysd_design = design[: args.pysd_runs]
    figures["pysd_ms"] = pysd_loop(model_path, [d.setting.py_name for d in drawn], pysd_design, outputs) * 1e3
    print(f"  plain PySD loop           {figures['pysd_ms']:8.0f} ms/run  ({args.pysd_runs} runs)")

    figures.update(memory_figures(sdmodel_cli, distributions, model_path, work, args))

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


def ensemble_setup(model_path: Path, distributions: Path, runs: int):
    """What the timed ensembles share: the drawn constants, the design, the outputs kept, a member runner, its slots."""
    info = simlin_engine.model_info(model_path)
    drawn = load_distributions(distributions, info)
    design = latin_hypercube(drawn, runs, SEED)  # the very values sdmodel's ensembles run
    outputs = list(dict.fromkeys(output.variable for output in ensemble.resolve_outputs(None, info)))
    runner = simlin_engine.member_runner(model_path, RunSpec("baseline", (), {}), [d.setting for d in drawn], outputs)
    param_slots = [slots[0] for slots in runner.param_slots]
    return drawn, design, outputs, runner, param_slots


def serial_and_processes(model_path: Path, distributions: Path, runs: int, design, runner, param_slots) -> dict:
    """The measures (seconds per run) of the bare pysimlin loop, sdmodel serial and sdmodel on 2 processes."""
    sdmodel_ensemble(distributions, 20, model=model_path, jobs=1)  # warm up: model metadata and compiled model in this process
    return {
        "bare_simlin_ms": lambda: bare_simlin_loop(model_path, param_slots, list(runner.slots), design),
        "serial_ms": lambda: sdmodel_ensemble(distributions, runs, model=model_path, jobs=1),
        "processes_2_ms": lambda: sdmodel_ensemble(distributions, runs, model=model_path, jobs=2),
    }


def best_in_rounds(measures: dict, repeat: int) -> dict[str, float]:
    """Each measure's best (in ms) of ``repeat`` rounds: rounds, not one figure after another, so a burst of
    other work on the machine spoils one try of each."""
    timings: dict[str, list[float]] = {key: [] for key in measures}
    for _ in range(repeat):
        for key, measure in measures.items():
            timings[key].append(measure())
    return {key: min(values) * 1e3 for key, values in timings.items()}


def memory_figures(sdmodel_cli: str, distributions: Path, model_path: Path, work: Path, args) -> dict[str, float]:
    """Peak memory of `sdmodel uncertainty`: its growth with the members (issue 20), and at ``--memory-runs`` (issue 4)."""
    sizes = [int(size) for size in args.scaling_runs.split(",")]
    figures = memory_scaling(sdmodel_cli, distributions, model_path, work, sizes, args.memory_final_time)
    if args.memory_runs in sizes:
        peak, maxrss = figures[f"peak_mib_{args.memory_runs}"] * 2**20, figures[f"maxrss_mib_{args.memory_runs}"] * 2**20
    else:
        command = uncertainty_command(sdmodel_cli, distributions, args.memory_runs, model_path, work, args.memory_final_time)
        _, peak, maxrss = peak_memory_of(command)
        print(
            f"  {args.memory_runs:>7} members  peak RSS of the process tree {peak / 2**20:6.0f} MiB "
            f"(largest single process {maxrss / 2**20:.0f} MiB)"
        )
    return figures | {"memory_runs": args.memory_runs, "memory_peak_gib": peak / GIB, "memory_maxrss_gib": maxrss / GIB}


def dask_running_cluster(distributions: Path, model_path: Path, args, cores: int) -> float:
    """Seconds per run on a Dask cluster that is already up (the start-up of a LocalCluster left out)."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=cores, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        sdmodel_ensemble(distributions, 20, model=model_path, scheduler=cluster.scheduler_address)  # workers load the model
        address = cluster.scheduler_address
        return best_of(args.repeat, lambda: sdmodel_ensemble(distributions, args.runs, model=model_path, scheduler=address))


if __name__ == "__main__":
    main()
