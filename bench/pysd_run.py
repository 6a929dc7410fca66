"""Benchmark: one PySD run of the bundled model, with and without sdmodel's fast xarray arithmetic.

Runs each named scenario (default: baseline) through sdmodel's PySD engine twice in this
one process, alternating which goes first: once with ``fast_arithmetic`` switched off (xarray's
own operations, the engine before issue 20) and once as shipped. Prints each pair's seconds,
their ratio, and whether the two results are identical to the bit (they must be). Run::

    .venv/bin/python bench/pysd_run.py                       # baseline, about a minute
    .venv/bin/python bench/pysd_run.py data-strike windfall-tax --final-time 2030
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np
import xarray as xr

from sdmodel import simulate
from sdmodel.engines import pysd as pysd_engine


def timed_run(model_path, spec, fast: bool) -> tuple[float, xr.Dataset]:
    shipped = pysd_engine.fast_arithmetic
    if not fast:
        pysd_engine.fast_arithmetic = contextlib.nullcontext
    try:
        start = time.perf_counter()
        result = pysd_engine.run(model_path, spec)
        return time.perf_counter() - start, result
    finally:
        pysd_engine.fast_arithmetic = shipped


def identical(a: xr.Dataset, b: xr.Dataset) -> bool:
    return a.identical(b) and all(np.array_equal(a[v].values, b[v].values, equal_nan=True) for v in a.data_vars)


def measure(scenarios: list[str], final_time: float | None = None) -> dict[str, float]:
    """Each scenario's paired runs (printed as they finish), and their geometric mean ratio, fast / xarray."""
    prepared = simulate.prepare(scenarios, final_time=final_time, engine="pysd")
    model_path, specs = prepared.model_path, prepared.specs
    pysd_engine.load(model_path)
    print(f"load average {os.getloadavg()[0]:.2f}; time step {pysd_engine.time_defaults(model_path)['time_step']:g} year")
    print(f"{'scenario':<24} {'xarray s':>9} {'fast s':>9} {'ratio':>7}  bit-identical")
    ratios, figures = [], {}
    for number, spec in enumerate(specs):
        order = (False, True) if number % 2 == 0 else (True, False)
        runs = {fast: timed_run(model_path, spec, fast) for fast in order}
        (plain_s, plain), (fast_s, fast) = runs[False], runs[True]
        ratios.append(fast_s / plain_s)
        same = identical(plain, fast)
        figures |= {f"{spec.name}_xarray_s": plain_s, f"{spec.name}_fast_s": fast_s, f"{spec.name}_identical": float(same)}
        print(f"{spec.name:<24} {plain_s:9.1f} {fast_s:9.1f} {fast_s / plain_s:7.3f}  {same}")
    figures["ratio"] = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean ratio {figures['ratio']:.3f} (target of issue 20: <= 0.6)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["baseline"])
    parser.add_argument("--final-time", type=float, default=None)
    args = parser.parse_args()
    measure(args.scenarios, args.final_time)


if __name__ == "__main__":
    main()
