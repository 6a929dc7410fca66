"""The colours (sdmodel/palette.py): one per scenario across a report, a panel's series never sharing one, the
scenarios that move the measures most featured when there are too many, and a light-to-dark ramp for a swept value.
How the figures use them is tests/test_legibility.py's."""

from __future__ import annotations

import numpy as np
import pytest

from sdmodel import palette


def test_colours_are_one_per_scenario_across_a_report():
    names = ["baseline", *(f"s{i}" for i in range(16))]
    chosen = ["s3", "s1"]
    colours = palette.scenario_colours(names, "baseline", chosen)
    assert colours["baseline"] == palette.BASELINE
    assert colours["s3"] != colours["s1"] and palette.HIGHLIGHT not in (colours["s3"], colours["s1"])
    assert {colours[n] for n in names if n not in ("baseline", *chosen)} == {palette.HIGHLIGHT}  # drawn one at a time
    assert palette.distinct_for(["baseline", "s3", "s1"], colours) == {n: colours[n] for n in ("baseline", "s3", "s1")}
    together = palette.distinct_for(["baseline", "s4", "s5"], colours)  # two drawn alone in the report, here together
    assert len(set(together.values())) == 3
    few = palette.scenario_colours(["baseline", "a", "b"], "baseline")
    assert len(set(few.values())) == 3
    with pytest.raises(ValueError, match="at most 8"):
        palette.series_colours([str(i) for i in range(9)])


def test_featured_are_each_measures_strongest_levers_first():
    """Each measure is scaled by its largest change, so a lever strong in a small measure is not drowned by a large one."""
    changes = {
        "a": [10.0, 0.0],  # the strongest in the first measure
        "b": [1.0, 0.5],
        "c": [0.0, 0.0],  # moves nothing: never featured
        "d": [5.0, 1.0],  # the strongest in the second, and second in the first: ties with a, larger sum
        "e": [float("nan"), 0.2],  # a measure it cannot be measured in counts as no change
    }
    assert palette.featured(changes) == ["d", "a", "b", "e"]
    assert palette.featured(changes, limit=2) == ["d", "a"]
    assert palette.featured({}) == [] and palette.featured({"x": [0.0], "y": [-0.0]}) == []
    assert palette.featured({"down": [-3.0], "up": [2.0]}) == ["down", "up"]  # by size, whichever the sign


def relative_luminance(colour: str) -> float:
    """WCAG's relative luminance of a #rrggbb colour."""
    channels = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("count", [1, 2, 5, 12])
def test_sequential_colours_are_distinct_and_run_light_to_dark(count):
    colours = palette.sequential(count)
    assert len(colours) == count and len(set(colours)) == count
    luminance = [relative_luminance(colour) for colour in colours]
    assert luminance == sorted(luminance, reverse=True) and len(set(luminance)) == count
    assert luminance[0] < 0.9  # the palest end, which vanishes on white, is left out
