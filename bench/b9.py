#!/usr/bin/env python3
"""B9: 10,000 GETs of a 1 KiB file from a local nginx, 100 in flight.

Every client is a separate process invoked as `PROGRAM URL COUNT INFLIGHT`:
it makes COUNT GET requests of URL with INFLIGHT of them in flight at any
time over kept-alive HTTP/1.1 connections, checks that every response is
200 with 1024 bytes, and prints

  RESULT workload=B9 runtime=<name> value=<requests per second>
         unit=req/s lower_is_better=0

(one line), timed from its first request to its last response, the
connections' setup included, and optionally an `INFO key=value ...` line
(connections=N: how many it opened). It exits 0, or non-zero on any failed
request. The clients:

  aioc        build-bench/bench/b9_aioc (aioc's HTTP client on libcurl), if
              it is built; otherwise B9 says so and runs the peers alone
  curl        peers/b9_curl.c: libcurl's multi interface in its own loop,
              curl_multi_perform + curl_multi_poll (the floor: the same
              library, no runtime)
  curl-epoll  the same program with --epoll: curl_multi_socket_action on
              an epoll set and a timerfd, the form an event loop uses
  aiohttp     peers/b9_aiohttp.py: Python asyncio, one aiohttp
              ClientSession, INFLIGHT worker tasks (/usr/bin/python3)
  go          peers/b9_go.go: net/http, MaxIdleConnsPerHost=INFLIGHT,
              INFLIGHT goroutines, GOMAXPROCS=1 (--go-procs)

The server is one nginx started for the whole of B9 by scripts/nginx.sh
(in a temporary directory, access log off, one worker process) and stopped
and removed at the end, also on failure or interruption; the URL is its
plain HTTP port's /1k. Within a round the clients take turns.

Called by run.py (`--bench B9`), or alone:

  python3 bench/b9.py [--runs N] [--runtimes aioc,curl,...] [--count N]
                      [--inflight N] [--url URL]

(--url: an HTTP server of your own serving 1024 bytes there; then no
nginx is started.)
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import b6

WORKLOAD = "B9"
COUNT = 10_000
INFLIGHT = 100
BODY = 1024
PATH = "/1k"

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PEERS = os.path.join(BENCH_DIR, "peers")
NGINX_SH = os.path.join(ROOT, "scripts", "nginx.sh")
RUNTIMES = ["aioc", "curl", "curl-epoll", "aiohttp", "go"]
AIOC_BIN_DIRS = ["build-bench/bench", "build/bench", "build"]
AIOC_CLIENT = "b9_aioc"
RUN_TIMEOUT = 300.0    # s for one client run

RESULT_RE = re.compile(r"^RESULT\s+(.*)$")
INFO_RE = re.compile(r"^INFO\s+(.*)$")


def _print(msg):
    print(msg, flush=True)


_run_quiet, _tail, _fields, _fmt = b6._run_quiet, b6._tail, b6._fields, b6._fmt


def build_curl(build_dir):
    """Builds peers/b9_curl.c against the system libcurl."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    flags = ["-lcurl"]
    if shutil.which("pkg-config"):
        rc, out = _run_quiet(["pkg-config", "--cflags", "--libs", "libcurl"])
        if rc != 0:
            return None, ("libcurl not found by pkg-config (Debian "
                          "libcurl4-openssl-dev)")
        flags = out.split()
    out_bin = os.path.join(build_dir, "b9_curl")
    rc, out = _run_quiet([cc, "-O2", "-o", out_bin,
                          os.path.join(PEERS, "b9_curl.c")] + flags)
    if rc != 0:
        return None, "cc b9_curl.c failed:\n%s" % _tail(out)
    return out_bin, None


class Prepared:
    """The clients that can run: clients maps a runtime to the argv that
    URL COUNT INFLIGHT are appended to."""

    def __init__(self):
        self.clients = {}


def prepare(args, wanted, py=None, log=_print):
    """Builds the peers and finds aioc's client; prints a line for each
    client that cannot run."""
    build_dir = getattr(args, "build_dir", None) or os.path.join(BENCH_DIR,
                                                                 "build")
    os.makedirs(build_dir, exist_ok=True)
    py = py or b6.python_for_peers()
    prep = Prepared()
    curl_exe, curl_why = None, None
    if "curl" in wanted or "curl-epoll" in wanted:
        curl_exe, curl_why = build_curl(build_dir)
    for rt in [r for r in RUNTIMES if r in wanted]:
        why = None
        if rt == "aioc":
            aioc_bin = getattr(args, "aioc_bin", None)
            dirs = ([aioc_bin] if aioc_bin else
                    [os.path.join(ROOT, d) for d in AIOC_BIN_DIRS])
            exes = [os.path.join(d, AIOC_CLIENT) for d in dirs]
            found = [e for e in exes if os.access(e, os.X_OK)]
            if found:
                prep.clients[rt] = [found[0]]
            else:
                why = ("aioc's client %s not found (not built yet); B9 runs "
                       "the peers only" % " or ".join(exes))
        elif rt in ("curl", "curl-epoll"):
            if curl_exe:
                prep.clients[rt] = [curl_exe] + (["--epoll"]
                                                 if rt == "curl-epoll" else [])
            else:
                why = curl_why
        elif rt == "aiohttp":
            if _run_quiet([py, "-c", "import aiohttp"])[0] != 0:
                why = "aiohttp not importable by %s (Debian python3-aiohttp)" % py
            else:
                prep.clients[rt] = [py, os.path.join(PEERS, "b9_aiohttp.py")]
        elif rt == "go":
            exe, why = b6.build_go(build_dir, "b9_go")
            if exe:
                prep.clients[rt] = [exe]
        if why:
            log("skip %s %s: %s" % (WORKLOAD, rt, why))
    return prep


# ---------------------------------------------------------------- nginx


def start_nginx(log=_print):
    """Starts nginx.sh in a new temporary directory. Returns (dir, url) or
    (None, why)."""
    if not os.access(NGINX_SH, os.X_OK):
        return None, "%s missing" % NGINX_SH
    d = tempfile.mkdtemp(prefix="aioc-b9-nginx.")
    env = dict(os.environ, NGINX_ACCESS_LOG="0", NGINX_WORKERS="1")
    rc, out = _run_quiet([NGINX_SH, "start", d], env=env, timeout=120)
    if rc != 0:
        stop_nginx(d)
        if rc == 77:
            return None, "nginx or openssl not installed (Debian nginx-light)"
        return None, "nginx did not start:\n" + _tail(out)
    keys = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                keys[k] = v
    return d, "http://127.0.0.1:%s%s" % (keys["HTTP_PORT"], PATH)


def stop_nginx(d):
    if d:
        _run_quiet([NGINX_SH, "destroy", d], timeout=60)
        shutil.rmtree(d, ignore_errors=True)


def check_url(url):
    """One GET with urllib: None if it is 200 with BODY bytes, else why."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as r:
            body = r.read()
            if r.status != 200 or len(body) != BODY:
                return "%s: status %d, %d bytes (want 200, %d)" % (
                    url, r.status, len(body), BODY)
    except OSError as e:
        return "%s: %s" % (url, e)
    return None


# ---------------------------------------------------------------- runs


def run_once(argv, env):
    """Runs one client once. Returns (results, info, problem)."""
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [], {}, "timed out after %.0f s" % RUN_TIMEOUT
    except OSError as e:
        return [], {}, str(e)
    results, info = [], {}
    for line in p.stdout.splitlines():
        m = RESULT_RE.match(line.strip())
        if m:
            f = _fields(m.group(1))
            try:
                results.append({
                    "workload": f["workload"], "runtime": f["runtime"],
                    "value": float(f["value"]), "unit": f.get("unit", ""),
                    "lower_is_better": f.get("lower_is_better", "1") != "0"})
            except (KeyError, ValueError):
                pass
        m = INFO_RE.match(line.strip())
        if m:
            info = _fields(m.group(1))
    if p.returncode != 0:
        return [], info, "exit %d:\n%s" % (p.returncode, _tail(p.stdout))
    if not results:
        return [], info, "no RESULT line:\n" + _tail(p.stdout)
    return results, info, None


def run(args, prep, log=_print):
    """Starts nginx, runs every prepared client args.runs times (taking
    turns within each round), stops nginx. Returns {(workload, runtime):
    {"unit", "lower_is_better", "values"}} as run.py's run_all does."""
    data = {}
    if not prep.clients:
        return data
    runs = getattr(args, "runs", None) or 5
    count = getattr(args, "b9_count", None) or COUNT
    inflight = getattr(args, "b9_inflight", None) or INFLIGHT
    url = getattr(args, "b9_url", None)
    # Straight to the server: no proxy from the environment (libcurl
    # would take http_proxy).
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["GOMAXPROCS"] = str(getattr(args, "go_procs", 1))
    nginx_dir = None
    try:
        if not url:
            nginx_dir, url = start_nginx(log)
            if not nginx_dir:
                log("skip %s: %s" % (WORKLOAD, url))
                return data
        why = check_url(url)
        if why:
            log("skip %s: the server does not answer as B9 needs: %s"
                % (WORKLOAD, why))
            return data
        failed = set()
        for i in range(runs):
            for rt in [r for r in RUNTIMES if r in prep.clients]:
                if rt in failed:
                    continue
                t0 = time.monotonic()
                argv = prep.clients[rt] + [url, str(count), str(inflight)]
                results, info, problem = run_once(argv, env)
                took = time.monotonic() - t0
                if problem:
                    log("FAIL %s %s run %d: %s" % (WORKLOAD, rt, i + 1,
                                                   problem.strip()))
                    failed.add(rt)
                    continue
                shown = []
                for r in results:
                    e = data.setdefault((r["workload"], r["runtime"]), {
                        "unit": r["unit"],
                        "lower_is_better": r["lower_is_better"],
                        "values": []})
                    e["values"].append(r["value"])
                    shown.append("%s=%s %s" % (r["workload"], _fmt(r["value"]),
                                               r["unit"]))
                extra = ("; %s connections" % info["connections"]
                         if "connections" in info else "")
                log("%-5s %-10s run %d/%d  %s  (%.1f s%s)"
                    % (WORKLOAD, rt, i + 1, runs, ", ".join(shown), took,
                       extra))
    finally:
        stop_nginx(nginx_dir)
    return data


def describe(count=COUNT, inflight=INFLIGHT):
    return ("B9: %s GETs of a %d-byte file from a local nginx (one worker, "
            "access log off, HTTP/1.1 keep-alive on 127.0.0.1) with %d in "
            "flight, requests per second from the first request to the last "
            "response; every client a separate process checking each "
            "response. curl: libcurl's multi loop (curl_multi_poll); "
            "curl-epoll: curl_multi_socket_action on epoll and a timerfd; "
            "aiohttp: one ClientSession, %d worker tasks; go: net/http with "
            "MaxIdleConnsPerHost=%d, %d goroutines. Ratio aioc / peer, so "
            "above 1 means aioc makes more requests per second."
            % ("{:,}".format(count), BODY, inflight, inflight, inflight,
               inflight))


def targets(rows):
    """The B9 target for run.py's table: aioc within 10% of curl's own
    multi loop, ahead of aiohttp and Go."""
    def med(rt):
        r = rows.get((WORKLOAD, rt))
        return r["median"] if r else None

    a = med("aioc")
    if a is None:
        return {}
    parts, oks = [], []
    c = med("curl")
    if c is None:
        parts.append(">=0.9x curl: n/a")
    else:
        oks.append(a >= 0.9 * c)
        parts.append(">=0.9x curl: %s (%.0f%% of curl)"
                     % ("ok" if a >= 0.9 * c else "NO", 100.0 * a / c))
    for rt in ("aiohttp", "go"):
        p = med(rt)
        if p is None:
            parts.append("> %s: n/a" % rt)
        else:
            oks.append(a > p)
            parts.append("> %s: %s (%.3gx)" % (rt, "ok" if a > p else "NO",
                                                a / p))
    ok = all(oks) if oks else None
    return {WORKLOAD: (ok, ("pass" if ok else "FAIL" if ok is not None
                            else "n/a") + " - " + "; ".join(parts))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--aioc-bin", default=None)
    ap.add_argument("--build-dir", default=os.path.join(BENCH_DIR, "build"))
    ap.add_argument("--go-procs", type=int, default=1)
    ap.add_argument("--count", "--b9-count", type=int, default=COUNT,
                    dest="b9_count")
    ap.add_argument("--inflight", "--b9-inflight", type=int,
                    default=INFLIGHT, dest="b9_inflight")
    ap.add_argument("--url", "--b9-url", default=None, dest="b9_url")
    args = ap.parse_args()
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for rt in wanted:
        if rt not in RUNTIMES:
            ap.error("unknown runtime %r (known: %s)"
                     % (rt, ",".join(RUNTIMES)))
    prep = prepare(args, wanted)
    data = run(args, prep)
    rows = {}
    for (w, rt), e in sorted(data.items(), key=lambda kv:
                             RUNTIMES.index(kv[0][1])
                             if kv[0][1] in RUNTIMES else 99):
        rows[(w, rt)] = {"median": statistics.median(e["values"])}
        _print("%-4s %-10s median %s %s  (%d run(s))"
               % (w, rt, _fmt(rows[(w, rt)]["median"]), e["unit"],
                  len(e["values"])))
    for w, (ok, text) in targets(rows).items():
        _print("target %s: %s" % (w, text))
    return 0 if data else 1


if __name__ == "__main__":
    sys.exit(main())
