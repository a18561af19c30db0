"""Domain allowlists (``p.def_constraint(name, "domains", allow=[...])``; the seed's "tool
calls run behind domain allowlists", ``004``).

An allowlist holds for the run that defines it and for every run below it (sub-agents,
``call_prompt`` children, orchestration branches): a child cannot widen what its parent
allows, so a host must pass every allowlist of the tree above it.

It is checked twice. Before a tool runs, inside the workflow, every URL among its arguments
(and every value of an argument whose name says it is one: ``url``, ``domain``, ``host``...)
must name an allowed host, or the call does not run and the model is told why. Then, inside
an ``@tool`` activity, :func:`lmthing.activities.http.allowed_http_client` refuses requests
(redirects included) to any other host, for a tool that fetches what its arguments do not
name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

_URL = re.compile(r"^(https?|wss?|ftp)://", re.IGNORECASE)
# Argument names whose string values are hosts or URLs even without a scheme.
_URL_NAMES = re.compile(r"(url|uri|link|href|domain|host|site|endpoint|website)s?$", re.IGNORECASE)
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class DomainError(ValueError):
    """An allowlist pattern that is not a host name."""


class DomainAllowlist(BaseModel):
    """One ``def_constraint(..., "domains")``: hosts it allows, as patterns.

    ``example.com`` allows the host and its subdomains; ``*.example.com`` its subdomains
    only; an IP address allows itself."""

    model_config = ConfigDict(frozen=True)

    name: str
    allow: tuple[str, ...]

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.allow:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern or host.endswith("." + pattern):
                return True
        return False


def pattern(api: str, raw: Any) -> str:
    """An allowlist entry, normalised (lower case); a URL or a wildcard elsewhere is refused."""
    if not isinstance(raw, str) or not raw.strip():
        raise DomainError(f"{api}: allow= holds host names such as 'docs.python.org' or '*.wikipedia.org'; got {raw!r}")
    text = raw.strip().lower().rstrip(".")
    if "://" in text or "/" in text:
        raise DomainError(f"{api}: allow= holds host names, not URLs: use {urlsplit(text if '://' in text else '//' + text).hostname!r} "
                          f"instead of {raw!r}")
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text[2:].split(".") if text.startswith("*.") else text.split(".")
    if not all(_LABEL.match(label) for label in labels) or ("*" in text and not text.startswith("*.")):
        raise DomainError(f"{api}: {raw!r} is not a host name; write 'example.com' (it and its subdomains) or "
                          "'*.example.com' (subdomains only)")
    return text


def hosts_in(args: Any) -> list[str]:
    """The hosts a tool's arguments name: every URL, and every value of a URL-named argument."""
    found: list[str] = []
    _walk(args.model_dump(mode="json") if isinstance(args, BaseModel) else args, False, found)
    return list(dict.fromkeys(found))


def _walk(value: Any, named: bool, found: list[str]) -> None:
    if isinstance(value, str):
        host = _host(value, named)
        if host:
            found.append(host)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, named or bool(isinstance(key, str) and _URL_NAMES.search(key)), found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, named, found)


def _host(text: str, named: bool) -> str | None:
    text = text.strip()
    if _URL.match(text):
        target = text.split()[0]  # "https://a.test/x and more": the URL it starts with
    elif named and text and " " not in text:
        target = "//" + text  # "example.com/page" under an argument named url
    else:
        return None
    try:
        host = urlsplit(target).hostname
    except ValueError:
        return text.lower()  # unparseable: refused unless it literally is an allowed name
    return host.lower().rstrip(".") if host else None


def refusal(args: Any, allowlists: Iterable[DomainAllowlist]) -> tuple[str, DomainAllowlist] | None:
    """The first host of ``args`` some allowlist does not allow, with that allowlist."""
    lists = list(allowlists)
    if not lists:
        return None
    for host in hosts_in(args):
        for allowlist in lists:
            if not allowlist.allows(host):
                return host, allowlist
    return None


def refused_message(host: str, allowlist: DomainAllowlist, prefix: str = "Not run") -> str:
    return (f"{prefix}: {host!r} is not an allowed domain (constraint '{allowlist.name}' allows: "
            f"{', '.join(allowlist.allow)})")
