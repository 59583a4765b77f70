"""The bench's network namespace: `lo` plus a veth pair carrying 127.0.0.2 and 127.0.0.3.

Janus (libnice) never gathers a loopback candidate and cannot send to 127.0.0.1, so every
system runs in this namespace: servers on 127.0.0.2, the load generator on 127.0.0.3. All
packets stay in 127.0.0.0/8 inside it. Without root or `ip`, the bench falls back to plain
loopback (127.0.0.1) and skips Janus.
"""

from __future__ import annotations

import os
import shutil
import subprocess

SERVER_ADDRESS = "127.0.0.2"
CLIENT_ADDRESS = "127.0.0.3"
VETH = "mdgb0"


class NetnsError(Exception):
    """The namespace could not be created."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Netns:
    """Creates the namespace on `create()`, removes it (and its veth) on `delete()`."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"madoguchi-bench-{os.getpid()}"
        self.created = False

    @staticmethod
    def available() -> str | None:
        """None when a namespace can be made here, else why not."""
        if os.geteuid() != 0:
            return "not root"
        if shutil.which("ip") is None:
            return "no ip command (iproute2)"
        return None

    def create(self) -> None:
        try:
            _ip("netns", "add", self.name)
            self.created = True
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "link", "add", VETH, "type", "veth", "peer", "name", VETH + "p")
            _ip("-n", self.name, "addr", "add", SERVER_ADDRESS + "/32", "dev", VETH)
            _ip("-n", self.name, "addr", "add", CLIENT_ADDRESS + "/32", "dev", VETH)
            _ip("-n", self.name, "link", "set", VETH, "up")
            _ip("-n", self.name, "link", "set", VETH + "p", "up")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            self.delete()
            raise NetnsError(f"cannot create network namespace: {exc} {err.decode()}") from exc

    def prefix(self) -> list[str]:
        """Command prefix that runs a program inside the namespace (it execs: same PID)."""
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
            self.created = False
