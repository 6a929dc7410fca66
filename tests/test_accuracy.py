"""Integration accuracy: halving the time step moves no key output of any bundled scenario by more than 1%.

Key outputs are the comparison's metrics (sdmodel/metrics.py) over the whole horizon, run in
Simlin (held to PySD by tests/test_engine_parity.py); tests/test_model_behaviour.py has a slow
PySD version for three scenarios. The largest change is printed (`pytest -s` or `-rP` shows it).
"""

from __future__ import annotations

import numpy as np

import sdmodel
from sdmodel.engines import simlin as engine
from sdmodel.locations import default_model
from sdmodel.metrics import METRICS, compare_metrics
from sdmodel.scenario import bundled_scenarios, load_scenario

TOLERANCE = 0.01
TINY = 1e-9  # below this a metric counts as zero: a change from 0 to 1e-12 is no change


def relative_changes() -> tuple[float, list[tuple[float, str, str, float, float]]]:
    step = engine.time_defaults(default_model())["time_step"]
    names = bundled_scenarios()
    coarse = compare_metrics(sdmodel.run(names, engine="simlin"))
    halved = [load_scenario(name).with_overrides({}, {"time_step": step / 2}, "test_accuracy") for name in names]
    fine = compare_metrics(sdmodel.run(halved, engine="simlin"))
    rows = []
    for key in coarse.data_vars:
        for name in names:
            a = float(coarse[key].sel(scenario=name, measure="final"))
            b = float(fine[key].sel(scenario=name, measure="final"))
            change = 0.0 if max(abs(a), abs(b)) < TINY else abs(a - b) / max(abs(b), TINY)
            rows.append((change, key, name, a, b))
    return step, sorted(rows, reverse=True)


def test_halving_the_time_step_moves_every_key_output_under_one_percent():
    step, rows = relative_changes()
    assert {row[1] for row in rows} == {m.key for m in METRICS}, "a metric is missing from the model's results"
    report = "\n".join(f"  {change:9.3%}  {key:<32} {name:<24} {a:.6g} -> {b:.6g}" for change, key, name, a, b in rows[:5])
    print(f"\nlargest relative changes of the key outputs at the final time, time step {step:g} -> {step / 2:g}:\n{report}")
    worst = rows[0]
    assert worst[0] <= TOLERANCE, f"halving the time step moved {worst[1]} in {worst[2]} by {worst[0]:.2%}:\n{report}"
    assert np.isfinite([row[0] for row in rows]).all()
