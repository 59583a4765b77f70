"""Janus VideoRoom (Debian's `janus` package) as a baseline: install, configure, start, stop.

The configuration is the package's own (/etc/janus) with only these changes: the folder it
reads, the address it uses (127.0.0.2 in the bench's namespace), the plugins and transports it
loads (VideoRoom and HTTP only), and a low log level.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SHIPPED = Path("/etc/janus")
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
HTTP_PORT = 8088
DEBUG_LEVEL = 2  # errors only


def ensure_installed(allow_install: bool) -> str | None:
    """None when Janus is there (installing it if allowed and root), else why not."""
    if shutil.which("janus") and (SHIPPED / "janus.jcfg").exists():
        return None
    if not allow_install:
        return "janus not installed"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "janus not installed (and cannot apt-get install it: not root or no apt)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "janus"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "janus"],
    ):
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
        if cmd[1] == "install" and done.returncode == 0:
            return None
    return "janus not installed (apt-get install janus failed)"


def version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "janus"], capture_output=True, timeout=10
        )
        return out.stdout.decode() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _sub(text: str, pattern: str, line: str) -> str:
    new, n = re.subn(pattern, line, text, count=1, flags=re.MULTILINE)
    if n != 1:
        raise ValueError(f"shipped janus config changed: {pattern!r} not found")
    return new


def _libs(kind: str, keep: str) -> str:
    return ",".join(sorted(p.name for p in (LIBDIR / kind).glob("*.so") if p.name != keep))


def write_config(folder: Path, address: str, ice_list: str) -> Path:
    """Write janus.jcfg, the HTTP transport and VideoRoom configs into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    main = (SHIPPED / "janus.jcfg").read_text()
    main = _sub(main, r"^\s*configs_folder = .*$", f'\tconfigs_folder = "{folder}"')
    main = _sub(main, r"^\s*debug_level = .*$", f"\tdebug_level = {DEBUG_LEVEL}")
    main = _sub(main, r"^\s*#interface = .*$", f'\tinterface = "{address}"')
    main = _sub(main, r'^\s*#ice_enforce_list = "eth0"$', f'\tice_enforce_list = "{ice_list}"')
    main = _sub(
        main,
        r"^plugins: \{\n",
        f'plugins: {{\n\tdisable = "{_libs("plugins", "libjanus_videoroom.so")}"\n',
    )
    main = _sub(
        main,
        r"^transports: \{\n",
        f'transports: {{\n\tdisable = "{_libs("transports", "libjanus_http.so")}"\n',
    )
    main = _sub(main, r"^loggers: \{\n", f'loggers: {{\n\tdisable = "{_libs("loggers", "")}"\n')
    main = _sub(main, r"^events: \{\n", f'events: {{\n\tdisable = "{_libs("events", "")}"\n')
    (folder / "janus.jcfg").write_text(main)
    http = (SHIPPED / "janus.transport.http.jcfg").read_text()
    http = _sub(http, r"^\s*#ip = .*$", f'\tip = "{address}"')
    http = _sub(http, r"^\s*port = \d+", f"\tport = {HTTP_PORT}")
    (folder / "janus.transport.http.jcfg").write_text(http)
    shutil.copy(SHIPPED / "janus.plugin.videoroom.jcfg", folder / "janus.plugin.videoroom.jcfg")
    return folder / "janus.jcfg"


def command(folder: Path) -> list[str]:
    return ["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder)]


def url(address: str) -> str:
    return f"http://{address}:{HTTP_PORT}/janus"
