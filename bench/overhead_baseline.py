"""The baseline of ``bench/overhead.py``: a hand-written Temporal workflow (temporalio only)
doing the same sequence as the lmthing run: N model-call activities (each receives the whole
conversation so far, the system prompt and the tool definitions, like every agent framework
on Temporal does) and N-1 tool activities, one after another.

Plain JSON-compatible dicts cross the boundary; the worker uses lmthing's data converter and
sandbox runner so that only the orchestration code differs.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

MODEL_ACTIVITY = "bench.baseline.model_call"
TOOL_ACTIVITY = "bench.baseline.lookup"

TOOLS = [
    {
        "name": "lookup",
        "description": "Look up a number and return a few facts about it.",
        "parameters": {
            "type": "object",
            "properties": {"n": {"type": "integer", "title": "N"}},
            "required": ["n"],
            "title": "LookupArgs",
        },
    }
]


@activity.defn(name=MODEL_ACTIVITY)
async def baseline_model_call(request: dict[str, Any]) -> dict[str, Any]:
    """Stands in for a model call: tool call on every step but the last, then text."""
    step = request["step"]
    sent = (request.get("system") or "") + "".join(m.get("content") or "" for m in request["messages"])
    if step < request["total_steps"] - 1:
        calls = [{"id": f"call_{step}_0", "name": "lookup", "args": {"n": step}}]
        text = ""
    else:
        calls = []
        text = "Done: looked up every number."
    out = text + "".join(json.dumps(c["args"]) for c in calls)
    return {
        "text": text,
        "tool_calls": calls,
        "finish_reason": "tool_calls" if calls else "stop",
        "usage": {"input_tokens": (len(sent) + 3) // 4, "output_tokens": (len(out) + 3) // 4},
        "model": "baseline",
    }


@activity.defn(name=TOOL_ACTIVITY)
async def baseline_lookup(payload: dict[str, Any]) -> dict[str, Any]:
    n = payload["args"]["n"]
    return {"n": n, "square": n * n, "parity": "even" if n % 2 == 0 else "odd", "label": f"item-{n}"}


@workflow.defn(name="bench-baseline-agent")
class BaselineAgent:
    @workflow.run
    async def run(self, steps: int, model_activity: str = MODEL_ACTIVITY) -> dict[str, Any]:
        info = workflow.info()
        system = "<role>\nYou are a benchmark agent. Call the lookup tool until you have enough, then answer.\n</role>"
        if model_activity == OPENAI_MODEL_ACTIVITY:  # the fake server reads the step count here
            system = system.replace(" answer.\n", f" answer. [steps={steps}]\n")
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "Look up the numbers 0 to 18 one by one, then summarise."}
        ]
        usage = {"input_tokens": 0, "output_tokens": 0}
        text = ""
        for step in range(steps):
            response = await workflow.execute_activity(
                model_activity,
                {
                    "model": "baseline",
                    "system": system,
                    "messages": messages,
                    "tools": TOOLS,
                    "step": step,
                    "total_steps": steps,
                    "workflow_id": info.workflow_id,
                },
                start_to_close_timeout=timedelta(seconds=300),
                result_type=dict,
            )
            for key in usage:
                usage[key] += response["usage"][key]
            text = response["text"]
            messages.append({"role": "assistant", "content": text or None, "tool_calls": response["tool_calls"] or None})
            if not response["tool_calls"]:
                break
            for call in response["tool_calls"]:
                result = await workflow.execute_activity(
                    TOOL_ACTIVITY,
                    {"args": call["args"], "tool_call_id": call["id"], "idempotency_key": f"{info.workflow_id}:{call['id']}"},
                    start_to_close_timeout=timedelta(seconds=60),
                    result_type=dict,
                )
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "name": call["name"], "content": json.dumps(result)}
                )
        return {"text": text, "steps": step + 1, "usage": usage}


# ----------------------------------------------------------------- the provider path
OPENAI_MODEL_ACTIVITY = "bench.baseline.openai_model_call"
_OPENAI: list[Any] = []  # one AsyncOpenAI per process, as a hand-written worker would keep


def _openai_messages(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        if m["role"] == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": m.get("content")}
            if m.get("tool_calls"):
                entry["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                    for c in m["tool_calls"]
                ]
            out.append(entry)
        elif m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


@activity.defn(name=OPENAI_MODEL_ACTIVITY)
async def baseline_openai_model_call(request: dict[str, Any]) -> dict[str, Any]:
    """A real model call through the official SDK (Chat Completions, no streaming), to the
    server at ``OPENAI_BASE_URL``, as the peer harness's hand-written workflow makes it."""
    import openai

    if not _OPENAI:
        _OPENAI.append(openai.AsyncOpenAI(max_retries=0))
    response = await _OPENAI[0].chat.completions.create(
        model="fake-model",
        messages=_openai_messages(request["system"], request["messages"]),
        tools=[{"type": "function", "function": t} for t in request["tools"]],
    )
    choice = response.choices[0]
    calls = [
        {"id": c.id, "name": c.function.name, "args": json.loads(c.function.arguments or "{}")}
        for c in choice.message.tool_calls or []
    ]
    usage = response.usage
    return {
        "text": choice.message.content or "",
        "tool_calls": calls,
        "finish_reason": choice.finish_reason,
        "usage": {"input_tokens": usage.prompt_tokens if usage else 0, "output_tokens": usage.completion_tokens if usage else 0},
        "model": response.model,
    }
