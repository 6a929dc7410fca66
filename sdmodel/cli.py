"""The ``sdmodel`` command: policy experiments on the AI-power model from a terminal.

Each command is a thin shell over the Python API. Heavy libraries are imported
inside the commands, so ``sdmodel --help`` answers at once. Bad input ends in one
line on stderr and exit code 2; a failed model run in exit code 1.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import warnings
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import click

from sdmodel import atomic
from sdmodel.errors import InputError, ModelRunError, NonFiniteWarning, Note
from sdmodel.locations import RUNS_DIR_ENV


class _Group(click.Group):
    """Turns domain errors into one line and an exit code, never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["sdmodel.argv"] = ["sdmodel", *args]  # for provenance, also under CliRunner
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", NonFiniteWarning)
                warnings.simplefilter("always", Note)
                warnings.showwarning = _show_warning(warnings.showwarning)
                return super().invoke(ctx)
        except InputError as error:
            click.echo(f"sdmodel: error: {error}", err=True)
            raise click.exceptions.Exit(2) from None
        except ModelRunError as error:
            click.echo(f"sdmodel: run failed: {error}", err=True)
            raise click.exceptions.Exit(1) from None
        except click.UsageError as error:  # click's own three lines (usage, hint, error) as one, like every other error
            where = error.ctx.command_path if error.ctx else "sdmodel"
            click.echo(f"sdmodel: error: {error.format_message().rstrip('.')}; see `{where} --help`", err=True)
            raise click.exceptions.Exit(2) from None


#: a random seed numpy and SALib accept and a NetCDF attribute can hold (-1 and 2**64 failed, the latter after every member ran)
SEED = click.IntRange(0, 2**32 - 1)


class FloatRange(click.FloatRange):
    """click's FloatRange, refusing NaN, which every comparison with a bound lets through: `runs prune --older-than nan`
    removed every run, and `discover --threshold nan` was a traceback."""

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class OutputFile(click.ParamType):
    """A figure or report to write: its suffix one of ``suffixes`` and its folder there, checked as the option is read,
    before any work (found after the run, a bad name cost minutes and left a saved run without its figure)."""

    name = "file"

    def __init__(self, *suffixes: str):
        self.suffixes = suffixes

    def convert(self, value, param, ctx) -> str:
        atomic.check_target(value, self.suffixes, param.opts[0] if param is not None else "--out")
        return str(value)


HTML = OutputFile(".html")
FIGURE = OutputFile(".html", ".png")


def _show_warning(others):
    """A ``warnings.showwarning`` that prints sdmodel's own warnings (a model's NaN kept as a result) as one line on
    stderr, and leaves every other warning to ``others``, the handler in place before (Python's, or pytest's)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, NonFiniteWarning):
            click.echo(f"sdmodel: warning: {message}", err=True)
        elif issubclass(category, Note):
            click.echo(f"sdmodel: note: {message}", err=True)
        else:
            others(message, category, filename, lineno, file, line)

    return show


@click.group(cls=_Group)
@click.version_option(package_name="sdmodel")
def main() -> None:
    """Policy experiments on a system-dynamics model of compute, data and economic power around AI.

    Start with `sdmodel compare`: it runs every bundled scenario and compares each with the baseline.
    """


runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    envvar=RUNS_DIR_ENV,
    show_envvar=True,
    help="Folder of saved runs [default: ./runs].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
fresh_option = click.option(
    "--fresh",
    is_flag=True,
    help="Run every scenario, even one whose results a saved run already holds (PySD reuses them otherwise).",
)
model_option = click.option(
    "--model", type=click.Path(dir_okay=False), help="A Vensim .mdl or XMILE .xmile model [default: the bundled ai_power.mdl]."
)
final_time_option = click.option("--final-time", type=float, help="Last year to simulate.")
pysd_jobs_option = click.option("--jobs", type=click.IntRange(min=1), help="PySD worker processes [default: one per core].")


def set_option(each: str = "scenario"):
    """``--set``: what it applies to reads differently for scenarios and ensemble members."""
    return click.option(
        "--set", "assignments", multiple=True, metavar="NAME=VALUE", help=f"Set a constant in every {each} (repeatable)."
    )


def samples_option(default: int, help: str, minimum: int = 1):
    """``--samples``: how many draws (or SALib's N), at least ``minimum``."""
    return click.option("--samples", type=click.IntRange(min=minimum), default=default, show_default=True, help=help)


def engine_option(default: str):
    """``--engine``: PySD is the default where the reference answer matters, Simlin where thousands of runs do."""
    compiled = "compiled: the model in C, about 10x faster than simlin and held to it (needs node, npm and a C compiler)"
    help = {
        "pysd": f"pysd: the reference; simlin: a fast engine held to PySD by parity tests; {compiled}; fast: compiled "
        "where it can run, else simlin.",
        "simlin": f"simlin: fast, held to PySD by parity tests; pysd: the reference (seconds per run); {compiled}; "
        "fast: compiled where it can run, else simlin.",
        "fast": f"fast: compiled where it can run, else simlin (a note says why); {compiled}; simlin: held to PySD by "
        "parity tests; pysd: the reference (seconds per run).",
    }[default]
    choices = click.Choice(["pysd", "simlin", "compiled", "fast"])
    return click.option("--engine", type=choices, default=default, show_default=True, help=help)


def options(*decorators):
    """Apply click options in the order listed, which is the order ``--help`` shows them."""

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


#: the options of the commands that run scenarios once (run, compare, export)
run_options = options(
    model_option,
    set_option(),
    final_time_option,
    engine_option("pysd"),
    pysd_jobs_option,
    fresh_option,
    runs_dir_option,
    json_option,
)


def _overrides(assignments: tuple[str, ...]) -> dict[str, float]:
    from sdmodel.scenario import parse_assignments

    return parse_assignments(assignments)


def _grouped(command):
    """The command called with ``setup`` (sdmodel.options.RunSetup: --model, --set, --final-time, --engine) and
    ``execution`` (sdmodel.options.Execution: --jobs, --scheduler, --dask-local) instead of those options."""

    @functools.wraps(command)
    def grouped(*args, model, final_time, engine, jobs, scheduler, dask_local, assignments=(), **kwargs):
        from sdmodel.options import Execution, RunSetup

        setup = RunSetup(model=model, overrides=_overrides(assignments), final_time=final_time, engine=engine)
        execution = Execution(jobs=jobs, scheduler=scheduler, dask_local=dask_local)
        return command(*args, setup=setup, execution=execution, **kwargs)

    return grouped


def _announce(engine: str) -> None:
    """PySD takes half a minute to minutes per run: say so on a terminal, so a long wait is not mistaken for a hang
    (the progress bar then says how long these runs should take, from the last run measured on this machine)."""
    if engine == "pysd":
        from sdmodel.progress import announce

        announce(
            "running through PySD, the reference engine: half a minute to minutes per scenario not already saved, one "
            "per core; --engine simlin gives the same table in seconds"
        )


def _reused(results) -> dict[str, str]:
    """Which scenarios were read from which saved run instead of run (sdmodel.reuse)."""
    return json.loads(results.attrs.get("reused_from", "{}"))


def _reuse_note(results) -> str:
    reused = _reused(results)
    if not reused:
        return ""
    runs = sorted(set(reused.values()))
    return f" ({len(reused)} of {results.sizes['scenario']} scenarios reused from {', '.join(runs)}; --fresh runs them again)"


def _run_options(model, assignments, final_time, engine, jobs, fresh, runs_dir) -> dict:
    """The options of `run`, `compare` and `report` as :func:`sdmodel.simulate.run` takes them."""
    return {
        "model": model,
        "overrides": _overrides(assignments),
        "final_time": final_time,
        "engine": engine,
        "jobs": jobs,
        "command": _command(),
        "reuse": not fresh,
        "runs_dir": runs_dir,
    }


def _command() -> str:
    from sdmodel.provenance import command_line

    return command_line(click.get_current_context().meta.get("sdmodel.argv"))


data_option = click.option(
    "--data",
    "data_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A .tab, .csv or .xlsx file with values of the model's data variables (PySD's data_files; repeatable; pysd engine).",
)


@main.command("run")
@click.argument("scenarios", nargs=-1)
@run_options
@data_option
def run_command(scenarios, model, assignments, final_time, engine, jobs, fresh, runs_dir, as_json, data_files):
    """Run SCENARIOS (bundled names or TOML files; default: baseline) and save the run.

    With --model, NaN the model computes (Vensim's :NA:, an element left undefined) is saved as it is, with a warning;
    on the bundled model it is an error, and an infinity (overflow) is on any model."""
    from sdmodel.reuse import save_once
    from sdmodel.simulate import run

    names = scenarios or ("baseline",)
    _announce(engine)
    results = run(names, data=data_files, **_run_options(model, assignments, final_time, engine, jobs, fresh, runs_dir))
    labels = [str(s) for s in results["scenario"].values]
    path, saved = save_once(results, labels[0] if len(labels) == 1 else f"{labels[0]}+{len(labels) - 1}", "run", runs_dir)
    if as_json:
        click.echo(json.dumps({"run": str(path), "scenarios": labels, "reused_from": _reused(results), "saved": saved}))
    else:
        period = f"{float(results['time'][0]):g}-{float(results['time'][-1]):g}"
        headline = _headline(results, "baseline" if "baseline" in labels else labels[0])
        click.echo(
            (f"{headline}\n" if headline else "")
            + f"Ran {', '.join(labels)} ({period}); "
            + _saved_note(path, saved, results, "its results are")
        )


def _headline(results, baseline: str) -> str:
    """The comparison's table of a run's measures at its final time, if its model has any (a model of one's own may not)."""
    from sdmodel.metrics import compare_metrics, format_table

    try:
        return format_table(compare_metrics(results, baseline))
    except InputError:
        return ""


@main.command("compare")
@click.argument("scenarios", nargs=-1)
@click.option("--baseline", default="baseline", show_default=True, help="Scenario to compare against.")
@click.option("--plot", "plot_file", type=HTML, help="Also write key trajectories to this .html file.")
@run_options
@data_option
def compare_command(
    scenarios, baseline, plot_file, model, assignments, final_time, engine, jobs, fresh, runs_dir, as_json, data_files
):
    """Compare SCENARIOS with the baseline (default: every bundled scenario; with --model, those the model can run). The main job."""
    from sdmodel.metrics import compare_and_save, format_table, to_json

    if model and not scenarios:
        scenarios = _scenarios_for(model, engine)
    _announce(engine)
    options = _run_options(model, assignments, final_time, engine, jobs, fresh, runs_dir)
    results, metrics, path, saved = compare_and_save(scenarios or None, baseline=baseline, data=data_files, **options)
    if plot_file:
        from sdmodel.plots import comparison_figure, save_html

        save_html(comparison_figure(results), plot_file)
    if as_json:
        click.echo(json.dumps({**to_json(metrics, path), "reused_from": _reused(results), "saved": saved}, indent=2))
    else:
        click.echo(format_table(metrics))
        click.echo(_saved_note(path, saved, results) + (f"; figure {plot_file}" if plot_file else ""))


def _saved_note(path: Path, saved: bool, results, what: str = "the comparison is") -> str:
    """Where the results are: a new run, or the run that already held them."""
    if saved:
        return f"saved {path}{_reuse_note(results)}"
    return f"nothing new: {what} run {path}, now the latest (every scenario reused; --fresh runs them again)"


def _scenarios_for(model: str, engine: str) -> tuple[str, ...]:
    """The bundled scenarios a model of the user's own can run, saying on stderr which it cannot and why."""
    from sdmodel.simulate import bundled_scenarios_for

    fitting, skipped = bundled_scenarios_for(model, engine)
    if skipped:
        click.echo(
            f"{model}: comparing the {len(fitting)} bundled scenarios it can run ({', '.join(s.name for s in fitting)}); "
            f"{len(skipped)} set constants it lacks ({', '.join(skipped)}): name one to see which",
            err=True,
        )
    return tuple(scenario.name for scenario in fitting)


@main.group("scenarios")
def scenarios_group() -> None:
    """List, show and validate scenario files."""


@scenarios_group.command("list")
@json_option
def scenarios_list_command(as_json):
    """The bundled scenarios and what each means."""
    from sdmodel.scenario import bundled_scenarios, load_scenario

    loaded = [load_scenario(name) for name in bundled_scenarios()]
    if as_json:
        click.echo(json.dumps([{"name": s.name, "description": s.description, "file": s.source} for s in loaded], indent=2))
        return
    width = max(len(s.name) for s in loaded)
    for scenario in loaded:
        click.echo(f"{scenario.name.ljust(width)}  {scenario.description}")


@scenarios_group.command("show")
@click.argument("scenario")
@click.option("--variables", is_flag=True, help="Also list the model constants a scenario can set.")
@click.option("--model", type=click.Path(dir_okay=False), help="Model for --variables [default: the bundled model].")
def scenarios_show_command(scenario, variables, model):
    """Print SCENARIO with `extends` resolved, as TOML."""
    import tomli_w

    from sdmodel.scenario import load_scenario

    loaded = load_scenario(scenario)
    click.echo(f"# {loaded.source}")
    click.echo(tomli_w.dumps(loaded.to_dict()).rstrip())
    if variables:
        from sdmodel.engines.simlin_structure import canonical, equations
        from sdmodel.locations import default_model
        from sdmodel.model import TIME_CONTROLS
        from sdmodel.simulate import model_info

        model_path = model or default_model()
        info = model_info(model_path)
        try:
            written = equations(model_path)  # the values, read by Simlin
        except Exception:  # noqa: BLE001 - a model PySD reads and Simlin cannot: the list stands without its values
            written = {}
        click.echo("\n# constants that [params] can set: name [units] range = the model's value (unit conversions left out)")
        for variable in sorted(info.variables.values(), key=lambda v: v.name.lower()):
            if variable.kind == "constant" and variable.py_name not in TIME_CONTROLS and not variable.is_unit_conversion:
                dims = f"[{','.join(variable.dims)}]" if variable.dims else ""
                value = written.get(canonical(variable.name), "")
                click.echo(
                    f"#   {variable.name}{dims} [{variable.units}] {variable.lower:g}..{variable.upper:g}"
                    + (f" = {value}" if value else "")
                )


@scenarios_group.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--model", type=click.Path(dir_okay=False), help="Model to check against [default: the bundled model].")
def scenarios_validate_command(files, model):
    """Check scenario FILES against the model without running it."""
    from sdmodel.simulate import prepare

    for file in files:
        prepared = prepare([file], model=model)
        click.echo(f"{file}: ok ({prepared.scenarios[0].name}: {len(prepared.specs[0].settings)} parameter(s) set)")


@main.group("runs")
def runs_group() -> None:
    """List, show and prune saved runs."""


@runs_group.command("list")
@runs_dir_option
@json_option
def runs_list_command(runs_dir, as_json):
    """Saved runs, oldest first."""
    from sdmodel.store import list_runs

    damaged: list[InputError] = []
    manifests = list_runs(runs_dir, damaged)
    for error in damaged:  # named, not hiding the intact runs
        click.echo(f"sdmodel: damaged run: {error}", err=True)
    if as_json:
        click.echo(json.dumps(manifests, indent=2))
        return
    if not manifests and not damaged:
        click.echo("no saved runs yet: try `sdmodel compare`")
    for manifest in manifests:
        name = manifest["path"].rsplit("/", 1)[-1]
        click.echo(f"{name}  {manifest.get('kind', 'run'):<8} {', '.join(manifest['scenarios'])}")


@runs_group.command("show")
@click.argument("run")
@runs_dir_option
@json_option
def runs_show_command(run, runs_dir, as_json):
    """A saved RUN's provenance and contents (RUN: folder, name, prefix or 'latest')."""
    from sdmodel.store import last_used, open_run, read_manifest

    manifest = read_manifest(run, runs_dir)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    for key in (
        "path",
        "kind",
        "scenarios",
        "created",
        "command",
        "engine",
        "engine_version",
        "model_file",
        "model_sha256",
        "git_commit",
    ):
        value = manifest.get(key, "")
        click.echo(f"{key:>15}: {', '.join(value) if isinstance(value, list) else value}")
    click.echo(f"{'last used':>15}: {_utc(last_used(Path(manifest['path'])))}")
    for source in sorted(set(manifest.get("reused_from", {}).values())):
        names = [name for name, origin in manifest["reused_from"].items() if origin == source]
        gone = "" if (Path(manifest["path"]).parent / source).is_dir() else " (since removed; the values are in this run)"
        click.echo(f"{'reused':>15}: {', '.join(names)} from {source}{gone}")
    dataset = open_run(manifest["path"])
    dims = ", ".join(f"{dim}={size}" for dim, size in dataset.sizes.items())
    click.echo(f"{'contents':>15}: {len(dataset.data_vars)} variables over {dims}")


def _utc(seconds: float) -> str:
    """A time as the manifests write theirs."""
    from datetime import datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@runs_group.command("prune")
@click.option("--keep", type=click.IntRange(min=0), metavar="N", help="Keep the N most recently used runs.")
@click.option("--older-than", type=FloatRange(min=0), metavar="DAYS", help="Remove the runs last used more than DAYS days ago.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@runs_dir_option
def runs_prune_command(keep, older_than, dry_run, runs_dir):
    """Remove saved runs, each folder as a whole. With both options a run goes only when neither keeps it.

    A run is used when saved, and again when a command answers from it (a `compare` that computed nothing
    new); `latest` is the most recently used. A run whose scenarios others reused may go: they hold copies.
    """
    from sdmodel.store import last_used, remove_run, runs_to_prune

    if keep is None and older_than is None:
        raise InputError(
            source="runs prune",
            key=None,
            problem="no rule for what to remove",
            fix="give --keep N (the N most recently used stay), --older-than DAYS, or both",
        )
    doomed = runs_to_prune(runs_dir, keep=keep, older_than_days=older_than)
    total = 0
    for folder in doomed:
        size, used = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()), _utc(last_used(folder))
        if not dry_run:
            remove_run(folder)
        total += size
        click.echo(f"{'would remove' if dry_run else 'removed'} {folder.name}  (last used {used}, {size / 1e6:.1f} MB)")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{len(doomed)} run(s), {verb} {total / 1e6:.1f} MB" if doomed else "nothing to remove")


#: how an ensemble's members run (sdmodel.options.Execution): processes or a Dask cluster
execution_options = options(
    click.option("--jobs", type=click.IntRange(min=1), help="Worker processes [default: one per core]; 1 runs in this process."),
    click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on an existing Dask cluster."),
    click.option(
        "--dask-local", type=click.IntRange(min=1), metavar="N", help="Start a Dask LocalCluster of N workers and run on it."
    ),
)


def _any_size(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--yes``: lift the ensembles' size limits for this command only (sdmodel.ensemble.any_size)."""
    if value:
        from sdmodel.ensemble import any_size

        ctx.with_resource(any_size())


yes_option = click.option(
    "--yes",
    is_flag=True,
    expose_value=False,
    callback=_any_size,
    help="Run an ensemble past the size limits (1e9 model steps, 4 GiB of outputs) instead of refusing it.",
)

#: the options of the ensemble commands (sweep, uncertainty, robustness, sensitivity), handed to the command grouped
ensemble_options = options(
    click.option(
        "--output",
        "outputs",
        multiple=True,
        metavar="VAR",
        help="Keep this output: a metric key (e.g. hhi), a variable, or NAME[element] (repeatable) "
        "[default: the comparison metrics].",
    ),
    model_option,
    set_option("member"),
    final_time_option,
    engine_option("fast"),
    execution_options,
    runs_dir_option,
    json_option,
    yes_option,
    _grouped,
)


def _drawn(kind: str, samples: int, seed: int, setup, results) -> dict:
    """The manifest's record of an ensemble of draws (uncertainty, robustness)."""
    return {
        "kind": kind,
        "samples": samples,
        "seed": seed,
        "engine": results.attrs.get("engine", setup.engine),  # the engine that ran, "fast" resolved
        "distributions": results.attrs["distributions_toml"],
    }


def _save_ensemble(results, name: str, runs_dir, kind: str, extra: dict, saved=None) -> Path:
    """Save an ensemble's run (``saved``: what of it to save, by default all), then say how many members failed."""
    from sdmodel.store import save_run

    path = save_run(results if saved is None else saved, name, runs_dir, kind=kind, extra=extra)
    _ensemble_failed_check(results)
    return path


def _ensemble_failed_check(results) -> None:
    failed = int(results["failed"].sum())
    if failed:
        first = str(results["error"].values[results["failed"].values][0])
        click.echo(
            f"sdmodel: warning: {failed} of {results['failed'].size} members failed (kept as NaN); the first: {first}", err=True
        )


@main.command("sweep")
@click.argument("scenario", required=False)
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="NAME=LO:HI:N",
    help="Sweep a constant over N evenly spaced values from LO to HI (repeat for a grid of up to three).",
)
@click.option(
    "--plot",
    "plot_path",
    type=FIGURE,
    default=None,
    help="Also draw each output at the final time against the first swept constant (.html or .png).",
)
@ensemble_options
def sweep_command(scenario, params, plot_path, outputs, setup, execution, runs_dir, as_json):
    """Run SCENARIO (default: baseline) over a grid of constants, and save the run.

    The results have one dim per swept constant (its python name, the values as coordinates).
    """

    from sdmodel.ensemble import format_sweep, streamed, sweep, sweep_json, sweep_run_name

    with streamed(runs_dir) as stream:
        results = sweep(
            list(params),
            scenario or "baseline",
            outputs=outputs,
            setup=setup,
            execution=replace(execution, store=stream),
            command=_command(),
        )
        with results:
            name = sweep_run_name(results)
            summary = sweep_json(results)
            extra = {
                "ensemble": {
                    "kind": "sweep",
                    "scenario": summary["scenario"],
                    "grid": results.attrs["grid"],
                    "engine": results.attrs.get("engine", setup.engine),  # the engine that ran, "fast" resolved
                }
            }
            path = _save_ensemble(results, name, runs_dir, "sweep", extra)
            text = format_sweep(results)
            if plot_path:
                from functools import reduce
                from operator import add

                from sdmodel.ensemble import ensemble_outputs
                from sdmodel.plots import save_figure, sweep_figure

                figure = reduce(add, [sweep_figure(results, output.key) for output in ensemble_outputs(results)]).cols(2)
                save_figure(figure, plot_path, title=f"sdmodel sweep: {summary['scenario']}")
    if as_json:
        click.echo(json.dumps({**summary, "run": str(path)}, indent=2))
    else:
        click.echo(text)
        click.echo(f"saved {path}")


@main.command("uncertainty")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("scenarios", nargs=-1)
@samples_option(100, "Members per scenario.")
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the Latin hypercube: the same seed gives the same results."
)
@ensemble_options
def uncertainty_command(
    file,
    scenarios,
    samples,
    seed,
    outputs,
    setup,
    execution,
    runs_dir,
    as_json,
):
    """Monte Carlo: sample the constants in FILE (a distributions TOML) and run SCENARIOS (default: baseline).

    FILE holds one table per uncertain assumption, e.g. [params."share sensitivity"] with
    dist = "uniform", lower = 2, upper = 8 (also triangular, normal, truncnormal, lognormal);
    models/assumptions.toml holds the model's main ones. A policy's own lever is not drawn.
    Prints the 5/25/50/75/95 percentiles of the outputs at the final time and saves the run.
    """

    from sdmodel.ensemble import bands_json, format_bands, percentile_bands, streamed, uncertainty

    with streamed(runs_dir) as stream:
        results = uncertainty(
            file,
            scenarios or ("baseline",),
            samples=samples,
            seed=seed,
            outputs=outputs,
            setup=setup,
            execution=replace(execution, store=stream),
            command=_command(),
        )
        with results:
            bands = percentile_bands(results)
            summary = bands_json(bands)
            extra = {"ensemble": _drawn("uncertainty", samples, seed, setup, results), "bands": summary}
            path = _save_ensemble(results, f"uncertainty-{Path(file).stem}", runs_dir, "uncertainty", extra)
    if as_json:
        click.echo(json.dumps({**summary, "run": str(path)}, indent=2))
    else:
        click.echo(format_bands(bands))
        click.echo(f"saved {path}")


@main.command("robustness")
@click.argument("file", metavar="ASSUMPTIONS.toml", type=click.Path(dir_okay=False))
@click.argument("policies", nargs=-1, metavar="[POLICY]...")
@click.option(
    "--criterion",
    "criteria",
    multiple=True,
    required=True,
    metavar="EXPR",
    help='What a policy should achieve, e.g. "labour_share@2040 - baseline >= 0.01" or "hhi@2040 < 0.4" (repeatable).',
)
@click.option(
    "--maximize",
    multiple=True,
    metavar="EXPR",
    help="An outcome to measure regret on, more being better (repeatable) "
    "[default: the criteria's comparisons say which way is better].",
)
@click.option(
    "--minimize", multiple=True, metavar="EXPR", help="An outcome to measure regret on, less being better (repeatable)."
)
@click.option(
    "--baseline",
    default="baseline",
    show_default=True,
    help="The scenario each policy is compared with (and an alternative in regret).",
)
@samples_option(100, "Draws of the assumptions (every scenario runs each).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the Latin hypercube.")
@click.option("--plot", "plot_path", type=FIGURE, help="Also draw satisficing shares and regret (.html or .png).")
@click.option(
    "--thin",
    is_flag=True,
    help="Save the outputs only at the years the question names and the final time, not over "
    "time (a study of 100,000 draws); discover can then ask criteria at those years only.",
)
@ensemble_options
def robustness_command(
    file,
    policies,
    criteria,
    maximize,
    minimize,
    baseline,
    samples,
    seed,
    plot_path,
    thin,
    outputs,
    setup,
    execution,
    runs_dir,
    as_json,
):
    """Which POLICY holds up across the assumptions in ASSUMPTIONS.toml (default POLICY: every bundled scenario).

    Every policy and the baseline run on the same Latin-hypercube draws. Reports per policy its effect
    on each output against the baseline on the same draw (percentiles), the share of draws meeting each
    --criterion and all of them (satisficing), and its regret (the best alternative's outcome minus its
    own; maximum: Savage's criterion). A criterion: outputs (a measure's key or a variable's python name,
    OUTPUT@YEAR at a year), `baseline` (the baseline's value of the comparison's output on the same draw),
    numbers, + - * /, < <= > >=, and, or, not. Saves the run (`sdmodel discover RUN` reads it).
    """
    from sdmodel.ensemble import streamed
    from sdmodel.robustness import analysis_of, figure, format_table, robustness, run_name, thinned, to_json

    with streamed(runs_dir) as stream:
        results = robustness(
            file,
            list(policies) or None,
            criteria=criteria,
            maximize=maximize,
            minimize=minimize,
            outputs=outputs or None,
            baseline=baseline,
            samples=samples,
            seed=seed,
            setup=setup,
            execution=replace(execution, store=stream),
            command=_command(),
        )
        with results:
            analysis = analysis_of(results).load()
            summary = to_json(analysis)
            extra = {"ensemble": _drawn("robustness", samples, seed, setup, results), "robustness": summary}
            path = _save_ensemble(results, run_name(file), runs_dir, "robustness", extra, thinned(results) if thin else None)
    if plot_path:
        from sdmodel.plots import save_figure

        save_figure(figure(analysis), plot_path, title="sdmodel robustness")
    if as_json:
        click.echo(json.dumps({**summary, "run": str(path), "figure": plot_path}, indent=2))
    else:
        click.echo(format_table(analysis))
        click.echo(f"saved {path}" + (f"; figure {plot_path}" if plot_path else ""))


@main.command("discover")
@click.argument("run")
@click.option("--policy", required=True, help="The policy (a scenario of the run) whose failures to explain.")
@click.option(
    "--criterion",
    "criteria",
    multiple=True,
    metavar="EXPR",
    help="What failing means: the policy does not meet EXPR (repeatable: all of them) [default: the run's criteria].",
)
@click.option(
    "--threshold",
    type=FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="How dense in failures a PRIM box must be.",
)
@click.option(
    "--peel-alpha",
    type=FloatRange(0, 0.5, min_open=True),
    default=0.05,
    show_default=True,
    help="The share of the box PRIM peels at each step.",
)
@click.option(
    "--mass-min",
    type=FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="The smallest box (and CART leaf), as a share of the draws.",
)
@click.option("--boxes", "max_boxes", type=click.IntRange(min=1), default=3, show_default=True, help="Most PRIM boxes to find.")
@runs_dir_option
@json_option
def discover_command(run, policy, criteria, threshold, peel_alpha, mass_min, max_boxes, runs_dir, as_json):
    """Where in the assumptions a policy fails: PRIM boxes and CART leaves over a saved robustness RUN.

    RUN is a run of `sdmodel robustness` (folder, name, prefix, or latest:robustness). A draw fails when
    POLICY does not meet every criterion on it; any criterion can be asked without running the model again.
    """
    from sdmodel.discovery import discover, format_report, to_json
    from sdmodel.robustness import opened
    from sdmodel.store import find_run, save_run

    folder = find_run(run, runs_dir, ("robustness",))
    with opened(folder) as saved:
        found = discover(
            saved,
            policy,
            list(criteria) or None,
            threshold=threshold,
            peel_alpha=peel_alpha,
            mass_min=mass_min,
            max_boxes=max_boxes,
            command=_command(),
            source=folder.name,
        )
    summary = to_json(found)
    path = save_run(found, f"discovery-{policy}", runs_dir, kind="discovery", extra={"discovery": summary})
    if as_json:
        click.echo(json.dumps({**summary, "run": str(path)}, indent=2))
    else:
        click.echo(format_report(found))
        click.echo(f"saved {path}")


@main.command("search-policy")
@click.argument("levers", metavar="LEVERS.toml", type=click.Path(dir_okay=False))
@click.argument("assumptions", metavar="ASSUMPTIONS.toml", type=click.Path(dir_okay=False))
@click.option(
    "--maximize",
    multiple=True,
    metavar="EXPR",
    help="An objective: this outcome's mean over the draws, more being better (repeatable).",
)
@click.option(
    "--minimize",
    multiple=True,
    metavar="EXPR",
    help="An objective: this outcome's mean over the draws, less being better (repeatable).",
)
@click.option(
    "--criterion",
    "criteria",
    multiple=True,
    metavar="EXPR",
    help="An objective: the share of draws meeting EXPR, maximised (repeatable).",
)
@click.option(
    "--base",
    default="baseline",
    show_default=True,
    help="The scenario the levers are set in (`baseline` in an expression means it).",
)
@samples_option(20, "Draws of the assumptions each candidate runs on (the same for all).")
@click.option("--population", type=click.IntRange(min=4), default=20, show_default=True, help="Candidates per generation.")
@click.option("--generations", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the draws and of NSGA-II.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="pareto",
    show_default=True,
    help="Folder for the Pareto set's scenario files (pareto-1.toml, ...).",
)
@options(
    model_option,
    final_time_option,
    engine_option("fast"),
    execution_options,
    runs_dir_option,
    json_option,
    yes_option,
    _grouped,
)
def search_policy_command(
    levers,
    assumptions,
    maximize,
    minimize,
    criteria,
    base,
    samples,
    population,
    generations,
    seed,
    out_dir,
    setup,
    execution,
    runs_dir,
    as_json,
):
    """Search the levers in LEVERS.toml for the Pareto set of policies across the draws of ASSUMPTIONS.toml.

    LEVERS.toml has the format of a distributions file, each lever dist = "uniform" with the range to search.
    NSGA-II (pymoo) proposes candidates; each runs on the same draws of the assumptions; objectives are
    outcomes' means (--maximize, --minimize) and shares of draws meeting criteria (--criterion), at least two.
    The Pareto set is written as scenario files that `sdmodel run` runs, and the search is saved.
    """
    from sdmodel.search import format_table, pareto_scenarios, search_policy, to_json, write_scenarios
    from sdmodel.store import save_run

    found = search_policy(
        levers,
        assumptions,
        criteria=criteria,
        maximize=maximize,
        minimize=minimize,
        base=base,
        samples=samples,
        population=population,
        generations=generations,
        seed=seed,
        setup=setup,
        execution=execution,
        command=_command(),
    )
    files = write_scenarios(pareto_scenarios(found), out_dir)
    summary = to_json(found, None, files)
    path = save_run(found, "search-policy", runs_dir, kind="search", extra={"search": summary})
    summary["run"] = str(path)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_table(summary))
        click.echo(f"wrote {len(files)} scenarios in {out_dir}; saved {path}")


@main.command("sensitivity")
@click.argument("file", metavar="RANGES.toml")
@click.argument("scenario", default="baseline")
@click.option("--method", type=click.Choice(["sobol", "morris", "fast"]), default="sobol", show_default=True)
@samples_option(1024, "SALib's N (Sobol runs N(D+2) members).", minimum=2)
@click.option(
    "--against",
    metavar="SCENARIO",
    help="Analyse the policy effect: SCENARIO's outputs minus this scenario's, on the same draws.",
)
@click.option("--second-order", is_flag=True, help="Also estimate Sobol second-order indices.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@ensemble_options
def sensitivity_command(
    file,
    scenario,
    method,
    samples,
    against,
    second_order,
    seed,
    outputs,
    setup,
    execution,
    runs_dir,
    as_json,
):
    """Which assumptions in RANGES.toml drive each output (VAR or VAR@YEAR) of SCENARIO.

    RANGES.toml has the format of `sdmodel uncertainty`; models/assumptions.toml holds the model's main
    assumptions. SALib samples and estimates the indices, with confidence intervals.
    """
    from sdmodel.sensitivity import format_table, sensitivity, to_json
    from sdmodel.store import save_run

    found = sensitivity(
        file,
        scenario,
        method=method,
        samples=samples,
        outputs=outputs or None,
        against=against,
        second_order=second_order,
        seed=seed,
        setup=setup,
        execution=execution,
        command=_command(),
    )
    path = save_run(found, f"sensitivity-{method}", runs_dir, kind="sensitivity")
    if as_json:
        click.echo(json.dumps(to_json(found, path), indent=2))
    else:
        click.echo(format_table(found))
        click.echo(f"saved {path}")


@main.command("calibrate")
@click.option(
    "--params",
    "params_file",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="RANGES.toml",
    help="Constants to fit and their bounds (uniform ranges), e.g. models/calibration.toml.",
)
@click.option(
    "--data",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE.csv",
    help="Reference series (repeatable) [default: every series under models/data/ that names a variable].",
)
@click.option("--scenario", default="baseline", show_default=True, help="The scenario whose constants are fitted.")
@click.option(
    "--starts",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Starting points (the model's own values, then a Latin hypercube).",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Refit this many resampled data sets for each constant's 95% interval (flags constants the data cannot pin down).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the fitted scenario TOML here [default: print it].")
@model_option
@engine_option("simlin")
@json_option
def calibrate_command(params_file, data, scenario, starts, seed, bootstrap, out, model, engine, as_json):
    """Fit constants to reference series: a scenario with the fitted values, and a fit report."""
    from sdmodel.calibrate import calibrate, format_report

    fit = calibrate(
        params_file,
        list(data) or None,
        scenario=scenario,
        model=model,
        starts=starts,
        seed=seed,
        engine=engine,
        bootstrap=bootstrap,
    )
    text = fit.scenario_toml(command=_command())
    if out:
        try:
            atomic.write_text(out, text)
        except OSError as error:
            raise InputError(
                source="--out", key=str(out), problem=f"cannot write it ({error.strerror})", fix="choose a writable path"
            ) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "values": fit.values,
                    "at_bound": fit.at_bound,
                    "intervals": fit.intervals,
                    "not_identified": fit.not_identified,
                    "report": fit.report,
                    "scenario": out,
                },
                indent=2,
            )
        )
        return
    click.echo(format_report(fit))
    click.echo(f"\nwrote {out}" if out else "\n" + text.rstrip())


@main.command("export")
@click.argument("source", metavar="RUN|SCENARIO")
@click.option("--to", "to", required=True, metavar="cin|tab|dat|csv|netcdf|xmile", help="The format to write.")
@click.option(
    "--out",
    default=".",
    show_default=True,
    type=click.Path(),
    help="Folder to write into (created if missing); or a file name with the format's suffix when the export is one file.",
)
@run_options
def export_command(source, to, out, model, assignments, final_time, engine, jobs, fresh, runs_dir, as_json):
    """Write a saved RUN or a SCENARIO in another tool's format.

    \b
    cin     Vensim changes file of the scenario's constants (one per scenario)
    tab     Vensim tab-delimited dataset, time running down (one per scenario)
    dat     Vensim/SDEverywhere .dat dataset (one per scenario)
    csv     tidy (scenario, variable, subscripts, time, value) and wide tables
    netcdf  the Dataset, as the run store keeps it
    xmile   the model with the scenario applied, for Stella, Simlin and PySD

    A SCENARIO (bundled name or TOML file) is run first when results are needed.
    Files are named after the scenario or the run and printed as they are written.
    """
    from sdmodel.export import export_files

    paths = export_files(
        source,
        to,
        out,
        model=model,
        overrides=_overrides(assignments),
        final_time=final_time,
        runs_dir=runs_dir,
        command=_command(),
        engine=engine,
        reuse=not fresh,
    )
    if as_json:
        click.echo(json.dumps({"files": [str(path) for path in paths]}))
    else:
        for path in paths:
            click.echo(f"wrote {path}")


@main.command("plot")
@click.argument("run")
@click.option(
    "--var",
    "variables",
    multiple=True,
    required=True,
    metavar="NAME",
    help="A variable to draw, by Vensim or python name; NAME[element] for one element (repeatable).",
)
@click.option(
    "--by",
    type=click.Choice(["scenario", "Firm", "Domain"]),
    default="scenario",
    show_default=True,
    help="One line per scenario, firm or domain; the other subscripts get a panel each.",
)
@click.option("--out", required=True, type=FIGURE, help="The figure: .html (self-contained, works offline) or .png.")
@runs_dir_option
def plot_command(run, variables, by, out, runs_dir):
    """Draw variables of a saved RUN (folder, name, prefix or 'latest') over time."""
    from sdmodel.plots import save_figure, variable_figure
    from sdmodel.store import TRAJECTORY_KINDS, open_run

    results = open_run(run, runs_dir, (*TRAJECTORY_KINDS, "uncertainty", "sweep"))  # bands, or a panel per swept value
    path = save_figure(variable_figure(results, list(variables), by=by), out, title=f"sdmodel: {', '.join(variables)}")
    click.echo(f"wrote {path}")


@main.command("loops")
@click.argument("scenarios", nargs=-1)
@model_option
@click.option("--loops", "loops_path", type=click.Path(dir_okay=False), help="The named loops [default: models/loops.toml].")
@set_option()
@final_time_option
@click.option("--baseline", default="baseline", show_default=True, help="Scenario whose dominance the others are compared with.")
@click.option("--plot", "plot_file", type=FIGURE, help="Also draw the dominance chart to this .html or .png file.")
@json_option
def loops_command(scenarios, model, loops_path, assignments, final_time, baseline, plot_file, as_json):
    """Which named feedback loop dominates when, in SCENARIOS (default: every bundled one).

    Loops That Matter scores through Simlin, with the loops of models/loops.toml (R1..R4, B1..B4)
    pinned: does a data strike or collective licensing change which loop drives the system, and when?
    """
    from sdmodel.loops import format_table, loop_dominance, to_json
    from sdmodel.scenario import load_scenario, with_baseline

    if scenarios:  # the baseline too, so that the table says where dominance differs from it
        scenarios = with_baseline(scenarios, baseline)
    baseline = load_scenario(baseline).name  # as the results name it, should --baseline be a file
    dominance = loop_dominance(
        scenarios or None,
        model=model,
        loops=loops_path,
        overrides=_overrides(assignments),
        final_time=final_time,
        command=_command(),
    )
    if plot_file:
        from sdmodel.plots import loop_dominance_figure, save_figure

        save_figure(loop_dominance_figure(dominance), plot_file, title="sdmodel: loop dominance")
    if as_json:
        click.echo(json.dumps(to_json(dominance, baseline), indent=2))
    else:
        click.echo(format_table(dominance, baseline))
        if plot_file:
            click.echo(f"figure {plot_file}")


@main.command("report")
@click.argument("scenarios", nargs=-1)
@click.option("--out", required=True, type=HTML, help="The report: one self-contained .html file.")
@click.option("--baseline", default="baseline", show_default=True, help="Scenario to compare against.")
@click.option("--run", "run_ref", metavar="RUN", help="Report on a saved comparison run instead of running SCENARIOS.")
@click.option("--uncertainty", "uncertainty_ref", metavar="RUN", help="A saved `sdmodel uncertainty` run to draw as bands.")
@click.option(
    "--robustness", "robustness_ref", metavar="RUN", help="A saved `sdmodel robustness` run: adds which policy holds up."
)
@click.option("--no-loops", is_flag=True, help="Leave out loop dominance.")
@options(model_option, set_option(), final_time_option, engine_option("pysd"), pysd_jobs_option, fresh_option, runs_dir_option)
def report_command(
    scenarios,
    out,
    baseline,
    run_ref,
    uncertainty_ref,
    robustness_ref,
    no_loops,
    model,
    assignments,
    final_time,
    engine,
    jobs,
    fresh,
    runs_dir,
):
    """One self-contained HTML page: the comparison of SCENARIOS (default: every bundled one) with the
    baseline, their trajectories, loop dominance, uncertainty bands and provenance. Opens from disk."""
    from sdmodel.report import build_report, uncertainty_bands, write_report
    from sdmodel.store import TRAJECTORY_KINDS, find_run, open_run

    # read before the comparison runs (minutes on PySD) and is saved as the latest run: a damaged run was found after,
    # its error leaving a new run in the runs folder
    bands = open_run(uncertainty_ref, runs_dir, ("uncertainty",)) if uncertainty_ref else None
    robust = None
    if robustness_ref:
        from sdmodel.robustness import analysis_of, opened

        with opened(find_run(robustness_ref, runs_dir, ("robustness",))) as saved:
            robust = analysis_of(saved).load()
    if run_ref:
        if scenarios or assignments or model or final_time is not None:
            raise InputError(
                source="--run",
                key=run_ref,
                problem="a saved run cannot be combined with scenarios, --set, --model or --final-time",
                fix="drop one or the other",
            )
        results = open_run(run_ref, runs_dir, TRAJECTORY_KINDS)
    else:
        from sdmodel.metrics import compare_and_save

        options = _run_options(model, assignments, final_time, engine, jobs, fresh, runs_dir)
        results, _, path, saved = compare_and_save(scenarios or None, baseline=baseline, **options)
        click.echo(_saved_note(path, saved, results), err=True)
    dominance, dominance_note = None, ""
    if not no_loops:
        from sdmodel.loops import loop_dominance
        from sdmodel.report import scenarios_of

        try:
            dominance = loop_dominance(
                scenarios_of(results),
                model=results.attrs.get("model_file") or model,
                final_time=float(results["time"][-1]),
                command=_command(),
            )
        except InputError as error:  # a model of the user's own has no named loops: the rest of the report still stands
            dominance_note = f"Loop dominance skipped: {error}"
    uncertainty, note = (None, "")
    if bands is not None:
        uncertainty, note = uncertainty_bands(bands)
        if note:
            click.echo(f"sdmodel: note: {note}", err=True)
    text = build_report(
        results,
        baseline=baseline,
        dominance=dominance,
        dominance_note=dominance_note,
        uncertainty=uncertainty,
        uncertainty_note=note,
        robustness=robust,
    )
    click.echo(f"wrote {write_report(text, out)}")


@main.command("explore")
@click.option(
    "--port", type=click.IntRange(min=0, max=65535), default=5006, show_default=True, help="Port on localhost (0: any free port)."
)
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
@click.option("--final-time", type=float, help="Last year to simulate [default: the model's].")
@click.option(
    "--scenarios-dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where the Save button writes scenario TOML files.",
)
def explore_command(port, no_browser, final_time, scenarios_dir):
    """A policy explorer in the browser: a slider or switch per lever, the key outcomes against the
    baseline, re-run on the fast engine at every change; save the settings as a scenario TOML."""
    from sdmodel.explore import serve

    serve(port=port, show=not no_browser, final_time=final_time, scenarios_dir=scenarios_dir)


@main.group("import")
def import_group() -> None:
    """Turn other tools' files into sdmodel scenarios."""


@import_group.command("cin")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", help="Scenario name [default: the file's name without .cin].")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the scenario TOML here [default: print it].")
@click.option("--model", type=click.Path(dir_okay=False), help="Model to check against [default: the bundled model].")
def import_cin_command(file, name, out, model):
    """A Vensim changes FILE (.cin) as a scenario TOML, checked against the model."""
    from sdmodel.importing import import_cin, scenario_toml

    text = f"# imported from {file} by sdmodel import cin\n" + scenario_toml(import_cin(file, name=name, model=model))
    if not out:
        click.echo(text.rstrip())
        return
    try:
        atomic.write_text(out, text)
    except OSError as error:
        raise InputError(
            source="--out", key=str(out), problem=f"cannot write the file ({error.strerror})", fix="choose a writable path"
        ) from None
    click.echo(f"wrote {out}")


@main.command("describe")
@click.argument("variable", required=False)
@click.option("--model", type=click.Path(dir_okay=False), help="Model to describe [default: the bundled model].")
@json_option
def describe_command(variable, model, as_json):
    """VARIABLE's equation, units, range, source and causal links (no VARIABLE: list them all)."""
    from sdmodel.describe import POLARITY_LEGEND, describe, listing
    from sdmodel.model import reader_units

    if not variable:
        rows = listing(model)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        width = max(len(row["name"]) + len("".join(row["dims"])) + 2 for row in rows)
        for row in rows:
            label = row["name"] + (f"[{','.join(row['dims'])}]" if row["dims"] else "")
            click.echo(f"{label.ljust(width)}  {row['kind']:<9}  {row['units']}")
        return
    found = describe(variable, model)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    dims = f"[{','.join(found['dims'])}]" if found["dims"] else ""
    if found["measure"]:
        element = "".join(f"[{element}]" for element in found["measure"]["select"].values())
        click.echo(
            f"{found['measure']['key']}: {found['measure']['label']}, the comparison's measure of {found['name']}{element}"
        )
    click.echo(f"{found['name']}{dims}  ({found['kind']}, python name {found['python_name']})")
    read_as = reader_units(found["units"], found["name"])  # Dmnl says only what a number is not
    units = found["units"] if read_as == found["units"] else f"{found['units']} ({read_as})"
    click.echo(f"  units:      {units}" + (f"   range: {found['range'][0]:g} to {found['range'][1]:g}" if found["range"] else ""))
    click.echo(f"  equation:   {found['equation']}")
    click.echo(f"  source:     {found['source']}")
    click.echo(f"  depends on: {', '.join(found['depends_on']) or '-'}")
    click.echo(f"  used by:    {', '.join(found['used_by']) or '-'}")
    click.echo(f"  links:      {POLARITY_LEGEND}")


#: Options through which a command can hand its work to Dask; commands without them never do.
DASK_OPTIONS = {"scheduler", "dask_local"}


def program() -> None:
    """The ``sdmodel`` program (console script and ``python -m sdmodel.cli``): :func:`main`, with unused Dask kept out."""
    _keep_dask_out(sys.argv[1:])
    main()


def _keep_dask_out(args: list[str]) -> None:
    """Mark Dask as not installed for a command that cannot use it.

    With Dask installed, xarray imports dask.array the first time it builds a Dataset,
    and distributed whenever it writes NetCDF, only to ask whether arrays are Dask
    arrays: 0.3 s of the second that `sdmodel compare --engine simlin` may take.
    ``None`` in ``sys.modules`` is Python's own mark for a module that cannot be
    imported, so xarray, hvplot and Panel take Dask as absent. Only the program does
    this, never the library or a test's CliRunner, whose process may need Dask later.
    """
    command = main.commands.get(args[0]) if args else None
    if command is None or "dask" in sys.modules or any(param.name in DASK_OPTIONS for param in command.params):
        return
    for name in ("dask", "distributed"):
        sys.modules[name] = None  # type: ignore[assignment]


if __name__ == "__main__":  # pragma: no cover
    program()
