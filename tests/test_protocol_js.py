"""client/protocol.js speaks docs/protocol.md: run under Node with fake WebSocket and peer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROTOCOL_JS = Path(__file__).resolve().parent.parent / "client" / "protocol.js"

CHECK = Path(__file__).resolve().parent / "protocol_js_check.mjs"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_protocol_js_matches_replies_and_handles_glare() -> None:
    done = subprocess.run(
        ["node", str(CHECK), PROTOCOL_JS.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"
