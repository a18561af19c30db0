"""A safe calculator and number statistics.

``calculate`` parses the expression with :mod:`ast` and evaluates only a whitelist of
nodes (numbers, + - * / // % **, comparisons, parentheses, and the math functions and
constants listed in ``FUNCTIONS`` / ``CONSTANTS``); it never calls ``eval``. Names,
attributes, subscripts, lambdas and calls of anything else are refused, and exponents and
result sizes are bounded so that ``9**9**9`` is an error instead of a hung worker.
"""

from __future__ import annotations

import ast
import math
import operator
import statistics as stats
from typing import Any

from lmthing.prompt.tools import tool

from .registry import tagged
from .settings import PURE_RETRY, ToolInputError

MAX_EXPRESSION = 1_000  # characters
MAX_EXPONENT = 10_000
MAX_INT_DIGITS = 4_000

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
FUNCTIONS = {
    name: getattr(math, name) for name in (
        "sqrt", "exp", "log", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh",
        "tanh", "degrees", "radians", "floor", "ceil", "factorial", "gcd", "hypot", "comb", "perm", "trunc",
    )
} | {"abs": abs, "round": round, "min": min, "max": max}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def evaluate(expression: str) -> float | int | bool:
    """The value of ``expression`` (see the module's docstring), or a ToolInputError."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolInputError(f"The expression is over {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as err:
        raise ToolInputError(f"Not an arithmetic expression: {err.msg} (at column {err.offset})") from None
    try:
        return _eval(tree.body)
    except ZeroDivisionError:
        raise ToolInputError("Division by zero") from None
    except (OverflowError, ValueError, TypeError) as err:
        raise ToolInputError(f"Cannot compute {expression!r}: {err}") from None


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolInputError(f"Unknown name {node.id!r}; constants: {', '.join(CONSTANTS)}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolInputError(f"Exponent {right} is too large (at most {MAX_EXPONENT})")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ToolInputError(f"Unknown function {node.func.id!r}; functions: {', '.join(sorted(FUNCTIONS))}")
        args = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and args and args[0] > 1000:
            raise ToolInputError("factorial is computed up to 1000")
        return _bounded(fn(*args))
    raise ToolInputError(f"{type(node).__name__} is not allowed in an expression: numbers, + - * / // % **, "
                         "comparisons, parentheses, and the listed functions and constants only")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_DIGITS * 3.33:
        raise ToolInputError(f"The result has more than {MAX_INT_DIGITS} digits")
    return value


@tagged("calc", "math")
@tool(retry=PURE_RETRY)
def calculate(expression: str) -> dict:
    """Evaluate an arithmetic expression exactly (e.g. '(3 + 4) * 2 ** 10 / sqrt(16)'); math functions allowed."""
    return {"expression": expression, "result": evaluate(expression)}


@tagged("calc", "math", "statistics")
@tool(retry=PURE_RETRY)
def number_stats(numbers: list[float]) -> dict:
    """Count, sum, mean, median, min, max and standard deviation of a list of numbers."""
    if not numbers:
        raise ToolInputError("Give at least one number")
    return {"count": len(numbers), "sum": math.fsum(numbers), "mean": stats.fmean(numbers),
            "median": stats.median(numbers), "min": min(numbers), "max": max(numbers),
            "stdev": stats.stdev(numbers) if len(numbers) > 1 else 0.0}
