"""Never run twice what is already stored.

A scenario's results are fixed by the model file, the scenario's resolved settings and
time grid, the engine and its version, and sdmodel's own code. Every saved run records a
key over all of these for each of its scenarios (``run_keys`` in its manifest); a later
run of a scenario with the same key reads the stored values instead of running again.
PySD takes seconds per scenario, so a second `sdmodel compare` answers from the first,
and adding one scenario to a comparison runs only that one.

A model that reads external data files (Vensim's ``GET XLS``/``GET DIRECT`` functions)
is never reused: its results depend on files the key does not cover.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from sdmodel.engines import unchanging
from sdmodel.errors import InputError
from sdmodel.provenance import code_fingerprint
from sdmodel.scenario import RunSpec
from sdmodel.store import RESULTS, check_intact, read_manifest, read_results, run_folders, save_run, touch_run

if TYPE_CHECKING:
    from sdmodel.simulate import Prepared

EXTERNAL_DATA = re.compile(r"\bGET[ _](XLS|DIRECT|123|DATA)\b", re.IGNORECASE)


def run_or_reuse(
    prepared: Prepared,
    *,
    jobs: int | None,
    reuse: bool,
    runs_dir: str | os.PathLike | None,
    done: Callable[[int], None] | None = None,
    allow_nan: bool = False,
    starting: Callable[[int, float | None], None] | None = None,
) -> tuple[xr.Dataset, dict[str, str], dict[str, str]]:
    """Results of every scenario: read back where a saved run holds them (with ``reuse``), run otherwise.

    ``prepared`` holds the scenarios' specs and the engine; only an engine whose runs are slow
    (``REUSE_STORED``) reads back. Returns the results, each scenario's key, and the
    folder name of the run each reused scenario came from. ``done(n)`` counts the
    scenarios as they are read back or run. ``allow_nan`` goes to the engine: NaN is a result, not an error.
    ``starting(n, seconds)`` is told, before any run, how many scenarios will run and how long the engine expects
    them to take one after another (None if it cannot say).
    """
    engine, model_path, specs, info = prepared.engine, prepared.model_path, prepared.specs, prepared.info
    defaults = prepared.time_defaults
    keys = {spec.name: run_key(info.sha256, engine.NAME, engine.VERSION, spec, {**defaults, **spec.time}) for spec in specs}
    data_files = any(spec.data_files for spec in specs)  # the key does not cover them
    found = find_stored(keys, runs_dir) if reuse and engine.REUSE_STORED and not data_files and reusable(model_path) else {}
    parts = load_stored(found)
    stored = {str(name) for part in parts for name in part["scenario"].values}
    missing = [spec for spec in specs if spec.name not in stored]
    if done and stored:
        done(len(stored))
    if missing:
        if starting:
            starting(len(missing), engine.expected_seconds(model_path, missing))
        parts.append(engine.run_scenarios(model_path, missing, jobs=jobs, done=done, allow_nan=allow_nan))
    if not stored:
        return parts[0], keys, {}
    return assemble(parts, [spec.name for spec in specs]), keys, {name: found[name][0].name for name in keys if name in stored}


def run_key(model_sha256: str, engine: str, engine_version: str, spec: RunSpec, time: Mapping[str, float]) -> str:
    """A hash of everything that decides one scenario's results (not its name or description).

    ``time`` is the full grid the scenario runs on: the model's defaults with the scenario's changes.
    """
    content = {
        "model_sha256": model_sha256,
        "engine": engine,
        "engine_version": engine_version,
        "sdmodel_code": code_fingerprint(),
        "time": sorted(time.items()),
        # in the order the engine applies them: a later setting of the same constant wins
        "settings": [[s.py_name, list(s.element) if s.element else None, s.value] for s in spec.settings],
    }
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def reusable(model_path: Path) -> bool:
    """Whether a model's results are fixed by its own file (no external data files)."""
    return not EXTERNAL_DATA.search(model_path.read_text(encoding="utf-8", errors="replace"))


def find_stored(keys: Mapping[str, str], runs_dir: str | os.PathLike | None) -> dict[str, tuple[Path, str]]:
    """For each scenario whose key a saved run holds: that run's folder and the scenario's name there.

    The newest intact run that holds a key answers for it: a run whose results file no
    longer matches the checksum in its manifest answers for nothing.
    """
    wanted: dict[str, list[str]] = {}
    for name, key in keys.items():
        wanted.setdefault(key, []).append(name)
    found: dict[str, tuple[Path, str]] = {}
    for folder in reversed(run_folders(runs_dir)):
        try:
            manifest = read_manifest(folder)
        except InputError:
            continue  # `sdmodel runs list` reports the damage
        matches = [
            (name, stored_name) for stored_name, key in (manifest.get("run_keys") or {}).items() for name in wanted.get(key, ())
        ]
        if any(name not in found for name, _ in matches) and _intact(folder, manifest):
            for name, stored_name in matches:
                found.setdefault(name, (folder, stored_name))
    return found


def _intact(folder: Path, manifest: dict) -> bool:
    """Whether the run may answer for its keys (:func:`sdmodel.store.check_intact`): a damaged run answers for nothing."""
    try:
        check_intact(folder, manifest)
    except (InputError, OSError, KeyError, TypeError, ValueError):
        return False
    return True


def load_stored(found: Mapping[str, tuple[Path, str]]) -> list[xr.Dataset]:
    """The stored scenarios as Datasets (one per saved run), renamed to the names asked for.

    A run whose file cannot be read is left out: its scenarios run again.
    """
    by_run: dict[Path, list[tuple[str, str]]] = {}
    for name, (folder, stored_name) in found.items():
        by_run.setdefault(folder, []).append((name, stored_name))
    parts = []
    for folder, pairs in by_run.items():
        try:
            part = read_results(folder / RESULTS).sel(scenario=[stored_name for _, stored_name in pairs])
        except (OSError, KeyError, ValueError):
            continue
        part = part.drop_vars("description", errors="ignore").assign_coords(scenario=[name for name, _ in pairs])
        part.attrs = {}
        parts.append(part)
    return parts


def assemble(parts: Sequence[xr.Dataset], order: Sequence[str]) -> xr.Dataset:
    """Stored and fresh scenarios as one Dataset, in the order asked for, as one fresh run would give it.

    Both engines give a constant a time axis only when some scenario of the run varies it
    over time; a stored run may have had such a scenario, so the axis is dropped again
    where no scenario of this run needs it.
    """
    # join="exact": the key fixes the time grid, so misaligned coordinates would be a bug, never NaN padding
    combined = xr.concat(parts, dim="scenario", data_vars="all", coords="minimal", join="exact").sel(scenario=list(order))
    for name, array in list(combined.data_vars.items()):
        if array.attrs.get("sd_kind") == "constant" and "time" in array.dims and unchanging(array.transpose("time", ...).values):
            combined[name] = array.isel(time=0, drop=True)
    return combined


def stored_copy(results: xr.Dataset, kind: str, runs_dir: str | os.PathLike | None, extra: Mapping | None = None) -> Path | None:
    """The saved run of ``kind`` that already holds exactly these results, if nothing in them was computed anew.

    Exactly: every scenario was read back from the store, and one intact run of that kind has
    the same scenarios in the same order, under the same keys (model, engine, time grid,
    settings, code), with the same descriptions and the same ``extra`` manifest entries (a
    comparison's measures against the same baseline). Saving these results again would only copy it.
    """
    keys = json.loads(results.attrs.get("run_keys", "{}"))
    names = [str(name) for name in results["scenario"].values]
    if not keys or set(json.loads(results.attrs.get("reused_from", "{}"))) != set(names):
        return None
    wanted = {key: _entry_text(value) for key, value in (extra or {}).items()}
    for folder in reversed(run_folders(runs_dir)):
        try:
            manifest = read_manifest(folder)
        except InputError:
            continue
        if (
            manifest.get("kind") == kind
            and manifest.get("scenarios") == names
            and manifest.get("run_keys") == keys
            and all(_entry_text(manifest.get(key)) == text for key, text in wanted.items())
            and _intact(folder, manifest)
            and _descriptions(folder) == [str(d) for d in results["description"].values]
        ):
            return folder
    return None


def _entry_text(entry) -> str:
    """A manifest entry as canonical JSON; a comparison's ``run`` (where it was saved) left out. The JSON of a
    missing value is itself, NaN's is not."""
    if isinstance(entry, Mapping):
        entry = {key: value for key, value in entry.items() if key != "run"}
    return json.dumps(entry, sort_keys=True)


def save_once(
    results: xr.Dataset, name: str, kind: str, runs_dir: str | os.PathLike | None = None, extra: dict | None = None
) -> tuple[Path, bool]:
    """Save a run, unless a saved run already holds exactly it (:func:`stored_copy`): then point at that run, made the
    latest again, instead of writing a copy, which was megabytes a time. Returns the run's folder and whether it is new."""
    holder = stored_copy(results, kind, runs_dir, extra)
    if holder is not None and touch_run(holder):
        return holder, False
    return save_run(results, name, runs_dir, kind=kind, extra=extra), True


def _descriptions(folder: Path) -> list[str] | None:
    """The scenarios' descriptions a saved run holds (they are no part of the key)."""
    try:
        with xr.open_dataset(folder / RESULTS, engine="netcdf4") as stored:
            return [str(d) for d in stored["description"].values]
    except (OSError, KeyError, ValueError):
        return None
