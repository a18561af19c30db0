"""Sub-agent definitions (``def_agent``) and their response-schema handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from .render import RESPONSE_SCHEMA_INSTRUCTION
from .tools import CompositeDef, format_validation_error, schema_of, validate_args

AgentFn = Callable[..., Any]


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
    # What the agent can do, for selecting agents by capability (000's AgentPool.select).
    capabilities: list[str] = field(default_factory=list)

    def parameters(self) -> dict[str, Any]:
        return schema_of(self.schema)

    def validate_args(self, raw: dict[str, Any] | str) -> tuple[Any, str | None]:
        return validate_args(self.schema, raw, self.name)


@dataclass
class CompositeAgentDef(CompositeDef):
    """A composite agent (``def_agent(name, description, [agent(...), ...])``)."""

    label: ClassVar[str] = "sub-agents"

    @property
    def sub_agents(self) -> list[AgentDef]:
        return self.members


def agent(name: str, description: str, schema: Any, fn: AgentFn, **options: Any) -> AgentDef:
    """A sub-agent definition for a composite ``def_agent`` (lmthing's ``agent()``)."""
    return AgentDef(name=name, description=description, schema=schema, fn=fn, **options)


def response_schema_instruction(schema: type[BaseModel]) -> str:
    return RESPONSE_SCHEMA_INSTRUCTION.format(schema=json.dumps(schema.model_json_schema(), indent=2))


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
