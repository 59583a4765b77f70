"""Full (decoding) subscribers of the forwarding benchmark, in their own process.

aiortc decodes in threads that hold the GIL for a whole frame; in the light subscribers' process
they would stall the counting loop, so they live here. Protocol on stdin/stdout: after joining
it prints "ready"; on "start" it zeroes its frame counts; on "stop" it prints them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import aioice.ice

from bench.forwarding_load import Control, FullSubscriber, wait_until


async def run(args: argparse.Namespace) -> None:
    reader, writer = await asyncio.open_unix_connection(args.socket, limit=1 << 22)
    control = Control(reader, writer)
    subscribers = [FullSubscriber(control, f"full{i}") for i in range(args.count)]
    for subscriber in subscribers:
        await subscriber.join()
    await wait_until(lambda: all(s.frames > 0 for s in subscribers), 60, "decoded frames")
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("ready", flush=True)
    start = [0] * len(subscribers)
    while line := (await stdin.readline()).decode().strip():
        if line == "start":
            start = [s.frames for s in subscribers]
        elif line == "stop":
            frames = [s.frames - f for s, f in zip(subscribers, start, strict=True)]
            print(json.dumps({"frames": frames}), flush=True)
        elif line == "quit":
            break
    for subscriber in subscribers:
        await subscriber.close()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    aioice.ice.CONSENT_FAILURES = 1_000_000  # see bench/forwarding_load.py
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
