"""A blackboard: a key-value board several agents share, with compare-and-set.

Every entry has a version (1 on its first write, +1 on each later one). A write may name the
version it expects (``expected_version``; 0 means "the key must not exist"): when the
board holds another, the write is refused with :class:`BoardConflict`, which says what the
board holds, so the writer can read, merge and try again. The board's workflow history is
its audit trail: every write and delete is an update there, with its writer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .types import json_size

# A board entry is a note between agents, not a file (see types.MAX_MESSAGE_BYTES).
MAX_VALUE_BYTES = 256 * 1024


class BoardConflict(Exception):
    """A compare-and-set write that expected another version than the board holds."""

    def __init__(self, key: str, expected: int, entry: BoardEntry | None) -> None:
        self.key, self.expected, self.entry = key, expected, entry
        held = f"version {entry.version} (written by {entry.writer or 'unknown'})" if entry else "no entry"
        super().__init__(
            f"conflict on {key!r}: the write expected version {expected}, the board holds {held}; "
            "read the key again and write with its current version"
        )


class BoardEntry(BaseModel):
    value: Any
    version: int
    writer: str | None = None


class BoardWrite(BaseModel):
    """One write (an update on the board): ``value`` None with ``delete`` removes the key."""

    key: str
    value: Any = None
    expected_version: int | None = None
    writer: str | None = None
    delete: bool = False


class BoardCarry(BaseModel):
    name: str
    entries: dict[str, BoardEntry] = Field(default_factory=dict)
    writes: int = 0


class BoardState:
    def __init__(self, carry: BoardCarry) -> None:
        self.name = carry.name
        self.entries = dict(carry.entries)
        self.writes = carry.writes

    def check(self, write: BoardWrite) -> None:
        """Raise :class:`BoardConflict` or ValueError if ``write`` would be refused."""
        if not isinstance(write.key, str) or not write.key.strip():
            raise ValueError("a board key is a non-empty string")
        if not write.delete and write.value is None:
            raise ValueError(f"write to {write.key!r} has no value; to remove a key, delete it")
        try:
            size = json_size(write.value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"the value of {write.key!r} must be JSON ({err})") from None
        if size > MAX_VALUE_BYTES:
            raise ValueError(f"the value of {write.key!r} is {size:,} bytes, over the limit of {MAX_VALUE_BYTES:,}")
        if write.expected_version is not None:
            entry = self.entries.get(write.key)
            if (entry.version if entry else 0) != write.expected_version:
                raise BoardConflict(write.key, write.expected_version, entry)

    def apply(self, write: BoardWrite) -> BoardEntry | None:
        self.check(write)
        self.writes += 1
        if write.delete:
            return self.entries.pop(write.key, None)
        entry = self.entries.get(write.key)
        new = BoardEntry(value=write.value, version=(entry.version if entry else 0) + 1, writer=write.writer)
        self.entries[write.key] = new
        return new

    def contents(self) -> dict[str, BoardEntry]:
        return {k: v.model_copy() for k, v in self.entries.items()}

    def carry(self) -> BoardCarry:
        return BoardCarry(name=self.name, entries=dict(self.entries), writes=self.writes)
