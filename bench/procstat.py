"""CPU time of the dev server a benchmark started (from /proc, Linux only)."""

from __future__ import annotations

import os


def children_named(name: str) -> list[int]:
    """Pids of this process's descendants whose command is ``name`` (the dev server)."""
    me, found, parents = os.getpid(), [], {}
    if not os.path.isdir("/proc"):  # not Linux: server CPU is reported as 0
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            parents[int(entry)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), comm)
    for pid, (ppid, comm) in parents.items():
        seen = ppid
        while seen in parents and seen != me:
            seen = parents[seen][0]
        if seen == me and comm == name:
            found.append(pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` in seconds (0 where /proc cannot be read)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")
