"""The one home of the figures' colours: which scenario is drawn in which colour, and how many fit in a panel.

Readers tell series apart by colour, and one in twelve men cannot tell red from green. The colours are
Okabe & Ito's qualitative palette (Color Universal Design, 2002), distinguishable with the common colour-vision
deficiencies: seven colours and black. The baseline is always black and dashed, so a panel holds at most
eight series in colour (``MAX_SERIES``); beyond that a figure highlights some scenarios and draws the rest grey
(:func:`featured`), or gives each scenario a panel of its own against the baseline.

A report assigns colours once (:func:`scenario_colours`) and passes the mapping to every figure, so a scenario
has the same colour in the trajectories, the small multiples and the uncertainty bands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

BASELINE = "#000000"  # black, dashed: the reference every scenario is read against
OTHERS = "#BBBBBB"  # light grey: scenarios drawn for context, not to be told apart
#: Okabe-Ito without black, vermillion first (a scenario of interest against the baseline takes the first)
QUALITATIVE = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
HIGHLIGHT = QUALITATIVE[0]
MAX_SERIES = len(QUALITATIVE) + 1  # the colours and the baseline's black
#: scenarios drawn in colour when there are too many for all: the rest are grey (five, so the pale yellow is not needed)
FEATURED = len(QUALITATIVE) - 2
#: the better/worse colours of the comparison table: blue and vermillion, told apart with a red-green deficiency
BETTER, WORSE = "#0072B2", "#D55E00"


def series_colours(members: Sequence[str]) -> dict[str, str]:
    """A colour for each of up to ``MAX_SERIES`` members (firms, domains, loops): no colour twice.

    Raises ``ValueError`` past ``MAX_SERIES``: the caller must draw fewer series per panel instead of repeating a colour.
    """
    colours = (*QUALITATIVE[:-1], BASELINE, QUALITATIVE[-1])  # the pale yellow only when all eight are needed
    if len(members) > len(colours):
        raise ValueError(f"{len(members)} series in one panel; at most {len(colours)} can be told apart by colour")
    return {str(member): colours[index] for index, member in enumerate(members)}


def scenario_colours(
    names: Iterable[str], baseline: str = "baseline", featured_names: Sequence[str] | None = None
) -> dict[str, str]:
    """Scenario -> colour for every figure of one report: the baseline black, the others by their order.

    With at most seven scenarios besides the baseline each has a colour of its own. With more, only the
    ``featured_names`` (at most six) keep one (never the highlight); every other scenario gets ``HIGHLIGHT``, which figures use only
    for a scenario drawn alone against the baseline (a small multiple), where no other colour competes.
    """
    others = [str(n) for n in names if str(n) != baseline]
    colours = {baseline: BASELINE}
    if len(others) <= len(QUALITATIVE):
        colours.update(zip(others, QUALITATIVE))
        return colours
    chosen = [n for n in (featured_names or ()) if n in others][: len(QUALITATIVE) - 1]
    colours.update(zip(chosen, QUALITATIVE[1:]))
    colours.update({n: HIGHLIGHT for n in others if n not in colours})
    return colours


def distinct_for(names: Sequence[str], colours: Mapping[str, str] | None, baseline: str = "baseline") -> dict[str, str]:
    """The report's colours for scenarios drawn together, if they are distinct; else fresh ones for these alone.

    (An uncertainty run may hold two scenarios a large comparison drew one at a time in the same highlight.)
    """
    if colours and all(n in colours for n in names) and len({colours[n] for n in names}) == len(names):
        return {n: colours[n] for n in names}
    return scenario_colours(names, baseline)


def featured(changes: Mapping[str, Sequence[float]], limit: int = FEATURED) -> list[str]:
    """The scenarios that move the measures most, at most ``limit``: those drawn in colour when there are too many.

    ``changes`` maps a scenario to its change from the baseline in each measure. Each measure's changes are scaled
    by that measure's largest, so every measure's strongest lever ranks first; ties go to the larger sum.
    """
    names = list(changes)
    if not names:
        return []
    table = np.abs(np.array([list(changes[n]) for n in names], dtype=float))
    table = np.nan_to_num(table)
    largest = table.max(axis=0)
    scaled = np.divide(table, largest, out=np.zeros_like(table), where=largest > 0)
    order = sorted(range(len(names)), key=lambda i: (-scaled[i].max(), -scaled[i].sum()))
    return [names[i] for i in order if scaled[i].max() > 0][:limit]


def sequential(count: int) -> list[str]:
    """``count`` colours of viridis in order, for the values of a swept constant (a quantity, not categories): ordered
    light to dark, distinct, and readable with the common colour-vision deficiencies. The palest end is left out: it
    vanishes on white."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    ramp = colormaps["viridis"]
    return [to_hex(ramp(0.85 * (1 - i / max(count - 1, 1)))) for i in range(count)]
