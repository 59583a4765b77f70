"""Kernel drops at this process's own UDP sockets (full receive buffers), from /proc."""

from __future__ import annotations

import os


def own_udp_drops() -> int:
    """Datagrams the kernel dropped at sockets this process holds (the `drops` column)."""
    return sum(drops_by_port().values())


def drops_by_port() -> dict[int, int]:
    """Kernel drops per local UDP port, for the sockets this process holds."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    drops: dict[int, int] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[9] in inodes:
                        port = int(fields[1].split(":")[1], 16)
                        drops[port] = drops.get(port, 0) + int(fields[-1])
        except OSError:
            continue
    return drops
