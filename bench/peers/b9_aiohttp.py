#!/usr/bin/env python3
"""B9 in Python asyncio with aiohttp: COUNT GETs of URL, INFLIGHT at once.

One ClientSession (its connector keeps up to INFLIGHT connections alive
and reuses them) and INFLIGHT worker tasks, each taking the next request
number until COUNT are done: the usual aiohttp way to bound concurrency
without a task per request. Every response must be 200 with --expect bytes
(default 1024).

  b9_aiohttp.py [--expect BYTES] URL COUNT INFLIGHT

Prints RESULT workload=B9 runtime=aiohttp value=<req/s> unit=req/s
lower_is_better=0 and an INFO line (connections opened, seconds).
"""

import argparse
import asyncio
import sys
import time

import aiohttp


async def main(url, count, inflight, expect):
    opened = 0

    async def on_conn(session, ctx, params):
        nonlocal opened
        opened += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_conn)
    connector = aiohttp.TCPConnector(limit=inflight)
    next_i = 0

    async def worker(session):
        nonlocal next_i
        while next_i < count:
            next_i += 1
            async with session.get(url) as r:
                body = await r.read()
                if r.status != 200 or len(body) != expect:
                    raise RuntimeError("%s: status %d, %d bytes"
                                       % (url, r.status, len(body)))

    async with aiohttp.ClientSession(connector=connector,
                                     trace_configs=[trace]) as session:
        t0 = time.monotonic()
        await asyncio.gather(*(worker(session)
                               for _ in range(min(inflight, count))))
        secs = time.monotonic() - t0
    return secs, opened


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expect", type=int, default=1024)
    ap.add_argument("url")
    ap.add_argument("count", type=int)
    ap.add_argument("inflight", type=int)
    a = ap.parse_args()
    try:
        secs, opened = asyncio.run(main(a.url, a.count, a.inflight, a.expect))
    except (RuntimeError, aiohttp.ClientError, OSError) as e:
        print("b9_aiohttp: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("RESULT workload=B9 runtime=aiohttp value=%.1f unit=req/s "
          "lower_is_better=0" % (a.count / secs))
    print("INFO connections=%d seconds=%.3f aiohttp=%s"
          % (opened, secs, aiohttp.__version__))
