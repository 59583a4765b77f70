"""What /proc says about a process tree: CPU time, memory, UDP receive-buffer drops."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (a server may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree (all threads of each process)."""
    total = 0
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def socket_inodes(pid: int, tree: bool = True) -> set[str]:
    """Inodes of the sockets `pid` holds (with its descendants unless `tree` is False)."""
    inodes = set()
    for p in descendants(pid) if tree else [pid]:
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    target = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def udp_drops_by_port(pid: int, tree: bool = True) -> dict[int, int]:
    """Datagrams the kernel dropped (buffer full) per local UDP port of `pid`'s sockets."""
    inodes = socket_inodes(pid, tree)
    drops: dict[int, int] = {}
    for name in ("udp", "udp6"):
        try:
            # the namespace of `pid`, which need not be ours
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 13 and fields[9] in inodes:
                port = int(fields[1].split(":")[1], 16)
                drops[port] = drops.get(port, 0) + int(fields[12])
    return drops


def udp_drops(pid: int, tree: bool = True) -> int:
    """Datagrams the kernel dropped on the UDP sockets of `pid` (and its descendants)."""
    return sum(udp_drops_by_port(pid, tree).values())


def rcvbuf_errors(pid: int | str = "self") -> int:
    """UDP RcvbufErrors of the whole network namespace of `pid` (/proc/net/snmp)."""
    text = Path(f"/proc/{pid}/net/snmp").read_text()
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])
