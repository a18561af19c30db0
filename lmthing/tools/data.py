"""Data tools: parse JSON, YAML and CSV, write CSV, and query parsed data.

``data_query`` takes a dotted path by default, always available: ``orders.0.total``
(keys and list indexes), ``orders.*.total`` (every item), ``orders.-1`` (the last one).
``language="jmespath"`` takes a JMESPath expression (``orders[?total > `10`].id``) when
the ``jmespath`` package is installed on the worker.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from lmthing.prompt.tools import tool

from .registry import tagged
from .settings import PURE_RETRY, ToolInputError

MAX_INPUT = 2_000_000  # characters of text a parser takes


def _check_size(text: str, what: str) -> None:
    if len(text) > MAX_INPUT:
        raise ToolInputError(f"The {what} text is {len(text):,} characters, over {MAX_INPUT:,}; give less")


@tagged("data", "json", "parse")
@tool(retry=PURE_RETRY)
def json_parse(text: str) -> dict:
    """Parse JSON text; returns the value, or where the text is not valid JSON."""
    _check_size(text, "JSON")
    try:
        return {"value": json.loads(text)}
    except json.JSONDecodeError as err:
        raise ToolInputError(f"Not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None


@tagged("data", "yaml", "parse")
@tool(retry=PURE_RETRY)
def yaml_parse(text: str) -> dict:
    """Parse YAML text (safe loader: plain data only, no Python objects)."""
    import yaml

    _check_size(text, "YAML")
    try:
        return {"value": json.loads(json.dumps(yaml.safe_load(text), default=str))}
    except yaml.YAMLError as err:
        raise ToolInputError(f"Not valid YAML: {err}") from None


@tagged("data", "csv", "parse")
@tool(retry=PURE_RETRY)
def csv_parse(text: str, delimiter: str = ",", header: bool = True) -> dict:
    """Parse CSV text into rows: objects keyed by the header row, or lists without one."""
    _check_size(text, "CSV")
    if len(delimiter) != 1:
        raise ToolInputError(f"delimiter is one character, got {delimiter!r}")
    try:
        if header:
            rows: list[Any] = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
        else:
            rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as err:
        raise ToolInputError(f"Not valid CSV: {err}") from None
    return {"rows": rows, "count": len(rows)}


@tagged("data", "csv", "format")
@tool(retry=PURE_RETRY)
def csv_format(rows: list[dict[str, Any]], columns: list[str] | None = None, delimiter: str = ",") -> dict:
    """Write rows (objects) as CSV text with a header row (columns: their order, default the keys seen)."""
    names = columns or list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, delimiter=delimiter, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return {"text": out.getvalue()}


def dotted_query(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data`` (see the module's docstring); a ``*`` segment maps
    the rest of the path over every item of a list (or value of an object)."""
    segments = [s for s in path.strip().strip(".").split(".") if s] if path.strip() not in ("", ".") else []
    return _walk(data, segments, path)


def _walk(node: Any, segments: list[str], path: str) -> Any:
    if not segments:
        return node
    head, rest = segments[0], segments[1:]
    if head == "*":
        items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if items is None:
            raise ToolInputError(f"{path!r}: '*' needs a list or an object, found {type(node).__name__}")
        return [_walk(item, rest, path) for item in items]
    if isinstance(node, dict):
        if head not in node:
            raise ToolInputError(f"{path!r}: no key {head!r} (keys: {', '.join(map(str, list(node)[:20]))})")
        return _walk(node[head], rest, path)
    if isinstance(node, list):
        try:
            return _walk(node[int(head)], rest, path)
        except ValueError:
            raise ToolInputError(f"{path!r}: {head!r} is not an index of a list") from None
        except IndexError:
            raise ToolInputError(f"{path!r}: index {head} is out of range (the list has {len(node)} items)") from None
    raise ToolInputError(f"{path!r}: cannot go into a {type(node).__name__} with {head!r}")


@tagged("data", "query", "json")
@tool(retry=PURE_RETRY)
def data_query(data: Any, query: str, language: str = "path") -> dict:
    """Pick values out of JSON data: a dotted path ('orders.*.total') or, with language='jmespath', JMESPath."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            pass  # a plain string is data too
    if language == "path":
        return {"result": dotted_query(data, query)}
    if language == "jmespath":
        try:
            import jmespath
        except ImportError:
            raise ToolInputError("JMESPath is not installed on this worker (pip install jmespath); use language='path'") from None
        try:
            return {"result": jmespath.search(query, data)}
        except jmespath.exceptions.JMESPathError as err:
            raise ToolInputError(f"Bad JMESPath expression {query!r}: {err}") from None
    raise ToolInputError(f"language is 'path' or 'jmespath', got {language!r}")
