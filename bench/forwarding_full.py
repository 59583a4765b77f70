"""Full (decoding) subscribers of the forwarding benchmark, in their own process.

aiortc decodes in threads that hold the GIL for a whole frame; in the light subscribers' process
they would stall the counting loop, so they live here. Protocol on stdin/stdout: after joining
it prints "ready"; on "start" it zeroes its frame counts; on "stop" it prints them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench.forwarding_load import (
    Control,
    FullSubscriber,
    process_args,
    tolerate_late_consent,
    wait_until,
)


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
    tolerate_late_consent()
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2)
    asyncio.run(run(process_args(parser)))


if __name__ == "__main__":
    main()
