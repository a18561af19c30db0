"""Driving a run of the prompt API: running the prompt function, reconciling what it
declared, preparing one model request, recording the exchange, and carrying effects across
continue-as-new: a mixin of :class:`~lmthing.prompt.stateful_prompt.StatefulPrompt`."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python


from .agents import AGENT_SYSTEM_PART, RESPONSE_FORMAT_PART, CompositeAgentDef, response_schema_instruction
from .definitions import Kind
from .effects import (
    NEVER_RAN,
    LastTool,
    NameCollection,
    PromptContext,
    StepModifications,
    deps_changed,
    unwrap_dep,
)
from .render import (
    render_data_variable,
    render_reminder,
    render_system_prompt,
    render_variable,
)
from .tools import CompositeToolDef, ToolDef
from .types import Message, ToolCall, ToolDefinition, ToolResult
from .prompt_base import Body, Callable_, PersistedStateNeeded, PreparedStep




class StepDriver:
    """``run_body``, ``prepare_step``, ``record_*``; the attributes are StatefulPrompt's."""

    # ------------------------------------------------------------------- driving a run
    async def run_body(self, body: Body) -> None:
        """Run (or re-run) the prompt function, then drop what it did not re-declare."""
        self._seen.clear()
        self._state_declared = {}
        self._effects = []
        self._event_handlers.clear()
        self._approval_policies = {}
        self._breakers = {}
        self._persisted = {}
        self._run_plugins = {}
        self._in_body = True
        messages_before = len(self._messages)
        try:
            result = body(self)
            if inspect.isawaitable(result):
                await result
        except PersistedStateNeeded:
            # The function runs again once the value is loaded: what it added is added then.
            del self._messages[messages_before:]
            raise
        finally:
            self._in_body = False
        self._reconcile()
        self._first_run = False

    def _reconcile(self) -> None:
        for store, kinds in (
            (self._variables, (Kind.VARIABLE, Kind.DATA)),
            (self._systems, (Kind.SYSTEM,)),
            (self._tools, (Kind.TOOL,)),
            (self._agents, (Kind.AGENT,)),
        ):
            for name in list(store):
                if not any((k, name) in self._seen for k in kinds):
                    del store[name]
        for name in list(self._order):
            if name not in self._tools and name not in self._agents:
                del self._order[name]

    async def prepare_step(self, step: int) -> PreparedStep:
        """Effects, disables, step modifications, system prompt and reminder for one call."""
        state_snapshot = to_jsonable_python(self._state)
        mods = StepModifications()
        ctx = PromptContext(
            messages=list(self._messages),
            step_number=step,
            tools=NameCollection(self._defined_names()),
            systems=NameCollection(list(self._systems)),
            variables=NameCollection(list(self._variables)),
            last_tool=self._last_tool,
        )
        modifier = mods.modifier()
        memory = self._effect_memory
        for index, effect in enumerate(self._effects):
            deps = None if effect.deps is None else [unwrap_dep(d) for d in effect.deps]
            previous = memory[index] if index < len(memory) else NEVER_RAN
            if not deps_changed(previous, deps):
                continue
            result = effect.callback(ctx, modifier)
            if inspect.isawaitable(result):
                await result
            while len(memory) <= index:
                memory.append(NEVER_RAN)
            memory[index] = [] if deps is None else deps

        disabled = set(self._disabled)
        self._disabled.clear()

        system = self._render_system(disabled, mods)
        callables = self._active_callables(disabled, mods)
        messages = list(self._messages) + mods.messages
        if self._reminded:
            items = [(name, kind.label) for kind, name in self._reminded]
            messages.append(Message(role="assistant", content=render_reminder(items)))
            self._reminded = []
        for c in callables.values():
            for t in c.members if isinstance(c, CompositeToolDef) else [c]:
                if isinstance(t, ToolDef) and t.approval:
                    self.approval_policy(t.approval)  # a tool names an approval nobody defined
                if isinstance(t, ToolDef) and t.circuit_breaker:
                    self.circuit_breaker(t.circuit_breaker)  # ... or a breaker nobody defined
        return PreparedStep(
            system=system,
            messages=messages,
            tools=[_tool_definition(c) for c in callables.values()],
            callables=callables,
            state_snapshot=state_snapshot,
            approvals=dict(self._approval_policies),
            defined=self._defined_names(),
            breakers=dict(self._breakers),
        )

    def _defined_names(self) -> list[str]:
        """Tools and agents in definition order (hidden agents are no tools of the model's)."""
        return [n for n in self._order if n in self._tools or not getattr(self._agents.get(n), "hidden", False)]

    def _render_system(self, disabled: set[tuple[Kind, str]], mods: StepModifications) -> str | None:
        parts = [(n, v) for n, v in self._systems.items() if (Kind.SYSTEM, n) not in disabled]
        if mods.system_allow is not None:
            parts = [(n, v) for n, v in parts if n in mods.system_allow]
        parts += mods.extra_systems
        rendered: list[str] = []
        for name, var in self._variables.items():
            if (Kind.DATA if var.is_data else Kind.VARIABLE, name) in disabled:
                continue
            rendered.append(render_data_variable(name, var.value) if var.is_data else render_variable(name, var.value))
        for name, value, is_data in mods.extra_variables:
            rendered.append(render_data_variable(name, value) if is_data else render_variable(name, str(value)))
        # lmthing gave a sub-agent its system= and response-schema instruction as the child's
        # first system part: <responseFormat> (system, blank line, instruction) or <agentSystem>.
        if self._response_schema is not None:
            instruction = response_schema_instruction(self._response_schema, self._response_instruction)
            value = f"{self._agent_system}\n\n{instruction}" if self._agent_system else instruction
            parts = [(RESPONSE_FORMAT_PART, value), *parts]
        elif self._agent_system:
            parts = [(AGENT_SYSTEM_PART, self._agent_system), *parts]
        return render_system_prompt(self._base_system, parts, rendered)

    def _active_callables(self, disabled: set[tuple[Kind, str]], mods: StepModifications) -> dict[str, Callable_]:
        out: dict[str, Callable_] = {}
        for name in self._order:
            t = self._tools.get(name)
            if t is not None:
                if (Kind.TOOL, name) not in disabled:
                    out[name] = t
                continue
            a = self._agents[name]
            if (Kind.AGENT, name) not in disabled and not getattr(a, "hidden", False):
                out[name] = a
        if mods.tool_allow is not None:
            out = {n: c for n, c in out.items() if n in mods.tool_allow}
        return out

    # ------------------------------------------------------------ recording the exchange
    def record_assistant(self, text: str, tool_calls: list[ToolCall]) -> None:
        self._messages.append(Message(role="assistant", content=text or None, tool_calls=tool_calls or None))

    def record_user(self, text: str) -> None:
        self._messages.append(Message(role="user", content=text))

    def record_tool_results(self, results: list[ToolResult], args_by_id: dict[str, Any]) -> None:
        for r in results:
            content = r.content if r.content is not None else _as_text(r.result)
            self._messages.append(Message(role="tool", tool_call_id=r.tool_call_id, name=r.name, content=content))
        if results:
            last = results[-1]
            self._last_tool = LastTool(last.name, args_by_id.get(last.tool_call_id), last.result, last.is_error)

    def replace_messages(self, messages: list[Message]) -> None:
        """The run's conversation from now on (def_context replaced older turns with a
        summary, docs/context.md)."""
        self._messages = list(messages)

    @property
    def messages(self) -> list[Message]:
        return list(self._messages)

    # ----------------------------------------------------- carrying across continue-as-new
    def export_memory(self) -> list[Any]:
        """Effect dependency memory in a JSON-compatible form (``None`` = never ran)."""
        out: list[Any] = []
        for m in self._effect_memory:
            if m is NEVER_RAN:
                out.append(None)
                continue
            try:
                out.append(to_jsonable_python(m))
            except PydanticSerializationError:
                out.append(None)  # not storable: the effect re-runs once after continue-as-new
        return out

    def import_memory(self, memory: list[Any]) -> None:
        self._effect_memory = [NEVER_RAN if m is None else m for m in memory]



def _tool_definition(c: Callable_) -> ToolDefinition:
    if isinstance(c, (CompositeToolDef, CompositeAgentDef)):
        return ToolDefinition(name=c.name, description=c.full_description(), parameters=c.parameters())
    return ToolDefinition(name=c.name, description=c.description, parameters=c.parameters())


def _as_text(value: Any) -> str:
    """A tool result as the model reads it: text as is, anything else as compact JSON (what
    JSON.stringify gives lmthing's providers)."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False, separators=(",", ":"))
