#!/usr/bin/env python3
"""B6's asyncio and uvloop echo server (bench/README.md).

Usage: python3 echo_asyncio.py PORT [--uvloop] [--protocol]

Listens on 127.0.0.1:PORT and echoes every byte back on each connection,
written as the asyncio documentation writes its echo server: asyncio's
streams, `asyncio.start_server` with one handler task per connection that
reads what is there (`reader.read`), writes it back and awaits `drain()`.
With --uvloop the same program runs under uvloop's event loop. --protocol
uses a Protocol whose `data_received` writes the data back instead (the
lower-level form, for comparison; B6 runs the streams form). Exits 0 on
SIGTERM or SIGINT.

Run it with /usr/bin/python3 (Debian's), so that asyncio and uvloop differ
only in the event loop.
"""

import asyncio
import signal
import sys

HOST = "127.0.0.1"
READ_SIZE = 64 * 1024


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(port, protocol):
    loop = asyncio.get_running_loop()
    if protocol:
        server = await loop.create_server(EchoProtocol, HOST, port)
    else:
        server = await asyncio.start_server(handle, HOST, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 1 or not args[0].isdigit() or \
            flags - {"--uvloop", "--protocol"}:
        print("usage: echo_asyncio.py PORT [--uvloop] [--protocol]",
              file=sys.stderr)
        return 2
    if "--uvloop" in flags:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(int(args[0]), "--protocol" in flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
