"""A tool module that no test worker scans (it is not under tests/apps)."""

from lmthing import tool


@tool
def forgotten(x: int) -> int:
    """A tool the worker was never told about."""
    return x
