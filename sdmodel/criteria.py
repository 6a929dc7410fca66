"""Criteria and outcomes: a small, safe expression language over an ensemble's outputs.

A robustness study asks "in how many futures does this policy do what we want?", so the
user writes what they want: ``"labour_share@2040 - baseline >= 0.01"``, ``"hhi@2040 < 0.4"``,
joined with ``and``. The text comes from a command line or a file someone else wrote, so it
is parsed by Python's :mod:`ast` in ``eval`` mode and walked against an allow-list of node
types; it is never given to ``eval`` or ``exec``, and anything outside the list (a call, an
attribute, a subscript, a lambda, ``**``, a string) is refused with a one-line error.

The language:

- ``OUTPUT`` is an output at the final time, ``OUTPUT@YEAR`` at a year; OUTPUT is a
  comparison measure's key (``hhi``, ``labour_share``: :data:`sdmodel.metrics.METRICS`) or a
  model variable's python name;
- ``baseline`` is the baseline scenario's value, on the same draw, of the one output the
  comparison it stands in names (so ``labour_share@2040 - baseline`` is the policy's effect);
- numbers, ``+ - * /``, unary ``-``, comparisons ``< <= > >=`` (chained too), ``and``, ``or``, ``not``.

``@YEAR`` is pre-tokenised (``hhi@2040`` becomes a placeholder name before parsing), so
Python's matrix-multiply operator never reaches the walker; a stray ``@`` is refused.

A criterion's comparisons also say which way is better, which regret needs
(:func:`outcomes_of`): in ``hhi@2040 < 0.4`` less HHI is better, in ``labour_share@2040 -
baseline >= 0.01`` more labour share.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from sdmodel.errors import InputError

MAX_LENGTH = 500  # characters: enough for several comparisons, too few for a parser-exhausting nest
MAX_DEPTH = 40  # nested operations: evaluating and printing recurse, so a deep nest is refused before either
MAX_NUMBER = 1e15  # larger literals are typos, or attempts to overflow the arithmetic
BASELINE = "baseline"
_PLACEHOLDER = "_sdref"
_AT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*@\s*([0-9]+(?:\.[0-9]*)?)(?![\w.])")  # ASCII digits: float() reads others
_COMPARISONS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_REFUSED = {  # what a node is called in the error, for the constructs people (or attackers) try
    ast.Call: "a function call",
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.Starred: "a starred expression",
    ast.IfExp: "an if-expression",
    ast.NamedExpr: "an assignment",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.JoinedStr: "a string",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


@dataclass(frozen=True)
class Reference:
    """An output read at a time (``None``: the final time), in the scenario or in the baseline on the same draw."""

    output: str
    year: float | None = None
    of_baseline: bool = False

    @property
    def label(self) -> str:
        """``hhi@2040``, as a user writes it (the baseline's value prefixed ``baseline:``)."""
        text = self.output + (f"@{self.year:g}" if self.year is not None else "")
        return f"baseline:{text}" if self.of_baseline else text


@dataclass(frozen=True)
class Expression:
    """A parsed criterion (true or false per draw) or outcome (a number per draw)."""

    text: str
    tree: ast.Expression
    names: Mapping[str, Reference]  # placeholder or output name -> what it reads
    bindings: Mapping[int, Reference]  # id() of each bare `baseline` Name -> the baseline value it stands for
    is_test: bool

    def references(self) -> list[Reference]:
        """Every output the expression reads, the baseline's values included, each once, in order of appearance."""
        found = [self.names[node.id] for node in ast.walk(self.tree) if isinstance(node, ast.Name) and node.id in self.names]
        found += list(self.bindings.values())
        return list(dict.fromkeys(found))

    @property
    def canonical(self) -> str:
        """The expression as one text whatever its spacing and parentheses: ``hhi @ 2050`` and ``(hhi@2050)`` alike."""
        return _unparse(self.tree.body, self.names)

    def evaluate(self, values: Callable[[Reference], np.ndarray]) -> np.ndarray:
        """The expression over arrays of draws: ``values(reference)`` gives each output's values."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _evaluate(self.tree.body, self, values)


def parse(text: str, *, test: bool, option: str = "--criterion") -> Expression:
    """Parse a criterion (``test=True``: it must compare) or an outcome (a number); one-line errors otherwise.

    >>> parse("hhi@2040 < 0.4", test=True).references()
    [Reference(output='hhi', year=2040.0, of_baseline=False)]
    >>> [r.label for r in parse("labour_share@2040 - baseline >= 0.01", test=True).references()]
    ['labour_share@2040', 'baseline:labour_share@2040']
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(source=option, key=str(text), problem="is empty", fix='write e.g. "hhi@2040 < 0.4"')
    if len(text) > MAX_LENGTH:
        raise InputError(
            source=option, key=_shown(text), problem=f"is longer than {MAX_LENGTH} characters", fix="write a shorter expression"
        )
    if _PLACEHOLDER in text:
        raise InputError(
            source=option,
            key=_shown(text),
            problem=f"'{_PLACEHOLDER}' is reserved",
            fix="name outputs by their keys, e.g. hhi@2040",
        )
    names: dict[str, Reference] = {}

    def placeholder(match: re.Match) -> str:
        reference = Reference(match[1], float(match[2]))
        name = next((key for key, known in names.items() if known == reference), f"{_PLACEHOLDER}{len(names)}")
        names[name] = reference
        return name

    source = _AT.sub(placeholder, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        problem = "is not a valid expression" + (f" ({error.msg})" if isinstance(error, SyntaxError) and error.msg else "")
        raise InputError(
            source=option,
            key=_shown(text),
            problem=problem,
            fix='write outputs, @YEAR, numbers, + - * /, comparisons and `and`, e.g. "hhi@2040 < 0.4"',
        ) from None
    if _depth(tree) > MAX_DEPTH:
        raise InputError(
            source=option, key=_shown(text), problem=f"is nested more than {MAX_DEPTH} deep", fix="write a simpler expression"
        )
    checker = _Checker(text, option, names)
    kind = checker.check(tree.body, context=None)
    if test and kind != "test":
        raise InputError(
            source=option, key=_shown(text), problem="is a number, not a criterion", fix="compare it, e.g. add '>= 0.01'"
        )
    if not test and kind != "number":
        raise InputError(
            source=option,
            key=_shown(text),
            problem="is a criterion, not a number",
            fix="give the quantity alone, e.g. labour_share@2040",
        )
    return Expression(text, tree, names, checker.bindings, test)


def check_outputs(expression: Expression, known: Callable[[str], bool], option: str = "--criterion") -> None:
    """Refuse an output the model or run does not have, before anything runs."""
    for reference in expression.references():
        if not known(reference.output):
            raise InputError(
                source=option,
                key=_shown(expression.text),
                problem=f"unknown output '{reference.output}'",
                fix="use a measure's key (e.g. hhi, labour_share) or a variable's python name (`sdmodel describe` lists them)",
            )


@dataclass(frozen=True)
class Outcome:
    """A quantity regret is measured on: an expression and which way is better (``sense`` +1: more is better)."""

    label: str
    expression: Expression
    sense: int


def outcomes_of(criterion: Expression) -> list[Outcome]:
    """The outcomes a criterion's comparisons imply: ``X >= c`` means more X is better, ``X < c`` less.

    Each single comparison between an expression and a number gives one outcome (the
    expression); ``X - baseline`` and ``X`` give the same regret, since the baseline is
    the same for every policy on a draw.

    >>> [(o.label, o.sense) for o in outcomes_of(parse("hhi@2040 < 0.4 and 0.01 <= labour_share - baseline", test=True))]
    [('hhi@2040', -1), ('labour_share', 1)]
    """
    found = []
    for node in ast.walk(criterion.tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, right, op = node.left, node.comparators[0], node.ops[0]
        sense = 1 if isinstance(op, (ast.Gt, ast.GtE)) else -1
        if _constant(left) and not _constant(right):
            left, sense = right, -sense
        elif _constant(left) or not _constant(right):
            continue  # two quantities compared: no single direction to prefer
        if (
            isinstance(left, ast.BinOp)
            and isinstance(left.op, ast.Sub)
            and isinstance(left.right, ast.Name)
            and left.right.id == BASELINE
        ):
            left = left.left  # X - baseline ranks policies as X does: the baseline is the same for all on a draw
        tree = ast.Expression(body=left)
        label = _unparse(left, criterion.names)
        sub = Expression(label, tree, criterion.names, criterion.bindings, False)
        found.append(Outcome(label, sub, sense))
    return found


def outcome(text: str, sense: int, option: str) -> Outcome:
    """An outcome given explicitly (``--maximize``: sense +1, ``--minimize``: -1)."""
    return Outcome(text, parse(text, test=False, option=option), sense)


# --- checking ------------------------------------------------------------------------------------


class _Checker:
    """Walks the tree against the allow-list; says whether each node is a number or a test; binds `baseline`."""

    def __init__(self, text: str, option: str, names: dict[str, Reference]):
        self.text, self.option, self.names = text, option, names
        self.bindings: dict[int, Reference] = {}

    def fail(self, problem: str, fix: str = "use outputs, @YEAR, numbers, + - * /, comparisons, and, or, not") -> InputError:
        return InputError(source=self.option, key=_shown(self.text), problem=problem, fix=fix)

    def check(self, node: ast.AST, context: ast.AST | None) -> str:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                if self.check(value, context) != "test":
                    raise self.fail(f"'{'and' if isinstance(node.op, ast.And) else 'or'}' joins comparisons, not numbers")
            return "test"
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARISONS:
                    raise self.fail(f"'{_op_name(op)}' is not a comparison it knows", "compare with <, <=, > or >=")
            for operand in (node.left, *node.comparators):
                if self.check(operand, node) != "number":
                    raise self.fail("compares a comparison", "join comparisons with `and`")
            return "test"
        if isinstance(node, ast.UnaryOp):
            kind = self.check(node.operand, context)
            if isinstance(node.op, ast.Not):
                if kind != "test":
                    raise self.fail("'not' applies to a comparison")
                return "test"
            if not isinstance(node.op, (ast.USub, ast.UAdd)) or kind != "number":
                raise self.fail(f"'{_op_name(node.op)}' is not allowed")
            return "number"
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.MatMult):
                raise self.fail("'@' must join an output and a year", "write OUTPUT@YEAR, e.g. hhi@2040")
            if type(node.op) not in _ARITHMETIC:
                raise self.fail(f"'{_op_name(node.op)}' is not allowed", "use + - * /")
            if self.check(node.left, context) != "number" or self.check(node.right, context) != "number":
                raise self.fail("does arithmetic on a comparison")
            if isinstance(node.op, ast.Div) and _constant(node.right) and _evaluate(node.right, None, None) == 0:
                # infinite or NaN on every draw: "hhi < 1/0" was met on all of them
                raise self.fail(f"divides by zero ({_shown(_unparse(node, self.names))})", "divide by a number other than 0")
            return "number"
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"{type(value).__name__} {_shown(repr(value))} is not a number")
            if abs(value) > MAX_NUMBER or not math.isfinite(value):  # an int is compared before it could overflow a float
                raise self.fail(
                    f"the number {_shown(repr(value))} is out of range", f"use numbers of magnitude at most {MAX_NUMBER:g}"
                )
            return "number"
        if isinstance(node, ast.Name):
            if node.id == BASELINE:
                self.bindings[id(node)] = self._baseline(context)
            elif node.id not in self.names:
                if node.id.startswith("_"):
                    raise self.fail(f"'{node.id}' is not an output", "name outputs by their keys, e.g. hhi@2040")
                self.names[node.id] = Reference(node.id)
            return "number"
        what = _REFUSED.get(type(node), f"'{type(node).__name__}'")
        raise self.fail(f"{what} is not allowed")

    def _baseline(self, context: ast.AST | None) -> Reference:
        """What a bare `baseline` stands for: the baseline's value of the one output its comparison names."""
        nodes = ast.walk(context) if context is not None else ()  # an outcome (--maximize) has no comparison: refused
        found = {self.names.get(n.id) or Reference(n.id) for n in nodes if isinstance(n, ast.Name) and n.id != BASELINE}
        if len(found) != 1:
            problem = "'baseline' must stand in a comparison that names one output" + (
                f" (this one names {len(found)})" if found else ""
            )
            raise self.fail(problem, 'write e.g. "labour_share@2040 - baseline >= 0.01"')
        reference = found.pop()
        return Reference(reference.output, reference.year, of_baseline=True)


def _evaluate(node: ast.AST, expression: Expression, values: Callable[[Reference], np.ndarray]):
    if isinstance(node, ast.BoolOp):
        parts = [np.asarray(_evaluate(v, expression, values), dtype=bool) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.Compare):
        result, left = None, _evaluate(node.left, expression, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, expression, values)
            part = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}[type(op)](left, right)
            result = part if result is None else np.logical_and(result, part)
            left = right
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, expression, values)
        return (
            np.logical_not(operand)
            if isinstance(node.op, ast.Not)
            else (np.negative(operand) if isinstance(node.op, ast.USub) else operand)
        )
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_evaluate(node.left, expression, values), _evaluate(node.right, expression, values))
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        reference = expression.bindings[id(node)] if node.id == BASELINE else expression.names[node.id]
        return np.asarray(values(reference), dtype=float)
    raise TypeError(f"unchecked node {type(node).__name__}")  # the checker refuses these first


def _depth(tree: ast.AST) -> int:
    """How deeply the tree nests, found without recursion (the nest may be deep enough to exhaust the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _constant(node: ast.AST) -> bool:
    """Whether a subtree reads no output (a number, or arithmetic on numbers)."""
    return not any(isinstance(n, ast.Name) for n in ast.walk(node))


def _unparse(node: ast.AST, names: Mapping[str, Reference]) -> str:
    """The subtree as the user wrote it: placeholders back to ``OUTPUT@YEAR``."""
    text = ast.unparse(node)
    for placeholder in sorted(names, key=len, reverse=True):
        if placeholder.startswith(_PLACEHOLDER):
            text = re.sub(rf"\b{placeholder}\b", names[placeholder].label, text)
    return text


def _shown(text: str) -> str:
    """The expression as an error message quotes it: whole if short, else its start (a message stays readable)."""
    return text if len(text) <= 80 else text[:37] + "..." + text[-37:]


def _op_name(op: ast.AST) -> str:
    symbols = {
        ast.Pow: "**",
        ast.Mod: "%",
        ast.FloorDiv: "//",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.BitOr: "|",
        ast.BitAnd: "&",
        ast.BitXor: "^",
        ast.Invert: "~",
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
        ast.MatMult: "@",
    }
    return symbols.get(type(op), type(op).__name__)
