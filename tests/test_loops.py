"""sdmodel.loops: the named loops file, and how a loop-dominance result is read into periods.

The periods are tested on small made-up dominance results whose answer is plain; the bundled model's loop scores
(through Simlin) by test_loops_table_and_shares_add_up, and the `loops` command in tests/test_figures.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sdmodel.errors import InputError
from sdmodel.loops import dominant_periods, first_difference, load_named_loops, steady_periods


def _dominance(shares: dict[str, dict[str, list[float]]], step: float = 0.5) -> xr.Dataset:
    """A dominance result as loop_dominance returns it: ``share`` by scenario, loop and time, and the ``dominant`` loop."""
    scenarios = list(shares)
    loops = list(next(iter(shares.values())))
    steps = len(next(iter(next(iter(shares.values())).values())))
    share = np.array([[shares[s][loop] for loop in loops] for s in scenarios], dtype=float)
    dominant = np.where(share.sum(axis=1) > 0, np.array(loops, dtype=object)[share.argmax(axis=1)], "")
    return xr.Dataset(
        {"share": (("scenario", "loop", "time"), share), "dominant": (("scenario", "time"), dominant)},
        coords={
            "scenario": scenarios,
            "loop": loops,
            "loop_name": ("loop", [f"loop {loop}" for loop in loops]),
            "time": 2020 + step * np.arange(steps),
        },
    )


def test_a_period_runs_from_its_first_save_time_to_the_next_periods_start():
    dominance = _dominance({"baseline": {"R1": [0, 0.7, 0.6, 0.2, 0.1], "B1": [0, 0.3, 0.4, 0.8, 0.9]}})
    periods = dominant_periods(dominance, "baseline")
    assert [(p["loop"], p["start"], p["end"]) for p in periods] == [("R1", 2020.5, 2021.5), ("B1", 2021.5, 2022.0)]
    assert periods[0]["name"] == "loop R1" and periods[0]["share"] == pytest.approx(0.65)


def test_a_lead_shorter_than_the_minimum_goes_to_its_neighbour():
    """R1 leads for years, B1 for one half-year step: read steadily, there is no switch at all."""
    r1 = [0.8] * 6 + [0.4] + [0.8] * 7
    dominance = _dominance({"baseline": {"R1": r1, "B1": [1 - x for x in r1]}})
    assert {p["loop"] for p in dominant_periods(dominance, "baseline")} == {"R1", "B1"}
    steady = steady_periods(dominance, "baseline")
    assert [p["loop"] for p in steady] == ["R1"]
    assert (steady[0]["start"], steady[0]["end"]) == (2020.0, float(dominance["time"][-1]))


def test_a_policy_differs_from_the_baseline_when_its_steady_dominant_loop_does():
    lead = {"R1": [0.9] * 12, "B1": [0.1] * 12}
    later = {"R1": [0.9] * 6 + [0.1] * 6, "B1": [0.1] * 6 + [0.9] * 6}
    dominance = _dominance({"baseline": lead, "policy": later})
    assert first_difference(dominance, "policy") == 2023.0
    assert first_difference(dominance, "baseline") is None
    assert first_difference(_dominance({"baseline": lead, "same": lead}), "same") is None


def test_the_bundled_loops_file_names_each_loop_and_its_variables():
    loops = load_named_loops()
    ids = [loop["id"] for loop in loops]
    assert len(ids) == len(set(ids)) and {"R1", "B1"} <= set(ids)
    assert all(loop["variables"] and all(isinstance(v, str) for v in loop["variables"]) for loop in loops)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "loop"),
        ('[[loop]]\nid = "R1"\n', "loop[0].variables"),
        ('[[loop]]\nid = ""\nvariables = ["a"]\n', "loop[0].id"),
        ("loop = [1]\n", "loop[0]"),
    ],
)
def test_a_loops_file_of_the_wrong_shape_names_the_field(text, key, tmp_path):
    path = tmp_path / "loops.toml"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        load_named_loops(path)
    assert raised.value.key == key and raised.value.source == str(path)


def test_loops_table_and_shares_add_up():
    from sdmodel.loops import format_table, loop_dominance

    dominance = loop_dominance(["baseline"], final_time=2030)
    total = dominance["share"].sum("loop").isel(time=slice(2, None))
    assert float(abs(total - 1).max()) < 1e-6  # shares of the named loops' activity
    text = format_table(dominance)
    assert text.splitlines()[0].split() == ["scenario", "from", "to", "dominant", "loop", "share"]
    assert all(
        f"  {loop}: " in text for loop in ("R1", "R2", "R3", "R4", "R5", "B1", "B2", "B3", "B4")
    )  # every named loop is scored or says why not
    assert "B2: not scored" in text
