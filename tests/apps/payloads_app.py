"""A prompt whose argument and tool result are bigger than a Temporal payload may be
(tests/test_payload_store.py): it works when a payload store is configured."""

from pydantic import BaseModel

from lmthing import prompt, tool
from lmthing.testing import scripted_model, text, tool_call

TOOL_RESULT_CHARS = 3_000_000


class Document(BaseModel):
    text: str


@tool
async def fetch_big_page() -> str:
    """Returns a page of three million characters."""
    return "p" * TOOL_RESULT_CHARS


def _answer(request):
    """The model says how much it was given: the document's size and the page's."""
    page = next(m.content for m in request.messages if m.role == "tool")
    return text(f"{request.messages[0].content} The page had {len(page):,} characters.")


@prompt(model=scripted_model("payloads-big", [tool_call("fetch_big_page"), _answer]))
def big_payloads(p, args: Document):
    p.def_tool(fetch_big_page)
    p.user(f"The document has {len(args.text):,} characters.")
