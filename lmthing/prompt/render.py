"""System-prompt and reminder rendering, byte for byte as the TypeScript lmthing does it.

Users port prompts from lmthing and compare transcripts, so the exact whitespace matters;
see LMTHING_SEMANTICS.md ("System prompt rendering").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel


class _JsYamlDumper(yaml.SafeDumper):
    """Dumps like js-yaml's ``dump``: sequences indented under their key, no key sorting."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def yaml_dump(data: Any) -> str:
    """YAML for ``def_data``; always ends in a newline, as js-yaml's does."""
    return yaml.dump(
        _plain(data),
        Dumper=_JsYamlDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
    )


def render_system_part(name: str, value: str) -> str:
    return f"<{name}>\n{value}\n</{name}>"


def render_variable(name: str, value: str) -> str:
    return f"  <{name}>\n {value}\n  </{name}>"


def render_data_variable(name: str, data: Any) -> str:
    return f"  <{name}>\n{yaml_dump(data)}\n  </{name}>"


def render_system_prompt(
    base: str | None,
    parts: Iterable[tuple[str, str]],
    variables: Iterable[str],
) -> str | None:
    """Join system parts and the ``<variables>`` block; ``None`` when there is nothing.

    ``base`` is the run's or agent's ``system=`` option; it comes first, as the AI SDK's
    ``system`` parameter did before lmthing appended its parts.
    """
    sections = [render_system_part(name, value) for name, value in parts]
    rendered_vars = list(variables)
    if rendered_vars:
        sections.append("<variables>\n" + "\n".join(rendered_vars) + "\n</variables>")
    if base:
        sections.insert(0, base)
    if not sections:
        return None
    return "\n".join(sections)


def render_reminder(items: Iterable[tuple[str, str]]) -> str:
    """The assistant message appended when definitions were ``.remind()``-ed."""
    lines = "\n".join(f"- {name} ({kind})" for name, kind in items)
    return f"\n\n[Reminder: Remember to use the following items in your response:\n{lines}]"


RESPONSE_SCHEMA_INSTRUCTION = (
    "You must respond with a valid JSON object that matches this schema:\n\n{schema}\n\n"
    "Return only the JSON object in your response, without any additional text or explanation."
)
