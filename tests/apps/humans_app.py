"""Prompts with approvals and questions (people in the loop)."""

from pydantic import BaseModel

from lmthing import prompt
from lmthing.testing import scripted_model, text, tool_call


class Payment(BaseModel):
    to: str
    amount: int


def _payments(p, timeout=None):
    sent, set_sent = p.def_state("sent", [])
    p.def_approval("payments", message="Send this payment?", timeout=timeout, default="deny")
    p.def_tool(
        "send_money",
        "Send money to someone",
        Payment,
        lambda args: set_sent([*sent, {"to": args.to, "amount": args.amount}]) or {"sent": args.amount, "to": args.to},
        approval="payments",
    )
    p.user("Pay Bob 50.")


PAY = [tool_call("send_money", {"to": "bob", "amount": 50}), text("done")]


@prompt(model=scripted_model("humans-pay", PAY))
def pay(p):
    _payments(p)


@prompt(model=scripted_model("humans-pay-timeout", PAY))
def pay_or_timeout(p):
    _payments(p, timeout=1)


@prompt(
    model=scripted_model(
        "humans-ask",
        [tool_call("ask_human", {"question": "Which city?", "options": ["Paris", "Oslo"]}), text("noted")],
    )
)
def asks_the_model_way(p):
    p.def_interaction()
    p.user("Find out which city the user means.")


@prompt(model=scripted_model("humans-ask-body", [[tool_call("noop")], text("bye")]))
async def asks_in_the_prompt(p):
    city = await p.ask_human("Which city do you live in?", key="city")
    p.def_tool("noop", "Nothing", None, lambda args: {})
    p.user(f"Plan a trip from {city}.")


@prompt(model=scripted_model("humans-request", [tool_call("delete_all", {}), text("done")]))
def requests_in_code(p):
    deleted, set_deleted = p.def_state("deleted", False)
    p.def_approval("danger", message="Delete everything?", options=("approve", "deny"))

    async def delete_all(args):
        decision = await p.request_approval("danger", message="Really delete everything?")
        if decision.action == "approve":
            set_deleted(True)
        return {"deleted": decision.action == "approve"}

    p.def_tool("delete_all", "Delete all records", None, delete_all)
    p.user("Clean up.")


@prompt(
    model=scripted_model(
        "humans-pay-twice",
        [[tool_call("send_money", {"to": "bob", "amount": 50})], [tool_call("send_money", {"to": "carol", "amount": 10})], text("done")],
    )
)
def pay_twice(p):
    _payments(p)
