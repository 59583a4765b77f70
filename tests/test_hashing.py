"""Passcode and password hashing: right and wrong secrets, and no memory kept afterwards."""

from __future__ import annotations

import subprocess
import sys

from server.hashing import PASSCODES, PASSWORDS, hash_secret, verify_secret


async def test_a_hash_verifies_its_secret_only_and_a_broken_hash_is_a_mismatch() -> None:
    stored = await hash_secret(PASSCODES, "123456")
    assert stored.startswith("$argon2id$")
    assert await verify_secret(PASSCODES, stored, "123456")
    assert not await verify_secret(PASSCODES, stored, "123457")
    assert not await verify_secret(PASSCODES, "not a hash", "123456")
    # a staff password hash made with other parameters still verifies
    assert await verify_secret(PASSCODES, PASSWORDS.hash("long password 1"), "long password 1")


def test_passcode_hashing_leaves_no_working_memory_resident() -> None:
    """Each hash takes 19 MiB of working memory; the server must not keep it afterwards.

    Measured in a fresh interpreter: glibc would otherwise keep the first hash's block in
    the hashing thread's heap for good.
    """
    probe = (
        "import asyncio\n"
        "from pathlib import Path\n"
        "from server.hashing import PASSCODES, hash_secret\n"
        "def mb(): return int(Path('/proc/self/statm').read_text().split()[1]) * 4096 / 2**20\n"
        "async def main():\n"
        "    before = mb()\n"
        "    for n in range(5): await hash_secret(PASSCODES, f'{n:06d}')\n"
        "    print(mb() - before)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert float(done.stdout) < 8, f"{done.stdout} MiB stayed resident"
