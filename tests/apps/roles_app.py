"""Prompts for tests/test_roles.py: a typed template rendered into the user message, roles
that limit the tools the model sees and put one behind a person's approval, and a plugin
installed for a run (def_template, def_role, assume_role, def_plugin; docs/templates-and-roles.md)."""

from __future__ import annotations

from typing import Any

from lmthing import prompt
from lmthing.testing import last_user_text, scripted_model, text, tool_call

ECHO = scripted_model("roles-echo", [lambda request: text(last_user_text(request))], repeat=True)


@prompt(model=ECHO)
def templated_review(p, args: dict):
    p.def_template("review", "Review this {{language}} code at the {{level}} level (score {{score}}):\n{{code}}", {
        "language": {"type": "string", "default": "python"},
        "level": {"type": "enum", "values": ["basic", "strict"], "default": "basic"},
        "score": {"type": "integer", "default": 7},
        "code": "string",
    })
    p.use_template("review", args)


def _deploy_script(request: Any) -> Any:
    if request.step == 0:
        return [tool_call("deploy", {"target": "staging"})]
    return text(str(request.messages[-1].content))


@prompt(model=scripted_model("roles-deploy", [_deploy_script], repeat=True), max_steps=3)
def role_play(p, args: dict):
    p.def_tool("read_file", "Read a file", None, lambda a: {"text": "print('hi')"})
    p.def_tool("deploy", "Deploy the code", {"type": "object", "properties": {"target": {"type": "string"}}},
               lambda a: {"deployed": a["target"]})
    p.def_role("senior", system="You are a senior engineer.", allowed_tools=["read_file"],
               personality={"tone": "calm"}, capabilities=["code-review"])
    p.def_role("junior", system="You are a junior engineer.", allowed_tools=["read_file", "deploy"],
               requires_approval=["deploy"], max_tokens=100_000)
    p.def_role("confused", allowed_tools=["read_fiel"])
    p.assume_role(args["role"])
    p.user("Ship it.")


def _greeting(p, who: str) -> None:
    p.def_system("greeting", f"Greet {who} by name.")


@prompt(model=scripted_model("roles-plugin", [lambda request: text(request.system or "")], repeat=True))
def with_plugin(p):
    p.def_plugin("greeter", {"def_greeting": _greeting}, version="1.2.0")
    p.def_greeting("Ada")
    p.def_data("plugins", p.installed_plugins())
    p.user("Hello")
