"""Process facts from /proc, shared by the benchmark and the concurrency test harness."""

from __future__ import annotations

import os


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, sorted: gunicorn's workers."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." — comm may contain spaces; split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.append(int(entry))
    return sorted(out)
