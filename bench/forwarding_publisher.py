"""The publisher of the forwarding benchmark, in its own process so that its pacing does not
depend on how busy the light subscribers keep the generator's event loop.

Prints "ready" once connected; closes on "quit" (or end of stdin).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.forwarding_load import Control, process_args, publish, tolerate_late_consent, wait_until


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
    tolerate_late_consent()
    parser = argparse.ArgumentParser()
    asyncio.run(run(process_args(parser)))


if __name__ == "__main__":
    main()
