#!/usr/bin/env python3
"""Python asyncio / uvloop peer for aioc's benchmarks (bench/README.md).

Usage: python3 asyncio_bench.py WORKLOAD [--uvloop] [-n N]

Runs one workload once and prints result lines on stdout:

  RESULT workload=B1 runtime=asyncio value=6271 unit=ns/task lower_is_better=1

WORKLOAD is one of B1, B2, B3, B4, B4c, B5 (see bench/README.md). The task count N of B1, B3, B4 and B4c is 1,000,000 unless -n N
or the environment variable BENCH_N says otherwise; B2 always makes 2,000,000
switches, B5 passes 2,000,000 items (unless -n N is given).
Every figure is normalised per task (or per switch), so runs with different N
stay comparable.

Run it with /usr/bin/python3 (Debian's), so that asyncio and uvloop differ only
in the event loop. The interpreter is left as it comes: the cyclic garbage
collector stays on, because that is what an asyncio program gets.
"""

import asyncio
import os
import random
import sys
import time

DEFAULT_N = 1_000_000
B2_SWITCHES = 2_000_000
B5_ITEMS = 2_000_000
B5_CAPACITY = 64
SEED = 12345


# ---------------------------------------------------------------- helpers


def status_kib(field):
    """Return a VmXXX field of /proc/self/status in KiB (0 if absent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0), so that the peak read
    later belongs to the workload and not to start-up. Returns the baseline
    resident size in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # the peak then includes start-up, which only makes us look worse
    return status_kib("VmRSS") * 1024


def peak_rss_bytes():
    return status_kib("VmHWM") * 1024


def result(workload, runtime, value, unit, lower_is_better=True):
    print("RESULT workload=%s runtime=%s value=%.6g unit=%s lower_is_better=%d"
          % (workload, runtime, value, unit, 1 if lower_is_better else 0),
          flush=True)


def fail(msg):
    print("asyncio_bench: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- workloads


async def b1(n, runtime):
    """B1: spawn n trivial tasks (each returns its index), then join them all
    and sum the results. Figure: wall time of spawn + join per task, and the
    peak resident memory per task while they all exist."""

    async def trivial(i):
        return i

    loop = asyncio.get_running_loop()
    base = reset_peak_rss()
    t0 = time.perf_counter()
    tasks = [loop.create_task(trivial(i)) for i in range(n)]
    # Join each in turn: the tasks run at the first await, the rest are
    # already done when they are awaited. This is asyncio's cheapest join
    # (asyncio.gather costs about a third more here), so the peer gets its
    # best case.
    total = 0
    for t in tasks:
        total += await t
    t1 = time.perf_counter()
    peak = peak_rss_bytes()
    if total != n * (n - 1) // 2:
        fail("B1: wrong sum %d, expected %d" % (total, n * (n - 1) // 2))
    result("B1", runtime, (t1 - t0) * 1e9 / n, "ns/task")
    result("B1rss", runtime, max(peak - base, 0) / n, "B/task")


async def b2(runtime):
    """B2: two tasks hand control back and forth through the scheduler. Each
    loops B2_SWITCHES/2 times on sleep(0), which yields to the other one.
    Figure: wall time per switch."""
    per_task = B2_SWITCHES // 2
    count = [0]

    async def ping():
        for _ in range(per_task):
            count[0] += 1
            await asyncio.sleep(0)

    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    a = loop.create_task(ping())
    b = loop.create_task(ping())
    await a
    await b
    t1 = time.perf_counter()
    if count[0] != B2_SWITCHES:
        fail("B2: %d switches, expected %d" % (count[0], B2_SWITCHES))
    result("B2", runtime, (t1 - t0) * 1e9 / B2_SWITCHES, "ns/switch")


async def b3(n, runtime):
    """B3: n tasks alive at once, each sleeping 1 s; all are spawned, then all
    awaited. Figures: peak resident bytes per task (B3) and the wall time of
    the whole thing (B3wall, ideally just above 1 s)."""
    done = [0]

    async def sleeper():
        await asyncio.sleep(1.0)
        done[0] += 1

    loop = asyncio.get_running_loop()
    base = reset_peak_rss()
    t0 = time.perf_counter()
    tasks = [loop.create_task(sleeper()) for _ in range(n)]
    for t in tasks:
        await t
    t1 = time.perf_counter()
    peak = peak_rss_bytes()
    if done[0] != n:
        fail("B3: %d tasks finished, expected %d" % (done[0], n))
    result("B3", runtime, max(peak - base, 0) / n, "B/task")
    result("B3wall", runtime, t1 - t0, "s")


def deadlines(n):
    """n deadlines uniform in [0, 1] s from a seeded PRNG (the same in every
    run)."""
    rng = random.Random(SEED)
    return [rng.random() for _ in range(n)]


async def b4(n, runtime):
    """B4: n sleeping tasks, each sleeping a random time in [0, 1 s]. Figure:
    the wall time from the first spawn to the last wake-up, minus 1 s (the
    overhead of spawning, the timer queue and the wake-ups)."""
    ds = deadlines(n)
    done = [0]

    async def sleeper(d):
        await asyncio.sleep(d)
        done[0] += 1

    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(sleeper(d)) for d in ds]
    for t in tasks:
        await t
    t1 = time.perf_counter()
    if done[0] != n:
        fail("B4: %d tasks finished, expected %d" % (done[0], n))
    result("B4", runtime, (t1 - t0) - 1.0, "s")


async def b4c(n, runtime):
    """B4c: as B4 but with plain timer callbacks (loop.call_later), no
    tasks."""
    ds = deadlines(n)
    loop = asyncio.get_running_loop()
    all_fired = loop.create_future()
    fired = [0]

    def on_timer():
        fired[0] += 1
        if fired[0] == n:
            all_fired.set_result(None)

    t0 = time.perf_counter()
    for d in ds:
        loop.call_later(d, on_timer)
    await all_fired
    t1 = time.perf_counter()
    result("B4c", runtime, (t1 - t0) - 1.0, "s")


async def b7(n, runtime, variant):
    """B7: an async generator of n items consumed plainly (B7), with
    wait_for(anext()) per item (B7t, the seed's AsyncTimedIterable) and
    with an asyncio.timeout block per item (B7w)."""

    async def numbers():
        for i in range(n):
            yield i

    total = 0
    gen = numbers()
    t0 = time.perf_counter()
    if variant == "B7":
        async for x in gen:
            total += x
    elif variant == "B7t":
        while True:
            try:
                x = await asyncio.wait_for(gen.__anext__(), 1.0)
            except StopAsyncIteration:
                break
            total += x
    else:
        while True:
            try:
                async with asyncio.timeout(1.0):
                    x = await gen.__anext__()
            except StopAsyncIteration:
                break
            total += x
    t1 = time.perf_counter()
    if total != n * (n - 1) // 2:
        fail("B7: wrong sum %d" % total)
    result(variant, runtime, (t1 - t0) * 1e9 / n, "ns/item")


class Numbers:
    """An async iterator object whose __anext__ returns at once (seed 001's
    EfficientFile shape), for B7i."""

    def __init__(self, n):
        self.i = 0
        self.n = n

    def __aiter__(self):
        return self

    async def __anext__(self):
        i = self.i
        if i >= self.n:
            raise StopAsyncIteration
        self.i = i + 1
        return i


async def b7i(n, runtime):
    """B7i: an async iterator object of n items consumed with async for."""
    total = 0
    t0 = time.perf_counter()
    async for x in Numbers(n):
        total += x
    t1 = time.perf_counter()
    if total != n * (n - 1) // 2:
        fail("B7i: wrong sum %d" % total)
    result("B7i", runtime, (t1 - t0) * 1e9 / n, "ns/item")


async def b8(runtime):
    """B8: aioutils' nested example, written in raw asyncio with two task
    levels (the seed's version): 10 outer tasks of 0.1 s each spawning 10
    inner tasks of 0.1 s; the optimum is 0.2 s."""
    level2 = []

    async def f2():
        await asyncio.sleep(0.1)

    async def f1():
        await asyncio.sleep(0.1)
        for _ in range(10):
            level2.append(asyncio.create_task(f2()))

    t0 = time.perf_counter()
    level1 = [asyncio.create_task(f1()) for _ in range(10)]
    await asyncio.wait(level1)
    await asyncio.wait(level2)
    t1 = time.perf_counter()
    result("B8", runtime, (t1 - t0) * 1e3, "ms")


async def b8p(n, runtime):
    """B8p: 100,000 short tasks (one sleep(0) each), at most 100 at once
    (a Semaphore, asyncio's way to write aioutils' Pool(100))."""
    sem = asyncio.Semaphore(100)

    async def short():
        async with sem:
            await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(*(short() for _ in range(n)))
    t1 = time.perf_counter()
    result("B8p", runtime, (t1 - t0) * 1e9 / n, "ns/task")


async def b5(n, runtime):
    """B5: one producer task and one consumer task pass n integers through
    an asyncio.Queue(64); the consumer checks the sum. Figure: wall time per
    item."""
    q = asyncio.Queue(B5_CAPACITY)

    async def producer():
        put = q.put
        for i in range(n):
            await put(i)

    async def consumer():
        get = q.get
        total = 0
        for _ in range(n):
            total += await get()
        return total

    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    p = loop.create_task(producer())
    c = loop.create_task(consumer())
    await p
    total = await c
    t1 = time.perf_counter()
    if total != n * (n - 1) // 2:
        fail("B5: wrong sum %d, expected %d" % (total, n * (n - 1) // 2))
    result("B5", runtime, (t1 - t0) * 1e9 / n, "ns/item")


async def b6x(n, runtime):
    """B6x: n asyncio.to_thread calls of a trivial function, 100 in flight
    (100 workers taking calls from a shared count). Figure: wall time per
    call."""
    state = {"left": n, "sum": 0}

    def trivial(i):
        return i

    async def worker():
        while state["left"] > 0:
            i = state["left"]
            state["left"] -= 1
            r = await asyncio.to_thread(trivial, i)
            state["sum"] += r

    await asyncio.to_thread(trivial, 0)  # the pool's threads start
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(100)))
    t1 = time.perf_counter()
    if state["sum"] != n * (n + 1) // 2:
        fail("B6x: wrong sum %d" % state["sum"])
    result("B6x", runtime, (t1 - t0) * 1e6 / n, "us/call")


# ---------------------------------------------------------------- main


def main(argv):
    args = list(argv[1:])
    use_uvloop = "--uvloop" in args
    args = [a for a in args if a != "--uvloop"]
    n_given = "-n" in args
    n = int(os.environ.get("BENCH_N") or DEFAULT_N)
    if "-n" in args:
        i = args.index("-n")
        n = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1 or n < 1:
        print(__doc__, file=sys.stderr)
        return 2
    workload = args[0]

    runtime = "asyncio"
    if use_uvloop:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        runtime = "uvloop"

    if workload == "B1":
        coro = b1(n, runtime)
    elif workload == "B2":
        coro = b2(runtime)
    elif workload == "B3":
        coro = b3(n, runtime)
    elif workload == "B4":
        coro = b4(n, runtime)
    elif workload == "B4c":
        coro = b4c(n, runtime)
    elif workload == "B5":
        coro = b5(n if n_given else B5_ITEMS, runtime)
    elif workload in ("B7", "B7t", "B7w"):
        coro = b7(n, runtime, workload)
    elif workload == "B7i":
        coro = b7i(n, runtime)
    elif workload == "B6x":
        coro = b6x(int(os.environ.get("BENCH_N") or 10000), runtime)
    elif workload == "B8":
        coro = b8(runtime)
    elif workload == "B8p":
        coro = b8p(int(os.environ.get("BENCH_N") or 100000), runtime)
    else:
        print("asyncio_bench: unknown workload %r" % workload, file=sys.stderr)
        return 2
    asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
