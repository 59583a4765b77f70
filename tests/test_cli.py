"""The `madoguchi` command as an operator runs it: templates check, staff, database, serve."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((REPO / "consult_templates").glob("*.toml"))


def madoguchi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full_env,
        timeout=60,
    )


def test_shipped_templates_pass_the_check() -> None:
    result = madoguchi("check-templates", *map(str, TEMPLATES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(TEMPLATES)} template file(s) OK" in result.stdout


def test_a_typo_in_a_copy_names_key_file_and_line(tmp_path: Path) -> None:
    copy = tmp_path / "my_city.toml"
    text = (REPO / "consult_templates" / "bereavement.toml").read_text()
    lines = text.splitlines()
    # put an unknown key right after the first table header
    header = next(i for i, line in enumerate(lines) if line.startswith("["))
    lines.insert(header + 1, 'colour = "blue"')
    copy.write_text("\n".join(lines) + "\n")
    result = madoguchi("check-templates", str(copy))
    assert result.returncode == 1
    assert f"{copy}:{header + 2}:" in result.stdout
    assert "colour" in result.stdout


def test_wrong_setting_stops_with_the_variable_named(tmp_path: Path) -> None:
    result = madoguchi(
        "db", "upgrade", env={"MADOGUCHI_PORT": "eighty", "MADOGUCHI_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2
    assert "MADOGUCHI_PORT" in result.stderr


def test_staff_add_list_disable(tmp_path: Path) -> None:
    env = {"MADOGUCHI_DATA_DIR": str(tmp_path), "MADOGUCHI_STAFF_PASSWORD": "a long password"}
    assert madoguchi("db", "upgrade", env=env).returncode == 0
    added = madoguchi("staff", "add", "sato", "--name", "市民課 佐藤", env=env)
    assert added.returncode == 0, added.stderr
    again = madoguchi("staff", "add", "sato", env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = madoguchi("staff", "add", "kato", env={**env, "MADOGUCHI_STAFF_PASSWORD": "short"})
    assert short.returncode == 1
    assert "at least" in short.stderr
    assert madoguchi("staff", "disable", "sato", env=env).returncode == 0
    listing = madoguchi("staff", "list", env=env)
    assert "sato\t市民課 佐藤\tdisabled" in listing.stdout
    assert "kato" not in listing.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_self_signed_certificate_is_made_once(tmp_path: Path) -> None:
    from server.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path, "192.0.2.10")
    first = cert.read_bytes()
    assert ensure_self_signed(tmp_path, "192.0.2.10") == (cert, key)
    assert cert.read_bytes() == first
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(cert)], capture_output=True, text=True
    ).stdout
    assert "IP Address:192.0.2.10" in text
    assert "DNS:localhost" in text


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_on_a_fresh_data_dir_answers_and_prints_the_demo(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    env.update({"MADOGUCHI_DATA_DIR": str(tmp_path / "data"), "MADOGUCHI_PORT": str(port)})
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--demo"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Mail outbox:"):
                break
        output = "".join(lines)
        assert "=== Demo consultations ===" in output, output
        assert output.count(f"http://127.0.0.1:{port}/j/") == 4  # staff, 2 heirs, chair
        assert "参加者 1 (resident, anonymous)" in output
        assert "passcode" in output
        # the demo is printed while the app starts, a moment before the port listens
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    assert response.status == 200
                    break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=15)
