"""Date and time tools: now in a timezone, parse, add durations, difference, format, convert.

Times travel as ISO 8601 text; timezones are IANA names (``Europe/Paris``) from the
worker's timezone database. ``time_now`` reads the worker's clock: it is an activity, so
its answer is recorded in the run's history and a replay sees the same time.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lmthing.prompt.tools import tool

from .registry import tagged
from .settings import PURE_RETRY, ToolInputError

_DURATION = re.compile(r"(?P<sign>-)?\s*(?:(?P<weeks>\d+(?:\.\d+)?)\s*w)?\s*(?:(?P<days>\d+(?:\.\d+)?)\s*d)?\s*"
                       r"(?:(?P<hours>\d+(?:\.\d+)?)\s*h)?\s*(?:(?P<minutes>\d+(?:\.\d+)?)\s*m(?!s))?\s*"
                       r"(?:(?P<seconds>\d+(?:\.\d+)?)\s*s)?$", re.IGNORECASE)
_ISO_DURATION = re.compile(r"(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
                           r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
                           re.IGNORECASE)


def zone(name: str | None) -> Any:
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolInputError(f"Unknown timezone {name!r}; give an IANA name such as 'Europe/Paris' or 'UTC'") from None


def parse_time(text: str, tz: str | None = None) -> datetime:
    """ISO 8601 (``2026-03-01T10:00``, ``2026-03-01``), or free text when dateutil is
    installed (``March 1 2026 10am``); a time without a zone is taken in ``tz`` (default UTC)."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        try:
            from dateutil import parser as du
        except ImportError:
            raise ToolInputError(f"Cannot read {text!r} as a time: give ISO 8601, e.g. 2026-03-01T10:00:00+01:00") from None
        try:
            parsed = du.parse(value)
        except (ValueError, OverflowError):
            raise ToolInputError(f"Cannot read {text!r} as a time: give ISO 8601, e.g. 2026-03-01T10:00:00+01:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(tz))
    return parsed


def parse_duration(text: str) -> timedelta:
    """``1w 2d 3h 4m 5s`` (any subset, in that order) or ISO 8601 ``P2DT3H``; a leading '-' subtracts."""
    value = text.strip()
    found = (_ISO_DURATION if value.lstrip("-").upper().startswith("P") else _DURATION).match(value)
    if not found or not any(found.group(k) for k in ("weeks", "days", "hours", "minutes", "seconds")):
        raise ToolInputError(f"Cannot read {text!r} as a duration: give e.g. '2d 3h', '90m', '-1w' or 'P2DT3H'")
    delta = timedelta(**{k: float(found.group(k) or 0) for k in ("weeks", "days", "hours", "minutes", "seconds")})
    return -delta if found.group("sign") else delta


def _describe(t: datetime) -> dict[str, Any]:
    return {"iso": t.isoformat(), "timezone": str(t.tzinfo), "weekday": t.strftime("%A"), "unix": t.timestamp()}


@tagged("time", "clock")
@tool(retry=PURE_RETRY)
def time_now(tz: str = "UTC") -> dict:
    """The current date and time in a timezone (IANA name, default UTC)."""
    return _describe(datetime.now(zone(tz)))


@tagged("time", "parse")
@tool(retry=PURE_RETRY)
def time_parse(text: str, tz: str = "UTC") -> dict:
    """Read a date/time (ISO 8601 or common text); a time without a zone is taken in tz."""
    return _describe(parse_time(text, tz))


@tagged("time", "arithmetic")
@tool(retry=PURE_RETRY)
def time_add(time: str, duration: str) -> dict:
    """Add a duration ('2d 3h', '90m', '-1w' or ISO 'P2DT3H') to a date/time."""
    return _describe(parse_time(time) + parse_duration(duration))


@tagged("time", "arithmetic")
@tool(retry=PURE_RETRY)
def time_diff(start: str, end: str) -> dict:
    """The time from start to end: total seconds, and days/hours/minutes/seconds."""
    delta = parse_time(end) - parse_time(start)
    total = delta.total_seconds()
    rest = abs(int(total))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return {"seconds": total, "days": days, "hours": hours, "minutes": minutes, "remaining_seconds": seconds,
            "negative": total < 0, "text": ("-" if total < 0 else "") + f"{days}d {hours}h {minutes}m {seconds}s"}


@tagged("time", "format")
@tool(retry=PURE_RETRY)
def time_format(time: str, format: str = "%Y-%m-%d %H:%M", tz: str | None = None) -> dict:
    """Format a date/time with strftime codes (e.g. '%A %d %B %Y'), optionally in another timezone."""
    t = parse_time(time)
    if tz:
        t = t.astimezone(zone(tz))
    return {"text": t.strftime(format)}


@tagged("time", "timezone")
@tool(retry=PURE_RETRY)
def time_convert(time: str, tz: str) -> dict:
    """The same instant in another timezone."""
    return _describe(parse_time(time).astimezone(zone(tz)))
