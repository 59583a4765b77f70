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
import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PASSWORDS = PasswordHasher()
PASSCODES = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def _give_big_blocks_back() -> None:
    """Make glibc return argon2's working memory to the OS after every hash.

    glibc raises its mmap threshold when the first big block is freed, so later hashes were
    served from the hashing thread's heap and their 19 MiB stayed resident for good (64 MiB
    per thread with the default parameters). A fixed threshold turns that adjustment off:
    blocks of 1 MiB and more are mapped and unmapped each time.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


_give_big_blocks_back()


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
