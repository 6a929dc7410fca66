"""Re-measure models/README.md, "Domain data by firm (R3, R5)": the figures after "Measured (Simlin, ...)".

Run from the repository root (about 35 runs, seconds on Simlin):

    python docs/measure/domain_data.py [--engine simlin|compiled] [--model PATH]

It prints, at 2050:
- R5 knocked out (businesses choose firms by general capability: `domain attractiveness` on
  `model capability` instead of `domain capability`, in a temporary copy of the model): the
  baseline's HHI and the incumbent's share of the domains' automated work (its `Firm Task Share`
  over the domain's `Automated Task Share`, mean over the six domains), with R5 and without;
- the incumbent's revenue share in `data-strike` and `conscious-contribution` against the
  baseline, with R5 and without;
- `data-strike-deletion` (the strike with erasure by the same third): the incumbent's revenue
  share and HHI, and HHI with 10% erasure instead;
- the sweep of `domain data elasticity` (1, range 0-3): baseline and `data-strike-deletion` HHI
  at 0, 0.25, 0.5, 1 and 2, and the elasticity (bisected between 0 and 0.25) where erasure's
  effect on HHI changes sign.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import time
from pathlib import Path

import sdmodel
from sdmodel.locations import default_model
from sdmodel.scenario import load_scenario

YEAR = 2050
R5 = re.compile(
    r"^(domain attractiveness\[Domain, Firm\] = )domain capability\[Domain, Firm\]( \^ share sensitivity)",
    re.MULTILINE,
)


def knock_out_r5(model: Path, folder: Path) -> Path:
    """A copy of the model in which businesses choose firms by general capability (R5 cut)."""
    text, count = R5.subn(r"\1model capability[Firm]\2", model.read_text())
    if count != 1:
        sys.exit(f"{model}: 'domain attractiveness' is not written as this script expects; update R5 above")
    copy = folder / "ai_power_no_r5.mdl"
    copy.write_text(text)
    return copy


def named(scenario: str, name: str, **params: float):
    """A bundled scenario with some constants set, under a name of its own."""
    loaded = load_scenario(scenario).with_overrides(params, {}, "docs/measure/domain_data.py")
    return dataclasses.replace(loaded, name=name)


def at_end(results, variable: str, **select):
    return results[variable].sel(time=YEAR, **select)


def incumbent_work_share(results, scenario: str) -> float:
    """The incumbent's share of the domains' automated work, mean over domains."""
    run = results.sel(scenario=scenario, time=YEAR)
    share = run["firm_task_share"].sel(Firm="incumbent") / run["automated_task_share"]
    return float(share.mean("Domain"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="simlin", choices=["simlin", "compiled"])
    parser.add_argument("--model", type=Path, default=default_model(), help="the model (default: the bundled one)")
    args = parser.parse_args()
    started = time.perf_counter()

    def run(scenarios, model: Path):
        return sdmodel.run(scenarios, model=model, engine=args.engine, progress=False)

    levers = ["baseline", "data-strike", "conscious-contribution"]
    with tempfile.TemporaryDirectory() as folder:
        with_r5 = run(
            [
                *levers,
                "data-strike-deletion",
                named("data-strike-deletion", "erasure 10%", **{"erasure fraction": 0.1}),
            ],
            args.model,
        )
        without_r5 = run(levers, knock_out_r5(args.model, Path(folder)))

    share = {}
    for label, results in (("with R5", with_r5), ("without R5", without_r5)):
        share[label] = {s: float(at_end(results, "revenue_share", scenario=s, Firm="incumbent")) for s in levers}
    hhi = {s: float(at_end(with_r5, "revenue_concentration_index", scenario=s)) for s in with_r5["scenario"].values}

    print(f"Domain data by firm: measured on {args.engine}, {args.model}, at {YEAR}")
    print("\nR5 knockout (domain attractiveness on model capability), baseline:")
    print(
        f"  HHI                                        {hhi['baseline']:.3f} with R5, "
        f"{float(at_end(without_r5, 'revenue_concentration_index', scenario='baseline')):.3f} without"
    )
    print(
        f"  incumbent's share of domains' automated work {incumbent_work_share(with_r5, 'baseline'):.1%} with R5, "
        f"{incumbent_work_share(without_r5, 'baseline'):.1%} without (mean over domains)"
    )
    print("\nIncumbent's revenue share (effect against the baseline):")
    for label, shares in share.items():
        cells = ", ".join(f"{s} {shares[s]:.3f} ({shares[s] - shares['baseline']:+.3f})" for s in levers[1:])
        print(f"  {label:<11} baseline {shares['baseline']:.3f}; {cells}")
    incumbent = float(at_end(with_r5, "revenue_share", scenario="data-strike-deletion", Firm="incumbent"))
    print("\nErasure with the strike (data-strike-deletion):")
    print(
        f"  incumbent's revenue share {incumbent:.3f}; HHI {hhi['data-strike-deletion']:.3f} "
        f"against the baseline's {hhi['baseline']:.3f}"
    )
    print(f"  10% erasure with the strike: HHI {hhi['erasure 10%']:.3f}")

    print("\nSweep of domain data elasticity (model value 1, range 0-3): 2050 HHI")
    print("  elasticity  baseline  data-strike-deletion  change")
    for elasticity in (0, 0.25, 0.5, 1, 2):
        setting = {"domain data elasticity": elasticity}
        swept = run([named("baseline", "baseline", **setting), named("data-strike-deletion", "erasure", **setting)], args.model)
        base, erased = (float(at_end(swept, "revenue_concentration_index", scenario=s)) for s in ("baseline", "erasure"))
        print(f"  {elasticity:<10g}  {base:.3f}     {erased:.3f}                 {erased - base:+.3f}")
    low, high = 0.0, 0.25  # erasure lowers HHI at 0 and raises it at 0.25: bisect for where it flips
    for _ in range(8):
        middle = (low + high) / 2
        setting = {"domain data elasticity": middle}
        swept = run([named("baseline", "baseline", **setting), named("data-strike-deletion", "erasure", **setting)], args.model)
        base, erased = (float(at_end(swept, "revenue_concentration_index", scenario=s)) for s in ("baseline", "erasure"))
        low, high = (middle, high) if erased < base else (low, middle)
    print(f"  erasure's HHI effect changes sign at an elasticity of {low:.3f}-{high:.3f}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
