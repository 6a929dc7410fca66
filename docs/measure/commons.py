"""Re-measure models/README.md, "The commons (B1, B4)": the paragraph "Measured (Simlin, ...)" and its table.

Run from the repository root (five runs, seconds on Simlin):

    python docs/measure/commons.py [--engine simlin|compiled] [--model PATH]

It switches the two channels by which AI erodes the commons, `AI activity substitution` (less
writing by each, B4) and `AI entry deterrence` (fewer contributors, B1), off alone and together,
and sets both to the top of their range (0.6), and prints against the baseline: what the commons
writes a year (`human data production`), its stock (`Public Human Data`), frontier capability and
the HHI of revenue; and the baseline's adoption of AI by the commons' writers (`writers adoption
fraction`, at the Stack Overflow surveys' dates, 2023.37 and 2024.42, as the calibration reads
them, and in 2030) and by internet users at large (`adoption fraction`, 2025 and 2040).
Values between the saved quarters are interpolated linearly, as the calibration does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import sdmodel
from sdmodel.locations import default_model
from sdmodel.scenario import Scenario

SUBSTITUTION, DETERRENCE = "AI activity substitution", "AI entry deterrence"
CASES = {
    "baseline": {},
    "both off": {SUBSTITUTION: 0, DETERRENCE: 0},
    "less writing by each off (B1 alone)": {SUBSTITUTION: 0},
    "fewer contributors off (B4 alone)": {DETERRENCE: 0},
    "both at the top of their range (0.6)": {SUBSTITUTION: 0.6, DETERRENCE: 0.6},
}


def at(results, case: str, variable: str, year: float) -> float:
    series = results[variable].sel(scenario=case)
    return float(np.interp(year, series["time"].values, series.values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="simlin", choices=["simlin", "compiled"])
    parser.add_argument("--model", type=Path, default=default_model(), help="the model (default: the bundled one)")
    args = parser.parse_args()
    started = time.perf_counter()
    scenarios = [Scenario(case, params=params) for case, params in CASES.items()]
    results = sdmodel.run(scenarios, model=args.model, engine=args.engine, progress=False)

    def value(case: str, variable: str, year: float) -> float:
        return at(results, case, variable, year)

    writing, stock, capability, hhi = (
        "human_data_production",
        "public_human_data",
        "frontier_capability",
        "revenue_concentration_index",
    )
    print(f"The commons: measured on {args.engine}, {args.model}")
    print("\nBaseline adoption of AI:")
    writers = ", ".join(f"{value('baseline', 'writers_adoption_fraction', y):.0%} at {y:g}" for y in (2023.37, 2024.42, 2030))
    users = ", ".join(f"{value('baseline', 'adoption_fraction', y):.0%} at {y:g}" for y in (2025, 2040))
    print(f"  commons' writers: {writers}\n  internet users:   {users}")

    print("\nWhat the commons writes a year (tokens), baseline against both channels off:")
    print(
        f"  baseline 2020 {value('baseline', writing, 2020):.3g}; 2050 {value('baseline', writing, 2050):.3g}; "
        f"both off 2050 {value('both off', writing, 2050):.3g}"
    )
    for year in (2025, 2030, 2050):
        ratio = value("baseline", writing, year) / value("both off", writing, year)
        print(f"  {year}: the baseline writes {1 - ratio:.0%} less than with both off (both off x{1 / ratio:.2f})")
    print(f"  2050 stock: the baseline's is {1 - value('baseline', stock, 2050) / value('both off', stock, 2050):.1%} smaller")
    print(
        "\nWithout fewer contributors (B1 off, B4 alone): the commons writes "
        + ", ".join(
            f"{value('fewer contributors off (B4 alone)', writing, y) / value('baseline', writing, y) - 1:+.0%} in {y}"
            for y in (2025, 2030, 2050)
        )
    )
    print(
        "Without less writing by each (B4 off, B1 alone): the commons writes "
        + ", ".join(
            f"{value('less writing by each off (B1 alone)', writing, y) / value('baseline', writing, y) - 1:+.0%} in {y}"
            for y in (2025, 2030, 2050)
        )
    )

    print("\nAgainst the baseline (2050 unless said):")
    print(
        "| channels (2050, against the baseline) | commons writes a year | public stock | frontier capability "
        "| capability 2030 | HHI |"
    )
    print("|---|---|---|---|---|---|")
    for case in list(CASES)[1:]:
        cells = [
            f"x{value(case, writing, 2050) / value('baseline', writing, 2050):.2f}",
            f"{value(case, stock, 2050) / value('baseline', stock, 2050) - 1:+.1%}",
            f"{value(case, capability, 2050) / value('baseline', capability, 2050) - 1:+.2%}",
            f"{value(case, capability, 2030) / value('baseline', capability, 2030) - 1:+.2%}",
            f"{value(case, hhi, 2050) - value('baseline', hhi, 2050):+.4f}",
        ]
        print(f"| {case} | " + " | ".join(cells) + " |")
    top = "both at the top of their range (0.6)"
    print(
        f"\nAt the top of both ranges the commons writes {1 - value(top, writing, 2050) / value('both off', writing, 2050):.0%} "
        "less in 2050 than with both channels off"
    )
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
