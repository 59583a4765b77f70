"""Slow hashes (argon2id) of staff passwords and participants' passcodes, off the event loop.

Every hash runs on one worker thread. When a hundred residents join a hearing at once their
passcode checks queue here, on one core, instead of taking every core from the event loop
that forwards everyone's media (on a 2-core machine a pool of threads running argon2 starved
the loop so long that peers' ICE consent checks timed out and live streams were closed).

Passcodes use OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane: ~40 ms of one core here)
rather than argon2-cffi's default (64 MiB, 3 passes, 4 lanes: ~250 ms of CPU): a six-digit
passcode is protected by its lockout, its expiry and its one-consultation scope, not by the
cost of an offline guess. Staff passwords, checked once per login, keep the default.
Either kind of hash verifies with whatever parameters it was made with.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PASSWORDS = PasswordHasher()
PASSCODES = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")


async def hash_secret(hasher: PasswordHasher, secret: str) -> str:
    """The argon2id hash of `secret`, computed on the hashing thread."""
    return await asyncio.get_running_loop().run_in_executor(_worker, hasher.hash, secret)


def _matches(hasher: PasswordHasher, stored: str, secret: str) -> bool:
    # argon2's verify compares in constant time; a malformed stored hash is a mismatch
    try:
        return bool(hasher.verify(stored, secret))
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(hasher: PasswordHasher, stored: str, secret: str) -> bool:
    """Whether `secret` matches the stored hash, checked on the hashing thread."""
    return await asyncio.get_running_loop().run_in_executor(
        _worker, _matches, hasher, stored, secret
    )
