"""Benchmark: `sdmodel compare --engine simlin` (or ``--engine compiled``), start-up included, split into start-up, imports, runs and save.

Issue 20's targets for it: at most 0.6x the wall of the code before the issue, and at most
1.5x the time a bare ``python -c "import xarray, simlin"`` takes, both on the same machine
in the same benchmark. The machine is shared, so the figures are taken in rounds (one of
each command per round, in alternating order) and each is the median of its rounds; the
ratios are of those medians. Each timed command is a fresh process, as a user runs it.

The split comes from a process that does what the ``sdmodel`` program does, with clocks
around its parts: Python's start-up (the wall seen from outside, less what the process
measured itself), the imports (``sdmodel.cli`` and what compare imports on first use),
the run (``sdmodel.metrics.compare``: loading the scenarios, the Simlin runs, the Dataset
and the measures), the save (``sdmodel.store.save_run``) and the rest (printing the table).

``--before REF`` also times sdmodel as git commit REF has it (its ``sdmodel/`` exported to a
temporary folder, on this tree's models), alternating with this tree, for the before/after
ratio. Run::

    .venv/bin/python bench/compare.py                 # this tree: split, and the ratio to the bare imports
    .venv/bin/python bench/compare.py --before 4ba74f0 --rounds 9
    .venv/bin/python bench/compare.py --engine compiled   # the compiled engine (built once, in the warm-up)

The issue's target is written for Simlin; ``--engine compiled`` measures the same ratio for the engine
that can meet it (a Simlin run of the bundled model at its step of 1/128 year costs ~60-70 ms, and 17 of
them on two threads alone exceed 1.5x the bare imports).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("startup", "imports", "run", "save", "rest")


def _child(args: list[str]) -> None:
    """In the measured process: the ``sdmodel`` program with clocks around its parts; prints them as JSON on stderr."""
    import contextlib
    import io

    started = time.perf_counter()
    from sdmodel import cli

    cli._keep_dask_out(args)  # as the program does, before anything imports xarray
    import sdmodel.engines.simlin

    if "compiled" in args:
        import sdmodel.engines.compiled
    import sdmodel.metrics
    import sdmodel.simulate
    import sdmodel.store

    imported = time.perf_counter()
    spent = {"run": 0.0, "save": 0.0}

    def clocked(module, name: str, part: str) -> None:
        function = getattr(module, name)

        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[part] += time.perf_counter() - start

        setattr(module, name, wrapper)

    clocked(sdmodel.metrics, "compare", "run")
    clocked(sdmodel.store, "save_run", "save")
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main(args)
        except SystemExit as exit:
            if exit.code:
                raise
    ended = time.perf_counter()
    figures = {"imports": imported - started, **spent, "in_process": ended - started}
    figures["rest"] = figures["in_process"] - figures["imports"] - figures["run"] - figures["save"]
    print(json.dumps(figures), file=sys.stderr)


def export_tree(ref: str, into: Path) -> Path:
    """sdmodel as commit ``ref`` has it, in ``into``, beside this tree's models (the model is not what is compared)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "sdmodel"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "models").symlink_to(ROOT / "models")
    return into


def _timed(command: list[str], tree: Path) -> tuple[float, dict | None]:
    """Wall seconds of a command run from ``tree`` (on PYTHONPATH), and the split it printed, if any."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run(
        command, env=environment, cwd=tree, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    wall = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.startswith("{")]
    return wall, (json.loads(lines[-1]) if lines else None)


def measure(rounds: int = 7, before: str | None = None, work: Path | None = None, engine: str = "simlin") -> dict[str, float]:
    """The figures: medians over ``rounds`` of the bare imports, this tree's compare (split), and REF's compare."""
    own = Path(tempfile.mkdtemp(prefix="sdmodel-bench-compare-")) if work is None else work
    environment_dirs = {"SDMODEL_RUNS_DIR": str(own / "runs"), "SDMODEL_CACHE_DIR": str(own / "cache")}
    saved_environment = {key: os.environ.get(key) for key in environment_dirs}
    os.environ.update(environment_dirs)
    try:
        trees = {"after": ROOT}
        if before:
            trees["before"] = export_tree(before, Path(tempfile.mkdtemp(prefix="sdmodel-before-", dir=own)))
        args = ["compare", "--engine", engine]
        commands = {
            "bare": ([sys.executable, "-c", "import xarray, simlin"], ROOT),
            "after": ([sys.executable, "-m", "sdmodel.cli", *args], ROOT),
            "split": ([sys.executable, str(Path(__file__).resolve()), "--child", *args], ROOT),
        }
        if before:
            commands["before"] = ([sys.executable, "-m", "sdmodel.cli", *args], trees["before"])
        for command, tree in commands.values():  # warm up: the model-metadata cache, the OS's file cache
            _timed(command, tree)
        walls: dict[str, list[float]] = {key: [] for key in commands}
        splits: list[dict] = []
        for number in range(rounds):
            order = list(commands) if number % 2 == 0 else list(reversed(commands))
            for key in order:
                wall, split = _timed(*commands[key])
                walls[key].append(wall)
                if split:
                    splits.append(split | {"startup": wall - split["in_process"]})
            shutil.rmtree(own / "runs", ignore_errors=True)
    finally:
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if work is None:
            shutil.rmtree(own, ignore_errors=True)
    figures = {f"{key}_s": statistics.median(values) for key, values in walls.items()}
    figures |= {f"{part}_s": statistics.median(split[part] for split in splits) for part in PARTS}
    figures["rounds"] = rounds
    figures["engine"] = engine
    figures["vs_bare"] = figures["after_s"] / figures["bare_s"]
    if before:
        figures["vs_before"] = figures["after_s"] / figures["before_s"]
    return figures


def report(figures: dict[str, float], before: str | None = None) -> None:
    """Print the figures and the targets of issue 20."""
    print(f"  `sdmodel compare --engine {figures['engine']}` (median of {figures['rounds']} rounds, each a fresh process)")
    print(
        f"    wall {figures['after_s']:.2f} s; split (a process with clocks, {figures['split_s']:.2f} s): start-up "
        f"{figures['startup_s']:.2f} + imports {figures['imports_s']:.2f} + run {figures['run_s']:.2f} + save {figures['save_s']:.2f} "
        f"+ rest {figures['rest_s']:.2f} s (medians each)"
    )
    print(
        f"    bare `python -c 'import xarray, simlin'` {figures['bare_s']:.2f} s; compare / bare {figures['vs_bare']:.2f}  "
        f"target <= 1.5 {'met' if figures['vs_bare'] <= 1.5 else 'NOT MET'}"
    )
    if before:
        print(
            f"    before ({before}) {figures['before_s']:.2f} s, after {figures['after_s']:.2f} s: after / before "
            f"{figures['vs_before']:.2f}  target <= 0.6 {'met' if figures['vs_before'] <= 0.6 else 'NOT MET'}"
        )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the commands; medians are reported [default: 7]")
    parser.add_argument("--before", metavar="REF", help="also time sdmodel at git commit REF, for the before/after ratio")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--engine", choices=["simlin", "compiled"], default="simlin", help="the engine compare runs on [default: simlin]"
    )
    args = parser.parse_args()
    if args.before and args.engine != "simlin":
        parser.error("--before compares with code that had only Simlin: use it with --engine simlin")
    print(f"sdmodel compare benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    figures = measure(args.rounds, args.before, engine=args.engine)
    report(figures, args.before)
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
