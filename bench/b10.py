#!/usr/bin/env python3
"""B10: streaming RPC, 100,000 calls each answered by 5 chunks of 64 bytes.

Configurations: 1 and 64 calls in flight, over aioc's local transport (client
and server in one process) and over RabbitMQ with 1 and 4 worker processes.
Over RabbitMQ three programs make the same exchange (docs/rpc-wire.md: a
request queue, direct reply-to, the x-kind and x-seq headers, the end marker,
the request acknowledged after its end), each with forked worker processes
and one client process keeping the calls in flight:

  aioc        build-bench/bench/b10_aioc (bench/b10_aioc.c): aioc's RPC
              layer, a client task per call in flight
  rabbitmq-c  build-bench/bench/b10_raw (bench/peers/b10_raw.c): plain
              blocking rabbitmq-c, no event loop (the floor)
  pika        bench/peers/b10_pika.py: Python with pika's BlockingConnection
              (Debian python3-pika)

Each is invoked as `PROGRAM PORT CALLS INFLIGHT WORKERS` (aioc's local
transport as `b10_aioc local CALLS INFLIGHT`) and prints one line of JSON:
{"calls_per_s", "p50_ms", "p99_ms", "calls", "inflight", "workers"}. Chunk
latency: from just before a call's request is sent to the moment the client
holds the chunk, for every data chunk; p50 and p99 over all of them.

The broker is a throwaway RabbitMQ (scripts/rmq.sh) on 127.0.0.1 with its
data in a temporary directory, started once for all of B10 and removed at the
end, whatever happens. Result ids:

  B10-amqp-wW-iN      calls per second over RabbitMQ, W workers, N in flight
  B10-amqp-wW-iN-p50  its chunk latency, median (ms)
  B10-amqp-wW-iN-p99  its chunk latency, 99th percentile (ms)
  B10-local-iN        calls per second over the local transport (aioc only),
                      with -p50 and -p99 likewise

Called by run.py (`--bench B10`), or alone:

  python3 bench/b10.py [--runs N] [--pika-runs N] [--calls N] [--quick]
                      [--runtimes aioc,rabbitmq-c,pika]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PEERS = os.path.join(BENCH_DIR, "peers")
RMQ = os.path.join(ROOT, "scripts", "rmq.sh")

WORKLOAD = "B10"
CALLS = 100_000
QUICK_CALLS = 10_000
RUNS = 3          # aioc and rabbitmq-c over RabbitMQ
PIKA_RUNS = 1     # pika: a few hundred calls per second, so once
LOCAL_RUNS = 5    # the local transport: 100,000 calls take 0.1 s
RUNTIMES = ["aioc", "rabbitmq-c", "pika"]
AMQP_CONFIGS = [(1, 1), (1, 64), (4, 1), (4, 64)]  # (workers, in flight)
LOCAL_INFLIGHT = [1, 64]
AIOC_BIN_DIRS = ["build-bench/bench", "build/bench", "build"]
TARGET_OF_RAW = 0.8     # aioc over RabbitMQ: at least 80% of rabbitmq-c
TARGET_LOCAL = 100      # the local transport: 100 times RabbitMQ


def _print(msg):
    print(msg, flush=True)


def _tail(text, lines=8):
    return "\n".join("    " + l for l in text.strip().splitlines()[-lines:])


def _fmt(v):
    return "{:,.0f}".format(v) if abs(v) >= 1000 else "%.3g" % v


def python_for_peers():
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return sys.executable


def amqp_id(workers, inflight):
    return "%s-amqp-w%d-i%d" % (WORKLOAD, workers, inflight)


def local_id(inflight):
    return "%s-local-i%d" % (WORKLOAD, inflight)


def calls_for(args):
    n = getattr(args, "b10_calls", None)
    if n:
        return n
    return QUICK_CALLS if getattr(args, "quick", False) else CALLS


def runs_for(args):
    return getattr(args, "b10_runs", None) or RUNS


def pika_runs_for(args):
    return min(getattr(args, "b10_pika_runs", None) or PIKA_RUNS,
               runs_for(args))


def local_runs_for(args):
    return max(LOCAL_RUNS, runs_for(args))


def run_timeout(calls):
    """Seconds allowed to one program: pika at one call in flight makes
    a few hundred calls per second on a loaded machine."""
    return 120 + calls * 0.01


# ---------------------------------------------------------------- preparing


class Prepared:
    """What can run: cmds maps a runtime to its argv prefix; broker says
    why there is no broker, or None."""

    def __init__(self):
        self.cmds = {}
        self.broker_missing = None


def prepare(args, wanted, py=None, log=_print):
    prep = Prepared()
    py = py or python_for_peers()
    aioc_bin = getattr(args, "aioc_bin", None)
    dirs = ([aioc_bin] if aioc_bin else
            [os.path.join(ROOT, d) for d in AIOC_BIN_DIRS])

    def find(name):
        exes = [os.path.join(d, name) for d in dirs]
        found = [e for e in exes if os.access(e, os.X_OK)]
        return (found[0], None) if found else (
            None, "%s not found (build it first: make bench)"
            % " or ".join(exes))

    for rt in [r for r in RUNTIMES if r in wanted]:
        why = None
        if rt == "aioc":
            exe, why = find("b10_aioc")
            if exe:
                prep.cmds[rt] = [exe]
        elif rt == "rabbitmq-c":
            exe, why = find("b10_raw")
            if exe:
                prep.cmds[rt] = [exe]
            else:
                why += " (it is built only when rabbitmq-c is installed)"
        elif rt == "pika":
            p = subprocess.run([py, "-c", "import pika"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if p.returncode == 0:
                prep.cmds[rt] = [py, os.path.join(PEERS, "b10_pika.py")]
            else:
                why = "pika not importable by %s (Debian python3-pika)" % py
        if why:
            log("skip %s %s: %s" % (WORKLOAD, rt, why))
    if not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
        prep.broker_missing = ("RabbitMQ is not installed (Debian "
                               "rabbitmq-server): B10 over RabbitMQ skipped")
        log("skip %s over RabbitMQ: %s" % (WORKLOAD, prep.broker_missing))
    return prep


# ---------------------------------------------------------------- the broker


class Broker:
    """A throwaway RabbitMQ (scripts/rmq.sh start), removed by stop()."""

    def __init__(self, log=_print):
        self.dir = tempfile.mkdtemp(prefix="b10-")
        self.envfile = os.path.join(self.dir, "rmq.env")
        self.port = None
        self.log = log

    def start(self):
        p = subprocess.run([RMQ, "start", self.envfile],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=180)
        if p.returncode != 0:
            return "the broker did not start:\n" + _tail(p.stdout)
        with open(self.envfile) as f:
            env = dict(l.strip().split("=", 1) for l in f if "=" in l)
        self.port = int(env["RMQ_PORT"])
        self.log("  " + p.stdout.strip().splitlines()[-1])
        return None

    def pid(self):
        p = subprocess.run([RMQ, "pid", self.envfile], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        try:
            return int(p.stdout.strip())
        except ValueError:
            return None

    def stop(self):
        if os.path.exists(self.envfile):
            subprocess.run([RMQ, "destroy", self.envfile],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU of a process so far, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- one run


def run_once(cmd, argv, timeout, broker_pid=None):
    """Runs one program once. Returns (figures, info, problem): figures the
    parsed JSON, info the CPU spent by the program with its workers and by
    the broker, per call, in microseconds."""
    b0 = cpu_seconds(broker_pid) if broker_pid else None
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, {}, "timed out after %.0f s" % timeout
    except OSError as e:
        return None, {}, str(e)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b1 = cpu_seconds(broker_pid) if broker_pid else None
    if p.returncode != 0:
        return None, {}, "exit %d\n%s" % (p.returncode,
                                          _tail(p.stdout + p.stderr))
    fig = None
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                fig = json.loads(line)
            except ValueError:
                pass
    if not fig or not fig.get("calls"):
        return None, {}, "no figures in its output:\n" + _tail(p.stdout +
                                                                 p.stderr)
    n = fig["calls"]
    info = {"own_us": (r1.ru_utime + r1.ru_stime - r0.ru_utime -
                       r0.ru_stime) / n * 1e6}
    if b0 is not None and b1 is not None:
        info["broker_us"] = (b1 - b0) / n * 1e6
    return fig, info, None


def add(data, wid, rt, fig):
    for suffix, key, unit, lib in (("", "calls_per_s", "calls/s", False),
                                   ("-p50", "p50_ms", "ms", True),
                                   ("-p99", "p99_ms", "ms", True)):
        e = data.setdefault((wid + suffix, rt), {
            "unit": unit, "lower_is_better": lib, "values": []})
        e["values"].append(float(fig[key]))


def show(fig):
    return "%s calls/s, chunk p50 %.3g ms, p99 %.3g ms" % (
        _fmt(fig["calls_per_s"]), fig["p50_ms"], fig["p99_ms"])


def run(args, prep, log=_print):
    """Runs every configuration over RabbitMQ runs_for(args) times in aioc
    and rabbitmq-c and pika_runs_for(args) times in pika (its first
    rounds), the runtimes taking turns within each configuration, and the
    local transport local_runs_for(args) times, spread over the rounds.
    Returns {(workload, runtime): {"unit", "lower_is_better", "values"}} as
    run.py's run_all does."""
    data = {}
    if not prep.cmds:
        return data
    calls = calls_for(args)
    runs = runs_for(args)
    total = {rt: runs for rt in RUNTIMES}
    total["pika"] = pika_runs_for(args)
    local_runs = local_runs_for(args)
    timeout = run_timeout(calls)
    failed = set()

    def one(rt, wid, argv, i, broker_pid=None, of=None):
        if (wid, rt) in failed:
            return
        t0 = time.monotonic()
        fig, info, problem = run_once(prep.cmds[rt], argv, timeout,
                                      broker_pid)
        took = time.monotonic() - t0
        if problem:
            log("FAIL %s %s run %d: %s" % (wid, rt, i + 1, problem.strip()))
            failed.add((wid, rt))
            return
        add(data, wid, rt, fig)
        extra = ["client+workers %.0f \u00b5s CPU/call" % info["own_us"]]
        if "broker_us" in info:
            extra.append("broker %.0f \u00b5s CPU/call" % info["broker_us"])
        log("%-16s %-10s run %d/%d  %s  (%s; load %.2f; %.1f s)"
            % (wid, rt, i + 1, of or total[rt], show(fig), "; ".join(extra),
               os.getloadavg()[0], took))

    local = {"done": 0}

    def local_round():
        """One run of each local configuration; they are spread over the
        whole of B10 so that a busy moment of the machine does not take
        them all (each lasts a fraction of a second)."""
        if "aioc" not in prep.cmds or local["done"] >= local_runs:
            return
        for n in LOCAL_INFLIGHT:
            one("aioc", local_id(n), ["local", str(calls), str(n)],
                local["done"], of=local_runs)
        local["done"] += 1

    local_round()
    amqp_rts = [rt for rt in RUNTIMES if rt in prep.cmds]
    if prep.broker_missing or not amqp_rts:
        while local["done"] < local_runs:
            local_round()
        return data
    broker = Broker(log)
    try:
        problem = broker.start()
        if problem:
            log("FAIL %s over RabbitMQ: %s" % (WORKLOAD, problem))
            return data
        bpid = broker.pid()
        port = str(broker.port)
        # A short first exchange, not counted: the broker's first queues,
        # connections and code paths.
        warm = amqp_rts[0]
        run_once(prep.cmds[warm], [port, "2000", "64", "1"], timeout)
        for i in range(runs):
            for w, n in AMQP_CONFIGS:
                for rt in amqp_rts:
                    if i < total[rt]:
                        one(rt, amqp_id(w, n),
                            [port, str(calls), str(n), str(w)], i, bpid)
                local_round()
    finally:
        broker.stop()
    while local["done"] < local_runs:
        local_round()
    return data


def describe(args):
    calls = calls_for(args)
    return ("B10: streaming RPC, {:,} calls each answered by 5 chunks of 64 "
            "bytes, 1 and 64 calls in flight, over aioc's local transport "
            "(B10-local-iN) and over a throwaway RabbitMQ on 127.0.0.1 with 1 "
            "and 4 worker processes (B10-amqp-wW-iN), in aioc, plain "
            "blocking rabbitmq-c (the floor) and Python with pika; calls per "
            "second (ratio aioc / peer, above 1 means aioc makes more "
            "calls), chunk latency p50 and p99 in ms (from the call's start "
            "to the client holding the chunk; ratio peer / aioc). Medians "
            "of {} run(s) for aioc and rabbitmq-c, {} for pika, {} for the "
            "local transport, the runtimes taking turns configuration by "
            "configuration.".format(calls, runs_for(args),
                                    pika_runs_for(args),
                                    local_runs_for(args)))


def targets(rows):
    """B10's targets for run.py's table: over RabbitMQ aioc makes at least
    80% of rabbitmq-c's calls per second and more than pika's; the local
    transport at least 100 times aioc's best over RabbitMQ at the same
    number of calls in flight."""
    def med(w, rt):
        r = rows.get((w, rt))
        return r["median"] if r else None

    out = {}

    def verdict(w, parts, oks):
        ok = all(oks) if oks else None
        out[w] = (ok, ("pass" if ok else "FAIL" if ok is not None else "n/a")
                  + " - " + "; ".join(parts))

    for w, n in AMQP_CONFIGS:
        wid = amqp_id(w, n)
        a = med(wid, "aioc")
        if a is None:
            continue
        parts, oks = [], []
        r = med(wid, "rabbitmq-c")
        if r:
            oks.append(a >= TARGET_OF_RAW * r)
            parts.append(">=%.0f%% of rabbitmq-c: %s (%.0f%%)"
                         % (TARGET_OF_RAW * 100,
                            "ok" if oks[-1] else "NO", 100 * a / r))
        else:
            parts.append(">=%.0f%% of rabbitmq-c: n/a" % (TARGET_OF_RAW * 100))
        p = med(wid, "pika")
        if p:
            oks.append(a > p)
            parts.append("ahead of pika: %s (%.2fx)"
                         % ("ok" if oks[-1] else "NO", a / p))
        else:
            parts.append("ahead of pika: n/a")
        verdict(wid, parts, oks)
    for n in LOCAL_INFLIGHT:
        wid = local_id(n)
        a = med(wid, "aioc")
        if a is None:
            continue
        amqp = [med(amqp_id(w, k), "aioc") for w, k in AMQP_CONFIGS if k == n]
        amqp = [v for v in amqp if v]
        if not amqp:
            verdict(wid, [">=%dx RabbitMQ: n/a" % TARGET_LOCAL], [])
            continue
        best = max(amqp)
        ok = a >= TARGET_LOCAL * best
        verdict(wid, [">=%dx aioc over RabbitMQ (%s calls/s): %s (%.0fx)"
                      % (TARGET_LOCAL, _fmt(best), "ok" if ok else "NO",
                         a / best)], [ok])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=RUNS, dest="b10_runs")
    ap.add_argument("--pika-runs", type=int, default=PIKA_RUNS,
                    dest="b10_pika_runs")
    ap.add_argument("--calls", type=int, default=None, dest="b10_calls")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--aioc-bin", default=None)
    args = ap.parse_args()
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    prep = prepare(args, wanted)
    data = run(args, prep)
    rows = {}
    for (w, rt), e in sorted(data.items()):
        m = statistics.median(e["values"])
        rows[(w, rt)] = {"median": m}
        _print("%-20s %-10s median %s %s  (%d run(s))"
               % (w, rt, _fmt(m), e["unit"], len(e["values"])))
    for w, (ok, text) in sorted(targets(rows).items()):
        _print("%-20s %s" % (w, text))
    return 0 if data else 1


if __name__ == "__main__":
    sys.exit(main())
