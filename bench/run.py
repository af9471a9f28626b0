#!/usr/bin/env python3
"""Benchmark runner: aioc against Python asyncio, uvloop, Go and libuv.

Runs each workload of bench/README.md in
aioc and, in the same run, in every peer that is available; every run is a
separate process. Takes the median of N runs per (workload, runtime) and
writes, under --out:

  latest.json  a list of {"workload", "runtime", "median", "unit",
               "lower_is_better", "runs"} objects, one per pair measured
  latest.md    the table with ratios (peer / aioc: above 1 means aioc is
               faster) and the aioc targets marked pass or fail
  latest.svg   a log-scale bar chart of the medians (if gnuplot is installed)
  latest.raw.json  every single value and the conditions of the run

and prints the table. Usage:

  python3 bench/run.py [--bench B1,B2,B3,B4] [--aioc-bin DIR] [--runs N]
                       [--quick] [--runtimes aioc,asyncio,...] [--out DIR]

B6 (TCP echo: a client and a server process per run), B6n (the same
with aioc's server on 1 and 2 loops) and B6tls (over TLS 1.3, against Go's
crypto/tls) are driven by b6.py,
and B9 (HTTP GETs from a local nginx: a client process per run) by b9.py;
this runner calls both, and their figures join the others in the outputs. So
is B10 (streaming RPC over aioc's local transport and over a throwaway
RabbitMQ, against plain rabbitmq-c and Python's pika), driven by b10.py:
100,000 calls per figure (10,000 with --quick, or --b10-calls), medians of 3
runs for aioc and rabbitmq-c (--b10-runs), 1 for pika (--b10-pika-runs), 5
for the local transport.

Selecting B2 also runs B2ch (Go's channel variant), B4 also runs B4c (plain
timer callbacks); either can be selected alone. B5 also runs B5nocoop
(aioc with the cooperative budget off, to show its cost). B1, B2, B5 and B7
also run aioc a second time with the flight recorder on
(AIOC_OBSERVE=events), as B1ev, B2ev, B5ev and B7ev, whose ratio is their
figure over the plain one. --quick runs 100,000 tasks
instead of 1,000,000 for B1, B3, B4 and B4c, 3 times each. The number of runs
is --runs, else the environment's BENCH_RUNS, else 5 (3 with --quick).

Protocol (what every bench program, bench_aioc included, must follow):
  * invoked as `PROGRAM WORKLOAD`, one workload per process, run once;
  * the task count comes from the environment variable BENCH_N (absent:
    1,000,000); B2 always makes 2,000,000 switches, B5 always passes
    2,000,000 items;
  * prints, among any other output, one line per figure on stdout:
      RESULT workload=B1 runtime=aioc value=83.0 unit=ns/task lower_is_better=1
    with figures normalised per task (or switch), so different N compare;
  * exits 0 on success, 2 (printing no RESULT line) if it does not implement
    the workload, anything else on failure (e.g. a wrong B1 sum).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import b6
import b9
import b10

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PEERS = os.path.join(BENCH_DIR, "peers")

RUNTIMES = ["aioc", "asyncio", "uvloop", "go", "libuv",
            # B9's HTTP clients (b9.py)
            "curl", "curl-epoll", "aiohttp",
            # B10's RPC peers (b10.py)
            "rabbitmq-c", "pika"]

# Which program workloads each peer implements. aioc is asked for every
# selected workload except the Go-only variant and may answer "unsupported".
SUPPORTED = {
    "asyncio": {"B1", "B2", "B3", "B4", "B4c", "B5", "B6x", "B7", "B7t", "B7w",
                "B7i", "B8", "B8p"},
    "uvloop": {"B1", "B2", "B3", "B4", "B4c", "B5", "B6x", "B7", "B7t", "B7w",
               "B7i", "B8", "B8p"},
    "go": {"B1", "B2", "B2ch", "B3", "B4", "B4c", "B5", "B6x"},
    "libuv": {"B1", "B3", "B4c"},
}
NOT_AIOC = {"B2ch", "B7w"}

# A selected benchmark id and the program workloads it runs.
EXPAND = {"B1": ["B1", "B1ev"], "B2": ["B2", "B2ch", "B2ev"],
          "B4": ["B4", "B4c"], "B5": ["B5", "B5nocoop", "B5ev"],
          "B7": ["B7", "B7t", "B7w", "B7i", "B7ev"],
          "B8": ["B8", "B8p"]}

# aioc's workloads run a second time with the flight recorder on
# (AIOC_OBSERVE=events): Bnev is Bn so measured, its ratio Bnev / Bn of
# the same run (the recorder's cost).
EVENTS_RUNS = {"B1ev": "B1", "B2ev": "B2", "B5ev": "B5", "B7ev": "B7"}
DEFAULT_BENCH = "B1,B2,B3,B4"

# Result ids without an aioc figure of their own take their ratio against
# this aioc figure (Go's channel switch against aioc's switch).
RATIO_BASE = {"B2ch": "B2", "B7w": "B7t"}

# aioc workloads run by another program than bench_aioc, which sits in the
# same directory (bench_sync: the synchronization primitives and queues).
AIOC_PROGRAM = {"B5": "bench_sync", "B5nocoop": "bench_sync"}

# Where bench_aioc is looked for when --aioc-bin is not given.
AIOC_BIN_DIRS = ["build-bench/bench", "build/bench", "build"]

# Chart colours, fixed per runtime so that charts of subsets compare.
COLOURS = {"aioc": "#d62728", "asyncio": "#1f77b4", "uvloop": "#17becf",
           "curl": "#9467bd", "curl-epoll": "#8c564b", "aiohttp": "#e377c2",
           "go": "#2ca02c", "libuv": "#ff7f0e", "rabbitmq-c": "#7f7f7f",
           "pika": "#bcbd22"}

QUICK_N = 100_000
UNSUPPORTED_RC = 2
RESULT_RE = re.compile(r"^RESULT\s+(.*)$")


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- peers


def python_for_peers():
    """Debian's /usr/bin/python3 runs both asyncio and uvloop 
    so that the two differ only in the loop."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return sys.executable


def run_quiet(cmd, env=None, timeout=600):
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout
    except (OSError, subprocess.SubprocessError) as e:
        return -1, str(e)


def tail(text, lines=5):
    return "\n".join("    " + l for l in text.strip().splitlines()[-lines:])


def install_missing(missing):
    """--install: apt-get the Debian packages of the missing peers."""
    pkgs = {"uvloop": "python3-uvloop", "go": "golang-go",
            "libuv": "libuv1-dev", "gnuplot": "gnuplot-nox",
            "pika": "python3-pika"}
    want = [pkgs[m] for m in missing if m in pkgs]
    if not want:
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        log("install: need root and apt-get to install %s; skipping"
            % " ".join(want))
        return
    log("install: apt-get install %s" % " ".join(want))
    rc, out = run_quiet(["apt-get", "install", "-y", "--no-install-recommends"]
                        + want, timeout=1800)
    if rc != 0:
        run_quiet(["apt-get", "update"], timeout=1800)
        rc, out = run_quiet(["apt-get", "install", "-y",
                             "--no-install-recommends"] + want, timeout=1800)
    if rc != 0:
        log("install: failed:\n" + tail(out))


def have_uvloop(py):
    return run_quiet([py, "-c", "import uvloop"])[0] == 0


def build_go(build_dir):
    """Builds bench/peers/go_bench.go (a single file, no modules, offline)."""
    go = shutil.which("go")
    if not go:
        return None, "no `go` command (Debian golang-go)"
    out_bin = os.path.join(build_dir, "go_bench")
    env = dict(os.environ, GO111MODULE="off", GOPROXY="off",
               GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    env.setdefault("GOCACHE", os.path.join(build_dir, "go-cache"))
    rc, out = run_quiet([go, "build", "-o", out_bin,
                         os.path.join(PEERS, "go_bench.go")], env=env)
    if rc != 0:
        return None, "go build failed:\n" + tail(out)
    return [out_bin], None


def build_uv(build_dir):
    """Builds bench/peers/uv_bench.c against the system libuv."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    flags = ["-luv"]
    if shutil.which("pkg-config"):
        rc, out = run_quiet(["pkg-config", "--cflags", "--libs", "libuv"])
        if rc == 0:
            flags = out.split()
        else:
            return None, "libuv not found by pkg-config (Debian libuv1-dev)"
    out_bin = os.path.join(build_dir, "uv_bench")
    rc, out = run_quiet([cc, "-O2", "-o", out_bin,
                         os.path.join(PEERS, "uv_bench.c")] + flags)
    if rc != 0:
        return None, "cc uv_bench.c failed:\n" + tail(out)
    return [out_bin], None


def prepare_runtimes(args, wanted):
    """Returns {runtime: argv prefix} for the runtimes that can run, and
    prints a line for each one that cannot."""
    os.makedirs(args.build_dir, exist_ok=True)
    py = python_for_peers()
    cmds = {}
    if args.install:
        missing = []
        if "uvloop" in wanted and not have_uvloop(py):
            missing.append("uvloop")
        if "go" in wanted and not shutil.which("go"):
            missing.append("go")
        if "libuv" in wanted and run_quiet(
                ["pkg-config", "--exists", "libuv"])[0] != 0:
            missing.append("libuv")
        if not shutil.which("gnuplot"):
            missing.append("gnuplot")
        if "pika" in wanted and run_quiet([py, "-c", "import pika"])[0] != 0:
            missing.append("pika")
        install_missing(missing)

    for rt in wanted:
        why = None
        if rt == "aioc":
            dirs = ([args.aioc_bin] if args.aioc_bin else
                    [os.path.join(ROOT, d) for d in AIOC_BIN_DIRS])
            exes = [os.path.join(d, "bench_aioc") for d in dirs]
            found = [e for e in exes if os.access(e, os.X_OK)]
            if found:
                cmds[rt] = [found[0]]
            else:
                why = ("%s not found (build it first); peers only"
                       % " or ".join(exes))
        elif rt == "asyncio":
            cmds[rt] = [py, os.path.join(PEERS, "asyncio_bench.py")]
        elif rt == "uvloop":
            if have_uvloop(py):
                cmds[rt] = [py, os.path.join(PEERS, "asyncio_bench.py"),
                            "--uvloop"]
            else:
                why = ("uvloop not importable by %s (Debian python3-uvloop)"
                       % py)
        elif rt == "go":
            cmd, why = build_go(args.build_dir)
            if cmd:
                cmds[rt] = cmd
        elif rt == "libuv":
            cmd, why = build_uv(args.build_dir)
            if cmd:
                cmds[rt] = cmd
        if why:
            log("skip %s: %s" % (rt, why))
    return cmds, py


def versions(py, cmds):
    """The peers' versions, for the report."""
    v = {}
    if "asyncio" in cmds or "uvloop" in cmds:
        v["python"] = run_quiet([py, "-c", "import sys; print(sys.version."
                                 "split()[0])"])[1].strip()
    if "uvloop" in cmds:
        v["uvloop"] = run_quiet([py, "-c", "import uvloop; "
                                 "print(uvloop.__version__)"])[1].strip()
    if "go" in cmds:
        v["go"] = run_quiet(["go", "version"])[1].strip().split(" ")[2:3]
        v["go"] = v["go"][0] if v["go"] else "?"
    if "libuv" in cmds and shutil.which("pkg-config"):
        v["libuv"] = run_quiet(["pkg-config", "--modversion",
                                "libuv"])[1].strip()
    if ("curl" in cmds or "curl-epoll" in cmds) and shutil.which("pkg-config"):
        v["libcurl"] = run_quiet(["pkg-config", "--modversion",
                                  "libcurl"])[1].strip()
    if "aiohttp" in cmds:
        v["aiohttp"] = run_quiet([py, "-c", "import aiohttp; "
                                  "print(aiohttp.__version__)"])[1].strip()
    if "pika" in cmds:
        v["pika"] = run_quiet([py, "-c", "import pika; "
                               "print(pika.__version__)"])[1].strip()
    if "rabbitmq-c" in cmds or "pika" in cmds or "aioc" in cmds:
        for name, pkg in (("rabbitmq-server", "rabbitmq-server"),
                          ("rabbitmq-c", "librabbitmq4")):
            rc, out = run_quiet(["dpkg-query", "-W", "-f", "${Version}\n",
                                 pkg])
            if rc == 0 and out.strip():
                v[name] = out.split()[0]  # one line per architecture
    return v


# ---------------------------------------------------------------- running


def parse_results(text):
    """The RESULT lines of a program's output as dicts."""
    out = []
    for line in text.splitlines():
        m = RESULT_RE.match(line.strip())
        if not m:
            continue
        fields = dict(kv.split("=", 1) for kv in m.group(1).split()
                      if "=" in kv)
        try:
            out.append({
                "workload": fields["workload"],
                "runtime": fields["runtime"],
                "value": float(fields["value"]),
                "unit": fields.get("unit", ""),
                "lower_is_better": fields.get("lower_is_better", "1") != "0",
            })
        except (KeyError, ValueError):
            log("  ignoring malformed line: %s" % line.strip())
    return out


def run_one(cmd, workload, env, timeout):
    """Runs one program once. Returns (status, results, output) with status
    'ok', 'unsupported' or 'failed'."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd + [workload], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return "failed", [], "timed out after %d s" % timeout, timeout
    except OSError as e:
        return "failed", [], str(e), 0.0
    took = time.monotonic() - t0
    res = parse_results(p.stdout)
    output = p.stdout + p.stderr
    if p.returncode == UNSUPPORTED_RC and not res:
        return "unsupported", [], output, took
    if p.returncode != 0:
        return "failed", [], "exit %d\n%s" % (p.returncode, output), took
    if not res:
        return "failed", [], "no RESULT line\n" + output, took
    return "ok", res, output, took


def command(cmds, rt, w):
    """The argv prefix that runs workload w in runtime rt."""
    w = EVENTS_RUNS.get(w, w)
    prog = AIOC_PROGRAM.get(w) if rt == "aioc" else None
    if prog:
        return [os.path.join(os.path.dirname(cmds[rt][0]), prog)]
    return cmds[rt]


def run_all(args, cmds, workloads, n):
    """Runs every (workload, runtime) pair args.runs times, interleaving the
    runtimes (and the variants of one workload) within each round so that
    slow drifts of a noisy machine hit them all alike. Returns
    {(workload, runtime): entry}."""
    env = dict(os.environ)
    env.pop("BENCH_N", None)
    if n is not None:
        env["BENCH_N"] = str(n)
    env["GOMAXPROCS"] = str(args.go_procs)
    data = {}
    # Workloads compared with each other (B7 and B7t, B2 and B2ch) take
    # turns within each round too, so that a drift of the machine does not
    # land on one of them only.
    groups = []
    for w in workloads:
        g = next((k for k, ws in EXPAND.items() if w in ws), w)
        if groups and groups[-1][0] == g:
            groups[-1][1].append(w)
        else:
            groups.append((g, [w]))
    for _, ws in groups:
        skipped = set()
        for i in range(args.runs):
            for w in ws:
                rts = [rt for rt in RUNTIMES if rt in cmds and
                       (w in SUPPORTED.get(rt, ()) if rt != "aioc"
                        else w not in NOT_AIOC)]
                for rt in rts:
                    if (w, rt) in skipped:
                        continue
                    cmd = command(cmds, rt, w)
                    if not os.access(cmd[0], os.X_OK):
                        log("skip %s %s: %s not found (build it first)"
                            % (w, rt, cmd[0]))
                        skipped.add((w, rt))
                        continue
                    base = EVENTS_RUNS.get(w)
                    run_env = dict(env, AIOC_OBSERVE="events") if base else env
                    status, res, output, took = run_one(cmd, base or w,
                                                        run_env, args.timeout)
                    if base:
                        # The recorder's run: its figure of the workload
                        # only, under the variant's id.
                        res = [dict(r, workload=w) for r in res
                               if r["workload"] == base]
                    if status == "unsupported":
                        log("skip %s %s: not implemented there" % (w, rt))
                        skipped.add((w, rt))
                        continue
                    if status == "failed":
                        log("FAIL %s %s run %d: %s"
                            % (w, rt, i + 1, tail(output, 8).strip()))
                        continue
                    shown = []
                    for r in res:
                        key = (r["workload"], r["runtime"])
                        e = data.setdefault(key, {
                            "unit": r["unit"],
                            "lower_is_better": r["lower_is_better"],
                            "values": []})
                        e["values"].append(r["value"])
                        shown.append("%s=%s %s" % (r["workload"],
                                                   fmt(r["value"]), r["unit"]))
                    log("%-5s %-8s run %d/%d  %s  (%.1f s)"
                        % (w, rt, i + 1, args.runs, ", ".join(shown), took))
    return data


# ---------------------------------------------------------------- report


def fmt(v):
    a = abs(v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 1:
        return "%.3g" % v if a < 10 else "%.1f" % v
    return "%.3g" % v


def fmt_ratio(r):
    return ("%.0fx" % r) if r >= 100 else ("%.3gx" % r)


def wl_key(w):
    """Sort key: B1 < B1rss < B2 < B2ch < ... < B10."""
    m = re.match(r"^B(\d+)(.*)$", w)
    return (int(m.group(1)), m.group(2)) if m else (1 << 30, w)


def ratio(rows, w, rt):
    """peer / aioc for lower-is-better figures (above 1: aioc faster),
    aioc / peer otherwise; None where it means nothing."""
    if rt == "aioc" and w in EVENTS_RUNS:
        # The recorder's cost: its figure over the plain one.
        plain, ev = rows.get((EVENTS_RUNS[w], "aioc")), rows.get((w, rt))
        if not plain or not ev or plain["median"] <= 0:
            return None
        return ev["median"] / plain["median"]
    base = rows.get((RATIO_BASE.get(w, w), "aioc"))
    peer = rows.get((w, rt))
    if rt == "aioc" or base is None or peer is None:
        return None
    a, p = base["median"], peer["median"]
    if a <= 0 or p <= 0:
        return None
    return p / a if peer["lower_is_better"] else a / p


def targets(rows):
    """The targets of bench/README.md for the aioc rows: {workload: (ok, text)};
    ok is None when nothing could be checked."""
    out = {}

    def med(w, rt):
        r = rows.get((w, rt))
        return r["median"] if r else None

    def check(w, checks):
        parts, oks = [], []
        for label, ok, shown in checks:
            if ok is None:
                parts.append("%s: n/a" % label)
            else:
                oks.append(ok)
                parts.append("%s: %s%s" % (label, "ok" if ok else "NO",
                                           " (%s)" % shown if shown else ""))
        ok = all(oks) if oks else None
        out[w] = (ok, ("pass" if ok else "FAIL" if ok is not None else "n/a")
                  + " - " + "; ".join(parts))

    def faster(w, peer_rt, peer_w, times):
        a, p = med(w, "aioc"), med(peer_w, peer_rt)
        if a is None or p is None or a <= 0:
            return None, ""
        return p / a >= times, fmt_ratio(p / a)

    def at_most(w, peer_rt):
        a, p = med(w, "aioc"), med(w, peer_rt)
        if a is None or p is None:
            return None, ""
        return a <= p, "%s vs %s" % (fmt(a), fmt(p))

    a = med("B1", "aioc")
    if a is not None:
        check("B1", [("<=100 ns", a <= 100, fmt(a)),
                     (">=50x asyncio", *faster("B1", "asyncio", "B1", 50)),
                     (">=2x go", *faster("B1", "go", "B1", 2))])
    a = med("B2", "aioc")
    if a is not None:
        check("B2", [("<=30 ns", a <= 30, fmt(a)),
                     (">=2x go Gosched", *faster("B2", "go", "B2", 2))])
    a = med("B3", "aioc")
    if a is not None:
        check("B3", [("<=4.6 KiB", a <= 4.6 * 1024, fmt(a) + " B")])
    if med("B4", "aioc") is not None:
        check("B4", [("<= go", *at_most("B4", "go"))])
    if med("B4c", "aioc") is not None:
        check("B4c", [("<= libuv", *at_most("B4c", "libuv"))])
    a = med("B5", "aioc")
    if a is not None:
        check("B5", [("<=20 ns", a <= 20, fmt(a)),
                     (">=50x asyncio", *faster("B5", "asyncio", "B5", 50)),
                     (">=2x go", *faster("B5", "go", "B5", 2))])
    a = med("B7", "aioc")
    if a is not None:
        check("B7", [("<=25 ns", a <= 25, fmt(a)),
                     (">=50x asyncio", *faster("B7", "asyncio", "B7", 50))])
    if med("B6x", "aioc") is not None:
        check("B6x", [("faster than asyncio", *faster("B6x", "asyncio", "B6x", 1)),
                      ("faster than go", *faster("B6x", "go", "B6x", 1))])
    b8 = med("B8", "aioc")
    if b8 is not None:
        check("B8", [("within 10 ms of 200 ms", abs(b8 - 200) <= 10,
                      "%.1f ms" % b8)])
    a = med("B7", "aioc")
    t = med("B7t", "aioc")
    if t is not None and a is not None:
        check("B7t", [("<=1.25x aioc B7", t <= 1.25 * a,
                       "%+.0f%%" % ((t / a - 1) * 100))])
    # No target of its own: the iterator-object form of B7, for comparison
    # with the generator form (which needs two switches an item).
    if med("B7i", "aioc") is not None:
        check("B7i", [(">=50x asyncio", *faster("B7i", "asyncio", "B7i", 50))])
    return out


def summarise(data):
    rows = {}
    for (w, rt), e in data.items():
        if e["values"]:
            rows[(w, rt)] = {"median": statistics.median(e["values"]),
                             "unit": e["unit"],
                             "lower_is_better": e["lower_is_better"],
                             "runs": len(e["values"]),
                             "values": e["values"]}
    order = sorted(rows, key=lambda k: (wl_key(k[0]), RUNTIMES.index(k[1])
                                        if k[1] in RUNTIMES else 99, k[1]))
    return rows, order


def markdown(rows, order, tg, meta):
    # B6 and B10 say how they ran in their notes.
    own = [w for w in meta["workloads"]
           if w not in ("B6", "B6n", "B6tls", "B10")]
    lines = ["# aioc benchmarks: %s" % meta["date"], "",
             "Machine: %s, %s CPUs, load average %s at start, %s at the "
             "end.%s%s"
             % (meta["machine"], meta["cpus"], meta["loadavg"],
                meta.get("loadavg_end", "?"),
                (" N = %s tasks (B1, B3, B4, B4c); B2 makes 2,000,000 "
                 "switches, B5 passes 2,000,000 items. Median of %s run(s), "
                 "each a separate process."
                 % ("{:,}".format(meta["n"]), meta["runs"])) if own else "",
                " Go runs with GOMAXPROCS=%d." % meta["go_procs"]
                if "go" in meta["runtimes"] else ""),
             ""]
    lines += [note + "\n" for note in meta.get("notes", [])]
    if meta["versions"]:
        lines += ["Peers: " + ", ".join("%s %s" % kv for kv in
                                         sorted(meta["versions"].items())),
                  ""]
    lines += ["Ratio: peer / aioc for lower-is-better figures, so above 1 "
              "means aioc is faster (B2ch: against aioc's B2; B1ev, B2ev, "
              "B5ev, B7ev: aioc with the flight recorder on, over the plain "
              "figure, the recorder's cost).", "",
              "| workload | runtime | median | unit | ratio | target |",
              "|---|---|---:|---|---:|---|"]
    for w, rt in order:
        r = rows[(w, rt)]
        rat = ratio(rows, w, rt)
        t = tg.get(w, (None, ""))[1] if rt == "aioc" else ""
        lines.append("| %s | %s | %s | %s | %s | %s |"
                     % (w, rt, fmt(r["median"]), r["unit"],
                        fmt_ratio(rat) if rat is not None else "",
                        t))
    return "\n".join(lines) + "\n"


def chart(rows, order, path):
    """A clustered log-scale bar chart of the medians via gnuplot; returns a
    message if it could not be made."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "no gnuplot (Debian gnuplot-nox): chart skipped"
    workloads = sorted({w for w, _ in order}, key=wl_key)
    rts = [rt for rt in RUNTIMES if any(k[1] == rt for k in order)]
    if not workloads or not rts:
        return "nothing to chart"
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "latest.dat")
        with open(dat, "w") as f:
            f.write("workload " + " ".join(rts) + "\n")
            for w in workloads:
                unit = next(rows[k]["unit"] for k in order if k[0] == w)
                vals = []
                for rt in rts:
                    r = rows.get((w, rt))
                    # log scale: non-positive values (a B4 overhead below
                    # zero) cannot be drawn
                    vals.append("%.6g" % r["median"] if r and r["median"] > 0
                                else "?")
                f.write('"%s\\n(%s)" %s\n' % (w, unit, " ".join(vals)))
        gp = os.path.join(tmp, "latest.gp")
        width = max(700, 110 * len(workloads) + 150)
        with open(gp, "w") as f:
            term = ("pngcairo size %d,480 noenhanced font 'sans,10'"
                    if path.endswith(".png") else
                    "svg size %d,480 dynamic noenhanced font 'sans,11'")
            f.write("set terminal " + term % width + "\n")
            f.write("""set output '%s'
set title "aioc benchmarks: medians per workload (log scale; lower is better%s)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set datafile missing "?"
set grid ytics
set key outside right top
set xtics nomirror
set ytics nomirror
set bmargin 5
""" % (path, "".join(", except %s" % w for w in workloads
                      if any(k[0] == w and not rows[k]["lower_is_better"]
                             for k in order))))
            f.write("plot " + ", \\\n     ".join(
                "'%s' using %d:xtic(1) title columnheader(%d) lc rgb '%s'"
                % (dat, i + 2, i + 2, COLOURS.get(rt, "#7f7f7f"))
                for i, rt in enumerate(rts)) + "\n")
        rc, out = run_quiet([gnuplot, gp])
        if rc != 0:
            return "gnuplot failed:\n" + tail(out)
    return None


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(
        description="Run aioc's benchmarks against asyncio, uvloop, Go and "
                    "libuv.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Protocol" + __doc__.split("Protocol", 1)[1])
    ap.add_argument("--bench", default=DEFAULT_BENCH,
                    help="comma-separated workloads (default %(default)s)")
    ap.add_argument("--aioc-bin", default=None,
                    help="directory holding bench_aioc (default: the first "
                         "of build-bench/bench, build/bench, build)")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per pair (default $BENCH_RUNS, else 5, or 3 "
                         "with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="100,000 tasks instead of 1,000,000, 3 runs")
    ap.add_argument("--n", type=int, default=None,
                    help="task count for B1, B3, B4, B4c (overrides --quick)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES),
                    help="comma-separated subset of %(default)s")
    ap.add_argument("--out", default=os.path.join(BENCH_DIR, "results"),
                    help="output directory (default bench/results)")
    ap.add_argument("--build-dir", default=os.path.join(BENCH_DIR, "build"),
                    help="where the peers are built (default bench/build)")
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds allowed for one run (default %(default)s)")
    ap.add_argument("--go-procs", type=int, default=1,
                    help="GOMAXPROCS for the Go peer (default 1)")
    ap.add_argument("--b6-seconds", type=float, default=b6.SECONDS,
                    help="B6's measured window in seconds (default "
                         "%(default)s)")
    ap.add_argument("--b9-count", type=int, default=b9.COUNT,
                    help="B9's number of requests (default %(default)s)")
    ap.add_argument("--b9-inflight", type=int, default=b9.INFLIGHT,
                    help="B9's requests in flight (default %(default)s)")
    ap.add_argument("--b10-calls", type=int, default=None,
                    help="B10's calls per figure (default 100,000; 10,000 "
                         "with --quick)")
    ap.add_argument("--b10-runs", type=int, default=None,
                    help="B10's runs per figure of aioc and rabbitmq-c "
                         "(default 3; the local transport runs at least 5 "
                         "times)")
    ap.add_argument("--b10-pika-runs", type=int, default=None,
                    help="B10's runs per figure of pika (default 1, at most "
                         "--b10-runs: pika takes most of B10's time)")
    ap.add_argument("--install", action="store_true",
                    help="apt-get the missing peers first (root only)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if an aioc run fails or misses a target")
    args = ap.parse_args()

    if args.runs is None:
        env_runs = os.environ.get("BENCH_RUNS", "").strip()
        args.runs = int(env_runs) if env_runs else (3 if args.quick else 5)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    n = args.n if args.n is not None else (QUICK_N if args.quick else None)

    workloads = []
    for b in [b.strip() for b in args.bench.split(",") if b.strip()]:
        for w in EXPAND.get(b, [b]):
            if w not in workloads:
                workloads.append(w)
    wanted = [rt.strip() for rt in args.runtimes.split(",") if rt.strip()]
    for rt in wanted:
        if rt not in RUNTIMES:
            ap.error("unknown runtime %r (known: %s)"
                     % (rt, ",".join(RUNTIMES)))
    # B6 (TCP echo, client and server processes), B9 (HTTP clients against
    # nginx) and B10 (streaming RPC, with a broker) have drivers of their
    # own.
    selected = list(workloads)
    b6_selected = [w for w in (b6.WORKLOAD, b6.MULTI_WORKLOAD,
                               b6.TLS_WORKLOAD) if w in selected]
    workloads = [w for w in workloads
                 if w not in b6_selected + [b9.WORKLOAD, b10.WORKLOAD]]

    if workloads:
        cmds, py = prepare_runtimes(args, wanted)
    else:
        cmds, py = {}, python_for_peers()
    b6_prep = b6.prepare(args, wanted, py, log) if b6_selected else None
    if b6_prep and b6.TLS_WORKLOAD in b6_selected:
        b6.prepare_tls(args, b6_prep, log)
    b6_rts = sorted(b6_prep.servers, key=RUNTIMES.index) if b6_prep else []
    b9_prep = (b9.prepare(args, wanted, py, log)
               if b9.WORKLOAD in selected else None)
    b9_rts = sorted(b9_prep.clients, key=RUNTIMES.index) if b9_prep else []
    b10_prep = (b10.prepare(args, wanted, py, log)
                if b10.WORKLOAD in selected else None)
    b10_rts = sorted(b10_prep.cmds, key=RUNTIMES.index) if b10_prep else []
    if not cmds and not b6_rts and not b9_rts and not b10_rts:
        log("nothing to run")
        return 1
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": "%s %s" % (platform.system(), platform.release()),
        "cpus": os.cpu_count(),
        "loadavg": "%.2f" % os.getloadavg()[0],
        "n": n if n is not None else 1_000_000,
        "runs": args.runs,
        "go_procs": args.go_procs,
        "versions": versions(py, set(cmds) | set(b6_rts) | set(b9_rts) |
                             set(b10_rts)),
        "workloads": selected,
        "runtimes": sorted(set(cmds) | set(b6_rts) | set(b9_rts) |
                           set(b10_rts), key=RUNTIMES.index),
        "notes": (([b6.describe(args.b6_seconds)]
                   if b6.WORKLOAD in b6_selected else []) +
                  ([b6.describe_multi()]
                   if b6.MULTI_WORKLOAD in b6_selected else []) +
                  ([b6.describe_tls()]
                   if b6.TLS_WORKLOAD in b6_selected else []) +
                  ([b9.describe(args.b9_count, args.b9_inflight)]
                   if b9_prep else []) +
                  ([b10.describe(args)] if b10_prep else [])),
    }
    log("running %s on %s, %d run(s) each, N=%s%s"
        % (",".join(selected), ",".join(meta["runtimes"]), args.runs,
           "{:,}".format(meta["n"]),
           "; B10: %d run(s) (pika %d), %s calls"
           % (b10.runs_for(args), b10.pika_runs_for(args),
              "{:,}".format(b10.calls_for(args)))
           if b10_prep else ""))

    data = run_all(args, cmds, workloads, n) if cmds else {}
    if b6_prep:
        try:
            data.update(b6.run(args, b6_prep, log, b6_selected))
        finally:
            b6.cleanup_tls(b6_prep)
    if b9_prep:
        data.update(b9.run(args, b9_prep, log))
    if b10_prep:
        data.update(b10.run(args, b10_prep, log))
    meta["loadavg_end"] = "%.2f" % os.getloadavg()[0]
    rows, order = summarise(data)
    tg = targets(rows)
    tg.update(b6.targets(rows))
    tg.update(b6.targets_multi(rows))
    tg.update(b6.targets_tls(rows))
    tg.update(b9.targets(rows))
    tg.update(b10.targets(rows))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump([{"workload": w, "runtime": rt,
                    "median": float("%.6g" % rows[(w, rt)]["median"]),
                    "unit": rows[(w, rt)]["unit"],
                    "lower_is_better": rows[(w, rt)]["lower_is_better"],
                    "runs": rows[(w, rt)]["runs"]} for w, rt in order],
                  f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "latest.raw.json"), "w") as f:
        json.dump({"meta": meta,
                   "results": [dict(workload=w, runtime=rt,
                                    **rows[(w, rt)]) for w, rt in order],
                   "targets": {w: {"pass": ok, "detail": txt}
                               for w, (ok, txt) in tg.items()}},
                  f, indent=2)
        f.write("\n")
    md = markdown(rows, order, tg, meta)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    msg = chart(rows, order, os.path.join(args.out, "latest.svg"))
    log("")
    log(md)
    if msg:
        log(msg)
    log("wrote %s/latest.{json,md,raw.json%s}"
        % (args.out, "" if msg else ",svg"))

    if args.strict and "aioc" in meta["runtimes"]:
        checked = ((workloads if "aioc" in cmds else []) +
                   ([w + "2" if w == b6.MULTI_WORKLOAD else w
                     for w in b6_selected]
                    if "aioc" in b6_rts else []) +
                   ([b9.WORKLOAD] if "aioc" in b9_rts else []) +
                   ([b10.local_id(n) for n in b10.LOCAL_INFLIGHT] +
                    ([] if b10_prep.broker_missing else
                     [b10.amqp_id(w, n) for w, n in b10.AMQP_CONFIGS])
                    if "aioc" in b10_rts else []))
        aioc_missing = [w for w in checked if w not in NOT_AIOC and
                        not any(k == (w, "aioc") for k in rows)]
        failed = [w for w, (ok, _) in tg.items() if ok is False]
        if aioc_missing or failed:
            log("strict: aioc missing %s, targets failed %s"
                % (aioc_missing or "-", failed or "-"))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
