"""The publisher of the forwarding benchmark, in its own process so that its pacing does not
depend on how busy the light subscribers keep the generator's event loop.

Prints "ready" once connected; closes on "quit" (or end of stdin).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import aioice.ice

from bench.forwarding_load import Control, publish, wait_until


async def run(args: argparse.Namespace) -> None:
    reader, writer = await asyncio.open_unix_connection(args.socket, limit=1 << 22)
    pc = await publish(Control(reader, writer))
    await wait_until(lambda: pc.connectionState == "connected", 30, "the publisher")
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("ready", flush=True)
    while line := (await stdin.readline()).decode().strip():
        if line == "quit":
            break
    await pc.close()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    aioice.ice.CONSENT_FAILURES = 1_000_000  # see bench/forwarding_load.py
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
