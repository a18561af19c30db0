"""A support agent behind resilience definitions, offline on a scripted model.

    lmthing run examples/guarded_support.py

What it shows, one definition each (docs/resilience.md):

* ``def_retry`` (``net``): the orders API drops the first connection; the tool is retried
  by the policy (linear backoff, a durable timer between attempts in the history);
* ``def_guard`` (``verified``): ``refund`` runs only for a verified customer. The model's
  first refund is skipped, and it is told why; it verifies the customer and asks again;
* ``def_moderation`` (``pii``): a card number in the model's text is redacted before the
  conversation, the step record and the caller get it (``action="filter"``);
* ``def_validator`` (``cites_order``, ``answer=True``): the answer must name the order; the
  first one does not, so the model is asked again with the error;
* ``def_constraint`` (``tokens``): a token budget over the run (and any sub-agents), with a
  warning mark; the ``budget`` query shows the ledger.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

# How many times the orders API was reached (the tool runs on the worker, not in the sandbox).
ORDERS_API = {"calls": 0}


@tool
def lookup_order(order_id: str) -> dict:
    """Look an order up in the orders API (its first connection drops)."""
    ORDERS_API["calls"] += 1
    if ORDERS_API["calls"] == 1:
        raise ConnectionError("connection reset by the orders API")
    return {"order_id": order_id, "total": 42.0, "status": "delivered, damaged"}


@tool
def refund(order_id: str, amount: float) -> dict:
    """Refund an order."""
    return {"refunded": amount, "order_id": order_id}


class Verify(BaseModel):
    email: str


def redact_cards(said: str):
    """The moderation's rule: card numbers become their last four digits."""
    cleaned = re.sub(r"\b(?:\d{4} ){3}(\d{4})\b", r"card ending \1", said)
    return {"flagged": True, "categories": ["card_number"], "text": cleaned} if cleaned != said else None


SCRIPT = [
    text("Let me find the order."), tool_call("lookup_order", {"order_id": "A-17"}),
    text("It arrived damaged: refunding."), tool_call("refund", {"order_id": "A-17", "amount": 42.0}),
    text("I need to verify you first."), tool_call("verify_customer", {"email": "ada@example.com"}),
    text("Verified; refunding now."), tool_call("refund", {"order_id": "A-17", "amount": 42.0}),
    text("Done: 42.00 goes back to 4111 1111 1111 1111."),
    text("Order A-17 is refunded: 42.00 goes back to 4111 1111 1111 1111 within five days."),
]


@prompt(model=scripted_model("guarded-support", SCRIPT), max_steps=10)
def guarded_support(p) -> None:
    """Refund a damaged order, safely."""
    verified, set_verified = p.def_state("verified", False)

    p.def_retry("net", max_attempts=3, backoff="linear", base_delay=0.5, retryable_errors=["ConnectionError"])
    p.def_guard("verified", lambda check: check.state.get("verified"), on_fail="skip",
                message="the customer is not verified yet: call verify_customer first", tools=["refund"])
    p.def_moderation("pii", redact_cards, on="output", action="filter")
    p.def_validator("cites_order", check=lambda answer: "A-17" in answer or "name the order id (A-17)", answer=True,
                    max_retries=1)
    p.def_constraint("tokens", "tokens", max=50_000, warn=40_000)

    p.def_tool(lookup_order, retry="net")
    p.def_tool(refund)
    p.def_tool("verify_customer", "Verify the customer by email.", Verify,
               lambda args: set_verified(True) or {"verified": args.email})
    p.def_system("role", "You are a support agent. Verify customers before refunds.")
    p.user("My order A-17 arrived broken. Please refund it.")
