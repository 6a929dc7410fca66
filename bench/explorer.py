"""Benchmark: how long the policy explorer takes to answer a lever, on the full model.

Moves the data strike slider back and forth in a server-side Explorer (no browser) and prints the
time from the slider's release to the outcomes and curves pushed (re-running the model in Simlin
included): median and worst of N changes, against the 200 ms target. The browser adds the drawing;
tests/test_explore.py's headless-Chromium test prints its figure too. Run::

    .venv/bin/python bench/explorer.py                  # 20 changes, horizon 2040 as the tests use
    .venv/bin/python bench/explorer.py --repeats 50 --final-time 2050
"""

from __future__ import annotations

import argparse

import numpy as np
import param

from sdmodel.explore import Explorer

TARGET_MS = 200.0


def lever_latency(repeats: int, final_time: float | None) -> list[float]:
    """Server-side milliseconds of each of `repeats` changes of the data strike fraction."""
    explorer = Explorer(final_time=final_time)
    widget = explorer.widgets["data strike fraction"]
    times = []
    for index in range(repeats):
        with param.edit_constant(widget):  # as a slider's release sets it
            widget.value = widget.value_throttled = 0.1 + 0.8 * (index % 2)
        times.append(explorer.last_ms)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--final-time", type=float, default=2040.0)
    args = parser.parse_args()
    times = lever_latency(args.repeats, args.final_time)
    median = float(np.median(times))
    print(
        f"explorer lever change, {args.repeats} changes to {args.final_time:g}: median {median:.0f} ms, "
        f"worst {max(times):.0f} ms; target {TARGET_MS:.0f} ms: {median / TARGET_MS:.2f}x of it "
        f"({'met' if median <= TARGET_MS else 'missed'})"
    )


if __name__ == "__main__":
    main()
