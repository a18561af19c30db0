"""Web tools: an HTTP request within the run's domain allowlists, safe against SSRF, with
size and time limits; and a URL parser.

A model that may fetch URLs may be talked into fetching ``http://169.254.169.254/`` (the
cloud metadata service, which hands out credentials) or an admin page on localhost. So
every host is resolved first and the request is refused when any address it resolves to
is private, loopback, link-local, multicast, reserved or unspecified (IPv4-mapped IPv6
included), unless the worker allows them (``LMTHING_HTTP_ALLOW_PRIVATE=true``). The check
is made by the connection's own resolver, so a redirect, or a DNS answer that changes
between a check and the connection, meets it too. A body over ``LMTHING_HTTP_MAX_BYTES`` is
cut off at the limit and the call fails with an error saying so; the whole request has
``LMTHING_HTTP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lmthing.prompt.tools import ToolContext, tool

from .registry import tagged
from .settings import ENV, IO_RETRY, PURE_RETRY, ToolInputError, ToolLimitExceeded, ToolRefused, ToolSettings, settings_of

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CHUNK = 64 * 1024


def blocked_reason(address: str) -> str | None:
    """Why ``address`` (an IP) is not a public one, or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr, what in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_link_local", "link-local (cloud metadata)"),
                       ("is_private", "private"), ("is_multicast", "multicast"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return what
    return None


def _refuse(host: str, address: str, why: str) -> ToolRefused:
    shown = host if host == address else f"{host} ({address})"
    article = "an" if why[0] in "aeiou" else "a"
    return ToolRefused(f"Refused: {shown} is {article} {why} address; the HTTP tools reach public addresses only unless the "
                       f"worker sets {ENV['http_allow_private']}=true")


def check_host(host: str) -> None:
    """Refuse an IP-literal host that is not public (names are checked when resolved)."""
    try:
        why = blocked_reason(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if why:
        raise _refuse(host, host, why)


def guarded_resolver() -> Any:
    """An aiohttp resolver that refuses names resolving to any non-public address."""
    import aiohttp

    class GuardedResolver(aiohttp.abc.AbstractResolver):
        def __init__(self) -> None:
            self._inner = aiohttp.ThreadedResolver()

        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
            found = await self._inner.resolve(host, port, family)
            for item in found:
                why = blocked_reason(item["host"])
                if why:
                    raise _refuse(host, item["host"], why)
            return found

        async def close(self) -> None:
            await self._inner.close()

    return GuardedResolver()


def guarded_session(ctx: ToolContext, settings: ToolSettings) -> Any:
    """An aiohttp session within ``ctx``'s allowlists, refusing private addresses unless
    ``settings`` allow them, with the whole request limited to ``settings.http_timeout``."""
    import aiohttp

    from lmthing.activities.http import allowed_http_session

    options: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=settings.http_timeout)}
    if not settings.http_allow_private:
        async def on_start(session: Any, trace: Any, params: Any) -> None:
            check_host(params.url.host or "")

        async def on_redirect(session: Any, trace: Any, params: Any) -> None:
            location = params.response.headers.get("Location")
            if location:
                from yarl import URL

                check_host(params.url.join(URL(location)).host or "")

        literal = aiohttp.TraceConfig()
        literal.on_request_start.append(on_start)
        literal.on_request_redirect.append(on_redirect)
        options["trace_configs"] = [literal]
        options["connector"] = aiohttp.TCPConnector(resolver=guarded_resolver())
    return allowed_http_session(ctx, **options)


async def _read_capped(reply: Any, url: str, limit: int) -> bytes:
    declared = reply.content_length
    if declared is not None and declared > limit:
        raise ToolLimitExceeded(f"The response from {url} is {declared:,} bytes, over the limit of {limit:,} bytes "
                                f"({ENV['http_max_bytes']}); nothing was read")
    body = bytearray()
    async for chunk in reply.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > limit:
            raise ToolLimitExceeded(f"The response from {url} is over the limit of {limit:,} bytes "
                                    f"({ENV['http_max_bytes']}): cut off after {limit:,} bytes")
    return bytes(body)


@tagged("web", "http", "network")
@tool(retry=IO_RETRY)
async def http_fetch(url: str, ctx: ToolContext, method: str = "GET", headers: dict[str, str] | None = None,
                     body: str | None = None, json_body: Any = None, max_bytes: int | None = None) -> dict:
    """Make an HTTP request (GET by default) and return the status, content type and body text (JSON parsed)."""
    settings = await settings_of(ctx)
    method = method.upper()
    if method not in METHODS:
        raise ToolInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolInputError(f"Give an http:// or https:// URL with a host, got {url!r}")
    if body is not None and json_body is not None:
        raise ToolInputError("Give body or json_body, not both")
    if max_bytes is not None and max_bytes <= 0:
        raise ToolInputError(f"max_bytes must be > 0, got {max_bytes}")
    limit = min(max_bytes, settings.http_max_bytes) if max_bytes else settings.http_max_bytes
    sent = dict(headers or {})
    if method not in ("GET", "HEAD"):
        sent.setdefault("Idempotency-Key", ctx.idempotency_key)  # activities run at least once
    try:
        async with guarded_session(ctx, settings) as http, http.request(
            method, url, headers=sent, data=body, json=json_body
        ) as reply:
            raw = b"" if method == "HEAD" else await _read_capped(reply, url, limit)
            content_type = reply.headers.get("Content-Type", "")
            text = raw.decode(reply.charset or "utf-8", errors="replace")
            out: dict[str, Any] = {"url": str(reply.url), "status": reply.status, "content_type": content_type,
                                   "bytes": len(raw), "text": text}
    except asyncio.TimeoutError:
        raise ToolLimitExceeded(f"{method} {url} took longer than {settings.http_timeout:g} s ({ENV['http_timeout']})") from None
    except Exception as err:
        cause = err.__cause__ or err.__context__
        if isinstance(cause, ToolRefused):  # the resolver's refusal, wrapped by aiohttp
            raise cause from None
        raise
    if "json" in content_type:
        try:
            out["json"] = json.loads(text)
        except json.JSONDecodeError:
            pass
    return out


@tagged("web", "url")
@tool(retry=PURE_RETRY)
def url_parse(url: str) -> dict:
    """Split a URL into scheme, host, port, path, query parameters and fragment."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as err:
        raise ToolInputError(f"Bad URL {url!r}: {err}") from None
    return {"scheme": parts.scheme, "host": parts.hostname, "port": port, "path": parts.path,
            "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()}, "fragment": parts.fragment}


@tagged("web", "url")
@tool(retry=PURE_RETRY)
def url_build(base: str, path: str = "", query: dict[str, str] | None = None) -> dict:
    """Join a base URL and a path, and add query parameters (encoded)."""
    from urllib.parse import urlencode, urljoin

    url = urljoin(base, path) if path else base
    if query:
        url += ("&" if urlsplit(url).query else "?") + urlencode(query)
    return {"url": url}
