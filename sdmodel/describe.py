"""What one variable of a model is: its equation, units, range, source and causal neighbours.

Answers `sdmodel describe VARIABLE`, the question a reader of a result asks first: where does
this number come from? The answer comes from a small JSON file of the model's metadata, kept
in the cache beside PySD's translation and keyed by everything that decides it (the model's
content, the PySD and Simlin versions, sdmodel's code): reading it takes milliseconds, where
importing PySD and loading the model took seconds every time.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path

from sdmodel.errors import InputError, Note
from sdmodel.locations import cache_dir, default_model, read_cache, write_cache
from sdmodel.model import SUGGESTION_CUTOFF, ModelInfo, Variable, canonical, file_sha256, normalise
from sdmodel.provenance import code_fingerprint

#: what the sign after each causal neighbour means (Simlin signs a link from its equation alone)
POLARITY_LEGEND = "(+) moves the same way, (-) the opposite way, (?) either way, depending on other values"


def describe(name: str, model: str | Path | None = None) -> dict:
    """A variable's documentation; an unknown name raises InputError with the closest match.

    ``name`` may also be a comparison measure's key (``hhi``, as `compare --json` and
    `sensitivity` name it): the answer is then its variable's, with the measure under
    ``"measure"``.
    """
    from sdmodel.metrics import METRIC_BY_KEY

    model_path = Path(model) if model else default_model()
    info, written, links = model_metadata(model_path)
    measure = METRIC_BY_KEY.get(name)
    try:  # a variable of the model first: a model of one's own may name one like a measure
        variable = info.resolve(name, str(model_path), "VARIABLE")
        if measure and normalise(measure.variable) not in (normalise(variable.py_name), normalise(variable.name)):
            measure = None  # the model's own variable of that name, not the measure
    except InputError:
        if measure:
            variable = info.resolve(measure.variable, str(model_path), "VARIABLE")
        else:
            close = difflib.get_close_matches(name, list(METRIC_BY_KEY), n=1, cutoff=SUGGESTION_CUTOFF)
            if not close or _likeness(name, close[0]) <= max(
                (_likeness(normalise(name), normalise(v.name)) for v in info.variables.values()), default=0
            ):
                raise  # a variable at least as like it is the likelier meaning
            problem = f"'{name}' is neither a variable of {model_path.name} nor a comparison measure"
            raise InputError(
                source=model_path, key="VARIABLE", problem=problem, fix=f"did you mean the measure '{close[0]}'?"
            ) from None
    names = {canonical(v.name): v.name for v in info.variables.values()}
    key = canonical(variable.name)
    return {
        "name": variable.name,
        "python_name": variable.py_name,
        "kind": variable.kind,
        "dims": list(variable.dims),
        "units": variable.units,
        "range": None if math.isinf(variable.lower) and math.isinf(variable.upper) else [variable.lower, variable.upper],
        "equation": written.get(key, ""),
        "source": variable.comment,
        "depends_on": sorted(
            f"{names.get(cause, cause)} ({sign})" for (cause, effect), sign in links.items() if effect == key and cause in names
        ),
        "used_by": sorted(
            f"{names.get(effect, effect)} ({sign})" for (cause, effect), sign in links.items() if cause == key and effect in names
        ),
        "measure": {"key": measure.key, "label": measure.label, "select": measure.select} if measure else None,
    }


def listing(model: str | Path | None = None) -> list[dict]:
    """Every variable's name, kind and units, by name."""
    info = model_metadata(Path(model) if model else default_model())[0]
    return [
        {"name": v.name, "kind": v.kind, "dims": list(v.dims), "units": v.units}
        for v in sorted(info.variables.values(), key=lambda v: v.name.lower())
        if v.py_name != "time"
    ]


Links = dict[tuple[str, str], str]


def model_metadata(model_path: Path) -> tuple[ModelInfo, dict[str, str], Links]:
    """A model's variables (as PySD documents them), equations and signed causal links (as Simlin reads them).

    From the cache when it holds them for this content, engines and code; else read
    through PySD and Simlin (seconds) and cached for the next time.
    """
    if not model_path.is_file():
        raise InputError(
            source=model_path, key=None, problem="model file not found", fix="give the path of a Vensim .mdl or XMILE .xmile file"
        )
    sha256 = file_sha256(model_path)
    path = _metadata_path(sha256)
    try:
        cached = json.loads(read_cache(path) or "")  # none, or damaged (its checksum does not match): read again
        variables = {row["py_name"]: Variable(**{**row, "dims": tuple(row["dims"])}) for row in cached["variables"]}
        info = ModelInfo(model_path, sha256, variables, {dim: tuple(elements) for dim, elements in cached["subscripts"].items()})
        return info, cached["equations"], {(cause, effect): sign for cause, effect, sign in cached["links"]}
    except (OSError, ValueError, KeyError, TypeError):  # not cached yet, or damaged: read again
        pass
    from sdmodel.engines.simlin_structure import causal_links, equations
    from sdmodel.simulate import model_info

    info = model_info(model_path)
    try:
        written, links = equations(model_path), causal_links(model_path)
    except InputError as error:  # a model PySD reads and Simlin cannot (data files): its variables, said so each time
        warnings.warn(Note(f"{error.problem}: equations and causal links are not shown"), stacklevel=2)
        return info, {}, {}  # not cached: a changed data file (its subscripts) is read again
    content = {
        "variables": [asdict(variable) for variable in info.variables.values()],
        "subscripts": info.subscripts,
        "equations": written,
        "links": [[cause, effect, sign] for (cause, effect), sign in links.items()],
    }
    write_cache(path, json.dumps(content))
    return info, written, links


def _metadata_path(model_sha256: str) -> Path:
    """The cache file for a model's content, named also by what reads it: a new PySD, Simlin or sdmodel reads again."""
    from importlib.metadata import version

    readers = f"{version('pysd')}|{version('pysimlin')}|{code_fingerprint()}"
    return cache_dir() / "metadata" / f"{model_sha256[:24]}-{hashlib.sha256(readers.encode()).hexdigest()[:16]}.json"


def _likeness(text: str, other: str) -> float:
    """How alike two names are, as difflib's "did you mean" scores them."""
    return difflib.SequenceMatcher(None, text, other).ratio()
