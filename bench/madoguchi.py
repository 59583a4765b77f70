"""Madoguchi as a system under test: `madoguchi serve` with its own data and templates.

Clients join exactly as a browser would: staff log in over REST and schedule a consultation,
add participants, and every peer joins over the signaling WebSocket (docs/protocol.md). The
bench's two templates are copies of the shipped ones with only the lobby turned off and, for
the hearing, the residents' limit raised above 300 so that capacity can be looked for:
`bench_hearing` (public_hearing) and `bench_meeting` (bereavement: 1 staff + 5 heirs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8090
STAFF_LOGIN = "bench"
STAFF_PASSWORD = "bench-password-not-secret"  # a throwaway account in a temp DB


def _edit(text: str, role: str, key: str, value: str) -> str:
    """Set `key = value` in the [roles.<role>] table of a template."""
    head = f"[roles.{role}]"
    start = text.index(head)
    end = text.find("\n[", start + len(head))
    end = len(text) if end < 0 else end
    table = text[start:end]
    if re.search(rf"^{key} = .*$", table, re.M):
        table = re.sub(rf"^{key} = .*$", f"{key} = {value}", table, count=1, flags=re.M)
    else:
        table = table.rstrip("\n") + f"\n{key} = {value}\n"
    return text[:start] + table + text[end:]


def write_templates(folder: Path, src: Path = ROOT) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shipped = src / "consult_templates"
    hearing = (shipped / "public_hearing.toml").read_text()
    hearing = _edit(hearing, "resident", "lobby", "false")
    hearing = _edit(hearing, "resident", "max_participants", "1000")
    (folder / "bench_hearing.toml").write_text(hearing)
    meeting = (shipped / "bereavement.toml").read_text()
    meeting = _edit(meeting, "heir", "lobby", "false")
    (folder / "bench_meeting.toml").write_text(meeting)


class MadoguchiSystem:
    """This project's server, started with `python -m server.cli serve`."""

    name = "madoguchi"
    label = "Madoguchi"

    def __init__(self, commit: str | None = None) -> None:
        self.home: Path | None = None
        self.commit = commit  # None: the working tree; else run that commit's server/ and sfu/
        self.src = ROOT

    def _env(self, address: str = "127.0.0.1") -> dict[str, str]:
        assert self.home is not None
        return {
            "MADOGUCHI_HOST": address,
            "MADOGUCHI_PORT": str(PORT),
            "MADOGUCHI_DATA_DIR": str(self.home / "data"),
            "MADOGUCHI_TEMPLATES_DIR": str(self.home / "templates"),
            "MADOGUCHI_ICE_ADDRESSES": address,
            "MADOGUCHI_LOG_LEVEL": "WARNING",
            "MADOGUCHI_STAFF_PASSWORD": STAFF_PASSWORD,
            "PYTHONPATH": str(self.src),
        }

    def prepare(self, install: bool) -> str | None:
        if not (ROOT / "server" / "signaling.py").exists():
            return "the signaling server (server/signaling.py) is not there yet"
        self.home = Path(tempfile.mkdtemp(prefix="madoguchi-bench-home-"))
        if self.commit is not None:
            why = self._export(self.commit)
            if why:
                return why
        write_templates(self.home / "templates", self.src)
        env = {**os.environ, **self._env()}
        for args in (["db", "upgrade"], ["staff", "add", STAFF_LOGIN, "--name", "Bench"]):
            done = subprocess.run(
                [sys.executable, "-m", "server.cli", *args],
                env=env,
                capture_output=True,
                timeout=120,
                cwd=ROOT,
            )
            if done.returncode != 0:
                return f"`madoguchi {' '.join(args)}` failed: {done.stderr.decode()[-300:]}"
        return None

    def _export(self, commit: str) -> str | None:
        """Copy server/, sfu/ and consult_templates/ of `commit` out of git (no checkout)."""
        assert self.home is not None
        self.src = self.home / "src"
        self.src.mkdir()
        archive = subprocess.run(
            ["git", "archive", commit, "server", "sfu", "consult_templates"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        if archive.returncode != 0:
            return f"cannot export {commit}: {archive.stderr.decode()[-200:]}"
        subprocess.run(
            ["tar", "-x", "-C", str(self.src)], input=archive.stdout, check=True, timeout=60
        )
        return None

    def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-m", "server.cli", "serve"], self._env(address)

    def url(self, address: str) -> str:
        return f"http://{address}:{PORT}"

    def version(self) -> str:
        marker = ROOT / ".bench-commit"
        if marker.exists():
            # a snapshot made with `git archive`: it says which commit it is
            return f"madoguchi {marker.read_text().strip()}"
        args = (
            ["describe", "--always", self.commit]
            if self.commit
            else ["describe", "--always", "--dirty"]
        )
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return "madoguchi (unknown commit)"
        where = "" if self.commit else " (working tree)"
        return f"madoguchi {out.stdout.decode().strip()}{where}"

    def cleanup(self) -> None:
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
