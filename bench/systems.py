"""The three systems under test, as the runner sees them: how to start each, where to reach it."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Protocol

from . import janus


class System(Protocol):
    """A server the bench can start in the namespace and drive with the load generator."""

    name: str  # the load generator's --system
    label: str

    def prepare(self, install: bool) -> str | None:
        """Get ready (install, set up data); None, or why this system must be skipped."""
        ...

    def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]: ...

    def url(self, address: str) -> str: ...

    def version(self) -> str: ...


class JanusSystem:
    """Janus VideoRoom from Debian's package, with the bench's own config."""

    name = "janus"
    label = "Janus VideoRoom"

    def prepare(self, install: bool) -> str | None:
        return janus.ensure_installed(install)

    def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        folder = workdir / "janus-config"
        janus.write_config(folder, address, ice_list=address)
        return janus.command(folder), {}

    def url(self, address: str) -> str:
        return janus.url(address)

    def version(self) -> str:
        return f"janus {janus.version()}"


class RelaySystem:
    """aiortc's MediaRelay: decode once, encode per subscriber (bench/mediarelay.py)."""

    name = "relay"
    label = "aiortc MediaRelay"
    port = 8089

    def prepare(self, install: bool) -> str | None:
        return None

    def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        root = str(Path(__file__).resolve().parent.parent)
        argv = [
            sys.executable,
            "-m",
            "bench.mediarelay",
            "--host",
            address,
            "--port",
            str(self.port),
        ]
        return argv, {"PYTHONPATH": root}

    def url(self, address: str) -> str:
        return f"http://{address}:{self.port}"

    def version(self) -> str:
        return f"aiortc {metadata.version('aiortc')} MediaRelay"


class DirectSystem:
    """No server at all: publisher straight to one subscriber (the delay baseline)."""

    name = "direct"
    label = "no server (direct)"

    def prepare(self, install: bool) -> str | None:
        return None

    def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        # an idle stand-in, so that the runner's bookkeeping stays the same
        return [sys.executable, "-c", "import signal; signal.pause()"], {}

    def url(self, address: str) -> str:
        return "direct:"

    def version(self) -> str:
        return f"aiortc {metadata.version('aiortc')} peer to peer"
