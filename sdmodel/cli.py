"""The ``sdmodel`` command: policy experiments on the AI-power model from a terminal.

Each command is a thin shell over the Python API. Heavy libraries are imported
inside the commands, so ``sdmodel --help`` answers at once. Bad input ends in one
line on stderr and exit code 2; a failed model run in exit code 1.
"""

from __future__ import annotations

import json
import sys

import click

from sdmodel.errors import InputError, ModelRunError
from sdmodel.locations import RUNS_DIR_ENV


class _Group(click.Group):
    """Turns domain errors into one line and an exit code, never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["sdmodel.argv"] = ["sdmodel", *args]  # for provenance, also under CliRunner
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as error:
            click.echo(f"sdmodel: error: {error}", err=True)
            raise click.exceptions.Exit(2) from None
        except ModelRunError as error:
            click.echo(f"sdmodel: run failed: {error}", err=True)
            raise click.exceptions.Exit(1) from None


@click.group(cls=_Group)
@click.version_option(package_name="sdmodel")
def main() -> None:
    """Policy experiments on a system-dynamics model of compute, data and economic power around AI.

    Start with `sdmodel compare`: it runs every bundled scenario and compares each with the baseline.
    """


runs_dir_option = click.option(
    "--runs-dir", type=click.Path(file_okay=False), envvar=RUNS_DIR_ENV, show_envvar=True,
    help="Folder of saved runs [default: ./runs].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


def run_options(command):
    """Options shared by the commands that run the model."""
    for option in reversed([
        click.option("--model", type=click.Path(dir_okay=False), help="A Vensim .mdl or XMILE .xmile model [default: the bundled ai_power.mdl]."),
        click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="Set a constant in every scenario (repeatable)."),
        click.option("--final-time", type=float, help="Last year to simulate."),
        click.option("--engine", type=click.Choice(["pysd", "simlin"]), default="pysd", show_default=True,
                     help="pysd: the reference; simlin: a fast engine held to PySD by parity tests."),
        click.option("--jobs", type=click.IntRange(min=1), help="PySD worker processes [default: one per core]."),
        runs_dir_option,
        json_option,
    ]):
        command = option(command)
    return command


def _overrides(assignments: tuple[str, ...]) -> dict[str, float]:
    from sdmodel.scenario import parse_assignment

    return dict(parse_assignment(text) for text in assignments)


def _command() -> str:
    from sdmodel.provenance import command_line

    return command_line(click.get_current_context().meta.get("sdmodel.argv"))


@main.command()
@click.argument("scenarios", nargs=-1)
@run_options
def run(scenarios, model, assignments, final_time, engine, jobs, runs_dir, as_json):
    """Run SCENARIOS (bundled names or TOML files; default: baseline) and save the run."""
    from sdmodel.simulate import run as run_scenarios
    from sdmodel.store import save_run

    names = scenarios or ("baseline",)
    results = run_scenarios(
        names, model=model, overrides=_overrides(assignments), final_time=final_time, engine=engine, jobs=jobs, command=_command()
    )
    labels = [str(s) for s in results["scenario"].values]
    path = save_run(results, labels[0] if len(labels) == 1 else f"{labels[0]}+{len(labels) - 1}", runs_dir)
    if as_json:
        click.echo(json.dumps({"run": str(path), "scenarios": labels}))
    else:
        period = f"{float(results['time'][0]):g}-{float(results['time'][-1]):g}"
        click.echo(f"Ran {', '.join(labels)} ({period}); saved {path}")


@main.command()
@click.argument("scenarios", nargs=-1)
@click.option("--baseline", default="baseline", show_default=True, help="Scenario to compare against.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Also write key trajectories to this .html file.")
@run_options
def compare(scenarios, baseline, plot_file, model, assignments, final_time, engine, jobs, runs_dir, as_json):
    """Compare SCENARIOS with the baseline (default: every bundled scenario). The main job."""
    from sdmodel.metrics import compare as compare_scenarios, format_table, to_json
    from sdmodel.store import save_run

    if plot_file and not plot_file.lower().endswith(".html"):
        raise InputError(plot_file, "--plot", "the plot must be an .html file", "give a file name ending in .html")
    results, metrics = compare_scenarios(
        scenarios or None, baseline=baseline, model=model, overrides=_overrides(assignments), final_time=final_time,
        engine=engine, jobs=jobs, command=_command(),
    )
    summary = to_json(metrics)
    path = save_run(results, "compare", runs_dir, kind="compare", extra={"comparison": summary})
    if plot_file:
        from sdmodel.plots import comparison_figure, save_html

        save_html(comparison_figure(results), plot_file)
    if as_json:
        click.echo(json.dumps(to_json(metrics, path), indent=2))
    else:
        click.echo(format_table(metrics))
        click.echo(f"saved {path}" + (f"; figure {plot_file}" if plot_file else ""))


@main.group()
def scenarios() -> None:
    """List, show and validate scenario files."""


@scenarios.command("list")
@json_option
def scenarios_list(as_json):
    """The bundled scenarios and what each means."""
    from sdmodel.scenario import bundled_scenarios, load_scenario

    loaded = [load_scenario(name) for name in bundled_scenarios()]
    if as_json:
        click.echo(json.dumps([{"name": s.name, "description": s.description, "file": s.source} for s in loaded], indent=2))
        return
    width = max(len(s.name) for s in loaded)
    for scenario in loaded:
        click.echo(f"{scenario.name.ljust(width)}  {scenario.description}")


@scenarios.command("show")
@click.argument("scenario")
@click.option("--variables", is_flag=True, help="Also list the model constants a scenario can set.")
@click.option("--model", type=click.Path(dir_okay=False), help="Model for --variables [default: the bundled model].")
def scenarios_show(scenario, variables, model):
    """Print SCENARIO with `extends` resolved, as TOML."""
    import tomli_w

    from sdmodel.scenario import load_scenario

    loaded = load_scenario(scenario)
    click.echo(f"# {loaded.source}")
    click.echo(tomli_w.dumps(loaded.to_dict()).rstrip())
    if variables:
        from sdmodel.engines import pysd as engine
        from sdmodel.locations import default_model

        info = engine.model_info(model or default_model())
        click.echo("\n# constants that [params] can set: name [units] range")
        for variable in sorted(info.variables.values(), key=lambda v: v.name.lower()):
            if variable.kind == "constant" and variable.py_name not in ("initial_time", "final_time", "time_step", "saveper"):
                dims = f"[{','.join(variable.dims)}]" if variable.dims else ""
                click.echo(f"#   {variable.name}{dims} [{variable.units}] {variable.lower:g}..{variable.upper:g}")


@scenarios.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--model", type=click.Path(dir_okay=False), help="Model to check against [default: the bundled model].")
def scenarios_validate(files, model):
    """Check scenario FILES against the model without running it."""
    from sdmodel.simulate import prepare

    for file in files:
        _, loaded, specs = prepare([file], model=model)
        click.echo(f"{file}: ok ({loaded[0].name}: {len(specs[0].settings)} parameter(s) set)")


@main.group()
def runs() -> None:
    """List and show saved runs."""


@runs.command("list")
@runs_dir_option
@json_option
def runs_list(runs_dir, as_json):
    """Saved runs, oldest first."""
    from sdmodel.store import list_runs

    manifests = list_runs(runs_dir)
    if as_json:
        click.echo(json.dumps(manifests, indent=2))
        return
    if not manifests:
        click.echo("no saved runs yet: try `sdmodel compare`")
    for manifest in manifests:
        name = manifest["path"].rsplit("/", 1)[-1]
        click.echo(f"{name}  {manifest['kind']:<8} {', '.join(manifest['scenarios'])}")


@runs.command("show")
@click.argument("run")
@runs_dir_option
@json_option
def runs_show(run, runs_dir, as_json):
    """A saved RUN's provenance and contents (RUN: folder, name, prefix or 'latest')."""
    from sdmodel.store import open_run, read_manifest

    manifest = read_manifest(run, runs_dir)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    for key in ("path", "kind", "scenarios", "created", "command", "engine", "engine_version", "model_file", "model_sha256", "git_commit"):
        value = manifest.get(key, "")
        click.echo(f"{key:>15}: {', '.join(value) if isinstance(value, list) else value}")
    dataset = open_run(manifest["path"])
    dims = ", ".join(f"{dim}={size}" for dim, size in dataset.sizes.items())
    click.echo(f"{'contents':>15}: {len(dataset.data_vars)} variables over {dims}")


@main.command("export")
@click.argument("source", metavar="RUN|SCENARIO")
@click.option("--to", "to", required=True, metavar="cin|tab|dat|csv|netcdf|xmile", help="The format to write.")
@click.option(
    "--out", default=".", show_default=True, type=click.Path(),
    help="Folder to write into (created if missing); or a file name with the format's suffix when the export is one file.",
)
@run_options
def export_command(source, to, out, model, assignments, final_time, engine, jobs, runs_dir, as_json):
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
        source, to, out, model=model, overrides=_overrides(assignments), final_time=final_time, runs_dir=runs_dir,
        command=_command(), engine=engine,
    )
    if as_json:
        click.echo(json.dumps({"files": [str(path) for path in paths]}))
    else:
        for path in paths:
            click.echo(f"wrote {path}")


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
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise InputError(out, "--out", f"cannot write the file ({error.strerror})", "choose a writable path") from None
    click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
