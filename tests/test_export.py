"""Interop: results and scenarios in other tools' formats, and every path back again.

Runs are short (to 2023) except the XMILE round trip, which runs to 2030 in three
engines: PySD on the .mdl (the reference), then PySD and Simlin on the export. Reading
other tools' files on their own (a .cin, results written by hand) is tests/test_importing.py's.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from paths import MODELS, clean_failure, model_step

import sdmodel
from sdmodel.cli import main
from sdmodel.engines.fast_arrays import fast_arithmetic
from sdmodel.errors import InputError
from sdmodel.export import cin_text, dat_text, export_files, tab_text, xmile_text
from sdmodel.importing import import_cin, read_csv, read_dat, read_tab
from sdmodel.model import TIME_CONTROLS, file_sha256, normalise
from sdmodel.scenario import Scenario, bundled_scenarios, load_scenario
from sdmodel.store import WrongRunKind, save_run, write_plain

SHORT = 2023.0
CONTROL_NAMES = ["INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER"]
XMILE_HORIZON = 2030.0
SERIES = Scenario(
    "royalty-series",
    description="A royalty that rises over time, so a constant gets a time axis",
    params={
        "initial collective membership": 0.5,
        "licensing start": 2021.0,
        "collective bargaining weight": ((2021.0, 0.05), (2023.0, 0.2)),
    },
)


@pytest.fixture(scope="module")
def results() -> xr.Dataset:
    """Two bundled scenarios and a time series, to a short horizon."""
    return sdmodel.run(["baseline", "strike-and-licensing", SERIES], final_time=SHORT)


@pytest.fixture(scope="module")
def saved(results, tmp_path_factory):
    """The results saved in a run store of the module's own."""
    return save_run(results, "interop", tmp_path_factory.mktemp("store"))


def assert_same_results(read: xr.Dataset, original: xr.Dataset) -> None:
    """Every variable back with its dims, coordinates and values (rtol 1e-9)."""
    assert list(read["scenario"].values) == list(original["scenario"].values)
    assert set(read.data_vars) == set(original.data_vars)
    for name, array in original.data_vars.items():
        assert read[name].dims == array.dims, name
        for dim in array.dims:
            np.testing.assert_array_equal(read[dim].values, array[dim].values)
        np.testing.assert_allclose(read[name].values, array.values, rtol=1e-9, err_msg=name)
        assert read[name].attrs["long_name"] == array.attrs["long_name"]
        assert read[name].attrs["units"] == array.attrs["units"]


# --------------------------------------------------------------------------- results round trips


def test_tab_round_trip(saved, results, tmp_path):
    files = export_files(saved, "tab", tmp_path)
    assert [f.name for f in files] == ["baseline.tab", "strike-and-licensing.tab", "royalty-series.tab"]
    assert_same_results(read_tab(files), results)


def test_dat_round_trip(saved, results, tmp_path):
    files = export_files(saved, "dat", tmp_path)
    assert [f.name for f in files] == ["baseline.dat", "strike-and-licensing.dat", "royalty-series.dat"]
    assert_same_results(read_dat(files), results)


def test_csv_round_trip_tidy_and_wide(saved, results, tmp_path):
    tidy, wide = export_files(saved, "csv", tmp_path)
    assert (tidy.name, wide.name) == (f"{saved.name}.csv", f"{saved.name}-wide.csv")
    assert_same_results(read_csv(tidy), results)
    assert_same_results(read_csv(wide), results)


def test_netcdf_is_the_stored_dataset_in_the_layout_runs_had_before_stacking(saved, results, tmp_path):
    """The store stacks a run's variables by dims (sdmodel.stacking); the export is the file the store wrote before."""
    (path,) = export_files(saved, "netcdf", tmp_path)
    write_plain(results, tmp_path / "saved-before-stacking.nc")
    assert path.read_bytes() == (tmp_path / "saved-before-stacking.nc").read_bytes()
    with xr.open_dataset(path) as exported:
        xr.testing.assert_identical(exported, sdmodel.open_run(saved))


def test_a_run_saved_before_stacking_exports_as_before(results, tmp_path):
    """Every format, byte for byte, from a run stored stacked and from the same run stored as before."""
    old, new = save_run(results, "old", tmp_path / "store"), save_run(results, "new", tmp_path / "store")
    write_plain(results, old / "results.nc")  # as the store wrote every run before stacking
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"]["results.nc"]["sha256"] = file_sha256(old / "results.nc")  # as that run recorded it
    (old / "manifest.json").write_text(json.dumps(manifest))
    for fmt in (
        "netcdf",
        "csv",
        "tab",
        "dat",
        "xmile",
    ):  # cin refuses the time series; it and xmile read the run's attributes only
        before, after = export_files(old, fmt, tmp_path / "old" / fmt), export_files(new, fmt, tmp_path / "new" / fmt)
        assert len(before) == len(after), fmt
        for one, other in zip(before, after):  # NetCDF and CSV files are named after the run
            assert one.read_bytes() == other.read_bytes(), (fmt, one.name)


def test_an_ensemble_exports_as_data_but_not_as_scenarios(results, tmp_path):
    """NetCDF and CSV hold any run; a Vensim .tab or changes file holds scenarios over time, which an ensemble is not."""
    members = results.expand_dims(run=[0, 1]).transpose("scenario", "run", ...)
    ensemble = save_run(members, "uncertainty-x", tmp_path / "store", kind="uncertainty")
    (path,) = export_files(ensemble, "netcdf", tmp_path / "out")
    assert path.read_bytes() == (ensemble / "results.nc").read_bytes()
    tidy, _ = export_files(ensemble, "csv", tmp_path / "out")
    assert "run" in tidy.read_text().splitlines()[0].split(",")
    with pytest.raises(
        WrongRunKind, match="is a run of `sdmodel uncertainty`; this command reads runs of `sdmodel run` or `sdmodel compare`"
    ):
        export_files(ensemble, "tab", tmp_path / "out")


@pytest.mark.parametrize("kind", ["robustness", "search", "discovery"])
def test_a_run_of_summaries_exports_as_csv(kind, tmp_path):
    """A robustness run's shares have no run dimension, and search and discovery runs no time axis: their wide CSV was
    a KeyError traceback after the tidy file was written."""
    members = xr.Dataset(
        {"hhi": (("scenario", "run", "time"), np.arange(8.0).reshape(2, 2, 2)), "share": ("scenario", [0.25, 0.75])},
        coords={"scenario": ["baseline", "policy"], "run": [0, 1], "time": [2020.0, 2021.0]},
    )
    summary = xr.Dataset({"value": (("candidate", "lever"), [[1.0, 2.0]])}, coords={"candidate": [0], "lever": ["a", "b"]})
    saved = save_run(members if kind == "robustness" else summary, kind, tmp_path / "store", kind=kind)
    tidy, wide = export_files(saved, "csv", tmp_path / "out")
    assert tidy.is_file()
    lines = wide.read_text().splitlines()
    if kind == "robustness":
        assert lines[0] == "scenario,run,time,hhi,share" and lines[-1] == "policy,1,2021.0,7.0,0.75"
    else:
        assert lines == ['"value[0,a]","value[0,b]"', "1.0,2.0"]


def test_open_run_equals_xarray_open_dataset_of_the_export(saved, tmp_path):
    (path,) = export_files(saved, "netcdf", tmp_path)
    with xr.open_dataset(path) as plain:
        xr.testing.assert_identical(sdmodel.open_run(saved), plain)


def test_to_dataframe_is_tidy(results):
    frame = sdmodel.to_dataframe(results)
    assert list(frame.columns) == ["scenario", "variable", "subscripts", "time", "value"]
    assert len(frame) == sum(array.size for array in results.data_vars.values())
    assert list(frame["scenario"].unique()) == ["baseline", "strike-and-licensing", "royalty-series"]
    row = frame.query(
        "scenario == 'strike-and-licensing' and variable == 'ai_capital' and subscripts == 'incumbent' and time == 2022.5"
    )
    assert row["value"].item() == results["ai_capital"].sel(scenario="strike-and-licensing", Firm="incumbent", time=2022.5).item()
    constant = frame.query("variable == 'hardware_life'")
    assert constant["time"].isna().all() and len(constant) == 3  # no time axis: one row per scenario
    series = frame.query("scenario == 'royalty-series' and variable == 'collective_bargaining_weight' and time == 2022")
    assert series["value"].item() == pytest.approx(0.125)


# --------------------------------------------------------------------------- format facts


def test_tab_layout(results):
    lines = tab_text(results.sel(scenario=["baseline"])).splitlines()
    header = lines[0].split("\t")
    assert header[:7] == ["Time", *CONTROL_NAMES, "Compute Capacity[incumbent]", "Compute Capacity[challenger]"]  # as Vensim's
    assert lines[1].split("\t")[1:5] == ["2020", "2023", repr(model_step()), "0.25"]  # the run's own time controls
    assert "hardware life" in header and "frontier capability" in header
    initial = results["compute_capacity"].sel(scenario="baseline").isel(time=0)
    first = lines[1].split("\t")
    assert first[:1] + first[5:7] == ["2020"] + [repr(float(initial.sel(Firm=firm))) for firm in ("incumbent", "challenger")]
    assert len(lines) == 1 + results.sizes["time"]
    assert {len(line.split("\t")) for line in lines} == {len(header)}
    assert [line.split("\t")[0] for line in lines[1:4]] == ["2020", "2020.25", "2020.5"]


def test_dat_layout(results):
    lines = dat_text(results.sel(scenario=["baseline"])).splitlines()
    incumbent = results["compute_capacity"].sel(scenario="baseline", Firm="incumbent")
    assert lines[:2] == ["INITIAL TIME", "2020\t2020"]  # the time controls first, as in the .tab
    start = lines.index("Compute Capacity[incumbent]")
    assert lines[start + 1 : start + 3] == [f"2020\t{float(incumbent[0])!r}", f"2020.25\t{float(incumbent[1])!r}"]
    names = [line for line in lines if "\t" not in line]
    assert len(names) == len(lines) // (1 + results.sizes["time"])
    assert all(re.fullmatch(r"[-+.\deE]+\t[-+.\deE]+", line) for line in lines if "\t" in line)
    assert "hardware life" in names


def test_csv_headers(saved, tmp_path):
    tidy, wide = export_files(saved, "csv", tmp_path)
    assert tidy.read_text().splitlines()[0] == "scenario,variable,subscripts,time,value"
    assert (
        wide.read_text()
        .splitlines()[0]
        .startswith(
            "scenario,time,initial_time,final_time,time_step,saveper,compute_capacity[incumbent],compute_capacity[challenger],"
        )
    )


def test_cin_lines():
    text = cin_text(
        Scenario(
            "mixed",
            params={"data_strike_fraction": 0.5, "strike target[Challenger]": 1.0, "initial users": 2e7},
            time={"final_time": 2040.0},
        )
    )
    assert text == "data strike fraction= 0.5\nstrike target[challenger]= 1\ninitial users[Firm]= 20000000\nFINAL TIME= 2040\n"
    line = re.compile(r"[A-Za-z][\w ]*(\[[\w,]+\])?= -?[\d.]+(e[+-]\d+)?")
    for scenario in bundled_scenarios():
        assert all(line.fullmatch(text) for text in cin_text(scenario).splitlines()), scenario


def test_xmile_is_standard_and_portable():
    text = xmile_text("data-strike")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<!-- sdmodel export: ai_power.mdl')
    assert '<xmile xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"' in text
    assert "[*]" not in text and "!]" not in text and "STARTTIME" not in text
    assert (
        "(capital_share[incumbent]" not in text and "(AI_Capital[incumbent] + AI_Capital[challenger] + AI_Capital[open])" in text
    )
    assert re.search(r'<aux name="data_strike_fraction">\s*<eqn>0\.33</eqn>', text)


# --------------------------------------------------------------------------- scenarios through cin


@pytest.mark.parametrize("name", bundled_scenarios())
def test_scenario_cin_scenario_is_identical(name, tmp_path):
    original = load_scenario(name)
    (path,) = export_files(name, "cin", tmp_path)
    assert path.name == f"{name}.cin"
    back = import_cin(path)
    assert (back.name, back.params, back.time) == (original.name, original.params, original.time)


def test_cin_round_trip_through_the_cli(tmp_path):
    source = tmp_path / "my-policy.toml"
    source.write_text(
        'name = "my-policy"\nextends = "data-strike"\n[params]\n"strike target[challenger]" = 1\n"initial users" = 2e7\n'
        '"collective bargaining weight" = 0.1\n[time]\nfinal_time = 2040\ntime_step = 0.125\n'
    )
    runner = CliRunner()
    exported = runner.invoke(main, ["export", str(source), "--to", "cin", "--out", str(tmp_path / "policy.cin")])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.strip() == f"wrote {tmp_path / 'policy.cin'}"
    imported = runner.invoke(
        main, ["import", "cin", str(tmp_path / "policy.cin"), "--name", "my-policy", "--out", str(tmp_path / "back.toml")]
    )
    assert imported.exit_code == 0, imported.output
    original, back = load_scenario(source), load_scenario(tmp_path / "back.toml")
    assert (back.name, back.params, back.time) == (original.name, original.params, original.time)


def test_time_series_cannot_be_a_changes_file():
    with pytest.raises(InputError, match="time series.*export the scenario as xmile"):
        cin_text(SERIES)


# --------------------------------------------------------------------------- scenarios through XMILE


RICH = Scenario(
    "rich",
    params={
        "data strike fraction": 0.33,
        "strike target[challenger]": 0.5,  # one element
        "initial users": 2e7,  # a subscripted constant as a whole
        "initial collective membership": 0.5,
        "licensing start": 2024.0,
        "collective bargaining weight": ((2024.0, 0.05), (2028.0, 0.2)),  # a time series
    },
    time={"final_time": XMILE_HORIZON},
)


@pytest.fixture(scope="module")
def rich_export(tmp_path_factory):
    """The rich scenario's run (PySD on the .mdl) and its XMILE export."""
    (path,) = export_files(RICH, "xmile", tmp_path_factory.mktemp("xmile"))
    return sdmodel.run([RICH]).isel(scenario=0, drop=True), path


def _series(results: xr.Dataset):
    """(Vensim name with element, values at the run's save times) for every variable and element.

    The time controls are left out: an XMILE file holds them as its sim specs (tested by their values there),
    which PySD saves every step and Simlin keeps out of its series.
    """
    times = results["time"].values
    for key, array in results.data_vars.items():
        if key in TIME_CONTROLS:
            continue
        name = array.attrs["long_name"]
        dims = [dim for dim in array.dims if dim != "time"]
        for elements in itertools.product(*(array[dim].values for dim in dims)):  # () once for an unsubscripted variable
            label = f"{name}[{','.join(elements)}]" if dims else name
            yield label, np.broadcast_to(array.sel(dict(zip(dims, elements))).values, times.shape)


def assert_pysd_runs_it_alike(path, original: xr.Dataset) -> None:
    import pysd

    with warnings.catch_warnings(), fast_arithmetic():  # the engine's shortcuts, identical to the bit: a quarter of the time
        warnings.simplefilter("ignore")
        frame = pysd.read_xmile(str(path)).run()
    columns = {normalise(c): c for c in frame.columns}
    compared = 0
    for label, expected in _series(original):
        got = frame[columns[normalise(label)]].reindex(original["time"].values).to_numpy(float)  # PySD saves every step
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=label)
        compared += 1
    assert compared == sum(1 for _ in _series(original))


def assert_simlin_runs_it_alike(path, original: xr.Dataset, skip: tuple[str, ...] = ()) -> None:
    simlin = pytest.importorskip("simlin")

    sim = simlin.load(str(path)).simulate()
    sim.run_to_end()
    times = np.asarray(sim.get_series("time"))
    rows = [int(np.argmin(np.abs(times - t))) for t in original["time"].values]
    np.testing.assert_allclose(times[rows], original["time"].values)
    for label, expected in _series(original):
        if label.split("[")[0] not in skip:
            got = np.asarray(sim.get_series(normalise(label).replace(" ", "_")))[rows]
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=label)


def test_xmile_runs_in_pysd_like_the_scenario(rich_export):
    original, path = rich_export
    assert len(original.data_vars) > 50
    assert_pysd_runs_it_alike(path, original)


def test_xmile_runs_in_simlin_like_the_scenario(rich_export):
    original, path = rich_export
    assert_simlin_runs_it_alike(path, original)


@pytest.mark.parametrize(
    ("model", "simlin_skips"),
    [
        ("regions.mdl", ()),  # SUM and VMAX over a subscript of the user's own
        ("shipping.mdl", ("shipments",)),  # a lookup; Simlin 0.8 approximates DELAY FIXED (bpowers/simlin#346)
        ("logistic.xmile", ()),  # XMILE in, XMILE out
    ],
)
def test_xmile_of_our_own_models(model, simlin_skips, tmp_path):
    (path,) = export_files("baseline", "xmile", tmp_path, model=MODELS / model)
    original = sdmodel.run(model=MODELS / model, jobs=1).isel(scenario=0, drop=True)
    assert_pysd_runs_it_alike(path, original)
    assert_simlin_runs_it_alike(path, original, skip=simlin_skips)


def test_xmile_of_a_saved_run_writes_each_scenario(saved, tmp_path):
    files = export_files(saved, "xmile", tmp_path)
    assert [f.name for f in files] == ["baseline.xmile", "strike-and-licensing.xmile", "royalty-series.xmile"]
    strike = files[1].read_text()
    assert re.search(r'<aux name="data_strike_fraction">\s*<eqn>0\.33</eqn>', strike)
    assert "<stop>2023</stop>" in strike
    series = files[2].read_text()
    assert "<eqn>0.05 + (0.2 - 0.05) / (2023 - 2021) * (MIN(MAX(TIME, 2021), 2023) - 2021)</eqn>" in series


# --------------------------------------------------------------------------- where files go


def test_out_folder_and_file_names(tmp_path, saved):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(saved), "--to", "csv", "--out", str(tmp_path / "tables" / "mine.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["mine-wide.csv", "mine.csv"]
    result = runner.invoke(main, ["export", "data-strike", "--to", "cin", "--out", str(tmp_path / "new" / "folder")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "folder" / "data-strike.cin").is_file()


def test_scenario_is_run_before_a_results_export(tmp_path):
    result = CliRunner().invoke(main, ["export", "data-strike", "--to", "tab", "--final-time", "2021", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "data-strike.tab").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["Time", "2020", "2020.25", "2020.5", "2020.75", "2021"]


# --------------------------------------------------------------------------- bad input


def test_unknown_format(isolated_runs_dir):
    clean_failure(
        CliRunner().invoke(main, ["export", "data-strike", "--to", "xls"]),
        "--to",
        "'xls'",
        "choose one of: cin, tab, dat, csv, netcdf, xmile",
    )


def test_run_folder_that_does_not_exist(tmp_path):
    missing = tmp_path / "runs" / "20990101T000000Z-nothing"
    clean_failure(CliRunner().invoke(main, ["export", str(missing), "--to", "tab"]), str(missing), "no such run")


def test_time_series_to_cin_is_one_line(tmp_path):
    source = tmp_path / "series.toml"
    source.write_text('name = "series"\n[params]\n"collective bargaining weight" = { "2027" = 0.05, "2035" = 0.15 }\n')
    out = tmp_path / "out"
    line = clean_failure(
        CliRunner().invoke(main, ["export", str(source), "--to", "cin", "--out", str(out)]),
        "series.toml",
        "collective bargaining weight",
        "time series",
    )
    assert "xmile" in line and not out.exists()


def test_scenario_options_with_a_run(saved):
    clean_failure(CliRunner().invoke(main, ["export", str(saved), "--to", "tab", "--final-time", "2021"]), "apply to a scenario")


def test_one_file_name_for_many_files(saved, tmp_path):
    clean_failure(
        CliRunner().invoke(main, ["export", str(saved), "--to", "tab", "--out", str(tmp_path / "x.tab")]),
        "writes 3 files",
        "give a folder",
    )
