"""sdmodel: a system-dynamics model of compute, data and economic power around AI.

The Python API mirrors the CLI. Heavy libraries (PySD, xarray) load on first use,
so ``import sdmodel`` and ``sdmodel --help`` stay fast.
"""

from __future__ import annotations

import importlib

_API = {
    "run": "sdmodel.simulate",
    "compare": "sdmodel.metrics",
    "compare_metrics": "sdmodel.metrics",
    "load_scenario": "sdmodel.scenario",
    "open_run": "sdmodel.store",
    "save_run": "sdmodel.store",
    "list_runs": "sdmodel.store",
    "to_dataframe": "sdmodel.export",
    "export_files": "sdmodel.export",
    "import_cin": "sdmodel.importing",
    "sweep": "sdmodel.ensemble",
    "uncertainty": "sdmodel.ensemble",
    "percentile_bands": "sdmodel.ensemble",
    "discover": "sdmodel.discovery",
    "search_policy": "sdmodel.search",
    "loop_dominance": "sdmodel.loops",
    "variable_figure": "sdmodel.plots",
    "save_figure": "sdmodel.plots",
    "build_report": "sdmodel.report",
    "RunSetup": "sdmodel.options",
    "Execution": "sdmodel.options",
}

__all__ = sorted(_API)  # noqa: PLE0605 (a list, built from the one table of names)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'sdmodel' has no attribute {name!r}")
