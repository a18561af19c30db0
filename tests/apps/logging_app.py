"""A prompt whose tool logs a secret-like field (for the JSON logging test)."""

from temporalio import activity

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

SECRET = "sk-test-0123456789abcdef"


@tool
async def call_vendor(city: str) -> dict:
    """Call a vendor API (and log what was sent)."""
    activity.logger.info(
        "calling vendor for %s with key %s", city, SECRET,
        extra={"authorization": f"Bearer {SECRET}", "vendor_token": "tok-1", "city": city},
    )
    return {"ok": True}


@prompt(model=scripted_model("logging-tool", [tool_call("call_vendor", {"city": "Paris"}), text("done")]))
def logs_from_a_tool(p):
    p.def_tool(call_vendor)
    p.user("Call the vendor")
