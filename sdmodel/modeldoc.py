"""Files generated from the Vensim model, so they cannot drift from it: the XMILE twin; the
loop table, causal-loop picture and parameter table in ``models/README.md``; and, in the
repository's ``README.md``, the quickstart's comparison table and the table of each bundled
scenario's effects (run on Simlin, whose table is PySD's: tests/test_engine_parity.py).

``python -m sdmodel.modeldoc`` rewrites them; ``--check`` exits 1 when one is out of date
(tests/test_model_docs.py runs the check).
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from pathlib import Path

from sdmodel import atomic
from sdmodel.errors import format_bound
from sdmodel.locations import default_model, models_dir

README = models_dir() / "README.md"
PROJECT_README = models_dir().parent / "README.md"  # the repository's (an installed package has none beside its models)
LOOPS = models_dir() / "loops.toml"
XMILE = models_dir() / "ai_power.xmile"


def load_loops(path: Path = LOOPS) -> list[dict]:
    """The named feedback loops: id, name, polarity, description and variables in causal order."""
    return tomllib.loads(path.read_text())["loop"]


def loop_table(loops: list[dict]) -> str:
    rows = ["| loop | name | polarity | what it does |", "|---|---|---|---|"]
    rows += [f"| {loop['id']} | {loop['name']} | {loop['polarity']} | {loop['description']} |" for loop in loops]
    return "\n".join(rows)


def loop_diagram(loops: list[dict], links: dict[tuple[str, str], str]) -> str:
    """A Mermaid causal-loop diagram: each loop's links, signed as Simlin signs them."""
    from sdmodel.engines.simlin_structure import canonical

    names: dict[str, str] = {}
    edges: dict[tuple[str, str], set[str]] = {}
    for loop in loops:
        chain = loop["variables"]
        for cause, effect in zip(chain, chain[1:] + chain[:1]):
            names[canonical(cause)], names[canonical(effect)] = cause, effect
            edges.setdefault((canonical(cause), canonical(effect)), set()).add(loop["id"])
    lines = ["```mermaid", "flowchart LR"]
    lines += [f'    {key}["{label}"]' for key, label in names.items()]
    for (cause, effect), ids in edges.items():
        lines.append(f'    {cause} -- "{links.get((cause, effect), "?")} {", ".join(sorted(ids))}" --> {effect}')
    return "\n".join(lines + ["```"])


def parameter_table(model_path: Path) -> str:
    """Every constant with its value as written, units, range and source."""
    from sdmodel.engines.simlin_structure import canonical, equations
    from sdmodel.simulate import model_info

    written = equations(model_path)
    rows = ["| constant | value | units | range | source or assumption |", "|---|---|---|---|---|"]
    for variable in sorted(model_info(model_path).variables.values(), key=lambda v: v.name.lower()):
        if variable.kind != "constant":
            continue
        dims = f"[{','.join(variable.dims)}]" if variable.dims else ""
        value = written.get(canonical(variable.name), "")
        bounds = (
            ""
            if math.isinf(variable.lower) and math.isinf(variable.upper)
            else f"{format_bound(variable.lower)} to {format_bound(variable.upper)}"
        )
        rows.append(f"| {variable.name}{dims} | {value} | {variable.units} | {bounds} | {variable.comment} |")
    return "\n".join(rows)


def render(text: str, model_path: Path | None = None) -> str:
    """The model README's text with each generated block rewritten."""
    from sdmodel.engines.simlin_structure import causal_links

    model_path = model_path or default_model()
    loops = load_loops()
    blocks = {
        "loops": loop_table(loops),
        "diagram": loop_diagram(loops, causal_links(model_path)),
        "parameters": parameter_table(model_path),
    }
    return fill(text, blocks, README)


def fill(text: str, blocks: dict[str, str], path: Path) -> str:
    """``text`` with the body of each ``<!-- generated:NAME -->`` ... ``<!-- end:NAME -->`` block replaced."""
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"{path}: no <!-- generated:{name} --> block")
        text = pattern.sub(lambda match, body=body: match[1] + body + "\n" + match[2], text)
    return text


def comparison_blocks() -> dict[str, str]:
    """The quickstart's table (what ``sdmodel compare`` prints) and the scenario table, from a run of every bundled
    scenario. Written by hand, both went stale when the model was refitted: README quoted a baseline it no longer had."""
    from sdmodel.metrics import compare, format_table
    from sdmodel.scenario import load_scenario

    _, metrics = compare(engine="simlin")
    table = format_table(metrics).split("\n\nAt ")[0]  # the rows; README explains the columns in its own words
    descriptions = {str(name): load_scenario(str(name)).description for name in metrics["scenario"].values}
    return {"comparison": f"```\n{table}\n```", "scenarios": scenario_table(metrics, descriptions)}


def scenario_table(metrics, descriptions: dict[str, str]) -> str:
    """A row per scenario: what it means, then its effect at the final time on the incumbent, on the market and on
    AI operators against labour and data producers (the comparison's three column groups), rounded for reading."""
    baseline = metrics.attrs["baseline"]

    def value(key: str, scenario: str, measure: str = "vs_baseline") -> float:
        return float(metrics[key].sel(scenario=scenario, measure=measure))

    def relative(key: str, scenario: str, label: str) -> str:
        change = value(key, scenario) / value(key, baseline, "final")
        return f"{label} ~0" if round(change * 100) == 0 else f"{label} {change:+.0%}"

    def points(key: str, scenario: str, label: str) -> str:
        change = value(key, scenario) * 100
        return f"{label} ~0" if round(change, 1) == 0 else f"{label} {change:+.1f} pt"

    def money(billions: float) -> str:
        return f"US${billions / 1000:.1f}T" if billions >= 1000 else f"US${billions:.0f}B"

    header = "| scenario | what it means | on the incumbent (the target) | on the market (HHI) | on AI operators vs labour and data producers |"
    first = (
        f"| `{baseline}` | {descriptions[baseline]} "
        f"| revenue share {value('incumbent_revenue_share', baseline, 'final'):.3f}, "
        f"capability {value('incumbent_capability', baseline, 'final'):.1f} "
        f"| {value('hhi', baseline, 'final'):.3f} "
        f"| labour share {value('labour_share', baseline, 'final'):.1%}, "
        f"AI's share of capital {value('ai_capital_share', baseline, 'final'):.1%} |"
    )
    rows = [header, "|---|---|---|---|---|", first]
    for scenario in (str(name) for name in metrics["scenario"].values):
        if scenario == baseline:
            continue
        share = value("incumbent_revenue_share", scenario)
        target = ", ".join(
            [
                "revenue share ~0" if round(share, 3) == 0 else f"revenue share {share:+.3f}",
                relative("incumbent_capability", scenario, "capability"),
                relative("incumbent_capital", scenario, "capital"),
            ]
        )
        operators = [points("labour_share", scenario, "labour share"), points("ai_capital_share", scenario, "AI's capital share")]
        for key, label in (
            ("data_payments_cumulative", "paid for data"),
            ("commons_grants_cumulative", "public grants to the commons"),
        ):
            if value(key, scenario, "final") >= 0.5:
                operators.append(f"{label} {money(value(key, scenario, 'final'))}")
        rows.append(
            f"| `{scenario}` | {descriptions[scenario]} | {target} | {value('hhi', scenario):+.4f} | {', '.join(operators)} |"
        )
    return "\n".join(rows)


def xmile() -> str:
    """The bundled model as XMILE, translated from the Vensim source."""
    from sdmodel.export import xmile_text
    from sdmodel.scenario import load_scenario

    return xmile_text(load_scenario("baseline"))


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated files, or with ``--check`` report which are out of date (exit 1)."""
    from sdmodel.errors import InputError

    argv = sys.argv[1:] if argv is None else argv
    try:
        wanted = {README: render(README.read_text()), XMILE: xmile()}
        if PROJECT_README.is_file():
            wanted[PROJECT_README] = fill(PROJECT_README.read_text(), comparison_blocks(), PROJECT_README)
    except InputError as error:  # e.g. an equation the XMILE export refuses: one line, as the CLI says it
        print(f"error: {error}", file=sys.stderr)
        return 2
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is out of date: run python -m sdmodel.modeldoc", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        atomic.write_text(path, wanted[path])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
