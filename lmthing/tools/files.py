"""File tools: read, write, list, glob, search and stat inside one root folder.

The root is the worker's (``LMTHING_FILES_ROOT`` or ``def_tool_settings(files_root=...)``);
without one every call is refused. A path the model gives is relative to the root; it is
resolved (``..`` and every symlink followed) and refused unless the result is still inside
the root, so neither ``../../etc/passwd`` nor a symlink pointing out of the root reaches a
file outside. ``LMTHING_FILES_READ_ONLY=true`` refuses writes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lmthing.prompt.tools import ToolContext, tool

from .registry import tagged
from .settings import ENV, IO_RETRY, ToolInputError, ToolLimitExceeded, ToolRefused, ToolSettings, settings_of

MAX_LISTED = 1_000  # entries a list or glob returns at most
MAX_MATCHES = 200  # lines a search returns at most


def root_of(settings: ToolSettings) -> Path:
    if not settings.files_root:
        raise ToolRefused(f"File tools have no root folder on this worker: set {ENV['files_root']} (or "
                          "def_tool_settings(files_root=...)) to the folder they may use")
    root = Path(settings.files_root).resolve()
    if not root.is_dir():
        raise ToolRefused(f"The files root {str(root)!r} ({ENV['files_root']}) is not a folder")
    return root


def inside(root: Path, path: str) -> Path:
    """``path`` (relative to ``root``; an absolute one must lie inside it) resolved, symlinks
    followed; refused when the result is outside ``root``."""
    if not isinstance(path, str) or "\x00" in path:
        raise ToolInputError(f"Bad path {path!r}")
    given = Path(path)
    target = (given if given.is_absolute() else root / given).resolve()
    if target != root and root not in target.parents:
        raise ToolRefused(f"Refused: {path!r} is outside the files root (paths are relative to the root; '..' and "
                          "symlinks may not leave it)")
    return target


def relative(root: Path, target: Path) -> str:
    return target.relative_to(root).as_posix() or "."


async def _jail(ctx: ToolContext | None, path: str, write: bool = False) -> tuple[ToolSettings, Path, Path]:
    settings = await settings_of(ctx)
    root = root_of(settings)
    if write and settings.files_read_only:
        raise ToolRefused(f"Refused: the files root is read-only on this worker ({ENV['files_read_only']})")
    return settings, root, inside(root, path)


@tagged("files", "read")
@tool(retry=IO_RETRY)
async def read_file(path: str, ctx: ToolContext, start_line: int = 1, max_lines: int | None = None) -> dict:
    """Read a text file inside the files root (optionally lines start_line.. of it)."""
    settings, root, target = await _jail(ctx, path)
    if not target.is_file():
        raise ToolInputError(f"No file {path!r} in the files root")
    size = target.stat().st_size
    if size > settings.files_max_bytes and max_lines is None:
        raise ToolLimitExceeded(f"{path!r} is {size:,} bytes, over the limit of {settings.files_max_bytes:,} "
                                f"({ENV['files_max_bytes']}); read part of it with start_line and max_lines")
    text = await asyncio.to_thread(_read_lines, target, start_line, max_lines, settings.files_max_bytes)
    return {"path": relative(root, target), "content": text, "size": size}


def _read_lines(target: Path, start: int, count: int | None, limit: int) -> str:
    out: list[str] = []
    used = 0
    with target.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if number < start:
                continue
            if count is not None and len(out) >= count:
                break
            used += len(line)
            if used > limit:
                raise ToolLimitExceeded(f"The lines asked for are over {limit:,} bytes ({ENV['files_max_bytes']}); ask for fewer")
            out.append(line)
    return "".join(out)


@tagged("files", "write")
@tool(retry=IO_RETRY)
async def write_file(path: str, content: str, ctx: ToolContext, append: bool = False) -> dict:
    """Write (or append to) a text file inside the files root, making its folders."""
    settings, root, target = await _jail(ctx, path, write=True)
    if len(content.encode()) > settings.files_max_bytes:
        raise ToolLimitExceeded(f"The content is over {settings.files_max_bytes:,} bytes ({ENV['files_max_bytes']})")
    if target.is_dir():
        raise ToolInputError(f"{path!r} is a folder")

    def write() -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        inside(root, relative(root, target.parent))  # a folder made through a symlink race is still checked
        with target.open("a" if append else "w", encoding="utf-8") as f:
            return f.write(content)

    written = await asyncio.to_thread(write)
    return {"path": relative(root, target), "written": written, "appended": append}


@tagged("files", "write")
@tool(retry=IO_RETRY)
async def make_dir(path: str, ctx: ToolContext) -> dict:
    """Make a folder (and its parents) inside the files root."""
    _, root, target = await _jail(ctx, path, write=True)
    target.mkdir(parents=True, exist_ok=True)
    return {"path": relative(root, target), "created": True}


@tagged("files", "read")
@tool(retry=IO_RETRY)
async def list_dir(ctx: ToolContext, path: str = ".") -> dict:
    """List a folder inside the files root: each entry's name, kind (file/dir) and size."""
    _, root, target = await _jail(ctx, path)
    if not target.is_dir():
        raise ToolInputError(f"No folder {path!r} in the files root")
    entries = []
    for child in sorted(target.iterdir())[:MAX_LISTED]:
        kind = "dir" if child.is_dir() else "file"
        entries.append({"name": child.name, "kind": kind, "size": child.stat().st_size if kind == "file" else None})
    return {"path": relative(root, target), "entries": entries}


@tagged("files", "read", "search")
@tool(retry=IO_RETRY)
async def glob_files(pattern: str, ctx: ToolContext, path: str = ".") -> dict:
    """Find files matching a glob pattern (e.g. '**/*.py') under a folder of the files root."""
    _, root, target = await _jail(ctx, path)
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise ToolRefused(f"Refused: the pattern {pattern!r} must be relative and without '..'")
    found = []
    for match in sorted(target.glob(pattern)):
        resolved = match.resolve()
        if resolved != root and root not in resolved.parents:
            continue  # a symlink out of the root is not listed
        found.append(relative(root, match.absolute()))
        if len(found) >= MAX_LISTED:
            break
    return {"matches": found, "truncated": len(found) >= MAX_LISTED}


@tagged("files", "read", "search")
@tool(retry=IO_RETRY)
async def search_files(text: str, ctx: ToolContext, path: str = ".", include: str = "*", ignore_case: bool = False) -> dict:
    """Search the text files under a folder of the files root for lines containing some text."""
    settings, root, target = await _jail(ctx, path)
    needle = text.lower() if ignore_case else text
    return await asyncio.to_thread(_search, root, target, needle, include, ignore_case, settings.files_max_bytes)


def _search(root: Path, target: Path, needle: str, include: str, ignore_case: bool, limit: int) -> dict[str, Any]:
    matches: list[dict[str, Any]] = []
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    for path in files:
        resolved = path.resolve()
        if root not in resolved.parents or not fnmatch.fnmatch(path.name, include) or resolved.stat().st_size > limit:
            continue
        try:
            lines = resolved.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: not text to search
        for number, line in enumerate(lines, 1):
            if needle in (line.lower() if ignore_case else line):
                matches.append({"path": relative(root, path.absolute()), "line": number, "text": line[:500]})
                if len(matches) >= MAX_MATCHES:
                    return {"matches": matches, "truncated": True}
    return {"matches": matches, "truncated": False}


@tagged("files", "read")
@tool(retry=IO_RETRY)
async def file_stat(path: str, ctx: ToolContext) -> dict:
    """Whether a path exists inside the files root, its kind, size and modification time."""
    _, root, target = await _jail(ctx, path)
    if not target.exists():
        return {"path": path, "exists": False}
    st = target.stat()
    return {
        "path": relative(root, target), "exists": True, "kind": "dir" if target.is_dir() else "file",
        "size": st.st_size, "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(),
        "writable": os.access(target, os.W_OK),
    }
