"""Sub-agent definitions (``def_agent``) and their response-schema handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from .render import RESPONSE_SCHEMA_INSTRUCTION
from .tools import CompositeDef, check_resilience_options, check_schema, format_validation_error, inline_refs, parse_tool_input, schema_of, validate_args

AgentFn = Callable[..., Any]

# The system parts lmthing gave a sub-agent for its system= option and response schema.
RESPONSE_FORMAT_PART = "responseFormat"
AGENT_SYSTEM_PART = "agentSystem"


@dataclass
class AgentDef:
    """A sub-agent: ``fn(args, child_prompt)`` builds the child's prompt."""

    name: str
    description: str
    schema: type[BaseModel] | dict[str, Any] | None
    fn: AgentFn
    model: str | None = None
    system: str | None = None
    response_schema: type[BaseModel] | None = None
    plugins: list[Any] = field(default_factory=list)
    max_steps: int | None = None
    schema_retries: int = 2
    critical: bool = False
    # Not offered to the model: run from workflow-side code only (a team's lead, say).
    hidden: bool = False
    # The child's response-schema instruction, with ``{schema}``, when it is not def_agent's
    # (the function plugin's agents: lmthing told those children other words).
    response_instruction: str | None = None
    # What the agent can do, for selecting agents by capability (000's AgentPool.select).
    capabilities: list[str] = field(default_factory=list)
    # Resilience (docs/resilience.md): the retry policy and model cascade of the agent's model
    # calls and the guards checked before it starts, by def_retry/def_fallback/def_guard name.
    retry: str | None = None
    fallback: str | None = None
    guards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_resilience_options(f"def_agent({self.name!r})", self)

    def parameters(self) -> dict[str, Any]:
        return schema_of(self.schema)

    def validate_args(self, raw: dict[str, Any] | str) -> tuple[Any, str | None]:
        return validate_args(self.schema, raw, self.name)

    def parse_input(self, raw: dict[str, Any] | str) -> tuple[Any, str | None]:
        """Arguments from the model, with lmthing's error text (see ``parse_tool_input``)."""
        return parse_tool_input(self.schema, raw, self.name)


@dataclass
class CompositeAgentDef(CompositeDef):
    """A composite agent (``def_agent(name, description, [agent(...), ...])``)."""

    label: ClassVar[str] = "sub-agents"
    member_label: ClassVar[str] = "agent"
    # Not offered to the model: its members are run from workflow-side code only.
    hidden: bool = False

    @property
    def sub_agents(self) -> list[AgentDef]:
        return self.members


def agent(name: str, description: str, schema: Any, fn: AgentFn, **options: Any) -> AgentDef:
    """A sub-agent definition for a composite ``def_agent`` (lmthing's ``agent()``)."""
    if not callable(fn):
        raise TypeError(f"agent({name!r}): give a function fn(args, child_prompt)")
    check_schema(f"agent({name!r})", schema)
    return AgentDef(name=name, description=description, schema=schema, fn=fn, **options)


def response_schema_instruction(schema: type[BaseModel], template: str | None = None) -> str:
    """lmthing's instruction (or ``template``, an agent's own, with ``{schema}``), with the
    schema as lmthing wrote it (see :func:`lmthing_schema`)."""
    text = json.dumps(lmthing_schema(schema), indent=2, ensure_ascii=False)
    return (template or RESPONSE_SCHEMA_INSTRUCTION).format(schema=text)


def lmthing_schema(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    """The JSON schema lmthing printed in its response-schema instruction, for a pydantic model.

    lmthing converted its zod schema by hand: objects as ``{type, properties, required}``
    (``required`` left out when empty), strings, numbers and booleans as ``{type,
    description?}`` (integers are numbers), arrays as ``{type, items}``, optional fields as
    their inner type, nullable ones with ``nullable: true``; no titles, defaults or
    ``additionalProperties``. Kinds lmthing printed as ``{"type": "any"}`` (enums, literals,
    unions, maps, tuples...) keep pydantic's JSON schema here, so the model still sees the
    allowed values.
    """
    root = inline_refs(schema_of(schema) if not isinstance(schema, dict) else schema)
    return _lm_node(root)


def _lm_node(node: dict[str, Any], description: str | None = None, optional: bool = False) -> dict[str, Any]:
    description = node.get("description", description)
    kind = node.get("type")
    variants = node.get("anyOf") or node.get("oneOf")
    if variants and not kind:
        not_null = [v for v in variants if v.get("type") != "null"]
        if len(not_null) == 1 and len(not_null) < len(variants):
            inner = _lm_node(not_null[0], description)
            # `x: T | None = None` is Python's optional field (zod's .optional(): the inner
            # type); a required `x: T | None` is zod's .nullable().
            if optional and node.get("default", ...) is None:
                return inner
            return {**inner, "nullable": True}
        return _stripped(node)
    if "enum" in node or "const" in node:
        return _stripped(node)
    if kind == "object" and "properties" in node:
        required = [k for k in node["properties"] if k in node.get("required", [])]
        out: dict[str, Any] = {
            "type": "object",
            "properties": {k: _lm_node(v, optional=k not in required) for k, v in node["properties"].items()},
        }
        if required:
            out["required"] = required
        return out
    if kind in ("string", "number", "integer", "boolean"):
        out = {"type": "number" if kind == "integer" else kind}
        if description is not None:
            out["description"] = description
        return out
    if kind == "array" and isinstance(node.get("items"), dict):
        return {"type": "array", "items": _lm_node(node["items"])}
    return _stripped(node)


def _stripped(node: Any, names: bool = False) -> Any:
    """Pydantic's schema for a kind lmthing could not print, without its titles (``names``:
    the keys are property names, kept whatever they are)."""
    if isinstance(node, dict):
        return {
            k: _stripped(v, names=k == "properties" and not names)
            for k, v in node.items()
            if names or not (k == "title" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_stripped(v) for v in node]
    return node


def parse_structured(text: str, schema: type[BaseModel]) -> tuple[Any, str | None]:
    """Parse a model's final text against ``schema``: ``(data, None)`` or ``(None, error)``.

    Models often wrap JSON in a Markdown fence; that wrapper is tolerated.
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        return None, f"Response is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
    try:
        return schema.model_validate(data).model_dump(mode="json"), None
    except ValidationError as err:
        return None, f"Response does not match the schema: {format_validation_error(err)}"
