"""A small, deterministic Python-subset interpreter for model-written code (``runToolCode``).

Pure Python (no Temporal): the function plugin runs it *inside the workflow*. Nothing of
the host Python is reachable from the code: it is parsed with :mod:`ast` and evaluated by
walking the tree here; it never goes through ``compile``/``exec``/``eval``. Names resolve
only to the script's own variables, a few safe builtins implemented here, and the
registered functions; attribute access is limited to namespace members and a whitelist of
list/dict/str methods; dunder names are rejected.

Two passes:

* :func:`check_code` (static): syntax, forbidden constructs, unknown names and functions,
  unknown/missing/positional arguments, literal argument types against each function's
  JSON schema. Every error carries a line number.
* :class:`Interpreter` (run): evaluates the tree under bounds: a node-evaluation budget
  (stops infinite loops), sizes of strings/lists/dicts/ints checked *before* allocating,
  a total allocation budget, nesting depth, output size and result size.

The interpreter is deterministic (no clock, randomness, hashing of ids or I/O), which is
what makes a script durable inside a workflow: on replay it makes the same calls in the
same order, and Temporal hands back the recorded results of completed activity calls
instead of running them again.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


class ScriptError(Exception):
    """The script was stopped; the message (with a line number) goes back to the model."""


@dataclass(frozen=True)
class Limits:
    max_steps: int = 100_000  # AST node evaluations (loops included)
    max_code_chars: int = 20_000
    max_ast_depth: int = 60
    max_str: int = 100_000  # characters of any one string
    max_items: int = 10_000  # elements of any one list/dict/tuple/range turned into a list
    max_alloc: int = 2_000_000  # total characters/elements created by operations
    max_int_bits: int = 4_096
    max_depth: int = 50  # nesting of values sent out (results, arguments, printing)
    max_output: int = 20_000  # characters printed
    max_result: int = 200_000  # size units of the result / of one function's arguments
    max_format_width: int = 1_000


@dataclass
class Param:
    name: str
    schema: dict[str, Any]
    required: bool


@dataclass
class Signature:
    """A callable the script may use: ``name`` is ``fn`` or ``namespace.fn``."""

    name: str
    params: list[Param]
    defs: dict[str, Any] = field(default_factory=dict)
    returns: str = "Any"
    description: str = ""

    def params_text(self) -> str:
        """``a: int, b: int = 2``: the keyword parameters, with their types."""
        parts = []
        for prm in self.params:
            t = type_name(prm.schema, self.defs)
            parts.append(f"{prm.name}: {t}" if prm.required else f"{prm.name}: {t} = {_default_repr(prm.schema)}")
        return ", ".join(parts)

    def render(self) -> str:
        return f"{self.name}({self.params_text()}) -> {self.returns}"


def _default_repr(schema: dict[str, Any]) -> str:
    try:
        return json.dumps(schema["default"]) if "default" in schema else "None"
    except (TypeError, ValueError):
        return "..."


def signature_from_schema(name: str, schema: dict[str, Any], returns: str = "Any", description: str = "") -> Signature:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    params = [Param(k, v if isinstance(v, dict) else {}, k in required) for k, v in props.items()]
    return Signature(name, params, dict(schema.get("$defs") or {}), returns, description)


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    for _ in range(20):
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
    return schema


_PY_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None", "array": "list", "object": "dict"}


def type_name(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> str:
    """A Python-style type for a JSON schema: ``int``, ``list[str]``, ``{"sum": int}``."""
    if depth > 4:
        return "Any"
    ref = schema.get("$ref")
    schema = _resolve(schema, defs)
    if "enum" in schema:
        return "Literal[" + ", ".join(json.dumps(v) for v in schema["enum"]) + "]"
    if "const" in schema:
        return f"Literal[{json.dumps(schema['const'])}]"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_name(s, defs, depth + 1) for s in schema[key])
    t = schema.get("type")
    if isinstance(t, list):
        return " | ".join(_PY_TYPES.get(x, "Any") for x in t)
    if t == "array":
        items = schema.get("items")
        return f"list[{type_name(items, defs, depth + 1)}]" if isinstance(items, dict) and items else "list"
    if t == "object" or (t is None and "properties" in schema):
        props = schema.get("properties")
        if props:
            inner = ", ".join(f"{json.dumps(k)}: {type_name(v, defs, depth + 1)}" for k, v in props.items())
            return "{" + inner + "}"
        return "dict"
    if t in _PY_TYPES:
        return _PY_TYPES[t]
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else "Any"


# ------------------------------------------------------------------------------ static check

SAFE_BUILTINS = (
    "len", "range", "min", "max", "sum", "sorted", "str", "int", "float", "bool", "list",
    "dict", "tuple", "abs", "round", "print", "enumerate", "zip", "any", "all", "reversed",
)
CONSTANTS = {"True", "False", "None"}

METHODS: dict[type, frozenset[str]] = {
    list: frozenset({"append", "extend", "pop", "insert", "index", "count", "reverse", "sort", "copy", "remove"}),
    dict: frozenset({"get", "keys", "values", "items", "pop", "update", "copy", "setdefault"}),
    str: frozenset({
        "upper", "lower", "strip", "lstrip", "rstrip", "split", "join", "replace", "startswith",
        "endswith", "find", "title", "capitalize", "isdigit", "isalpha", "count",
    }),
}
ALL_METHODS = frozenset().union(*METHODS.values())

_ALLOWED_NODES: tuple[type, ...] = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.While, ast.Break,
    ast.Continue, ast.Pass, ast.Constant, ast.Name, ast.Load, ast.Store, ast.List, ast.Tuple,
    ast.Dict, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript,
    ast.Slice, ast.Call, ast.Attribute, ast.keyword, ast.JoinedStr, ast.FormattedValue,
    ast.ListComp, ast.DictComp, ast.comprehension,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.UAdd, ast.USub, ast.Not, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
)

_FORBIDDEN_HINTS: dict[type, str] = {
    ast.Import: "imports are not allowed; only the listed functions are available",
    ast.ImportFrom: "imports are not allowed; only the listed functions are available",
    ast.FunctionDef: "defining functions is not allowed",
    ast.AsyncFunctionDef: "defining functions is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ClassDef: "defining classes is not allowed",
    ast.With: "'with' is not allowed",
    ast.AsyncWith: "'with' is not allowed",
    ast.Try: "try/except is not allowed",
    ast.Raise: "raise is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.Delete: "del is not allowed",
    ast.Await: "await is not needed: call functions directly, e.g. r = calculate(a=1, b=2)",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.GeneratorExp: "generator expressions are not supported; use a list comprehension",
    ast.SetComp: "sets are not supported",
    ast.Set: "sets are not supported",
    ast.Starred: "*unpacking is not supported",
    ast.NamedExpr: "the walrus operator is not supported",
    ast.Assert: "assert is not allowed",
    ast.AnnAssign: "annotated assignments are not supported; write x = value",
    ast.Return: "return is not allowed; a final expression is the result",
}
# Only found under a forbidden parent, which is reported already.
_SILENT = (ast.alias, ast.arguments, ast.arg, ast.withitem, ast.ExceptHandler)


def _where(node: ast.AST) -> str:
    return f"Line {getattr(node, 'lineno', '?')}"


def _ast_depth(tree: ast.AST, limit: int) -> bool:
    """True when the tree is deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            return True
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return False


def parse(code: str, limits: Limits) -> tuple[ast.Module | None, list[str]]:
    if not isinstance(code, str):
        return None, ["Line 1: the code must be a string"]
    if len(code) > limits.max_code_chars:
        return None, [f"Line 1: the code is {len(code)} characters long; the limit is {limits.max_code_chars}"]
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as err:
        return None, [f"Line {err.lineno or '?'}: syntax error: {err.msg}"]
    except (RecursionError, MemoryError, ValueError, OverflowError) as err:
        return None, [f"Line 1: the code cannot be parsed: {type(err).__name__}: {err}"]
    if _ast_depth(tree, limits.max_ast_depth):
        return None, [f"Line 1: the code is nested more than {limits.max_ast_depth} levels deep"]
    return tree, []


def check_code(
    code: str, signatures: dict[str, Signature], limits: Limits = Limits()
) -> tuple[ast.Module | None, list[str]]:
    """Parse and check ``code``; ``(tree, [])`` when it may run, else ``(None, errors)``."""
    tree, errors = parse(code, limits)
    if tree is None:
        return None, errors
    namespaces = {n.split(".", 1)[0] for n in signatures if "." in n}
    functions = {n for n in signatures if "." not in n}
    assigned: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned.add(node.id)
    for name in sorted(assigned & (functions | namespaces | set(SAFE_BUILTINS) | CONSTANTS)):
        errors.append(f"Line 1: '{name}' is a function name and cannot be assigned to")

    def err(node: ast.AST, msg: str) -> None:
        errors.append(f"{_where(node)}: {msg}")

    call_funcs: set[int] = set()
    ns_bases = _namespace_bases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            call_funcs.add(id(node.func))
    for node in ast.walk(tree):
        kind = type(node)
        if kind in _FORBIDDEN_HINTS:
            err(node, _FORBIDDEN_HINTS[kind])
            continue
        if isinstance(node, _SILENT):
            continue
        if not isinstance(node, _ALLOWED_NODES):
            err(node, f"{kind.__name__} is not supported in this sandbox")
            continue
        if isinstance(node, ast.Name):
            if "__" in node.id or node.id.startswith("_"):
                err(node, f"names starting with '_' are not allowed ({node.id!r})")
            elif id(node) in call_funcs and node.id not in assigned:
                continue  # reported by _check_call
            elif isinstance(node.ctx, ast.Load) and node.id not in assigned | functions | set(SAFE_BUILTINS) | CONSTANTS:
                if node.id in namespaces:
                    if id(node) not in ns_bases:
                        err(node, f"'{node.id}' is a namespace: call its functions, e.g. {node.id}.<function>(...)")
                else:
                    hint = _hint(node.id, functions | namespaces)
                    err(node, f"name '{node.id}' is not defined{hint}")
            elif node.id in functions | set(SAFE_BUILTINS) and id(node) not in call_funcs and isinstance(node.ctx, ast.Load):
                err(node, f"'{node.id}' can only be called, not used as a value")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                err(node, f"attribute '{node.attr}' is not allowed (names starting with '_' are blocked)")
            elif isinstance(node.value, ast.Name) and node.value.id in namespaces and node.value.id not in assigned:
                full = f"{node.value.id}.{node.attr}"
                if full not in signatures:
                    members = ", ".join(sorted(s for s in signatures if s.startswith(node.value.id + ".")))
                    err(node, f"unknown function '{full}'. Available in '{node.value.id}': {members}")
                elif id(node) not in call_funcs:
                    err(node, f"'{full}' can only be called, not used as a value")
            elif id(node) not in call_funcs:
                err(node, f"attribute access '.{node.attr}' is not allowed (only method calls such as x.append(...))")
            elif node.attr not in ALL_METHODS:
                err(node, f"method '.{node.attr}()' is not allowed; allowed methods: {', '.join(sorted(ALL_METHODS))}")
        elif isinstance(node, ast.Call):
            _check_call(node, signatures, functions, namespaces, assigned, err)
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and (isinstance(node.left, ast.JoinedStr) or (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)))
        ):
            err(node, "'%' string formatting is not supported; use an f-string")
    errors.sort(key=_line_of)
    return (None, errors) if errors else (tree, [])


def _line_of(error: str) -> int:
    head = error.split(":", 1)[0].removeprefix("Line ")
    return int(head) if head.isdigit() else 0


def _namespace_bases(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            out.add(id(node.value))
    return out


def _hint(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_call(node: ast.Call, signatures: dict[str, Signature], functions: set[str], namespaces: set[str], assigned: set[str], err: Callable[[ast.AST, str], None]) -> None:
    f = node.func
    name: str | None = None
    if isinstance(f, ast.Name):
        if f.id in SAFE_BUILTINS:
            if any(k.arg is None for k in node.keywords):
                err(node, "**unpacking is not supported")
            return
        if f.id in functions:
            name = f.id
        elif f.id not in assigned and f.id not in namespaces:
            known = sorted(signatures)
            err(node, f"unknown function '{f.id}'{_hint(f.id, set(known))}. Available functions: {', '.join(known) or '(none)'}")
            return
        else:
            err(node, f"'{f.id}' is not a function")
            return
    elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in namespaces:
        name = f"{f.value.id}.{f.attr}"
        if name not in signatures:
            return  # reported on the Attribute node
    elif isinstance(f, ast.Attribute):
        return  # a method call: checked on the Attribute node and at run time
    else:
        err(node, "only named functions can be called")
        return
    sig = signatures[name]
    if node.args:
        err(node, f"call {name} with keyword arguments: {sig.render()}")
    given: set[str] = set()
    params = {p.name: p for p in sig.params}
    for kw in node.keywords:
        if kw.arg is None:
            err(node, f"**unpacking is not supported in a call to {name}; pass each argument by name")
            continue
        given.add(kw.arg)
        prm = params.get(kw.arg)
        if prm is None:
            err(kw.value, f"{name}() got an unknown argument '{kw.arg}'; signature: {sig.render()}")
            continue
        problem = _literal_type_problem(kw.value, prm.schema, sig.defs)
        if problem:
            err(kw.value, f"{name}() argument '{kw.arg}' {problem}")
    missing = [p.name for p in sig.params if p.required and p.name not in given]
    if missing and not node.args:
        err(node, f"{name}() is missing required argument(s): {', '.join(missing)}; signature: {sig.render()}")


def _literal_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"
        if isinstance(v, float):
            return "number"
        if isinstance(v, str):
            return "string"
        return "other"
    if isinstance(node, ast.JoinedStr):
        return "string"
    if isinstance(node, (ast.List, ast.ListComp, ast.Tuple)):
        return "array"
    if isinstance(node, (ast.Dict, ast.DictComp)):
        return "object"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
        return _literal_kind(node.operand)
    return None


def _accepts(schema: dict[str, Any], kind: str, defs: dict[str, Any]) -> bool:
    schema = _resolve(schema, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(_accepts(s, kind, defs) for s in schema[key])
    if "enum" in schema or "const" in schema:
        return True  # checked by validation at call time
    t = schema.get("type")
    if t is None:
        return True
    types = t if isinstance(t, list) else [t]
    if kind in types:
        return True
    return kind == "integer" and "number" in types


_KIND_NAMES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None", "array": "list", "object": "dict", "other": "value"}


def _literal_type_problem(node: ast.AST, schema: dict[str, Any], defs: dict[str, Any]) -> str | None:
    kind = _literal_kind(node)
    if kind is None or _accepts(schema, kind, defs):
        return None
    return f"expects {type_name(schema, defs)}, got a literal of type {_KIND_NAMES[kind]}"


# ------------------------------------------------------------------------------ running


@dataclass
class Namespace:
    name: str


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


CallFunction = Callable[[str, dict[str, Any], int], Awaitable[Any]]

_PLAIN = (type(None), bool, int, float, str, list, dict, tuple)
_WIDTH = re.compile(r"\d+")


class Interpreter:
    """Evaluates a checked tree. ``call(name, kwargs, lineno)`` runs a registered function."""

    def __init__(self, signatures: dict[str, Signature], call: CallFunction, limits: Limits = Limits()) -> None:
        self.signatures = signatures
        self.call_function = call
        self.limits = limits
        self.steps = 0
        self.allocated = 0
        self.output: list[str] = []
        self.output_len = 0
        self.env: dict[str, Any] = {}
        self.line = 1
        self.namespaces = {n.split(".", 1)[0] for n in signatures if "." in n}

    # ------------------------------------------------------------------------ entry
    async def run(self, tree: ast.Module) -> Any:
        """Run the script; its result is the value of a final expression statement."""
        result: Any = None
        try:
            body = tree.body
            for index, stmt in enumerate(body):
                last = index == len(body) - 1
                if last and isinstance(stmt, ast.Expr) and not _is_print(stmt.value):
                    self.line = stmt.lineno
                    result = await self.eval(stmt.value)
                else:
                    await self.exec(stmt)
        except (_Break, _Continue):
            raise ScriptError(f"Line {self.line}: break/continue outside a loop") from None
        except ScriptError:
            raise
        except RecursionError:
            raise ScriptError(f"Line {self.line}: the values are nested too deeply") from None
        except MemoryError:
            raise ScriptError(f"Line {self.line}: out of memory") from None
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as err:
            raise ScriptError(f"Line {self.line}: {type(err).__name__}: {err}") from None
        self.measure(result, self.limits.max_result, "the result")
        return result

    @property
    def printed(self) -> str:
        return "".join(self.output)

    # ------------------------------------------------------------------------ bounds
    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        line = getattr(node, "lineno", None)
        if line is not None:
            self.line = line
        if self.steps > self.limits.max_steps:
            raise ScriptError(
                f"Line {self.line}: stopped after {self.limits.max_steps} evaluation steps "
                "(an infinite or very long loop?); do less work per script"
            )

    def fail(self, msg: str) -> ScriptError:
        return ScriptError(f"Line {self.line}: {msg}")

    def alloc(self, size: int, what: str = "value") -> None:
        """Account for creating a string/container of ``size`` units; called *before* creating it."""
        lim = self.limits
        if size > (lim.max_str if what == "string" else lim.max_items):
            cap = lim.max_str if what == "string" else lim.max_items
            raise self.fail(f"a {what} of {size} {'characters' if what == 'string' else 'items'} is too large (limit {cap})")
        self.allocated += size
        if self.allocated > lim.max_alloc:
            raise self.fail(f"the script allocated more than {lim.max_alloc} characters/items in total (memory limit)")

    def alloc_value(self, value: Any) -> Any:
        if isinstance(value, str):
            self.alloc(len(value), "string")
        elif isinstance(value, (list, tuple, dict)):
            self.alloc(len(value), type(value).__name__)
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > self.limits.max_int_bits:
            raise self.fail(f"an integer of more than {self.limits.max_int_bits} bits is too large")
        return value

    def measure(self, value: Any, limit: int, what: str) -> int:
        """Size of a plain value (strings count their length), iteratively; plain values only."""
        total = 0
        stack: list[tuple[Any, int]] = [(value, 0)]
        while stack:
            v, depth = stack.pop()
            if depth > self.limits.max_depth:
                raise self.fail(f"{what} is nested more than {self.limits.max_depth} levels deep")
            total += 1
            if isinstance(v, str):
                total += len(v)
            elif isinstance(v, (list, tuple)):
                stack.extend((x, depth + 1) for x in v)
            elif isinstance(v, dict):
                for k, x in v.items():
                    stack.append((k, depth + 1))
                    stack.append((x, depth + 1))
            elif isinstance(v, Namespace):
                raise self.fail(f"{what} cannot be a namespace")
            elif isinstance(v, range):
                total += 1
            elif not isinstance(v, _PLAIN):
                raise self.fail(f"{what} contains an unsupported value of type {type(v).__name__}")
            if total > limit:
                raise self.fail(f"{what} is too large (more than {limit} characters/items)")
        return total

    def to_str(self, value: Any) -> str:
        self.measure(value, self.limits.max_str, "the value converted to text")
        text = value if isinstance(value, str) else str(value)
        self.alloc(len(text), "string")
        return text

    # ------------------------------------------------------------------------ statements
    async def loop_body(self, body: list[ast.stmt]) -> bool:
        """Run one iteration of a loop body; True when it ended with ``break``."""
        try:
            await self.exec_block(body)
        except _Break:
            return True
        except _Continue:
            pass
        return False

    async def exec_block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            await self.exec(stmt)

    async def exec(self, node: ast.stmt) -> None:
        self.tick(node)
        if isinstance(node, ast.Expr):
            await self.eval(node.value)
        elif isinstance(node, ast.Assign):
            value = await self.eval(node.value)
            for target in node.targets:
                await self.assign(target, value)
        elif isinstance(node, ast.AugAssign):
            current = await self.eval(_as_load(node.target))
            value = self.binop(node.op, current, await self.eval(node.value))
            await self.assign(node.target, value)
        elif isinstance(node, ast.If):
            await self.exec_block(node.body if self.truth(await self.eval(node.test)) else node.orelse)
        elif isinstance(node, ast.For):
            for item in self.iterable(await self.eval(node.iter)):
                self.tick(node)
                await self.assign(node.target, item)
                if await self.loop_body(node.body):
                    break
            else:
                await self.exec_block(node.orelse)
        elif isinstance(node, ast.While):
            while self.truth(await self.eval(node.test)):
                self.tick(node)
                if await self.loop_body(node.body):
                    break
            else:
                await self.exec_block(node.orelse)
        elif isinstance(node, ast.Break):
            raise _Break()
        elif isinstance(node, ast.Continue):
            raise _Continue()
        elif isinstance(node, ast.Pass):
            pass
        else:
            raise self.fail(f"{type(node).__name__} is not supported")

    async def assign(self, target: ast.AST, value: Any) -> None:
        if isinstance(target, ast.Name):
            if target.id.startswith("_") or target.id in self.signatures or target.id in self.namespaces or target.id in SAFE_BUILTINS:
                raise self.fail(f"cannot assign to '{target.id}'")
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = self.iterable(value)
            items = list(items) if len(target.elts) <= self.limits.max_items else []
            if len(items) != len(target.elts):
                raise self.fail(f"cannot unpack {len(items)} values into {len(target.elts)} names")
            for t, v in zip(target.elts, items):
                await self.assign(t, v)
        elif isinstance(target, ast.Subscript):
            obj = await self.eval(target.value)
            key = await self.eval(target.slice)
            if isinstance(obj, list):
                if isinstance(key, slice):
                    raise self.fail("slice assignment is not supported")
                obj[self.index(key)] = value
            elif isinstance(obj, dict):
                if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                    raise self.fail(f"a dict key cannot be a {type(key).__name__}")
                if key not in obj:
                    self.alloc(1, "dict")
                    if len(obj) + 1 > self.limits.max_items:
                        raise self.fail(f"a dict of more than {self.limits.max_items} items is too large")
                obj[key] = value
            else:
                raise self.fail(f"cannot assign items of a {type(obj).__name__}")
        else:
            raise self.fail(f"cannot assign to {type(target).__name__}")

    # ------------------------------------------------------------------------ expressions
    async def eval(self, node: ast.AST) -> Any:
        self.tick(node)
        if isinstance(node, ast.Constant):
            v = node.value
            if not isinstance(v, (type(None), bool, int, float, str)):
                raise self.fail(f"literals of type {type(v).__name__} are not supported")
            if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > self.limits.max_int_bits:
                raise self.fail("integer literal too large")
            return v
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [await self.eval(e) for e in node.elts]
            self.alloc(len(items), "list")
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    raise self.fail("**unpacking is not supported")
                key = await self.eval(k)
                if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                    raise self.fail(f"a dict key cannot be a {type(key).__name__}")
                out[key] = await self.eval(v)
            self.alloc(len(out), "dict")
            return out
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, await self.eval(node.left), await self.eval(node.right))
        if isinstance(node, ast.UnaryOp):
            v = await self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not self.truth(v)
            self.number(v, "unary operator")
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            value: Any = None
            for e in node.values:
                value = await self.eval(e)
                if self.truth(value) != is_and:
                    return value
            return value
        if isinstance(node, ast.Compare):
            left = await self.eval(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = await self.eval(comp)
                if not self.compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return await self.eval(node.body if self.truth(await self.eval(node.test)) else node.orelse)
        if isinstance(node, ast.Subscript):
            obj = await self.eval(node.value)
            key = await self.eval(node.slice)
            return self.subscript(obj, key)
        if isinstance(node, ast.Slice):
            parts = [None if p is None else await self.eval(p) for p in (node.lower, node.upper, node.step)]
            for p in parts:
                if p is not None and (not isinstance(p, int) or isinstance(p, bool)):
                    raise self.fail("slice bounds must be integers")
            return slice(*parts)
        if isinstance(node, ast.JoinedStr):
            pieces = []
            for part in node.values:
                pieces.append(await self.eval(part) if isinstance(part, ast.FormattedValue) else self.to_str(await self.eval(part)))
            total = sum(len(p) for p in pieces)
            self.alloc(total, "string")
            return "".join(pieces)
        if isinstance(node, ast.FormattedValue):
            return await self.formatted(node)
        if isinstance(node, ast.Call):
            return await self.call(node)
        if isinstance(node, ast.ListComp):
            out_list: list[Any] = []

            async def add_item() -> None:
                if len(out_list) >= self.limits.max_items:
                    raise self.fail(f"a list of more than {self.limits.max_items} items is too large")
                out_list.append(await self.eval(node.elt))

            await self.comprehension(node.generators, add_item)
            self.alloc(len(out_list), "list")
            return out_list
        if isinstance(node, ast.DictComp):
            out_dict: dict[Any, Any] = {}

            async def add_pair() -> None:
                key = await self.eval(node.key)
                if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                    raise self.fail(f"a dict key cannot be a {type(key).__name__}")
                if len(out_dict) >= self.limits.max_items:
                    raise self.fail(f"a dict of more than {self.limits.max_items} items is too large")
                out_dict[key] = await self.eval(node.value)

            await self.comprehension(node.generators, add_pair)
            self.alloc(len(out_dict), "dict")
            return out_dict
        if isinstance(node, ast.Attribute):
            raise self.fail(f"attribute access '.{node.attr}' is not allowed")
        raise self.fail(f"{type(node).__name__} is not supported")

    async def comprehension(self, gens: list[ast.comprehension], body: Callable[[], Awaitable[None]]) -> None:
        gen = gens[0]
        if gen.is_async:
            raise self.fail("async comprehensions are not supported")
        for item in self.iterable(await self.eval(gen.iter)):
            self.tick(gen.iter)
            await self.assign(gen.target, item)
            ok = True
            for cond in gen.ifs:
                if not self.truth(await self.eval(cond)):
                    ok = False
                    break
            if not ok:
                continue
            if len(gens) > 1:
                await self.comprehension(gens[1:], body)
            else:
                await body()

    async def formatted(self, node: ast.FormattedValue) -> str:
        value = await self.eval(node.value)
        spec = ""
        if node.format_spec is not None:
            spec = await self.eval(node.format_spec)
            for width in _WIDTH.findall(spec):
                if int(width) > self.limits.max_format_width:
                    raise self.fail(f"format width/precision {width} is too large (limit {self.limits.max_format_width})")
        self.measure(value, self.limits.max_str, "the formatted value")
        if not isinstance(value, (type(None), bool, int, float, str, list, dict, tuple)):
            raise self.fail(f"cannot format a {type(value).__name__}")
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        elif node.conversion == ord("s"):
            value = str(value)
        if spec and not isinstance(value, (int, float, str)):
            raise self.fail("format specs apply to numbers and strings only")
        text = format(value, spec)  # plain values only: no user-defined __format__
        self.alloc(len(text), "string")
        return text

    def lookup(self, name: str) -> Any:
        if name.startswith("_"):
            raise self.fail(f"name '{name}' is not allowed")
        if name in self.env:
            return self.env[name]
        if name == "True":
            return True
        if name == "False":
            return False
        if name == "None":
            return None
        if name in self.namespaces:
            return Namespace(name)
        raise self.fail(f"name '{name}' is not defined")

    # ------------------------------------------------------------------------ operators
    def truth(self, v: Any) -> bool:
        if not isinstance(v, _PLAIN) and not isinstance(v, range):
            raise self.fail(f"cannot test the truth of a {type(v).__name__}")
        return bool(v)

    def number(self, v: Any, what: str) -> None:
        if not isinstance(v, (int, float)):
            raise self.fail(f"{what} needs a number, got {type(v).__name__}")

    def binop(self, op: ast.operator, a: Any, b: Any) -> Any:
        lim = self.limits
        for v in (a, b):
            if not isinstance(v, _PLAIN):
                raise self.fail(f"operator not supported for {type(v).__name__}")
        if isinstance(op, ast.Add):
            if isinstance(a, (str, list, tuple)) and type(a) is type(b):
                self.alloc(len(a) + len(b), "string" if isinstance(a, str) else "list")
            return self.alloc_int(a + b)
        if isinstance(op, ast.Mult):
            seq, n = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                self.alloc(len(seq) * max(n, 0), "string" if isinstance(seq, str) else "list")
                return seq * n
            if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > lim.max_int_bits:
                raise self.fail(f"an integer of more than {lim.max_int_bits} bits is too large")
            return a * b
        if isinstance(op, ast.Pow):
            if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and a.bit_length() * b > lim.max_int_bits:
                raise self.fail(f"the power is too large (more than {lim.max_int_bits} bits)")
            self.number(a, "**")
            self.number(b, "**")
            return a**b
        if isinstance(op, ast.Mod):
            if isinstance(a, str):
                raise self.fail("'%' string formatting is not supported; use an f-string")
            self.number(a, "%")
            self.number(b, "%")
            return a % b
        if isinstance(op, ast.Sub):
            self.number(a, "-")
            self.number(b, "-")
            return self.alloc_int(a - b)
        if isinstance(op, (ast.Div, ast.FloorDiv)):
            self.number(a, "/")
            self.number(b, "/")
            return a / b if isinstance(op, ast.Div) else a // b
        raise self.fail(f"operator {type(op).__name__} is not supported")

    def alloc_int(self, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > self.limits.max_int_bits:
            raise self.fail(f"an integer of more than {self.limits.max_int_bits} bits is too large")
        if isinstance(v, (str, list, tuple)) and len(v) > (self.limits.max_str if isinstance(v, str) else self.limits.max_items):
            raise self.fail("the value is too large")
        return v

    def compare(self, op: ast.cmpop, a: Any, b: Any) -> bool:
        for v in (a, b):
            if not isinstance(v, _PLAIN) and not isinstance(v, range):
                raise self.fail(f"cannot compare a {type(v).__name__}")
        if isinstance(op, ast.Eq):
            return a == b
        if isinstance(op, ast.NotEq):
            return a != b
        if isinstance(op, ast.Lt):
            return a < b
        if isinstance(op, ast.LtE):
            return a <= b
        if isinstance(op, ast.Gt):
            return a > b
        if isinstance(op, ast.GtE):
            return a >= b
        if isinstance(op, ast.In):
            return a in b
        if isinstance(op, ast.NotIn):
            return a not in b
        if isinstance(op, ast.Is):
            return a is b
        if isinstance(op, ast.IsNot):
            return a is not b
        raise self.fail(f"comparison {type(op).__name__} is not supported")

    def index(self, key: Any) -> int:
        if not isinstance(key, int) or isinstance(key, bool):
            raise self.fail(f"list indices must be integers, got {type(key).__name__}")
        return key

    def subscript(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, dict):
            if key not in obj:
                raise self.fail(f"KeyError: {self.to_str(key)!r} not in {sorted(map(str, obj))[:20]}")
            return obj[key]
        if isinstance(obj, (list, tuple, str, range)):
            if isinstance(key, slice):
                result = obj[key]
                if isinstance(result, range):
                    return result
                return self.alloc_value(result)
            return obj[self.index(key)]
        raise self.fail(f"a {type(obj).__name__} cannot be indexed")

    def iterable(self, v: Any) -> Any:
        if isinstance(v, (list, tuple, str, range)):
            return v
        if isinstance(v, dict):
            return list(v)
        raise self.fail(f"cannot loop over a {type(v).__name__}")

    # ------------------------------------------------------------------------ calls
    async def call(self, node: ast.Call) -> Any:
        f = node.func
        if isinstance(f, ast.Attribute):
            if f.attr.startswith("_"):
                raise self.fail(f"attribute '{f.attr}' is not allowed")
            owner = await self.eval(f.value)
            if isinstance(owner, Namespace):
                return await self.call_registered(f"{owner.name}.{f.attr}", node)
            args = [await self.eval(a) for a in node.args]
            kwargs = {k.arg: await self.eval(k.value) for k in node.keywords if k.arg}
            return self.method(owner, f.attr, args, kwargs)
        if not isinstance(f, ast.Name):
            raise self.fail("only named functions can be called")
        if f.id in self.signatures:
            return await self.call_registered(f.id, node)
        if f.id in SAFE_BUILTINS and f.id not in self.env:
            if any(k.arg is None for k in node.keywords):
                raise self.fail("**unpacking is not supported")
            args = [await self.eval(a) for a in node.args]
            kwargs = {k.arg: await self.eval(k.value) for k in node.keywords if k.arg}
            return self.builtin(f.id, args, kwargs)
        raise self.fail(f"'{f.id}' is not a function you can call")

    async def call_registered(self, name: str, node: ast.Call) -> Any:
        if name not in self.signatures:
            raise self.fail(f"unknown function '{name}'")
        if node.args:
            raise self.fail(f"call {name} with keyword arguments: {self.signatures[name].render()}")
        kwargs: dict[str, Any] = {}
        for k in node.keywords:
            if k.arg is None:
                raise self.fail("**unpacking is not supported")
            kwargs[k.arg] = await self.eval(k.value)
        self.measure(kwargs, self.limits.max_result, f"the arguments of {name}")
        line = self.line
        result = await self.call_function(name, _plain_copy(kwargs), line)
        self.line = line
        return result

    def method(self, obj: Any, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        allowed = METHODS.get(type(obj))
        if allowed is None or name not in allowed:
            raise self.fail(f"'{type(obj).__name__}' has no allowed method '{name}'")
        lim = self.limits
        if isinstance(obj, list):
            if name in ("append", "insert"):
                self.alloc(1, "list")
                if len(obj) + 1 > lim.max_items:
                    raise self.fail(f"a list of more than {lim.max_items} items is too large")
            elif name == "extend":
                extra = self.iterable(args[0]) if args else []
                self.alloc(len(obj) + len(extra), "list")
            elif name == "sort":
                if args or set(kwargs) - {"reverse"}:
                    raise self.fail("list.sort() takes only reverse=")
            elif name == "copy":
                self.alloc(len(obj), "list")
        elif isinstance(obj, dict):
            if name in ("update", "setdefault"):
                extra = args[0] if args and isinstance(args[0], dict) else {}
                self.alloc(len(obj) + len(extra) + 1, "dict")
            elif name == "copy":
                self.alloc(len(obj), "dict")
            if name in ("keys", "values", "items"):
                self.alloc(len(obj), "list")
                return list(getattr(obj, name)())
            if name == "update" and (kwargs or not (args and isinstance(args[0], dict))):
                raise self.fail("dict.update() takes one dict")
        elif isinstance(obj, str):
            if name == "join":
                parts = args[0] if args else None
                if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str) for p in parts):
                    raise self.fail("str.join() needs a list of strings")
                self.alloc(sum(len(p) for p in parts) + len(obj) * max(len(parts) - 1, 0), "string")
            elif name == "replace":
                if len(args) < 2 or not all(isinstance(a, str) for a in args[:2]):
                    raise self.fail("str.replace() needs two strings")
                old, new = args[0], args[1]
                count = obj.count(old) if old else len(obj) + 1
                self.alloc(len(obj) + count * max(len(new) - len(old), 0), "string")
            elif name == "split":
                self.alloc(min(len(obj) + 1, lim.max_items), "list")
            elif name in ("upper", "lower", "strip", "lstrip", "rstrip", "title", "capitalize"):
                self.alloc(len(obj), "string")
        for v in args + list(kwargs.values()):
            if not isinstance(v, _PLAIN):
                raise self.fail(f"cannot pass a {type(v).__name__} to .{name}()")
        return getattr(obj, name)(*args, **kwargs)

    def builtin(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        lim = self.limits
        for v in args + list(kwargs.values()):
            if not isinstance(v, _PLAIN) and not isinstance(v, range):
                raise self.fail(f"cannot pass a {type(v).__name__} to {name}()")
        if name == "print":
            sep = kwargs.pop("sep", " ")
            end = kwargs.pop("end", "\n")
            if kwargs or not isinstance(sep, str) or not isinstance(end, str):
                raise self.fail("print() takes values and optional sep=/end= strings")
            text = sep.join(self.to_str(a) for a in args) + end
            self.output_len += len(text)
            if self.output_len > lim.max_output:
                raise self.fail(f"the printed output exceeds {lim.max_output} characters; print less")
            self.output.append(text)
            return None
        if kwargs and name not in ("sorted", "round", "min", "max"):
            raise self.fail(f"{name}() does not take keyword arguments here")
        if name == "len":
            return len(self.one(name, args))
        if name == "range":
            if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                raise self.fail("range() takes 1 to 3 integers")
            return range(*args)  # lazy: loops over it are bounded by the step budget
        if name in ("str",):
            return self.to_str(self.one(name, args)) if args else ""
        if name == "int":
            v = self.one(name, args) if args else 0
            if isinstance(v, str) and len(v) > 1000:
                raise self.fail("int() of a string longer than 1000 characters")
            return self.alloc_int(int(v))
        if name == "float":
            return float(self.one(name, args)) if args else 0.0
        if name == "bool":
            return self.truth(self.one(name, args)) if args else False
        if name in ("list", "tuple", "sorted", "reversed"):
            items = self.iterable(self.one(name, args)) if args else []
            self.alloc(len(items), "list")
            if name == "tuple":
                return tuple(items)
            if name == "sorted":
                if set(kwargs) - {"reverse"}:
                    raise self.fail("sorted() takes only reverse=")
                return sorted(items, reverse=bool(kwargs.get("reverse", False)))
            return list(reversed(items)) if name == "reversed" else list(items)
        if name == "dict":
            v = self.one(name, args) if args else {}
            if isinstance(v, dict):
                self.alloc(len(v), "dict")
                return dict(v)
            items = self.iterable(v)
            self.alloc(len(items), "dict")
            return dict(items)
        if name in ("min", "max"):
            if set(kwargs) - {"default"}:
                raise self.fail(f"{name}() takes only default=")
            items = self.sized(name, args[0]) if len(args) == 1 else args
            return (min if name == "min" else max)(items, **kwargs)
        if name == "sum":
            items = self.sized(name, self.one(name, args))
            for x in items:
                self.number(x, "sum()")
            return self.alloc_int(sum(items))
        if name == "abs":
            v = self.one(name, args)
            self.number(v, "abs()")
            return abs(v)
        if name == "round":
            if not args or len(args) > 2:
                raise self.fail("round() takes a number and optional digits")
            self.number(args[0], "round()")
            if len(args) == 2 and (not isinstance(args[1], int) or abs(args[1]) > 100):
                raise self.fail("round() digits must be an integer between -100 and 100")
            return round(*args)
        if name in ("enumerate", "zip"):
            seqs = [self.iterable(a) for a in args]
            if name == "enumerate":
                if len(seqs) != 1:
                    raise self.fail("enumerate() takes one list")
                self.alloc(len(seqs[0]), "list")
                return [(i, x) for i, x in enumerate(seqs[0])]
            self.alloc(min((len(s) for s in seqs), default=0), "list")
            return [tuple(t) for t in zip(*seqs)]
        if name in ("any", "all"):
            items = self.sized(name, self.one(name, args))
            return (any if name == "any" else all)(self.truth(x) for x in items)
        raise self.fail(f"'{name}' is not available")

    def sized(self, name: str, v: Any) -> Any:
        """An iterable a builtin walks in C: bounded in size and charged to the step budget."""
        items = self.iterable(v)
        if len(items) > self.limits.max_items:
            raise self.fail(f"{name}() over {len(items)} items is too large (limit {self.limits.max_items})")
        self.steps += len(items)
        if self.steps > self.limits.max_steps:
            raise self.fail(f"stopped after {self.limits.max_steps} evaluation steps; do less work per script")
        return items

    def one(self, name: str, args: list[Any]) -> Any:
        if len(args) != 1:
            raise self.fail(f"{name}() takes exactly one argument")
        return args[0]


def _as_load(target: ast.AST) -> ast.AST:
    if isinstance(target, ast.Name):
        return ast.copy_location(ast.Name(id=target.id, ctx=ast.Load()), target)
    if isinstance(target, ast.Subscript):
        return ast.copy_location(ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load()), target)
    return target


def _is_print(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"


def _plain_copy(value: Any) -> Any:
    """A JSON-shaped copy (tuples -> lists) so a function cannot alias the script's values."""
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    if isinstance(value, range):
        return list(value)
    return value


VALIDATION_FAILED = "Python validation failed. Fix the errors and try again."
RUNTIME_ERROR = "Runtime error during execution."


async def run_code(
    code: str, signatures: dict[str, Signature], call: CallFunction, limits: Limits = Limits()
) -> dict[str, Any]:
    """Check, then run ``code``: the ``runToolCode`` result shape."""
    tree, errors = check_code(code, signatures, limits)
    if tree is None:
        return {
            "success": False,
            "errors": errors,
            # lmthing's text, with the language the model writes here.
            "message": VALIDATION_FAILED,
        }
    interp = Interpreter(signatures, call, limits)
    try:
        result = await interp.run(tree)
    except ScriptError as err:
        out: dict[str, Any] = {
            "success": False,
            "error": str(err),
            "message": RUNTIME_ERROR,
        }
        if interp.printed:
            out["output"] = interp.printed
        return out
    return {"success": True, "result": _plain_copy(result), "output": interp.printed}


__all__ = ["Interpreter", "Limits", "ScriptError", "Signature", "check_code", "run_code", "signature_from_schema", "type_name"]
