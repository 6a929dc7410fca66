"""The criteria language (sdmodel/criteria.py): expressions evaluate over draws, comparisons give the outcomes'
directions, hostile text is a one-line error, and nothing reaches eval."""

from __future__ import annotations

import numpy as np
import pytest

from sdmodel.criteria import Reference, outcomes_of, parse
from sdmodel.errors import InputError


def test_expressions_evaluate_over_draws():
    values = {
        Reference("hhi", 2040.0): np.array([0.3, 0.5]),
        Reference("labour_share", 2040.0): np.array([0.6, 0.55]),
        Reference("labour_share", 2040.0, True): np.array([0.58, 0.55]),
        Reference("labour_share"): np.array([0.1, 0.9]),
    }
    expression = parse("labour_share@2040 - baseline >= 0.01 and hhi@2040 < 0.4", test=True)
    assert expression.evaluate(values.__getitem__).tolist() == [True, False]
    assert parse("0.2 < hhi@2040 * 2 / 2 + -0.1 <= 0.3 or not labour_share > 0.5", test=True).evaluate(
        values.__getitem__
    ).tolist() == [True, False]
    assert parse("labour_share@2040 - 2 * hhi@2040", test=False).evaluate(values.__getitem__) == pytest.approx([0.0, -0.45])


def test_directions_come_from_the_comparisons():
    outcomes = outcomes_of(parse("hhi@2040 < 0.4 and 0.01 <= labour_share@2040 - baseline", test=True))
    assert [(o.label, o.sense) for o in outcomes] == [("hhi@2040", -1), ("labour_share@2040", 1)]


HOSTILE = [
    "__import__('os').system('touch /tmp/sdmodel-pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "hhi.__class__ > 0",
    "open('/etc/passwd') > 0",
    "(lambda: 1)() > 0",
    "hhi[0] > 0",
    "10 ** 10 ** 10 > hhi",
    "9" * 400 + " > hhi",
    "1e999 > hhi",
    "hhi < 1/0",  # met on every draw: 1/0 is inf under numpy
    "hhi / (2 - 2) > 0",
    "'a' * 10 > hhi",
    "[x for x in ()] > hhi",
    "(x := 1) > 0",
    "hhi if hhi else 0",
    "_sdref0 > 0",
    "__builtins__ > 0",
    "hhi == 0.4",
    "hhi > 0; import os",
    "hhi\x00 > 0",
    "-" * 300 + "hhi > 0",
    "(" * 210 + "hhi" + ")" * 210 + " > 0",  # beyond the parser's nesting limit
    "+".join(["hhi"] * 200) + " > 0",
    "hhi@2040@2050 > 0",
    "baseline > 0",
    "f'{hhi}' > 0",
    "True > hhi",
    "",
    "x" * 600,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_expressions_are_one_line_errors(text, tmp_path):
    with pytest.raises(InputError) as raised:
        parse(text, test=True)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 400


def test_no_expression_reaches_eval(monkeypatch):
    """Evaluating the allowed language calls neither eval, exec nor compile: the walker computes it."""
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("eval, exec or compile was called")

    expression = parse("hhi@2040 < 0.4 and labour_share > 0.5", test=True)
    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    assert expression.evaluate(lambda ref: np.array([0.3, 0.7]) if ref.output == "hhi" else np.array([0.6, 0.6])).tolist() == [
        True,
        False,
    ]
