"""The function plugin: lmthing's ``defFunction`` / ``defFunctionAgent``, with Python instead
of TypeScript as the language the model writes.

Pass ``plugins=[function_plugin]`` and, in the prompt function::

    p.def_function("calculate", "Add two numbers", AddArgs, add_fn, response_schema=Sum)
    p.def_function("math", "Math operations", [func("multiply", "Multiply", MulArgs, mul)])
    p.def_function_agent("researcher", "Research a topic", TopicArgs, research_agent,
                         response_schema=Findings)

The model gets **one** tool, ``runToolCode(code)``, on every step (lmthing lost it after the
first), and an ``available_functions`` system part in lmthing's layout listing each
function's parameters and return type (lmthing printed ``any`` for both unless the zod schema
had a description). It writes Python that calls the functions with keyword arguments::

    r = calculate(a=15, b=27)
    p = math.multiply(a=r["sum"], b=2)
    print(p["product"])
    p                      # a final expression is the result

How a call runs:

1. The code is checked statically (:func:`~lmthing.plugins.code_interpreter.check_code`)
   against signatures generated from the functions' schemas: syntax errors, forbidden
   constructs, unknown names/functions, unknown/missing/positional arguments and literal
   arguments of the wrong type come back as ``{"success": false, "errors": ["Line N: ...",
   ...], "message": "Python validation failed. Fix the errors and try again."}`` and nothing
   runs.
2. The code runs in a small AST-walking interpreter (``code_interpreter.py``) *inside the
   workflow*. It never uses ``exec``/``eval``; it can reach only its own variables, a few
   safe builtins and the registered functions, and it is bounded in evaluation steps,
   sizes of values, total allocation, nesting and printed output.
3. Each function call goes through the same path as a tool call: argument validation,
   ``before_call`` / ``on_success`` / ``on_error``, ``response_schema`` on the output. An
   ``@tool`` function runs as a Temporal activity (idempotency key: workflow id + tool call
   id + call index + function name); any other callable runs inline in the workflow and must
   be deterministic. A function agent runs as a child workflow (``p.call_agent``); with a
   ``response_schema`` its child is told lmthing's function-agent instruction
   (:data:`FUNCTION_AGENT_INSTRUCTION`, with the real schema).

Durability choice: the interpreter is deterministic workflow code, so no journal is needed.
When a worker dies halfway through a script, the next worker replays the workflow: the
script is re-interpreted, and every call that already completed gets its recorded result
from history (activities, child workflows) or is recomputed deterministically (in-workflow
functions, which are replayed, not repeated: their state changes are rebuilt exactly once).
Only the call that was in flight is retried.

Result: ``{"success": true, "result": <final expression>, "output": <printed text>}`` or
``{"success": false, "error" | "errors": ..., "message": ...}``. A function that fails (after
``on_error``) stops the script with ``Line N: <function>: <error>`` and lmthing's message
``Runtime error during execution.``
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints
from weakref import WeakKeyDictionary

from pydantic import BaseModel, Field

from lmthing.prompt.agents import agent as _agent
from lmthing.prompt.tools import ActivityTool, ToolCallInfo, ToolDef, schema_of

from .code_interpreter import (
    Limits,
    Signature,
    run_code,
    signature_from_schema,
    type_name,
)

TOOL_NAME = "runToolCode"
SYSTEM_PART = "available_functions"
AGENT_PREFIX = "fn-"


class RunToolCodeArgs(BaseModel):
    # lmthing: "TypeScript code to execute. Can call any registered functions."
    code: str = Field(description="Python code to execute. Can call any registered functions.")


# lmthing's first sentence (Python for TypeScript), then how Python code calls the functions,
# which lmthing never had to say (the model wrote TypeScript).
TOOL_DESCRIPTION = (
    "Execute Python code that calls available functions. Code is validated before execution. "
    "Call the functions listed in <available_functions> with keyword arguments, e.g. "
    "r = calculate(a=1, b=2); namespaced functions as ns.fn(...). Results are plain "
    "dicts/lists: use r[\"key\"]. Use print(...) for output; the value of a final expression "
    "is returned as the result. Only a safe subset of Python is available: no imports, no "
    "def/class/lambda, no attribute access except namespace functions and basic "
    "list/dict/str methods."
)


# What a function agent's child is told about its response schema: lmthing's words for
# function agents (plugins/function/sandbox.ts, createWrappedAgent), which are not defAgent's.
# ``{schema}`` is the real schema, printed as for def_agent (lmthing printed ``{"type":
# "object"}`` for every schema); the child's first part is ``<responseFormat>`` with the
# agent's ``system=``, a blank line and this text, as in lmthing (``AgentDef.response_instruction``).
FUNCTION_AGENT_INSTRUCTION = (
    "You must respond with valid JSON that matches this schema:\n\n{schema}\n\n"
    "IMPORTANT: Your response must be ONLY valid JSON matching this schema, with no additional "
    "text before or after."
)


@dataclass
class FunctionDef:
    """One function (``func(...)``, or a single ``def_function``)."""

    name: str
    description: str
    schema: Any
    fn: Callable[..., Any] | ActivityTool
    options: dict[str, Any] = field(default_factory=dict)

    def args_schema(self) -> Any:
        if self.schema is None and isinstance(self.fn, ActivityTool):
            return self.fn.args_model
        return self.schema

    def response_schema(self) -> type[BaseModel] | None:
        rs = self.options.get("response_schema")
        if rs is None and isinstance(self.fn, ActivityTool):
            rs = self.fn.response_schema
        return rs

    def tool_def(self, qualified: str) -> ToolDef:
        opts = dict(self.options)
        opts["response_schema"] = self.response_schema()
        if isinstance(self.fn, ActivityTool):
            opts.setdefault("critical", self.fn.critical)
        # lmthing's defFunction handed onError the Error itself (defTool: {error: message}).
        return ToolDef(qualified, self.description, self.args_schema(), self.fn, on_error_gets_exception=True, **opts)

    def returns(self) -> str:
        rs = self.response_schema()
        if rs is not None:
            return type_name(schema_of(rs), schema_of(rs).get("$defs", {}))
        fn = self.fn.fn if isinstance(self.fn, ActivityTool) else self.fn
        try:
            ret = get_type_hints(fn).get("return")
        except Exception:  # noqa: BLE001 - an unresolvable annotation only loses the hint
            ret = None
        if ret is None:
            return "Any"
        if isinstance(ret, type) and issubclass(ret, BaseModel):
            return type_name(ret.model_json_schema(), ret.model_json_schema().get("$defs", {}))
        return getattr(ret, "__name__", None) or str(ret).replace("typing.", "")


@dataclass
class FunctionAgentDef:
    """A sub-agent callable from code (``func_agent(...)``, or a single ``def_function_agent``).
    ``fn(args, child_prompt)`` builds the child's prompt, as for ``def_agent``."""

    name: str
    description: str
    schema: Any
    fn: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)

    def returns(self) -> str:
        rs = self.options.get("response_schema")
        if rs is None:
            return "str"
        return type_name(schema_of(rs), schema_of(rs).get("$defs", {}))


Member = FunctionDef | FunctionAgentDef

_FUNC_OPTIONS = {"response_schema", "before_call", "on_success", "on_error", "critical", "activity_options"}


def func(name: str, description: str, schema: Any, fn: Any, **options: Any) -> FunctionDef:
    """A member of a function namespace: ``def_function(p, "math", "...", [func(...), ...])``."""
    unknown = set(options) - _FUNC_OPTIONS
    if unknown:
        raise TypeError(f"func({name!r}): unknown options {sorted(unknown)}; allowed: {sorted(_FUNC_OPTIONS)}")
    if not callable(fn):
        raise TypeError(f"func({name!r}): give a function to run")
    return FunctionDef(name, description, schema, fn, options)


def func_agent(name: str, description: str, schema: Any, fn: Any, **options: Any) -> FunctionAgentDef:
    """A sub-agent member of a namespace; options as for ``def_agent`` (model, system,
    response_schema, plugins, max_steps, ...)."""
    if not callable(fn):
        raise TypeError(f"func_agent({name!r}): give a function fn(args, child_prompt)")
    return FunctionAgentDef(name, description, schema, fn, options)


@dataclass
class _Registry:
    entries: dict[str, Member] = field(default_factory=dict)  # "fn" or "ns.fn"
    namespaces: dict[str, str] = field(default_factory=dict)  # ns -> description
    agent_names: dict[str, str] = field(default_factory=dict)  # qualified -> call_agent name
    limits: Limits = field(default_factory=Limits)
    stale: bool = False  # set after each step's preparation: the next run starts afresh
    effect_declared: bool = False

    def signatures(self) -> dict[str, Signature]:
        out = {}
        for qualified, m in self.entries.items():
            schema = schema_of(m.args_schema() if isinstance(m, FunctionDef) else m.schema)
            out[qualified] = signature_from_schema(qualified, schema, m.returns(), m.description)
        return out

    def render(self) -> str:
        """The ``available_functions`` part, in lmthing's layout (``# Available Functions``,
        a section per function, ``(agent)`` / ``(namespace)`` marks, registration order),
        with the parameters and return type filled in."""
        sigs = self.signatures()
        lines = [
            "# Available Functions",
            "",
            "You can call these functions using Python code via the runToolCode tool.",
            "All code is validated before execution.",
            "",
        ]
        opened: set[str] = set()
        for qualified, sig in sigs.items():
            member = self.entries[qualified]
            agent = " (agent)" if isinstance(member, FunctionAgentDef) else ""
            ns, dot, _ = qualified.partition(".")
            if dot and ns not in opened:
                opened.add(ns)
                lines += [f"## {ns} (namespace)", ""]
            lines += [
                f"{'###' if dot else '##'} {qualified}{agent}",
                sig.description,
                f"- Parameters: {sig.params_text() or '(none)'}",
                f"- Returns: {sig.returns}",
                "",
            ]
        return "\n".join(lines)


_REGISTRIES: WeakKeyDictionary[Any, _Registry] = WeakKeyDictionary()


def _registry(p: Any) -> _Registry:
    reg = _REGISTRIES.get(p)
    if reg is None or reg.stale:
        # The prompt function re-runs before every step: functions it no longer declares go.
        reg = _REGISTRIES[p] = _Registry()
    return reg


def _check_name(name: str, api: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"{api}: {name!r} is not a usable function name; use a Python identifier not starting with '_'")
    import keyword

    if keyword.iskeyword(name) or name in ("True", "False", "None"):
        raise ValueError(f"{api}: {name!r} is a Python keyword")
    from .code_interpreter import SAFE_BUILTINS

    if name in SAFE_BUILTINS:
        raise ValueError(f"{api}: {name!r} is a builtin of the code sandbox; choose another name")


def _add(p: Any, name: str, description: str, schema: Any, fn: Any, options: dict[str, Any], agent: bool) -> Any:
    api = "def_function_agent" if agent else "def_function"
    _check_name(name, api)
    reg = _registry(p)
    if isinstance(schema, list):
        if fn is not None or options:
            raise ValueError(f"{api}({name!r}): a namespace takes (name, description, [func(...), ...]) only")
        for m in schema:
            if not isinstance(m, (FunctionDef, FunctionAgentDef)):
                raise TypeError(f"{api}({name!r}): namespace items come from func(...) or func_agent(...)")
            _check_name(m.name, api)
        for key in [k for k in reg.entries if k == name or k.startswith(name + ".")]:
            del reg.entries[key]
        reg.namespaces[name] = description
        agents = [m for m in schema if isinstance(m, FunctionAgentDef)]
        if agents:
            reg_name = AGENT_PREFIX + name
            # Hidden: reachable from code only, never a tool of the model's.
            members = [_agent(a.name, a.description, a.schema, a.fn, response_instruction=FUNCTION_AGENT_INSTRUCTION, **a.options)
                       for a in agents]
            p.def_agent(reg_name, description, members, hidden=True)
        for m in schema:
            reg.entries[f"{name}.{m.name}"] = m
            if isinstance(m, FunctionAgentDef):
                reg.agent_names[f"{name}.{m.name}"] = f"{AGENT_PREFIX}{name}.{m.name}"
    else:
        if agent:
            member: Member = func_agent(name, description, schema, fn, **options)
            p.def_agent(AGENT_PREFIX + name, description, schema, fn,
                        **{**options, "hidden": True, "response_instruction": FUNCTION_AGENT_INSTRUCTION})
            reg.agent_names[name] = AGENT_PREFIX + name
        else:
            if fn is None and isinstance(schema, ActivityTool):
                schema, fn = None, schema
            member = func(name, description, schema, fn, **options)
        reg.namespaces.pop(name, None)
        reg.entries[name] = member
    _declare(p, reg)
    return reg


def _declare(p: Any, reg: _Registry) -> None:
    """(Re-)declare the one tool and the signature listing; the closure reads the registry."""

    async def run_tool_code(args: RunToolCodeArgs, info: ToolCallInfo) -> dict[str, Any]:
        counter = 0

        async def call(name: str, kwargs: dict[str, Any], line: int) -> Any:
            nonlocal counter
            counter += 1
            member = reg.entries[name]
            from .code_interpreter import ScriptError

            if isinstance(member, FunctionAgentDef):
                key = f"s{info.step}-{info.tool_call_id}-{counter}"
                outcome = await p.call_agent(reg.agent_names[name], kwargs, key=key)
                if "error" in outcome:
                    raise ScriptError(f"Line {line}: {name}: {outcome['error']}")
                if outcome.get("validationError"):
                    # lmthing: "Agent response validation failed: <parse or schema error>".
                    raise ScriptError(f"Line {line}: {name}: Agent response validation failed: {outcome['validationError']}")
                text = outcome.get("response", "")
                if member.options.get("response_schema") is not None:
                    try:
                        return json.loads(text)
                    except (TypeError, ValueError):
                        return text
                return text
            output, is_error = await p.call_tool(
                member.tool_def(name),
                kwargs,
                call_id=info.tool_call_id,
                step=info.step,
                key=f"{info.tool_call_id}:{counter}:{name}",
            )
            if is_error:
                problem = output.get("error") if isinstance(output, dict) and "error" in output else json.dumps(output)
                raise ScriptError(f"Line {line}: {name}: {problem}")
            return output

        return await run_code(args.code, reg.signatures(), call, reg.limits)

    p.def_tool(TOOL_NAME, TOOL_DESCRIPTION, RunToolCodeArgs, run_tool_code)
    p.def_system(SYSTEM_PART, reg.render())
    if not reg.effect_declared:

        def mark_stale(ctx: Any, step_modifier: Any) -> None:
            reg.stale = True

        p.def_effect(mark_stale)
        reg.effect_declared = True


def def_function(p: Any, name: str, description: str, schema: Any = None, fn: Any = None, **options: Any) -> Any:
    """lmthing ``defFunction``: ``(name, description, schema, fn, response_schema=,
    before_call=, on_success=, on_error=)``, a namespace ``(name, description, [func(...),
    ...])``, or ``(name, description, an_at_tool_function)`` for an activity function."""
    if isinstance(schema, ActivityTool) and fn is None:
        schema, fn = None, schema
    if not isinstance(schema, list) and (fn is None or not callable(fn)):
        raise ValueError(f"def_function({name!r}): give a function to run: def_function(name, description, schema, fn)")
    return _add(p, name, description, schema, fn, options, agent=False)


def def_function_agent(p: Any, name: str, description: str, schema: Any = None, fn: Any = None, **options: Any) -> Any:
    """lmthing ``defFunctionAgent``: a sub-agent the code calls like a function (a child
    workflow through ``p.call_agent``), or a namespace of ``func_agent(...)``. Options as for
    ``def_agent``; with ``response_schema`` the code gets the parsed object, else the text."""
    if not isinstance(schema, list) and (fn is None or not callable(fn)):
        raise ValueError(f"def_function_agent({name!r}): give a function fn(args, child_prompt)")
    return _add(p, name, description, schema, fn, options, agent=True)


def set_code_limits(p: Any, limits: Limits) -> None:
    """Change the sandbox limits (call it in the prompt function, which re-runs every step:
    like every declaration, it applies to the runs that make it)."""
    _registry(p).limits = limits


function_plugin: dict[str, Callable[..., Any]] = {
    "def_function": def_function,
    "def_function_agent": def_function_agent,
    "set_code_limits": set_code_limits,
}
"""Pass in ``plugins=[function_plugin]`` to get ``p.def_function`` and ``p.def_function_agent``."""

__all__ = [
    "FunctionAgentDef",
    "FunctionDef",
    "Limits",
    "def_function",
    "def_function_agent",
    "func",
    "func_agent",
    "function_plugin",
    "set_code_limits",
]
