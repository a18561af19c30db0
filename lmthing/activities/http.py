"""An HTTP session for ``@tool`` functions that keeps to the run's domain allowlists
(``def_constraint(name, "domains", allow=[...])``, docs/resilience.md).

The workflow refuses a tool call whose arguments name a host the tree does not allow; a
tool that fetches what its arguments do not name (a link on a page, a redirect) needs the
same check where the request goes out. This aiohttp session makes it before every request
and every redirect it would follow, and raises
:class:`~lmthing.prompt.tools.DomainNotAllowed` instead of connecting::

    @tool
    async def fetch(url: str, ctx: ToolContext) -> str:
        async with allowed_http_session(ctx) as http, http.get(url) as reply:
            return await reply.text()
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from lmthing.prompt.tools import ToolContext


def allowed_http_session(ctx: ToolContext, **options: Any) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` (``options`` as for aiohttp) that refuses hosts
    ``ctx``'s allowlists do not allow; without allowlists, a plain session."""

    async def on_start(session: Any, trace: Any, params: aiohttp.TraceRequestStartParams) -> None:
        ctx.check_url(str(params.url))

    async def on_redirect(session: Any, trace: Any, params: aiohttp.TraceRequestRedirectParams) -> None:
        location = params.response.headers.get("Location")
        if location:
            ctx.check_url(str(params.url.join(URL(location))))

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(on_start)
    tracing.on_request_redirect.append(on_redirect)
    return aiohttp.ClientSession(trace_configs=[*options.pop("trace_configs", ()), tracing], **options)
