"""The run store: ``runs/<UTC timestamp>-<name>/`` with ``results.nc`` and ``manifest.json``.

A run is written into a hidden temporary folder beside its final place and renamed
into place only when complete, so an interrupted or failed save leaves nothing
that looks like a run. A save killed outright (SIGKILL, power loss) cannot remove
its temporary folder; the next save in the same folder does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import xarray as xr

from sdmodel import stacking
from sdmodel.errors import InputError
from sdmodel.locations import cache_dir, read_cache, write_cache
from sdmodel.locations import runs_dir as resolve_runs_dir
from sdmodel.model import file_sha256

RESULTS = "results.nc"
MANIFEST = "manifest.json"
STAGING = ".tmp-"  # the prefix of a run's hidden temporary folder, and of a run being removed
#: how each variable is compressed: stacked arrays (runs and comparisons), and variables of their own
STACKED_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
PLAIN_COMPRESSION = {"zlib": True, "complevel": 4}
MANIFEST_ATTRS = ("created", "command", "engine", "engine_version", "sdmodel_version", "model_file", "model_sha256", "git_commit")


def save_run(
    results: xr.Dataset, name: str, runs_dir: str | os.PathLike | None = None, *, kind: str = "run", extra: dict | None = None
) -> Path:
    """Save results atomically and return the run's folder."""
    root = resolve_runs_dir(runs_dir)
    temporary = _staging_folder(root)
    try:
        _write(results, temporary / RESULTS, stacked=kind in TRAJECTORY_KINDS)
        manifest = {
            "name": name,
            "kind": kind,
            "scenarios": [str(s) for s in results["scenario"].values] if "scenario" in results.dims else [],
            **{key: results.attrs.get(key, "") for key in MANIFEST_ATTRS},
            "files": {RESULTS: _describe(temporary / RESULTS)},
            # per scenario, a key over everything that decided its results: later runs reuse them (sdmodel.reuse)
            **{key: json.loads(results.attrs[key]) for key in ("run_keys", "reused_from") if key in results.attrs},
            **(extra or {}),
        }
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync(temporary / RESULTS, temporary / MANIFEST)
        return _rename_into_place(temporary, root, name)
    except OSError as error:
        raise InputError(
            source=root,
            key=None,
            problem=f"cannot write the run ({error.strerror or error})",
            fix="free some space or choose another folder with --runs-dir",
        ) from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # gone already after a successful rename


def _staging_folder(root: Path) -> Path:
    """A new hidden folder of this process in the store (first removing those of killed processes), or one line why not."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        remove_abandoned(root)
        temporary = root / private_name()
        temporary.mkdir()
    except OSError as error:
        raise InputError(
            source=root,
            key=None,
            problem=f"cannot write runs here ({error.strerror})",
            fix="choose a writable folder with --runs-dir",
        ) from None
    return temporary


@contextmanager
def staging(runs_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """A hidden folder in the run store for work on its way to a saved run (an ensemble's streamed members), removed
    afterwards; killed outright, its process cannot remove it, and the next save or staging does. Folders it had
    to make for it (the store itself, on a first run) go too if nothing was saved in them: bad input leaves no trace."""
    root = resolve_runs_dir(runs_dir)
    made = [path for path in (root, *root.parents) if not path.exists()]  # innermost first
    folder = _staging_folder(root)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for path in made:
            try:
                path.rmdir()  # only if empty
            except OSError:
                break


def _write(results: xr.Dataset, path: Path, *, stacked: bool) -> None:
    """Write the results: a run or comparison stacked (:mod:`sdmodel.stacking`), anything else plainly."""
    if not stacked:
        write_plain(results, path)
        return
    on_disk = stacking.stack(results)
    # zlib at level 1 over shuffled bytes: smaller files than level 4 without the shuffle, in a fraction of the time
    stacked_names = set(stacking.stacks(on_disk))
    encoding = {name: STACKED_COMPRESSION if name in stacked_names else PLAIN_COMPRESSION for name in on_disk.data_vars}
    on_disk.to_netcdf(path, engine="netcdf4", encoding=encoding)


def write_plain(results: xr.Dataset, path: str | os.PathLike) -> None:
    """Write the results one NetCDF variable each, compressed, in the chunks of the file they came from, if any.

    Every run was saved so before stacking, and ensembles still are; an export to NetCDF is.
    A streamed ensemble (:mod:`sdmodel.ensemble`) is read from its file as Dask
    arrays in that file's chunks (a batch of members each), so xarray writes it a
    chunk at a time; here each variable keeps those chunks on disk, and HDF5's chunk
    cache is 1 MiB per variable: netCDF's default chunks for a big variable span tens
    of thousands of members, and its default 64 MiB cache per variable would hold the
    whole ensemble until the file closes. Results in memory (a run, or one reused
    from the store, which keeps its file's chunk sizes) are written as they are, with
    no Dask: the command line keeps Dask out of the commands that do not use it.
    """
    import netCDF4

    encoding = {}
    for name, variable in results.data_vars.items():
        encoding[name] = dict(PLAIN_COMPRESSION)
        stored = variable.encoding.get("chunksizes")
        if stored and len(stored) == variable.ndim:  # no larger than the dims, should the results be a selection
            encoding[name]["chunksizes"] = tuple(max(1, min(size, length)) for size, length in zip(stored, variable.shape))
    default = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(2**20)
    try:
        results.to_netcdf(path, engine="netcdf4", encoding=encoding)
    finally:
        netCDF4.set_chunk_cache(*default)


def private_name(prefix: str = STAGING) -> str:
    """A name for this process's temporary file or folder: ``PREFIX<host>-<pid>-<random>``, so
    :func:`remove_abandoned` can tell, after a kill no cleanup survives, that its owner is gone."""
    return f"{prefix}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"


def remove_abandoned(root: Path, prefix: str = STAGING, older_than: float | None = None) -> None:
    """Remove what killed processes left in ``root`` under ``prefix``: files and folders named by :func:`private_name`
    whose process on this machine is gone, and, with ``older_than`` (seconds), any of them (another machine's, or
    named otherwise) not modified for that long. Saves, streams and translations killed outright leave these."""
    import time

    host = socket.gethostname()
    try:
        found = list(root.glob(f"{prefix}*"))
    except OSError:
        return
    for path in found:
        owner, _, pid = path.name[len(prefix) :].rpartition("-")[0].rpartition("-")
        try:
            stale = older_than is not None and time.time() - path.lstat().st_mtime > older_than
        except OSError:  # gone already: another process cleaned it
            continue
        if stale or (owner == host and pid.isdigit() and not _running(int(pid))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours to signal
        return True
    return True


def _rename_into_place(temporary: Path, root: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        final = root / (f"{stamp}-{name}" if attempt == 1 else f"{stamp}-{name}-{attempt}")
        try:
            os.rename(temporary, final)  # fails on an existing, non-empty folder: another run took the name
            return final
        except OSError:
            if not final.exists():
                raise
    raise OSError(f"no free run folder name for {stamp}-{name}")


def _describe(path: Path) -> dict:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}  # hashed in blocks: it may be a whole ensemble


def _fsync(*paths: Path) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


#: what each command saves, as a run's manifest names it
KINDS = ("run", "compare", "sweep", "uncertainty", "sensitivity", "robustness", "discovery", "search")
#: the command that saves each kind of run, where it is not the kind's own name
SAVED_BY = {"discovery": "discover", "search": "search-policy"}
#: the runs that hold scenarios over time, one trajectory each: what plot, export and report read
TRAJECTORY_KINDS = ("run", "compare")


class WrongRunKind(InputError):
    """A saved run of a kind the command cannot read (a sensitivity run given to plot, say)."""


def find_run(ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None, kinds: Collection[str] | None = None) -> Path:
    """A run folder from a path, a folder name in the store, a unique prefix of one, ``latest`` or ``latest:KIND``.

    With ``kinds`` (what the caller can read), ``latest`` is the latest run of one
    of them, and a run of another kind is refused with its kind named: "latest"
    was once a sensitivity run, and plot said its variable did not exist.
    """
    text = str(ref)
    if not text.strip():  # a prefix every run has: `runs show ""` showed one
        raise InputError(
            source="RUN",
            key=text,
            problem="is empty",
            fix="give a run's folder, name, prefix or `latest` (see `sdmodel runs list`)",
        )
    wanted_kind = text.split(":", 1)[1] if text.startswith("latest:") else None
    if wanted_kind is not None and wanted_kind not in KINDS:
        raise InputError(
            source=text,
            key=None,
            problem=f"unknown kind of run '{wanted_kind}'",
            fix=f"choose one of: {', '.join(f'latest:{k}' for k in KINDS)}",
        )
    path = Path(ref)
    if path.name == RESULTS:
        path = path.parent
    if (path / MANIFEST).is_file():
        return _of_kind(path, text, kinds)
    root = resolve_runs_dir(runs_dir)
    runs = [p for p in sorted(root.glob("*")) if (p / MANIFEST).is_file() and not p.name.startswith(".")] if root.is_dir() else []
    if text == "latest" or wanted_kind:
        # by saving order, not name: two runs saved in the same second sort by name otherwise
        newest_first = sorted(runs, key=lambda p: ((p / MANIFEST).stat().st_mtime_ns, p.name), reverse=True)
        accepted = [wanted_kind] if wanted_kind else kinds
        for folder in newest_first:
            kind = _kind(folder)
            if kind is not None and (accepted is None or kind in accepted):  # a damaged manifest has no kind: never "the latest"
                return _of_kind(folder, text, kinds)
        if newest_first:
            raise InputError(
                source=text, key=None, problem=f"no run of {_either(accepted or KINDS)} in {root}", fix="save one first"
            )
    matches = [p for p in runs if p.name == text] or [p for p in runs if p.name.startswith(text)]
    if len(matches) == 1:
        return _of_kind(matches[0], text, kinds)
    problem = "matches several runs" if matches else "no such run"
    raise InputError(source=text, key=None, problem=f"{problem} in {root}", fix="see `sdmodel runs list` for the run names")


def _kind(folder: Path) -> str | None:
    """A run's kind from its manifest; None if the manifest cannot say (damaged: whoever reads the run reports it)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        _check_manifest_shape(manifest, folder / MANIFEST)
        return str(manifest.get("kind", "run"))
    except (OSError, ValueError, AttributeError, TypeError):  # InputError is a ValueError; a list or null is not an object
        return None


def _of_kind(folder: Path, ref: str, kinds: Collection[str] | None) -> Path:
    """The folder, if its run is of a kind the caller can read, or of no kind it can tell (named, a damaged run
    is given to the reader, which says what is wrong with it; as ``latest`` it is passed over)."""
    kind = _kind(folder)
    if kinds is None or kind is None or kind in kinds:
        return folder
    fix = "give one of those: `latest` is the latest such, `sdmodel runs list` names them all"
    raise WrongRunKind(
        source=ref,
        key=None,
        problem=f"{folder.name} is a run of {_either([kind])}; this command reads runs of {_either(kinds)}",
        fix=fix,
    )


def _either(kinds: Collection[str]) -> str:
    """'`sdmodel run`, `sdmodel compare` or `sdmodel uncertainty`': the commands that save runs of these kinds."""
    *rest, last = [f"`sdmodel {SAVED_BY.get(kind, kind)}`" for kind in kinds]
    return f"{', '.join(rest)} or {last}" if rest else last


class DamagedRun(InputError):
    """A saved run whose results are not what its manifest says they are."""


def check_intact(folder: Path, manifest: Mapping | None = None) -> dict:
    """The run's manifest, once its ``results.nc`` is shown to be the file the manifest describes.

    Three checks, because each catches what the others miss: the file is a regular file (a
    FIFO named results.nc would hang the reader); its bytes have the checksum the manifest
    recorded (another run's results copied in); and the scenarios and run keys written inside
    it, which that checksum covers, are the manifest's (keys swapped in the manifest, which no
    checksum of results.nc covers). Raises :class:`DamagedRun`, one line, naming the file.
    """
    folder = Path(folder)
    manifest = dict(manifest) if manifest is not None else read_manifest(folder)
    path = folder / RESULTS
    damaged = "the run is damaged; run it again (sdmodel runs prune can remove it)"
    try:
        status = path.stat()
    except OSError as error:
        raise DamagedRun(source=path, key=None, problem=f"cannot read the results ({error.strerror})", fix=damaged) from None
    if not stat.S_ISREG(status.st_mode):
        raise DamagedRun(source=path, key=None, problem="is not a regular file", fix=damaged)
    recorded = (manifest.get("files") or {}).get(RESULTS) if isinstance(manifest.get("files"), dict) else None
    if not isinstance(recorded, dict) or recorded.get("sha256") != _cached_sha256(path, status):
        raise DamagedRun(source=path, key=None, problem="does not match the checksum in its manifest", fix=damaged)
    inside = _identity(path)
    if inside["scenarios"] != [str(name) for name in manifest.get("scenarios") or []]:
        raise DamagedRun(
            source=folder / MANIFEST, key="scenarios", problem="differ from the scenarios saved in results.nc", fix=damaged
        )
    if inside["run_keys"] != (manifest.get("run_keys") or None):
        raise DamagedRun(
            source=folder / MANIFEST, key="run_keys", problem="differ from the keys saved in results.nc", fix=damaged
        )
    return manifest


def _identity(path: Path) -> dict:
    """The scenario names and run keys written inside a results file (its attributes, not its data)."""
    import netCDF4

    with netCDF4.Dataset(path) as dataset:
        # as the manifest lists them: the scenario dim's names (a sweep's one scenario is a scalar, listed as none)
        scenarios = [str(name) for name in dataset["scenario"][:]] if "scenario" in dataset.dimensions else []
        keys = json.loads(dataset.getncattr("run_keys")) if "run_keys" in dataset.ncattrs() else None
    return {"scenarios": scenarios, "run_keys": keys}


def _cached_sha256(path: Path, status: os.stat_result) -> str:
    """The file's sha256, read in blocks, remembered by path, size and modification time.

    An ensemble's results can be gigabytes: hashing it on every read would cost more than the
    read. A changed file changes its size or mtime, so the cached digest is then not used.
    """
    entry = cache_dir() / "checksums" / hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    stamp = f"{status.st_size} {status.st_mtime_ns} "
    text = read_cache(entry)  # checksummed: a garbled entry is no entry, never a digest that refuses a sound run
    if text is not None and text.startswith(stamp):
        return text[len(stamp) :]
    digest = _describe(path)["sha256"]
    write_cache(entry, stamp + digest)  # a cache that cannot be written only costs the next read a hash
    return digest


def open_run(
    ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None, kinds: Collection[str] | None = None
) -> xr.Dataset:
    """The Dataset a run saved, loaded into memory (the file is closed again); ``kinds`` as :func:`find_run`'s.

    The run is checked first (:func:`check_intact`): a results file that is not the one its
    manifest describes is refused, never read as if it were.
    """
    folder = find_run(ref, runs_dir, kinds)
    check_intact(folder)
    path = folder / RESULTS
    try:
        return read_results(path)
    except (OSError, ValueError) as error:
        raise InputError(
            source=path, key=None, problem=f"cannot read the results ({error})", fix="the run is damaged; run it again"
        ) from None


def read_results(path: str | os.PathLike) -> xr.Dataset:
    """A ``results.nc`` as the Dataset that was saved, in memory, whichever layout it was written in."""
    with xr.open_dataset(path, engine="netcdf4") as dataset:
        return stacking.unstack(dataset.load())


def copy_plain(folder: str | os.PathLike, destination: str | os.PathLike) -> None:
    """A run's results as a NetCDF file of one variable per model variable, as every run was saved before stacking.

    Exports give this layout whatever the store's: a file of the old layout is copied as it
    is, a stacked one is unstacked and written as :func:`write_plain` wrote it then.
    """
    source = Path(folder) / RESULTS
    check_intact(Path(folder))
    with xr.open_dataset(source, engine="netcdf4") as stored:
        if not stacking.is_stacked(stored):
            shutil.copyfile(source, destination)
            return
        results = stacking.unstack(stored.load())
    write_plain(results, destination)


def read_manifest(ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> dict:
    """A run's manifest, with its folder added as ``path``."""
    folder = find_run(ref, runs_dir)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(
            source=folder / MANIFEST,
            key=None,
            problem=f"cannot read the manifest ({error})",
            fix="the run is damaged; remove its folder",
        ) from None
    if not isinstance(manifest, dict):
        raise InputError(
            source=folder / MANIFEST,
            key=None,
            problem="the manifest is not a JSON object",
            fix="the run is damaged; remove its folder",
        )
    _check_manifest_shape(manifest, folder / MANIFEST)
    return {"path": str(folder), **manifest}


def _is_names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_name_table(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


#: what each field of a manifest must be, for every reader that trusts it (None: optional)
MANIFEST_SHAPE = {
    "kind": (lambda value: value in KINDS, "one of " + ", ".join(KINDS), False),  # runs saved before kinds existed are runs
    "scenarios": (_is_names, "a list of scenario names", True),
    "files": (lambda value: isinstance(value, dict), "a table of files", True),
    "run_keys": (_is_name_table, "a table of scenario -> key", False),
    "reused_from": (_is_name_table, "a table of scenario -> run folder", False),
    # provenance that `runs show` and the report print as text
    **{key: (lambda value: isinstance(value, str), "text", False) for key in ("name", *MANIFEST_ATTRS)},
}


def _check_manifest_shape(manifest: dict, path: Path) -> None:
    """A manifest whose fields are what the readers expect, or one line naming the field (never a TypeError later)."""
    for key, (valid, expected, required) in MANIFEST_SHAPE.items():
        if key not in manifest:
            if required:
                raise InputError(source=path, key=key, problem="is missing", fix="the run is damaged; remove its folder")
        elif not valid(manifest[key]):
            raise InputError(source=path, key=key, problem=f"is not {expected}", fix="the run is damaged; remove its folder")


def run_folders(runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """The saved runs' folders, oldest first."""
    root = resolve_runs_dir(runs_dir)
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir()) if not p.name.startswith(".") and (p / MANIFEST).is_file()]


def list_runs(runs_dir: str | os.PathLike | None = None, damaged: list[InputError] | None = None) -> list[dict]:
    """Manifests of the saved runs, oldest first.

    A run whose manifest cannot be read is left out and, if ``damaged`` is given, its error
    appended there: one damaged run must not hide the intact ones. Without ``damaged`` the
    first such error is raised.
    """
    manifests = []
    for folder in run_folders(runs_dir):
        try:
            manifests.append(read_manifest(folder))
        except InputError as error:
            if damaged is None:
                raise
            damaged.append(error)
    return manifests


def touch_run(folder: Path) -> bool:
    """Make a saved run the latest again (``latest`` goes by its manifest's time), without rewriting it.

    A comparison that computed nothing new points at the run that holds it instead of
    saving a copy; this keeps ``latest`` the comparison just shown. One system call,
    atomic; False if the store is not ours to change (then the caller saves a copy).
    """
    try:
        os.utime(folder / MANIFEST)
        return True
    except OSError:
        return False


def last_used(folder: Path) -> float:
    """When a run was saved, or last answered a command (:func:`touch_run`), in seconds since the epoch."""
    return (folder / MANIFEST).stat().st_mtime


def runs_to_prune(
    runs_dir: str | os.PathLike | None = None, *, keep: int | None = None, older_than_days: float | None = None
) -> list[Path]:
    """The runs beyond the ``keep`` most recently used and last used over ``older_than_days`` ago, oldest first.

    Each option spares runs, so given both a run goes only when neither spares it.
    Recency is ``latest``'s (:func:`last_used`): a run a comparison pointed at
    yesterday is recent however old its folder's name.
    """
    import time

    newest_first = sorted(run_folders(runs_dir), key=lambda p: (last_used(p), p.name), reverse=True)
    spared = set(newest_first[:keep]) if keep is not None else set()
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * 86400
        spared |= {folder for folder in newest_first if last_used(folder) >= cutoff}
    return [folder for folder in reversed(newest_first) if folder not in spared]


def remove_run(folder: Path) -> None:
    """Delete a run's folder as a whole: renamed aside in one step, then removed.

    Whoever reads the store sees the run or nothing, never half of it; should the removal
    itself be killed, the folder aside is named like an abandoned save's and the next
    save removes it.
    """
    aside = folder.parent / private_name()
    try:
        os.rename(folder, aside)
    except OSError as error:
        raise InputError(
            source=folder, key=None, problem=f"cannot remove the run ({error.strerror})", fix="check the folder's permissions"
        ) from None
    shutil.rmtree(aside, ignore_errors=True)
