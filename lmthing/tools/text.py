"""Text tools: counts, split, regex find and replace, slugify, truncate, diff.

A regular expression from a model can take exponential time on a crafted input (ReDoS), so
patterns run on the ``regex`` package with a timeout (``LMTHING_REGEX_TIMEOUT`` seconds)
and every text is limited to ``LMTHING_TEXT_MAX_CHARS`` characters.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import unicodedata
from typing import Any

from lmthing.prompt.tools import ToolContext, tool

from .registry import tagged
from .settings import ENV, PURE_RETRY, ToolInputError, ToolLimitExceeded, ToolSettings, settings_of

MAX_MATCHES = 1_000
_FLAGS = {"i": "IGNORECASE", "m": "MULTILINE", "s": "DOTALL", "x": "VERBOSE"}


def _sized(settings: ToolSettings, *texts: str) -> None:
    for t in texts:
        if len(t) > settings.text_max_chars:
            raise ToolLimitExceeded(f"The text is {len(t):,} characters, over the limit of {settings.text_max_chars:,} "
                                    f"({ENV['text_max_chars']})")


def _compile(pattern: str, flags: str) -> Any:
    import regex

    value = 0
    for f in flags:
        if f not in _FLAGS:
            raise ToolInputError(f"Unknown regex flag {f!r}; flags are {', '.join(_FLAGS)} (ignore case, multiline, dotall, verbose)")
        value |= getattr(regex, _FLAGS[f])
    try:
        return regex.compile(pattern, value | regex.V0)
    except regex.error as err:
        raise ToolInputError(f"Bad regular expression {pattern!r}: {err}") from None


def _timed_out(settings: ToolSettings) -> ToolLimitExceeded:
    return ToolLimitExceeded(f"The regular expression ran longer than {settings.regex_timeout:g} s "
                             f"({ENV['regex_timeout']}); simplify it (nested repeats such as (a+)+ backtrack)")


@tagged("text", "count")
@tool(retry=PURE_RETRY)
def text_stats(text: str) -> dict:
    """Count the characters, words, lines, sentences and paragraphs of a text."""
    return {
        "characters": len(text), "characters_no_spaces": len(re.sub(r"\s", "", text)),
        "words": len(re.findall(r"\b\w+\b", text)), "lines": len(text.splitlines()),
        "sentences": len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]),
        "paragraphs": len([p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]),
    }


@tagged("text", "split")
@tool(retry=PURE_RETRY)
def text_split(text: str, separator: str | None = None, max_parts: int = 1000, chunk_size: int | None = None) -> dict:
    """Split a text by a separator (default: whitespace), or into chunks of chunk_size characters."""
    if chunk_size is not None:
        if chunk_size <= 0:
            raise ToolInputError("chunk_size must be > 0")
        parts = [text[i:i + chunk_size] for i in range(0, len(text), chunk_size)]
    else:
        parts = text.split(separator) if separator else text.split()
    return {"parts": parts[:max_parts], "count": len(parts), "truncated": len(parts) > max_parts}


@tagged("text", "regex", "search")
@tool(retry=PURE_RETRY)
async def regex_find(pattern: str, text: str, ctx: ToolContext, flags: str = "") -> dict:
    """Find every match of a regular expression in a text, with its groups and position (flags: i, m, s, x)."""
    settings = await settings_of(ctx)
    _sized(settings, text, pattern)
    compiled = _compile(pattern, flags)

    def find() -> list[dict[str, Any]]:
        found = []
        for m in compiled.finditer(text, timeout=settings.regex_timeout, concurrent=True):
            found.append({"match": m.group(0), "start": m.start(), "end": m.end(), "groups": list(m.groups()),
                          "named": m.groupdict()})
            if len(found) >= MAX_MATCHES:
                break
        return found

    try:  # in a thread (the regex module lets go of the GIL): the worker's loop keeps beating
        matches = await asyncio.to_thread(find)
    except TimeoutError:
        raise _timed_out(settings) from None
    return {"matches": matches, "count": len(matches), "truncated": len(matches) >= MAX_MATCHES}


@tagged("text", "regex", "edit")
@tool(retry=PURE_RETRY)
async def regex_replace(pattern: str, replacement: str, text: str, ctx: ToolContext, flags: str = "", count: int = 0) -> dict:
    r"""Replace the matches of a regular expression (\1 or \g<name> refer to groups; count 0: all)."""
    settings = await settings_of(ctx)
    _sized(settings, text, pattern, replacement)
    compiled = _compile(pattern, flags)
    try:
        result, made = await asyncio.to_thread(compiled.subn, replacement, text, count=count,
                                               timeout=settings.regex_timeout, concurrent=True)
    except TimeoutError:
        raise _timed_out(settings) from None
    except Exception as err:  # a bad group reference in the replacement
        raise ToolInputError(f"Bad replacement {replacement!r}: {err}") from None
    _sized(settings, result)
    return {"text": result, "replacements": made}


def slug(text: str, separator: str = "-", max_length: int = 80) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    return separator.join(words)[:max_length].strip(separator)


@tagged("text", "format")
@tool(retry=PURE_RETRY)
def slugify(text: str, separator: str = "-", max_length: int = 80) -> dict:
    """Make a URL- and file-name-safe slug of a text ('Héllo, World!' -> 'hello-world')."""
    return {"slug": slug(text, separator, max_length)}


@tagged("text", "format")
@tool(retry=PURE_RETRY)
def truncate_text(text: str, max_chars: int, ellipsis: str = "…", at_word: bool = True) -> dict:
    """Shorten a text to at most max_chars characters, ending at a word boundary with an ellipsis."""
    if max_chars <= len(ellipsis):
        raise ToolInputError(f"max_chars must be longer than the ellipsis ({len(ellipsis)})")
    if len(text) <= max_chars:
        return {"text": text, "truncated": False}
    cut = text[: max_chars - len(ellipsis)]
    if at_word and " " in cut:
        cut = cut[: cut.rstrip().rfind(" ")].rstrip() or cut
    return {"text": cut + ellipsis, "truncated": True}


@tagged("text", "diff", "compare")
@tool(retry=PURE_RETRY)
def text_diff(before: str, after: str, context_lines: int = 3) -> dict:
    """A unified diff of two texts (lines added start with '+', removed with '-'), and a similarity ratio."""
    diff = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                "before", "after", n=context_lines)
    text = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
    return {"diff": text, "changed": bool(text), "similarity": round(difflib.SequenceMatcher(None, before, after).ratio(), 4)}
