"""Calibration: fit chosen constants to reference series, and say how good the fit is.

Bounded least squares (scipy) on errors normalised as log ratios, so that a factor of two too high
and too low weigh alike and series in FLOP and in dollars are comparable; each series is weighted by
one over the square root of its points, so a long series does not drown a short one. The fit starts
from the model's own values and from a Latin hypercube of other starts, because fits of feedback
models are often multi-modal. The report gives, per series, RMSE, mean absolute percent error and
Theil's inequality statistics (the shares of the mean squared error due to bias, unequal variance
and imperfect covariation; Sterman 2000, *Business Dynamics*, ch. 21).

How sure the fit is comes from a residual bootstrap (Dogan 2007, "Confidence interval estimation in
system dynamics models: bootstrapping vs. likelihood ratio method", System Dynamics Review 23): the
fitted model's series times resampled log errors make new data sets, each is fitted again from the
optimum, and the 2.5-97.5 percentiles of the refitted values are each constant's 95% interval. A
constant whose interval spans most of its search range, or that the series do not respond to at the
optimum, is one the data cannot pin down, and is flagged, not hidden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdmodel.errors import InputError
from sdmodel.reference import Series, bundled_series, read_series
from sdmodel.scenario import Scenario, find_element, load_scenario

if TYPE_CHECKING:
    import xarray as xr

TINY = 1e-300  # a model value of zero against a positive observation is a very large log error
YEAR_POINTS = 17  # a yearly flow's average, by the trapezoid rule on sixteenths of the year (finer than the saved quarters)
WIDE = 0.5  # a 95% interval over half of a constant's search range (in the search's own scale): not pinned down


@dataclass(frozen=True)
class Target:
    """A reference series matched to a model variable (python name, optional element)."""

    series: Series
    variable: str
    select: dict[str, str]
    years: tuple[float, ...]
    observed: np.ndarray

    def modelled(self, results: xr.Dataset) -> np.ndarray:
        """The model's value for each observed year: at the year's start, or its average over the year for a yearly
        flow; for a statistic, that of the elements' values read so (``Series.statistic``)."""
        time = results["time"].values
        values = results[self.variable].sel(self.select).transpose("time", ...).values.reshape(time.size, -1)
        if self.series.period != "year":
            read = np.column_stack([np.interp(self.years, time, column) for column in values.T])
        else:
            grids = [year + np.linspace(0.0, 1.0, YEAR_POINTS) for year in self.years]
            read = np.array([[np.trapezoid(np.interp(grid, time, column), grid) for column in values.T] for grid in grids])
        if self.series.statistic == "herfindahl":
            return np.sum((read / read.sum(axis=1, keepdims=True)) ** 2, axis=1)
        return read[:, 0]

    @property
    def end(self) -> float:
        """The last time the comparison reads."""
        return max(self.years) + self.series.span


@dataclass(frozen=True)
class Fit:
    """The fitted constants, which of them ended at a bound, and the fit per series."""

    values: dict[str, float]
    at_bound: list[str]
    report: list[dict]
    cost: float
    base: str
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% bootstrap intervals, when asked for
    not_identified: list[str] = field(default_factory=list)  # constants the data cannot pin down

    def scenario_toml(self, name: str = "calibrated", command: str = "") -> str:
        """A scenario file with the fitted values, extending the scenario that was fitted."""
        import tomli_w

        document = {
            "name": name,
            "extends": self.base,
            "description": "Constants fitted to reference series by sdmodel calibrate" + (f": {command}" if command else ""),
            "params": {key: float(f"{value:.6g}") for key, value in self.values.items()},
        }
        return tomli_w.dumps(document)


def targets(series_list: Sequence[Series], info, window: tuple[float, float]) -> list[Target]:
    """Match each series with a variable; series outside the window or naming no variable are skipped."""
    chosen = []
    for series in series_list:
        years = tuple(sorted(y for y in series.values if window[0] <= y and y + series.span <= window[1]))
        if not series.variable or not years:
            continue
        match = re.match(r"^(.*?)\s*(?:\[(.*)\])?$", series.variable)
        variable = info.resolve(match[1], series.path, "variable")
        select = {}
        if series.statistic and (len(variable.dims) != 1 or match[2]):
            raise InputError(
                source=series.path,
                key="variable",
                problem=f"a {series.statistic} index needs a variable with one subscript, whole, and {series.variable} is not one",
                fix="name a variable subscripted by one range, with no element, e.g. 'AI revenue'",
            )
        if match[2]:
            dim, element = find_element(variable.dims, match[2], info, series.path, "variable")
            select = {dim: element}
        if not series.statistic and len(select) != len(variable.dims):  # the model's values were read at their first
            first = ",".join(info.subscripts.get(dim, ("?",))[0] for dim in variable.dims)
            raise InputError(
                source=series.path,
                key="variable",
                problem=f"{variable.name} is subscripted by {', '.join(variable.dims)}, and a series is one number a year",
                fix=f"name one element, e.g. '{variable.name}[{first}]'"
                if len(variable.dims) == 1
                else "name a variable with one subscript and one of its elements",
            )
        chosen.append(Target(series, variable.py_name, select, years, np.array([series.values[y] for y in years])))
    if not chosen:
        raise InputError(
            source="--data",
            key=None,
            problem="no series names a model variable within the simulated years",
            fix=f"give years within {window[0]:g} to {window[1]:g} (a yearly flow's year ending by then), or a later --final-time"
            if any(series.variable for series in series_list)  # it named one: '# variable' was no fix for its years
            else "add a '# variable: NAME' header line",
        )
    return chosen


def calibrate(
    params: str | Path,
    data: Sequence[str | Path] | None = None,
    *,
    scenario: str | Path | Scenario = "baseline",
    model: str | Path | None = None,
    starts: int = 8,
    seed: int = 0,
    engine: str = "simlin",
    bootstrap: int = 0,
) -> Fit:
    """Fit the constants given (with bounds) in ``params`` to the series in ``data`` (default: the bundled ones).

    With ``bootstrap`` > 0, also refit that many resampled data sets for 95% intervals (module docstring).
    """
    from scipy.optimize import least_squares
    from scipy.stats import qmc

    from sdmodel.distributions import load_distributions
    from sdmodel.simulate import prepare, run

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    model_path = model
    prepared = prepare([base], model=model_path, engine=engine)
    info = prepared.info
    distributions = load_distributions(params, info)
    bounds = [_bounds(d, params) for d in distributions]
    names = [d.name for d in distributions]
    defaults = prepared.time_defaults
    final = base.time.get("final_time", defaults["final_time"])
    chosen = targets(
        [read_series(p) for p in data] if data else bundled_series(),
        info,
        (base.time.get("initial_time", defaults["initial_time"]), final),
    )
    horizon = max(t.end for t in chosen)
    logs = [lo > 0 and hi / lo > 10 for lo, hi in bounds]  # search wide positive ranges in log space

    def value_of(unit: np.ndarray) -> dict[str, float]:
        return {
            name: (math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if log else lo + u * (hi - lo))
            for name, u, (lo, hi), log in zip(names, unit, bounds, logs)
        }

    def simulate(values: dict[str, float]) -> list[np.ndarray]:
        trial = Scenario(
            base.name,
            base.description,
            {**base.params, **values},
            {**base.time, "final_time": horizon},
            base.source,
            base.origins,
        )
        results = run([trial], model=model_path, engine=engine, jobs=1, progress=False).isel(
            scenario=0
        )  # thousands of trials: no bar each
        return [t.modelled(results) for t in chosen]

    def residuals(unit: np.ndarray, observed: Sequence[np.ndarray] | None = None) -> np.ndarray:
        modelled = simulate(value_of(unit))
        return np.concatenate(
            [
                (np.log(np.maximum(m, TINY)) - np.log(np.maximum(o, TINY))) / math.sqrt(len(t.years))
                for m, t, o in zip(modelled, chosen, observed or [t.observed for t in chosen])
            ]
        )

    own = [_unit(current_value(info, d.setting), lo, hi, log) for d, (lo, hi), log in zip(distributions, bounds, logs)]
    design = qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(seed)).random(max(starts - 1, 0))
    fits = [least_squares(residuals, start, bounds=(0.0, 1.0)) for start in [np.array(own), *design]]
    best = min(fits, key=lambda fit: fit.cost)
    values = value_of(best.x)
    at_bound = [name for name, u in zip(names, best.x) if u < 1e-3 or u > 1 - 1e-3]
    fitted = simulate(values)
    report = [_report(t, m) for t, m in zip(chosen, fitted)]
    if bootstrap <= 0:
        return Fit(values, at_bound, report, float(best.cost), base.name)
    # residual bootstrap on the log errors: each replicate is the fitted series times resampled errors
    errors = np.concatenate([np.log(np.maximum(t.observed, TINY)) - np.log(np.maximum(m, TINY)) for t, m in zip(chosen, fitted)])
    sizes = np.cumsum([len(t.years) for t in chosen])[:-1]
    rng = np.random.default_rng(seed)
    units = []
    for _ in range(bootstrap):
        drawn = np.split(rng.choice(errors, size=errors.size, replace=True), sizes)
        observed = [m * np.exp(e) for m, e in zip(fitted, drawn)]
        units.append(least_squares(residuals, best.x, bounds=(0.0, 1.0), args=(observed,)).x)
    units = np.array(units)
    low, high = np.percentile(units, [2.5, 97.5], axis=0)
    intervals = {name: (value_of(low)[name], value_of(high)[name]) for name in names}
    not_identified = [name for name, lo, hi, flat in zip(names, low, high, _uninformative(best.jac)) if flat or hi - lo > WIDE]
    return Fit(values, at_bound, report, float(best.cost), base.name, intervals, not_identified)


def _uninformative(jacobian: np.ndarray) -> list[bool]:
    """Constants the series barely respond to at the optimum. Refits from the optimum cannot move such a
    constant (its gradient is nil), so the bootstrap alone would give it a falsely narrow interval."""
    scale = np.linalg.norm(jacobian, axis=0)
    return [bool(column <= 1e-6 * max(scale.max(), TINY)) for column in scale]


def _bounds(distribution, path) -> tuple[float, float]:
    args = distribution.args
    if "lower" not in args:
        raise InputError(
            source=path,
            key=f'params."{distribution.name}"',
            problem=f"calibration needs bounds, and a {distribution.dist} distribution has none",
            fix='give dist = "uniform" with lower and upper',
        )
    return args["lower"], args["upper"]


def current_value(info, setting) -> float:
    """The model's own value of a constant (the first element of a subscripted one)."""
    from sdmodel.engines.simlin_structure import canonical, equations

    written = equations(info.path).get(canonical(info.variables[setting.py_name].name), "")
    if setting.element:
        for part in written.split(";"):
            element, _, value = part.partition(":")
            if element.strip().lower() == setting.element[1].lower():
                written = value
    try:
        return float(written.split(";")[0].split(":")[-1])
    except ValueError:
        return math.nan


def _unit(value: float, lo: float, hi: float, log: bool) -> float:
    if not math.isfinite(value):
        return 0.5
    value = min(max(value, lo), hi)
    return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo)) if log else (value - lo) / (hi - lo)


def _report(target: Target, modelled: np.ndarray) -> dict:
    """RMSE, MAPE and Theil's inequality shares of one series (Sterman 2000)."""
    observed = target.observed
    error = modelled - observed
    mse = float(np.mean(error**2))
    bias = float((modelled.mean() - observed.mean()) ** 2)
    spread = float((modelled.std() - observed.std()) ** 2)
    r = float(np.corrcoef(modelled, observed)[0, 1]) if len(observed) > 1 and modelled.std() > 0 and observed.std() > 0 else 1.0
    covariation = float(2 * (1 - r) * modelled.std() * observed.std())
    shares = (
        {"theil_bias": bias / mse, "theil_variance": spread / mse, "theil_covariance": covariation / mse}
        if mse > 0
        else {"theil_bias": 0.0, "theil_variance": 0.0, "theil_covariance": 0.0}
    )
    return {
        "series": target.series.name,
        "variable": target.series.variable,
        "units": target.series.units,
        "points": len(observed),
        "rmse": math.sqrt(mse),
        "mape": float(np.mean(np.abs(error / observed))),
        **shares,
        "years": list(target.years),
        "observed": observed.tolist(),
        "model": modelled.tolist(),
    }


def format_report(fit: Fit) -> str:
    """The fit as text: fitted values (bounds flagged), then one row per series."""
    lines = ["fitted constants:"]
    for name, value in fit.values.items():
        interval = (
            f"   95% interval {fit.intervals[name][0]:.4g} to {fit.intervals[name][1]:.4g}" if name in fit.intervals else ""
        )
        flags = [
            flag
            for flag, on in (
                ("at a bound of its range", name in fit.at_bound),
                ("not pinned down by the data", name in fit.not_identified),
            )
            if on
        ]
        lines.append(f"  {name} = {value:.6g}{interval}" + (f"   ({'; '.join(flags)})" if flags else ""))
    lines.append("")
    header = f"{'series':<28}{'points':>7}{'RMSE':>12}{'MAPE':>8}{'U^M':>7}{'U^S':>7}{'U^C':>7}"
    lines += [header, "-" * len(header)]
    for row in fit.report:
        lines.append(
            f"{row['series']:<28}{row['points']:>7}{row['rmse']:>12.4g}{100 * row['mape']:>7.1f}%"
            f"{row['theil_bias']:>7.2f}{row['theil_variance']:>7.2f}{row['theil_covariance']:>7.2f}"
        )
    lines.append("U^M, U^S, U^C: shares of the squared error from bias, unequal variance and imperfect covariation (Theil).")
    return "\n".join(lines)
