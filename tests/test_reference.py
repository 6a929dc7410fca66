"""Reference series (sdmodel/reference.py): a CSV's ``#`` header and ``year,value`` rows read into a Series, and each
kind of fault refused in one line that names the file and the key. Any CSV at all is tests/test_properties.py's
(Hypothesis); how the series calibrate the model is tests/test_model_calibration.py's."""

from __future__ import annotations

import pytest

from sdmodel.errors import InputError
from sdmodel.locations import models_dir
from sdmodel.reference import REQUIRED, bundled_series, read_series

HEADER = (
    "# series: AI revenue\n# variable: total AI revenue\n# units: billion USD/year\n# source: a survey\n# retrieved: 2026-12-04\n"
)


def write(tmp_path, text: str):
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_a_series_is_read_with_its_header(tmp_path):
    path = write(tmp_path, HEADER + "# period: year (revenue over the calendar year)\n\nyear,value\n2023,10\n2024,25.5\n")
    series = read_series(path)
    assert (series.name, series.variable, series.units, series.source, series.retrieved) == (
        "AI revenue",
        "total AI revenue",
        "billion USD/year",
        "a survey",
        "2026-12-04",
    )
    assert series.values == {2023.0: 10.0, 2024.0: 25.5} and series.path == str(path)
    assert series.period == "year" and series.span == 1.0  # a flow over its year: read over the whole year
    assert series.statistic == ""


def test_a_value_at_the_start_of_the_year_is_read_there(tmp_path):
    series = read_series(write(tmp_path, HEADER + "# statistic: herfindahl\nyear,value\n2024,0.4\n"))
    assert series.period == "" and series.span == 0.0 and series.statistic == "herfindahl"


def test_a_header_without_rows_reads_as_no_values(tmp_path):
    assert read_series(write(tmp_path, HEADER)).values == {}


@pytest.mark.parametrize("missing", REQUIRED)
def test_each_required_header_line_is_asked_for(missing, tmp_path):
    header = "".join(line + "\n" for line in HEADER.splitlines() if not line.startswith(f"# {missing}:"))
    with pytest.raises(InputError) as raised:
        read_series(write(tmp_path, header + "year,value\n2024,1\n"))
    assert f"# {missing}: ..." in str(raised.value) and "series.csv" in str(raised.value)


@pytest.mark.parametrize(
    "rows, problem",
    [
        ("2024,nan\n", "is not finite"),
        ("inf,1\n", "is not finite"),
        ("2_024,1\n", "is not a year and a number"),  # float() reads it; the docs' numbers do not
        ("2024\n", "is not a year and a number"),  # a short row
        ("2024,one\n", "is not a year and a number"),
    ],
)
def test_a_row_that_is_not_two_finite_numbers_is_refused(rows, problem, tmp_path):
    with pytest.raises(InputError, match=problem) as raised:
        read_series(write(tmp_path, HEADER + "year,value\n" + rows))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "line, problem", [("# period: month", "'month' is not a period"), ("# statistic: mean", "not a statistic")]
)
def test_an_unknown_period_or_statistic_is_refused(line, problem, tmp_path):
    with pytest.raises(InputError, match=problem):
        read_series(write(tmp_path, HEADER + line + "\nyear,value\n2024,1\n"))


def test_every_bundled_series_is_read_in_file_order():
    series = bundled_series()
    paths = sorted(str(path) for path in (models_dir() / "data").glob("*.csv"))
    assert series and [s.path for s in series] == paths
    assert all(s.name and s.units and s.source and s.retrieved and s.values for s in series)
