"""Parameter distributions: what a Monte Carlo ensemble draws and what global sensitivity samples.

The uncertain constants of a model live in one TOML file that both the
ensembles (a Latin hypercube, :func:`latin_hypercube`) and global sensitivity
analysis (SALib, :func:`salib_problem`) read, so the two always vary the same
assumptions over the same ranges::

    description = "What we are unsure of"
    [params."share sensitivity"]
    dist = "uniform"          # uniform, triangular, normal, truncnormal, lognormal
    lower = 2
    upper = 8

Arguments: ``uniform`` lower, upper; ``triangular`` lower, mode, upper;
``normal`` mean, sd; ``truncnormal`` mean, sd, lower, upper; ``lognormal`` mu,
sigma (of the normal distribution of ln x). A distribution must stay inside the
model's documented ``[min,max]`` range of the constant, so an unbounded one
(normal, lognormal) fits only a constant without such bounds.

The checks of a varied constant (that it is a constant, the setting it changes,
that it is varied once) live here too; parameter sweeps use them as well.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdmodel.errors import InputError, finite_number, read_toml, shown
from sdmodel.model import ModelInfo, Variable
from sdmodel.scenario import ELEMENT_PATTERN, Scenario, Setting, validate

#: distribution -> its arguments (the keys of its table in a distributions file)
#: exp(700) is near the largest float: a lognormal's mu (the log of its median) must stay well inside it
LOG_LIMIT = 700.0
DISTRIBUTIONS = {
    "uniform": ("lower", "upper"),
    "triangular": ("lower", "mode", "upper"),
    "normal": ("mean", "sd"),
    "truncnormal": ("mean", "sd", "lower", "upper"),
    "lognormal": ("mu", "sigma"),
}
DISTRIBUTION_FILE_KEYS = ("description", "params")


@dataclass(frozen=True)
class Distribution:
    """One uncertain constant: its name as written, its distribution and the setting it changes."""

    name: str
    dist: str
    args: dict[str, float]
    setting: Setting  # value unused: each member brings its own

    def frozen(self):
        """The distribution as a frozen ``scipy.stats`` object."""
        from scipy import stats

        a = self.args
        if self.dist == "uniform":
            return stats.uniform(loc=a["lower"], scale=a["upper"] - a["lower"])
        if self.dist == "triangular":
            width = a["upper"] - a["lower"]
            return stats.triang(c=(a["mode"] - a["lower"]) / width, loc=a["lower"], scale=width)
        if self.dist == "normal":
            return stats.norm(loc=a["mean"], scale=a["sd"])
        if self.dist == "truncnormal":
            return stats.truncnorm(
                (a["lower"] - a["mean"]) / a["sd"], (a["upper"] - a["mean"]) / a["sd"], loc=a["mean"], scale=a["sd"]
            )
        return stats.lognorm(s=a["sigma"], scale=math.exp(a["mu"]))

    def salib(self) -> tuple[str, list[float]]:
        """SALib's ``dists`` code and ``bounds`` for this distribution (for global sensitivity)."""
        a = self.args
        if self.dist == "uniform":
            return "unif", [a["lower"], a["upper"]]
        if self.dist == "triangular":
            return "triang", [a["lower"], a["upper"], (a["mode"] - a["lower"]) / (a["upper"] - a["lower"])]
        if self.dist == "normal":
            return "norm", [a["mean"], a["sd"]]
        if self.dist == "truncnormal":
            return "truncnorm", [a["lower"], a["upper"], a["mean"], a["sd"]]
        return "lognorm", [a["mu"], a["sigma"]]


def load_distributions(path: str | os.PathLike, info: ModelInfo) -> list[Distribution]:
    """Read a distributions TOML file and check it against a model; every problem names file, key and fix."""
    path = Path(path)
    document = read_toml(path, 'e.g. [params."share sensitivity"]')
    for key in document:
        if key not in DISTRIBUTION_FILE_KEYS:
            raise InputError(path, key, "unknown key", _suggest(key, DISTRIBUTION_FILE_KEYS))
    params = document.get("params")
    if not isinstance(params, dict) or not params:
        raise InputError(
            path,
            "params",
            "no distributions given",
            'add one, e.g. [params."share sensitivity"] with dist = "uniform", lower, upper',
        )
    distributions = [_distribution(path, name, table, info) for name, table in params.items()]
    check_varied_once([(d.setting, f"params.{_quote(d.name)}") for d in distributions], path)
    return distributions


def _distribution(path: Path, name: str, table: object, info: ModelInfo) -> Distribution:
    key = f"params.{_quote(name)}"
    if not isinstance(table, dict):
        raise InputError(path, key, "must be a table", f'write it as [{key}] with dist = "uniform", lower = ..., upper = ...')
    variable = resolve_constant(name, info, path, key)
    dist = table.get("dist")
    if not isinstance(dist, str | None):  # a list or table would not even hash
        raise InputError(
            path, f"{key}.dist", f"{dist!r} is not a distribution's name", _suggest("", list(DISTRIBUTIONS), "choose one of")
        )
    if dist not in DISTRIBUTIONS:
        problem = "has no dist" if dist is None else f"unknown distribution {dist!r}"
        raise InputError(path, f"{key}.dist", problem, _suggest(str(dist), list(DISTRIBUTIONS), "choose one of"))
    wanted = DISTRIBUTIONS[dist]
    for arg in table:
        if arg != "dist" and arg not in wanted:
            raise InputError(path, f"{key}.{arg}", f"{dist} takes no argument {arg!r}", f"{dist} takes {', '.join(wanted)}")
    for arg in wanted:
        if arg not in table:
            raise InputError(path, key, f"{dist} needs {arg!r}", f"give {', '.join(wanted)}")
    args = {arg: finite_number(table[arg], path, f"{key}.{arg}") for arg in wanted}
    _check_arguments(dist, args, path, key)
    _check_support(dist, args, variable, path, key)
    return Distribution(name, dist, args, varied_setting(name, variable, info, path))


def _check_arguments(dist: str, args: dict[str, float], path: Path, key: str) -> None:
    """Arguments that define no distribution: an empty range, a spread of zero, a mode outside its range."""
    if "lower" in args and args["lower"] >= args["upper"]:
        raise InputError(
            path, f"{key}.lower", f"lower {args['lower']:g} is not below upper {args['upper']:g}", "make lower less than upper"
        )
    for spread in ("sd", "sigma"):
        if spread in args and args[spread] <= 0:
            raise InputError(path, f"{key}.{spread}", f"{spread} {args[spread]:g} is not positive", f"give {spread} above 0")
    if dist == "lognormal" and not (
        abs(args["mu"]) < LOG_LIMIT and args["sigma"] < LOG_LIMIT / 10
    ):  # exp(mu) and its draws stay floats
        raise InputError(
            path,
            f"{key}.mu",
            f"mu {args['mu']:g} and sigma {args['sigma']:g} give values beyond floating point",
            f"give mu within +-{LOG_LIMIT:g} and sigma below {LOG_LIMIT / 10:g} (mu is the log of the median)",
        )
    if dist == "triangular" and not args["lower"] <= args["mode"] <= args["upper"]:
        problem = f"mode {args['mode']:g} is outside [{args['lower']:g}, {args['upper']:g}]"
        raise InputError(path, f"{key}.mode", problem, "put mode between lower and upper")


def _check_support(dist: str, args: dict[str, float], variable: Variable, path: Path, key: str) -> None:
    """Every value the distribution can give must be one the model accepts, whatever the seed."""
    bounds = f"[{format_bound(variable.lower)}, {format_bound(variable.upper)}]"
    if dist in ("normal", "lognormal"):
        floor = 0.0 if dist == "lognormal" else -math.inf
        if variable.lower > floor or math.isfinite(variable.upper):
            problem = f"a {dist} distribution is unbounded but '{variable.name}' must stay within {bounds}"
            raise InputError(
                path, f"{key}.dist", problem, f'use dist = "truncnormal" (or "uniform") with lower and upper within {bounds}'
            )
        return
    for arg in ("lower", "upper"):
        if not variable.lower <= args[arg] <= variable.upper:
            raise InputError(
                path,
                f"{key}.{arg}",
                f"{shown(args[arg])} is out of range {bounds}",
                f"give a value within {bounds} ({variable.units})",
            )


def salib_problem(distributions: Sequence[Distribution]) -> dict:
    """The SALib ``problem`` dict for these distributions (names, bounds, dists)."""
    codes = [d.salib() for d in distributions]
    return {
        "num_vars": len(codes),
        "names": [param_name(d.setting) for d in distributions],
        "dists": [code for code, _ in codes],
        "bounds": [bounds for _, bounds in codes],
    }


def latin_hypercube(distributions: Sequence[Distribution], samples: int, seed: int) -> np.ndarray:
    """``samples`` x ``len(distributions)`` values: a Latin hypercube on [0, 1) mapped through each inverse CDF.

    The same seed gives the same design, whatever executor runs it.
    """
    from scipy.stats import qmc

    unit = qmc.LatinHypercube(d=len(distributions), rng=np.random.default_rng(seed)).random(samples)
    return np.column_stack([d.frozen().ppf(unit[:, i]) for i, d in enumerate(distributions)])


# --- varied constants: shared with parameter sweeps ------------------------------------------


def param_name(setting: Setting) -> str:
    """The coordinate or dim name of a varied constant: its python name, with ``[element]`` for one element."""
    return setting.py_name if setting.element is None else f"{setting.py_name}[{setting.element[1]}]"


def resolve_constant(name: str, info: ModelInfo, source: str | Path, key: str) -> Variable:
    """The model variable a varied name (``NAME`` or ``NAME[element]``) refers to."""
    match = ELEMENT_PATTERN.match(name)
    return info.resolve(match["name"] if match else name, str(source), key)


def varied_setting(name: str, variable: Variable, info: ModelInfo, source: str | Path) -> Setting:
    """The setting a varied constant changes, checked by the scenario rules (a constant, a real element)."""
    inside = min(max(0.0, variable.lower), variable.upper)
    probe = Scenario(name="ensemble", params={name: inside}, source=str(source), origins={name: str(source)})
    return validate(probe, info, {}).settings[0]


def check_varied_once(settings: Iterable[tuple[Setting, str]], source: str | Path) -> None:
    """Refuse two varied parameters that change the same constant (or element): one would silently win."""
    seen: dict[tuple, str] = {}
    for setting, key in settings:
        for other, other_key in seen.items():
            same = other[0] == setting.py_name and (other[1] is None or setting.element is None or other[1] == setting.element)
            if same:
                raise InputError(source, key, f"varies the same constant as {other_key}", "vary each constant once")
        seen[(setting.py_name, setting.element)] = key


# --- small helpers -----------------------------------------------------------------------------


def _suggest(word: str, choices: Sequence[str], prefix: str = "allowed keys are") -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else f"{prefix} {', '.join(choices)}"


def _quote(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def format_bound(value: float) -> str:
    """A documented bound as a message shows it: ``?`` where the range is open."""
    return "?" if math.isinf(value) else f"{value:g}"
