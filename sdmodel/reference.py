"""Reference series under ``models/data/``: CSV files whose ``#`` header names the series, the
model variable it is compared with, its units, source and retrieval date.

>>> series = read_series(models_dir() / "data" / "big4_capex.csv")
>>> series.variable, series.units, series.values[2024]
('backers capex', 'billion USD/year', 246.0)
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from sdmodel.errors import NUMBER, InputError, read_text
from sdmodel.locations import models_dir

REQUIRED = ("series", "units", "source", "retrieved")
PERIODS = ("", "year")  # see Series.period
STATISTICS = ("", "herfindahl")  # see Series.statistic


@dataclass(frozen=True)
class Series:
    """One reference series: year -> value, and where it came from."""

    name: str
    variable: str  # the model variable it is compared with ('' for anchors that are not fitted)
    units: str
    source: str
    retrieved: str
    values: dict[float, float] = field(default_factory=dict)
    path: str = ""
    # "year": each value is a flow over its calendar year (a year's revenue or capex), which the
    # model matches with its average over [year, year + 1]; "" (the default): a value at the
    # start of the year. Comparing a year's revenue with the flow on 1 January instead would read
    # a fast-growing market half a year early (revenue that doubles yearly: about 40% low).
    period: str = ""
    # "herfindahl": the value is the Herfindahl index (sum of squared shares) of the variable's elements,
    # each read as the period says, so the model's value is computed the same way. A market's HHI over a
    # year is the HHI of the firms' revenue for the year, not the year's average of the HHI at each instant:
    # when the smaller firm grows within the year, the average of instant HHIs weighs the months before
    # its growth as much as those after, although they hold less of the year's revenue.
    statistic: str = ""

    @property
    def span(self) -> float:
        """How long after a value's year the model is read for it: the whole year for a yearly flow, else not at all."""
        return 1.0 if self.period == "year" else 0.0


def read_series(path: str | Path) -> Series:
    """Read a reference CSV (``year,value`` rows under a ``# key: value`` header; ``# period: year`` for yearly flows,
    ``# statistic: herfindahl`` for the concentration of a subscripted variable)."""
    path = Path(path)
    header, rows = {}, []
    for line in read_text(path).splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
        elif line.strip():
            rows.append(line)
    for key in REQUIRED:
        if key not in header:
            raise InputError(source=path, key=key, problem="the header does not say it", fix=f"add a line '# {key}: ...'")
    table = list(csv.DictReader(io.StringIO("\n".join(rows))))
    values = {}
    if "year" in (table[0] if table else {}):
        try:
            pairs = [(_number(row["year"]), _number(row["value"])) for row in table]
        except (KeyError, ValueError, TypeError, AttributeError) as error:  # a short row leaves its value None
            raise InputError(
                source=path, key="year,value", problem=f"a row is not a year and a number ({error})", fix="write rows as 2024,246"
            ) from None
        values = dict(pairs)
        if header.get("variable") and len(values) < len(pairs):  # the later row replaced the earlier in the fit, silently
            # (an anchor, compared with no variable, may list several values a year: licensing_deals.csv, a row a deal)
            twice = next(year for year, _ in pairs if sum(other == year for other, _ in pairs) > 1)
            raise InputError(
                source=path, key="year,value", problem=f"the year {twice:g} is given twice", fix="give one value a year"
            )
        for year, value in values.items():
            if not (math.isfinite(year) and math.isfinite(value)):  # a fit to nan or inf has no finite residuals
                raise InputError(
                    source=path,
                    key="year,value",
                    problem=f"the row {year:g},{value:g} is not finite",
                    fix="give finite years and values",
                )
    period = (header.get("period", "").split() or [""])[0]  # its first word; the rest may explain it
    if period not in PERIODS:
        raise InputError(
            source=path,
            key="period",
            problem=f"'{period}' is not a period",
            fix="write '# period: year' for a flow over each calendar year, or leave the line out",
        )
    statistic = (header.get("statistic", "").split() or [""])[0]
    if statistic not in STATISTICS:
        raise InputError(
            source=path,
            key="statistic",
            problem=f"'{statistic}' is not a statistic",
            fix="write '# statistic: herfindahl' for the concentration of a subscripted variable, or leave the line out",
        )
    return Series(
        header["series"],
        header.get("variable", ""),
        header["units"],
        header["source"],
        header["retrieved"],
        values,
        str(path),
        period,
        statistic,
    )


def bundled_series() -> list[Series]:
    """Every reference series shipped with the model."""
    return [read_series(path) for path in sorted((models_dir() / "data").glob("*.csv"))]


def _number(text: str) -> float:
    """A CSV cell as a number written as the docs name it: ``float()`` also reads "2_024" and full-width digits."""
    if not NUMBER.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a number")
    return float(text)
