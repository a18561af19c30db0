"""Templates and roles on the prompt (the seed 001's defTemplate / useTemplate and defRole /
assumeRole; docs/templates-and-roles.md). Every prompt has them (the engine adds this plugin
to each run); they are built on the public ``def_*`` API only, as a user's plugin would be.

A template is text with ``{{variable}}`` places and typed variables (string, number,
integer, boolean, enum), with defaults; using it checks the values and renders the text,
added as a user message by default. A role is a system part, the tools the model may call,
a token budget and the tools that need a person's approval; assuming it limits what the
model sees and may call from the next model call on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from lmthing.prompt.stateful_prompt import PromptError, StatefulPrompt

_PLACE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TYPES = ("string", "number", "integer", "boolean", "enum")
ROLE_STATE_KEY = "_lmthing_role"


@dataclass(frozen=True)
class TemplateVar:
    name: str
    type: str = "string"
    default: Any = None
    required: bool = True
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    variables: dict[str, TemplateVar]

    def render(self, values: Mapping[str, Any], api: str) -> str:
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise PromptError(f"{api}: template {self.name!r} has no variable(s) {', '.join(unknown)}; "
                              f"its variables: {', '.join(self.variables) or 'none'}")
        filled: dict[str, Any] = {}
        for var in self.variables.values():
            if var.name in values:
                filled[var.name] = _checked(api, self.name, var, values[var.name])
            elif not var.required:
                filled[var.name] = var.default
            else:
                raise PromptError(f"{api}: template {self.name!r} needs a value for {var.name!r} ({var.type}), "
                                  "which has no default")
        return _PLACE.sub(lambda m: _text(filled[m.group(1)]), self.text)


@dataclass(frozen=True)
class Role:
    name: str
    system: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    max_tokens: int | None = None
    requires_approval: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    personality: dict[str, str] = field(default_factory=dict)


@dataclass
class _Book:
    templates: dict[str, Template] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)


# The definitions of each prompt object (a run's), kept beside it rather than on it.
_BOOKS: WeakKeyDictionary[StatefulPrompt, _Book] = WeakKeyDictionary()


def _book(p: StatefulPrompt) -> _Book:
    book = _BOOKS.get(p)
    if book is None:
        book = _BOOKS[p] = _Book()
    return book


def _name(api: str, name: Any) -> str:
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise PromptError(f"{api}: the name is letters, digits, '_', '-' or '.'; got {name!r}")
    return name


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _checked(api: str, template: str, var: TemplateVar, value: Any) -> Any:
    ok = {
        "string": isinstance(value, str),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "enum": value in var.values,
    }[var.type]
    if not ok:
        expected = f"one of {', '.join(repr(v) for v in var.values)}" if var.type == "enum" else f"a {var.type}"
        raise PromptError(f"{api}: template {template!r}, variable {var.name!r} is {expected}; got {value!r}")
    return value


def _variable(api: str, name: str, spec: Any) -> TemplateVar:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise PromptError(f"{api}: variable {name!r} is described by a dict like {{'type': 'string', 'default': ...}}; "
                          f"got {spec!r}")
    unknown = sorted(set(spec) - {"type", "default", "values", "description"})
    if unknown:
        raise PromptError(f"{api}: variable {name!r} has unknown key(s) {', '.join(unknown)}; use type, default, values")
    kind = spec.get("type", "string")
    if kind not in _TYPES:
        raise PromptError(f"{api}: variable {name!r} has type {kind!r}; use one of {', '.join(_TYPES)}")
    values = tuple(spec.get("values") or ())
    if kind == "enum" and not values:
        raise PromptError(f"{api}: enum variable {name!r} needs values=[...]")
    var = TemplateVar(name, kind, spec.get("default"), "default" not in spec, values)
    if "default" in spec:
        _checked(api, "(its own default)", var, spec["default"])
    return var


def def_template(p: StatefulPrompt, name: str, template: str, variables: Mapping[str, Any] | None = None) -> Template:
    """A reusable text with ``{{variable}}`` places. ``variables``: each one's
    ``{"type": "string"|"number"|"integer"|"boolean"|"enum", "default": ..., "values": [...]}``
    (or just the type); one without a default must be given to ``use_template``. Every place
    must be a declared variable."""
    api = f"def_template({name!r})"
    _name(api, name)
    if not isinstance(template, str):
        raise PromptError(f"{api}: the template is text with {{{{variable}}}} places; got {template!r}")
    if variables is not None and not isinstance(variables, Mapping):
        raise PromptError(f"{api}: variables is a dict of name -> {{'type': ..., 'default': ...}}; got {variables!r}")
    declared = {n: _variable(api, n, s) for n, s in (variables or {}).items()}
    places = sorted(set(_PLACE.findall(template)) - set(declared))
    if places:
        raise PromptError(f"{api}: the template uses {', '.join('{{' + v + '}}' for v in places)}, which "
                          "variables= does not declare; declare them (with a default if they may be left out)")
    made = Template(name, template, declared)
    _book(p).templates[name] = made
    return made


def use_template(p: StatefulPrompt, name: str, values: Mapping[str, Any] | None = None, *, as_: str = "user") -> str:
    """Render template ``name`` with ``values`` (checked against its variables) and add it as
    a user message (``as_="user"``, the default; only on the first run, like ``p.user``), as a
    system part named after the template (``as_="system"``), or not at all (``as_="text"``).
    Returns the text."""
    api = f"use_template({name!r})"
    template = _book(p).templates.get(name)
    if template is None:
        known = ", ".join(_book(p).templates) or "none"
        raise PromptError(f"{api}: no template of that name; define it first with def_template({name!r}, ...) "
                          f"(defined: {known})")
    if values is not None and not isinstance(values, Mapping):
        raise PromptError(f"{api}: values is a dict of variable -> value; got {values!r}")
    text = template.render(values or {}, api)
    if as_ == "user":
        p.user(text)
    elif as_ == "system":
        p.def_system(name, text)
    elif as_ != "text":
        raise PromptError(f"{api}: as_ is 'user', 'system' or 'text'; got {as_!r}")
    return text


def _names(api: str, what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) and v for v in value):
        raise PromptError(f"{api}: {what} is a list of names; got {value!r}")
    return tuple(value)


def def_role(
    p: StatefulPrompt,
    name: str,
    *,
    system: str | None = None,
    allowed_tools: Iterable[str] | None = None,
    max_tokens: int | None = None,
    requires_approval: Iterable[str] = (),
    capabilities: Iterable[str] = (),
    personality: Mapping[str, str] | None = None,
) -> Role:
    """A role the prompt can take with ``assume_role``: its ``system`` text (with
    ``personality`` traits and ``capabilities`` listed under it), the only tools the model
    may see and call (``allowed_tools``; None: all), a token budget for the run
    (``max_tokens``, a def_constraint) and the tools that need a person's approval first."""
    api = f"def_role({name!r})"
    _name(api, name)
    if system is not None and not isinstance(system, str):
        raise PromptError(f"{api}: system is text; got {system!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise PromptError(f"{api}: max_tokens is a whole number above 0; got {max_tokens!r}")
    if personality is not None and (not isinstance(personality, Mapping)
                                    or not all(isinstance(k, str) and isinstance(v, str) for k, v in personality.items())):
        raise PromptError(f"{api}: personality is a dict of trait -> text, e.g. {{'tone': 'professional'}}; got {personality!r}")
    role = Role(
        name, system, None if allowed_tools is None else _names(api, "allowed_tools", allowed_tools), max_tokens,
        _names(api, "requires_approval", requires_approval), _names(api, "capabilities", capabilities),
        dict(personality or {}),
    )
    _book(p).roles[name] = role
    return role


def assume_role(p: StatefulPrompt, name: str) -> Role:
    """Take role ``name`` for this run of the prompt function (call it in every run, like the
    other definitions): its system part ``role``, its tool allow-list (from the next model
    call on), its token budget and its approvals. A role naming a tool the prompt does not
    define fails the run, naming the tool."""
    api = f"assume_role({name!r})"
    role = _book(p).roles.get(name)
    if role is None:
        known = ", ".join(_book(p).roles) or "none"
        raise PromptError(f"{api}: no role of that name; define it first with def_role({name!r}, ...) (defined: {known})")
    lines = [role.system] if role.system else []
    lines += [f"{trait.capitalize()}: {text}" for trait, text in role.personality.items()]
    if role.capabilities:
        lines.append("Capabilities: " + ", ".join(role.capabilities))
    p.def_system("role", "\n".join(lines) or f"You act as {role.name}.")
    if role.max_tokens is not None:
        p.def_constraint(f"role-{role.name}", "tokens", max=role.max_tokens)
    if role.requires_approval:
        p.def_approval(f"role-{role.name}", f"Role {role.name!r} needs a person's approval for this call")

    def limit(ctx: Any, step: Any) -> None:
        defined = set(ctx.tools)
        for tool in (*(role.allowed_tools or ()), *role.requires_approval):
            if p.defined_tool(tool) is None and tool not in defined:
                raise PromptError(f"{api}: role {role.name!r} names tool {tool!r}, which the prompt does not define "
                                  f"(its tools: {', '.join(sorted(defined)) or 'none'})")
        if role.allowed_tools is not None:
            step("tools", list(role.allowed_tools))
        for tool in role.requires_approval:
            tdef = p.defined_tool(tool)
            if tdef is not None and hasattr(tdef, "approval"):
                tdef.approval = f"role-{role.name}"

    p.def_effect(limit)
    return role


roles_plugin = {
    "def_template": def_template,
    "use_template": use_template,
    "def_role": def_role,
    "assume_role": assume_role,
}
