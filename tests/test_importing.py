"""Reading other tools' files back (sdmodel/importing.py): a Vensim changes file (.cin) as a scenario, with
Vensim's spellings and each fault in one line, and results in tab, dat and CSV layouts. The round trips from
`sdmodel export` and back are tests/test_export.py's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from paths import BAD, MODELS, clean_failure

from sdmodel.cli import main
from sdmodel.errors import InputError
from sdmodel.export import export_files
from sdmodel.importing import import_cin, read_csv, read_dat, read_tab


def test_import_cin_reads_vensim_spellings(tmp_path):
    path = tmp_path / "vensim.cin"
    path.write_text(
        "{ written by hand, the Vensim way }\nDATA_STRIKE_FRACTION = .25\nstrike target[Firm]= 0.5, 1, 0\n"
        "Collective Bargaining Weight= 0.1\ncollective bargaining weight= 0.2\nINITIAL USERS[Firm]= 1e+07\ninitial users[challenger]= 2e6\n"
    )
    scenario = import_cin(path)
    assert scenario.name == "vensim"
    assert scenario.params == {
        "data strike fraction": 0.25,
        "strike target[incumbent]": 0.5,
        "strike target[challenger]": 1.0,
        "strike target[open]": 0.0,
        "collective bargaining weight": 0.2,  # a later line wins, as in Vensim
        "initial users": 1e7,
        "initial users[challenger]": 2e6,
    }


def test_printing_the_imported_scenario(tmp_path):
    (path,) = export_files("collective-licensing", "cin", tmp_path)
    result = CliRunner().invoke(main, ["import", "cin", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# imported from {path}")
    assert '"organising rate" = 0.5' in result.stdout


CIN_CASES = [
    ("unsupported-line.cin", "line 2", "not a constant or lookup change"),
    ("not-a-number.cin", "line 3", "is not a number"),
    ("unknown-name.cin", "line 2", "did you mean 'data strike fraction'"),
    ("lookup-line.cin", "line 1", "is a constant, not a lookup"),
    ("out-of-range.cin", "line 1", "out of range [0, 1]"),
    ("unknown-element.cin", "line 1", "incumbent, challenger"),
]


@pytest.mark.parametrize(("file", "where", "problem"), CIN_CASES, ids=[c[0] for c in CIN_CASES])
def test_bad_changes_file(file, where, problem, tmp_path):
    out = tmp_path / "out.toml"
    result = CliRunner().invoke(main, ["import", "cin", str(BAD / file), "--out", str(out)])
    clean_failure(result, file, where, problem)
    assert not out.exists()


def test_missing_changes_file(tmp_path):
    clean_failure(CliRunner().invoke(main, ["import", "cin", str(tmp_path / "nowhere.cin")]), "nowhere.cin", "cannot read")


# --------------------------------------------------------------------------- results written by hand

DECAY = MODELS / "decay.mdl"  # Stock, initial stock, outflow, lifetime: no subscripts


def test_a_dat_file_written_by_hand_is_read_against_the_model(tmp_path):
    path = tmp_path / "by-hand.dat"
    path.write_text("Stock\n0\t100\n1\t60\n2\t:NA:\noutflow\n0 50\n2 25\nlifetime\n0\t2\n1\t2\n2\t2\n")
    read = read_dat(path, model=DECAY)
    assert list(read["scenario"].values) == ["by-hand"]  # the file's stem
    assert read["time"].values.tolist() == [0.0, 1.0, 2.0]  # every time any series has
    stock = read["stock"].sel(scenario="by-hand").values
    assert stock[:2].tolist() == [100.0, 60.0] and math.isnan(stock[2])  # Vensim's :NA:
    outflow = read["outflow"].sel(scenario="by-hand").values
    assert outflow[[0, 2]].tolist() == [50.0, 25.0] and math.isnan(outflow[1])  # a time it lacks
    assert read["lifetime"].dims == ("scenario",)  # a constant that never changes needs no time axis
    assert read["stock"].attrs["units"] == "widget" and read["stock"].attrs["long_name"] == "Stock"


def test_a_tab_file_is_one_scenario_per_file_with_either_spelling(tmp_path):
    for name, stock in (("low", 10.0), ("high", 20.0)):
        (tmp_path / f"{name}.tab").write_text(f"Time\tStock\tinitial_stock\n0\t{stock}\t{stock}\n1\t{stock / 2}\t{stock}\n")
    read = read_tab([tmp_path / "low.tab", tmp_path / "high.tab"], model=DECAY)
    assert list(read["scenario"].values) == ["low", "high"]
    np.testing.assert_array_equal(read["stock"].values, [[10.0, 5.0], [20.0, 10.0]])
    assert read["initial_stock"].values.tolist() == [10.0, 20.0]


def test_a_tidy_csv_gives_a_constant_without_a_time_axis(tmp_path):
    path = tmp_path / "tidy.csv"
    path.write_text("scenario,variable,subscripts,time,value\na,Stock,,0,100\na,Stock,,1,50\na,lifetime,,,2\n")
    read = read_csv(path, model=DECAY)
    assert read["stock"].sel(scenario="a").values.tolist() == [100.0, 50.0]
    assert read["lifetime"].sel(scenario="a").item() == 2.0 and "time" not in read["lifetime"].dims


@pytest.mark.parametrize(
    "reader, name, text, problem",
    [
        (read_dat, "early.dat", "0\t1\nStock\n0\t1\n", "a value before any variable name"),
        (read_tab, "sideways.tab", "Stock\t0\t1\n", "not Time"),
        (read_csv, "other.csv", "a,b\n1,2\n", "neither a tidy nor a wide sdmodel CSV"),
        (read_dat, "typo.dat", "Stok\n0\t1\n", "did you mean 'Stock'?"),
    ],
)
def test_a_file_that_is_not_results_is_one_line(reader, name, text, problem, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as raised:
        reader(path, model=DECAY)
    assert name in str(raised.value) and "\n" not in str(raised.value)
