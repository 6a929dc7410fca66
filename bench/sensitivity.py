"""Benchmark: a Sobol analysis of the full model, 12 assumptions, N = 1024, on all cores.

Target (issue 5): within 2 minutes on 2 cores. Prints wall time, members and members per second.

    python bench/sensitivity.py
"""

from __future__ import annotations

import os
import time

from sdmodel.locations import models_dir
from sdmodel.options import Execution
from sdmodel.sensitivity import format_table, sensitivity


def main() -> None:
    started = time.perf_counter()
    found = sensitivity(
        models_dir() / "assumptions.toml",
        samples=1024,
        outputs=["hhi", "labour_share", "incumbent_capability"],
        execution=Execution(progress=False),
    )
    wall = time.perf_counter() - started
    members = found.attrs["members"]
    print(format_table(found))
    print(
        f"\nSobol, {found.sizes['param']} parameters, N=1024: {members} members in {wall:.1f} s on {os.cpu_count()} cores "
        f"({members / wall:.0f} members/s, executor: {found.attrs['executor']}); target <= 120 s: {'met' if wall <= 120 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
