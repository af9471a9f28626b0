#!/usr/bin/env python3
"""B6: TCP echo on 127.0.0.1, 100 connections, 64-byte ping-pong, 5 s.

One client program, bench/peers/echo_client.c (libuv, in C), drives in turn
the echo servers of aioc (echo_aioc, built by CMake next to bench_aioc), libuv
(peers/echo_uv.c), asyncio and uvloop (peers/echo_asyncio.py, streams) and Go
(peers/echo_go.go), each a separate process invoked as `SERVER PORT`,
listening on 127.0.0.1:PORT and exiting 0 on SIGTERM.

For each run of each server: a free port is picked, the server is started and
waited for (connect retries), the client opens the connections, warms up for
1 s, measures a window of 5 s and closes its connections, then the server is
stopped with SIGTERM. Figures, both over the measured window:

  B6     round trips per second (higher is better)
  B6cpu  the server's CPU time (user + system, all threads, read from
         /proc/PID/stat by the client at the window's edges) per round trip,
         in microseconds (lower is better)

The runtime of a B6 figure is the server's. A server that does not start is
reported and skipped. Nothing is pinned to a CPU.

B6n (`--bench B6n`) runs the same workload against aioc's server with 1
and then 2 loops on as many threads (`echo_aioc --loops N`: every loop
listens on the port with SO_REUSEPORT), and against Go's server with
GOMAXPROCS 1 and 2, as workloads B6n1 and B6n2 (round trips per second)
and B6n1cpu and B6n2cpu (server CPU per round trip): does a second loop
serve more when the machine has a core for it?

B6tls (`--bench B6tls`) is B6 over TLS 1.3: aioc's server (`echo_aioc
--tls CERT KEY`, OpenSSL) against Go's (crypto/tls), both driven by one
Go client, peers/echo_tls_client.go (GOMAXPROCS 1), with an ECDSA P-256
certificate for "localhost" made by the openssl command for the run;
workloads B6tls (round trips per second) and B6tlscpu (server CPU per
round trip).

Called by run.py (`--bench B6`, `B6n` or `B6tls`), or alone:

  python3 bench/b6.py [--runs N] [--runtimes aioc,libuv,...] [--seconds S]
                      [--bench B6,B6n,B6tls]
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOAD = "B6"
CPU_WORKLOAD = "B6cpu"
MULTI_WORKLOAD = "B6n"
MULTI_LOOPS = (1, 2)
MULTI_RUNTIMES = ["aioc", "go"]
TLS_WORKLOAD = "B6tls"
TLS_RUNTIMES = ["aioc", "go"]
HOST = "127.0.0.1"
CONNECTIONS = 100
SIZE = 64
SECONDS = 5.0
WARMUP = 1.0

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
PEERS = os.path.join(BENCH_DIR, "peers")
RUNTIMES = ["aioc", "asyncio", "uvloop", "go", "libuv"]
AIOC_BIN_DIRS = ["build-bench/bench", "build/bench", "build"]
AIOC_SERVER = "echo_aioc"

START_TIMEOUT = 10.0   # s for a server to accept connections
STOP_TIMEOUT = 10.0    # s for a server to exit after SIGTERM
CLIENT_SLACK = 30.0    # s allowed to the client beyond warm-up + window

RESULT_RE = re.compile(r"^RESULT\s+(.*)$")
INFO_RE = re.compile(r"^INFO\s+(.*)$")


def _print(msg):
    print(msg, flush=True)


def _run_quiet(cmd, env=None, timeout=600):
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout
    except (OSError, subprocess.SubprocessError) as e:
        return -1, str(e)


def _tail(text, lines=8):
    return "\n".join("    " + l for l in text.strip().splitlines()[-lines:])


def _fields(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


# ---------------------------------------------------------------- building


def _uv_flags():
    if not shutil.which("pkg-config"):
        return ["-luv"], None
    rc, out = _run_quiet(["pkg-config", "--cflags", "--libs", "libuv"])
    if rc != 0:
        return None, "libuv not found by pkg-config (Debian libuv1-dev)"
    return out.split(), None


def build_c(build_dir, name):
    """Builds bench/peers/NAME.c against the system libuv into build_dir."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    flags, why = _uv_flags()
    if flags is None:
        return None, why
    out_bin = os.path.join(build_dir, name)
    rc, out = _run_quiet([cc, "-O2", "-o", out_bin,
                          os.path.join(PEERS, name + ".c")] + flags)
    if rc != 0:
        return None, "cc %s.c failed:\n%s" % (name, _tail(out))
    return out_bin, None


def build_go(build_dir, name):
    """Builds bench/peers/NAME.go (one file, no modules, offline)."""
    go = shutil.which("go")
    if not go:
        return None, "no `go` command (Debian golang-go)"
    out_bin = os.path.join(build_dir, name)
    env = dict(os.environ, GO111MODULE="off", GOPROXY="off",
               GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    env.setdefault("GOCACHE", os.path.join(build_dir, "go-cache"))
    rc, out = _run_quiet([go, "build", "-o", out_bin,
                          os.path.join(PEERS, name + ".go")], env=env)
    if rc != 0:
        return None, "go build %s.go failed:\n%s" % (name, _tail(out))
    return out_bin, None


def python_for_peers():
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return sys.executable


class Prepared:
    """The client and the servers that can run: servers maps a runtime to
    the argv the port is appended to; tls_client and tls_dir (certificate
    files) for B6tls."""

    def __init__(self):
        self.client = None
        self.servers = {}
        self.tls_client = None
        self.tls_dir = None


def prepare_tls(args, prep, log=_print):
    """B6tls: builds the TLS client and makes a certificate for the run
    (in a temporary directory removed by cleanup_tls())."""
    build_dir = getattr(args, "build_dir", None) or os.path.join(BENCH_DIR,
                                                                 "build")
    exe, why = build_go(build_dir, "echo_tls_client")
    if not exe:
        log("skip %s: the client cannot be built: %s" % (TLS_WORKLOAD, why))
        return False
    if not shutil.which("openssl"):
        log("skip %s: no openssl command (Debian openssl)" % TLS_WORKLOAD)
        return False
    d = tempfile.mkdtemp(prefix="b6tls-")
    rc, out = _run_quiet(["openssl", "req", "-x509", "-newkey", "ec",
                          "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", os.path.join(d, "key.pem"),
                          "-out", os.path.join(d, "cert.pem"), "-days", "2",
                          "-subj", "/CN=localhost",
                          "-addext", "subjectAltName=DNS:localhost"])
    if rc != 0:
        shutil.rmtree(d, ignore_errors=True)
        log("skip %s: openssl could not make a certificate:\n%s"
            % (TLS_WORKLOAD, _tail(out)))
        return False
    prep.tls_client, prep.tls_dir = exe, d
    return True


def cleanup_tls(prep):
    if prep and prep.tls_dir:
        shutil.rmtree(prep.tls_dir, ignore_errors=True)
        prep.tls_dir = None


def prepare(args, wanted, py=None, log=_print):
    """Builds the client and the peer servers and finds aioc's; prints a line
    for each server that cannot run."""
    build_dir = getattr(args, "build_dir", None) or os.path.join(BENCH_DIR,
                                                                 "build")
    os.makedirs(build_dir, exist_ok=True)
    py = py or python_for_peers()
    prep = Prepared()
    prep.client, why = build_c(build_dir, "echo_client")
    if not prep.client:
        log("skip %s: the client cannot be built: %s" % (WORKLOAD, why))
        return prep
    for rt in [r for r in RUNTIMES if r in wanted]:
        why = None
        if rt == "aioc":
            aioc_bin = getattr(args, "aioc_bin", None)
            dirs = ([aioc_bin] if aioc_bin else
                    [os.path.join(ROOT, d) for d in AIOC_BIN_DIRS])
            exes = [os.path.join(d, AIOC_SERVER) for d in dirs]
            found = [e for e in exes if os.access(e, os.X_OK)]
            if found:
                prep.servers[rt] = [found[0]]
            else:
                why = ("aioc's server %s not found (build it first); B6 runs "
                       "the peers only" % " or ".join(exes))
        elif rt in ("asyncio", "uvloop"):
            cmd = [py, os.path.join(PEERS, "echo_asyncio.py")]
            if rt == "uvloop":
                if _run_quiet([py, "-c", "import uvloop"])[0] != 0:
                    why = ("uvloop not importable by %s (Debian "
                           "python3-uvloop)" % py)
                cmd.append("--uvloop")
            if not why:
                prep.servers[rt] = cmd
        elif rt == "go":
            exe, why = build_go(build_dir, "echo_go")
            if exe:
                prep.servers[rt] = [exe]
        elif rt == "libuv":
            exe, why = build_c(build_dir, "echo_uv")
            if exe:
                prep.servers[rt] = [exe]
        if why:
            log("skip %s %s: %s" % (WORKLOAD, rt, why))
    return prep


# ---------------------------------------------------------------- one run


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(proc, port, timeout=START_TIMEOUT):
    """Waits until the server accepts a connection; returns None or why
    not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited with status %d before listening" % proc.returncode
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.05)
    return "not listening on %s:%d after %.0f s" % (HOST, port, timeout)


def stop_server(proc, timeout=STOP_TIMEOUT):
    """SIGTERMs the server and reaps it; returns (exit status as Popen gives
    it, total CPU seconds of its life from wait4, or None)."""
    if proc.returncode is not None:
        return proc.returncode, None
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    return (rc if not killed else "killed after %.0f s" % timeout,
            ru.ru_utime + ru.ru_stime)


def run_once(prep, rt, env, seconds, warmup, log_dir, argv=None,
             client=None):
    """One run of one server (argv, default prep.servers[rt], the port
    appended) driven by client (default [prep.client]). Returns (results,
    info, problem): results the parsed RESULT lines, info the client's INFO
    fields plus the server's total CPU, problem None or a text saying what
    went wrong."""
    port = free_port()
    argv = argv or prep.servers[rt]
    client = client or [prep.client]
    out_path = os.path.join(log_dir, "%s-%d.log" % (rt, port))
    start_problem = None
    client_rc, client_out = None, ""
    with open(out_path, "w+") as out:
        try:
            proc = subprocess.Popen(argv + [str(port)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        except OSError as e:
            return [], {}, "server did not start: %s" % e
        try:
            start_problem = wait_listening(proc, port)
            if start_problem is None:
                cmd = client + ["-r", rt, "-p", str(proc.pid),
                       "-w", str(warmup), HOST, str(port), str(CONNECTIONS),
                       str(SIZE), str(seconds)]
                try:
                    p = subprocess.run(cmd, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       timeout=warmup + seconds + CLIENT_SLACK)
                    client_rc, client_out = p.returncode, p.stdout
                except subprocess.TimeoutExpired:
                    client_rc, client_out = -1, "client timed out"
        finally:
            rc, total_cpu = stop_server(proc)
        out.seek(0)
        server_out = out.read()
    os.unlink(out_path)
    server_tail = ("\n  server output:\n" + _tail(server_out)
                   if server_out.strip() else "")
    if start_problem:
        return [], {}, "server " + start_problem + server_tail
    if client_rc != 0:
        return [], {}, ("client failed (exit %d):\n%s%s"
                        % (client_rc, _tail(client_out), server_tail))
    results, info = [], {}
    for line in client_out.splitlines():
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
    if total_cpu is not None:
        info["server_total_cpu_s"] = "%.2f" % total_cpu
    problem = None
    if rc != 0:
        problem = "server did not exit 0 on SIGTERM (%s)%s" % (rc,
                                                                server_tail)
    if not results:
        return [], info, "no RESULT line from the client:\n" + _tail(
            client_out)
    return results, info, problem


def _fmt(v):
    return "{:,.0f}".format(v) if abs(v) >= 1000 else "%.3g" % v


def _plan(args, prep, workloads):
    """The runs of one round: (benchmark, label, runtime, the workload id
    its results take instead of B6's or None, argv, environment, client
    argv or None)."""
    env = dict(os.environ)
    env["GOMAXPROCS"] = str(getattr(args, "go_procs", 1))
    plan = []
    if WORKLOAD in workloads:
        plan += [(WORKLOAD, rt, rt, None, prep.servers[rt], env, None)
                 for rt in RUNTIMES if rt in prep.servers]
    if MULTI_WORKLOAD in workloads:
        for loops in MULTI_LOOPS:
            for rt in [r for r in MULTI_RUNTIMES if r in prep.servers]:
                e, argv = dict(env), list(prep.servers[rt])
                if rt == "go":
                    e["GOMAXPROCS"] = str(loops)
                else:
                    argv += ["--loops", str(loops)]
                plan.append((MULTI_WORKLOAD, "%s/%d" % (rt, loops), rt,
                             "%s%d" % (MULTI_WORKLOAD, loops), argv, e, None))
    if TLS_WORKLOAD in workloads and prep.tls_client:
        cert = os.path.join(prep.tls_dir, "cert.pem")
        key = os.path.join(prep.tls_dir, "key.pem")
        client = [prep.tls_client, "-ca", cert]
        for rt in [r for r in TLS_RUNTIMES if r in prep.servers]:
            plan.append((TLS_WORKLOAD, "%s/tls" % rt, rt, None,
                         prep.servers[rt] + ["--tls", cert, key], env,
                         client))
    return plan


def run(args, prep, log=_print, workloads=(WORKLOAD,)):
    """Runs every prepared server args.runs times, the servers taking turns
    within each round: B6, and B6n (1 and 2 loops) if in workloads. Returns
    {(workload, runtime): {"unit", "lower_is_better", "values"}} as run.py's
    run_all does."""
    data = {}
    if not prep.client or not prep.servers:
        return data
    runs = getattr(args, "runs", None) or 5
    seconds = getattr(args, "b6_seconds", None) or SECONDS
    failed = set()
    plan = _plan(args, prep, workloads)
    with tempfile.TemporaryDirectory(prefix="b6-") as log_dir:
        for i in range(runs):
            for bench, label, rt, rename, argv, env, client in plan:
                if label in failed:
                    continue
                t0 = time.monotonic()
                results, info, problem = run_once(prep, rt, env, seconds,
                                                  WARMUP, log_dir, argv,
                                                  client)
                took = time.monotonic() - t0
                if rename:
                    for r in results:
                        r["workload"] = r["workload"].replace(WORKLOAD,
                                                              rename, 1)
                if not results:
                    log("FAIL %s %s run %d: %s" % (bench, label, i + 1,
                                                   problem.strip()))
                    if problem.startswith("server"):
                        # It does not start: no use trying it again.
                        log("skip %s %s: its server does not run"
                            % (bench, label))
                        failed.add(label)
                    continue
                shown = []
                for r in results:
                    e = data.setdefault((r["workload"], rt), {
                        "unit": r["unit"],
                        "lower_is_better": r["lower_is_better"],
                        "values": []})
                    e["values"].append(r["value"])
                    shown.append("%s=%s %s" % (r["workload"], _fmt(r["value"]),
                                               r["unit"]))
                extra = []
                if "client_cpu_us_per_rt" in info:
                    extra.append("client %s \u00b5s/rt"
                                 % _fmt(float(info["client_cpu_us_per_rt"])))
                if "server_total_cpu_s" in info:
                    extra.append("server %s s CPU in all"
                                 % info["server_total_cpu_s"])
                if "conn_rt_min" in info:
                    extra.append("per connection %s-%s rt"
                                 % (info["conn_rt_min"], info["conn_rt_max"]))
                log("%-5s %-8s run %d/%d  %s  (%s; %.1f s)"
                    % (bench, label, i + 1, runs, ", ".join(shown),
                       "; ".join(extra), took))
                if problem:
                    log("  warning: %s %s: %s" % (bench, label, problem))
    return data


def describe(seconds=SECONDS):
    return ("B6: TCP echo on %s, %d connections, %d-byte ping-pong, "
            "%.0f s window after %.0f s of warm-up, one libuv client for every "
            "server; the runtime is the server's (asyncio and uvloop: "
            "`asyncio.start_server` streams). B6 in round trips per second "
            "(ratio aioc / peer, so above 1 means aioc serves more), B6cpu "
            "the server's CPU time per round trip."
            % (HOST, CONNECTIONS, SIZE, seconds, WARMUP))


def describe_multi():
    return ("B6n: B6 against aioc's server with 1 and 2 loops on as many "
            "threads sharing the port (SO_REUSEPORT), B6n1 and B6n2, and Go's "
            "with GOMAXPROCS 1 and 2; the client takes a core of its own. "
            "Ratios aioc / Go.")


def targets_multi(rows):
    """B6n: a second loop serves more round trips than one (when the
    machine has a core for it)."""
    r1 = rows.get((MULTI_WORKLOAD + "1", "aioc"))
    r2 = rows.get((MULTI_WORKLOAD + "2", "aioc"))
    if not r1 or not r2:
        return {}
    a, b = r1["median"], r2["median"]
    ok = b > a
    return {MULTI_WORKLOAD + "2": (ok, "%s - 2 loops / 1 loop: %.2fx (%s vs "
                                  "%s rt/s)" % ("pass" if ok else "FAIL",
                                                b / a, _fmt(b), _fmt(a)))}


def describe_tls():
    return ("B6tls: B6 over TLS 1.3 (ECDSA P-256 certificate), aioc's "
            "server on OpenSSL against Go's crypto/tls server, one Go client "
            "(GOMAXPROCS 1) for both. B6tls in round trips per second, "
            "B6tlscpu the server's CPU time per round trip.")


def targets_tls(rows):
    """B6tls: aioc serves at least as many round trips as Go's crypto/tls
    server at no more CPU per round trip."""
    def med(w, rt):
        r = rows.get((w, rt))
        return r["median"] if r else None
    a, g = med(TLS_WORKLOAD, "aioc"), med(TLS_WORKLOAD, "go")
    ac, gc = med(TLS_WORKLOAD + "cpu", "aioc"), med(TLS_WORKLOAD + "cpu", "go")
    if a is None or g is None:
        return {}
    oks = [a >= g] + ([ac <= gc] if ac is not None and gc is not None else [])
    ok = all(oks)
    txt = ">= go rt/s: %s (%s vs %s)" % ("ok" if a >= g else "NO", _fmt(a),
                                        _fmt(g))
    if ac is not None and gc is not None:
        txt += "; <= go CPU/rt: %s (%.3g vs %.3g \u00b5s)" % (
            "ok" if ac <= gc else "NO", ac, gc)
    return {TLS_WORKLOAD: (ok, ("pass" if ok else "FAIL") + " - " + txt)}


def targets(rows):
    """The B6 target for run.py's table: the aioc server at least as fast as
    the libuv server, at no more server CPU per round trip."""
    def med(w, rt):
        r = rows.get((w, rt))
        return r["median"] if r else None

    a, u = med(WORKLOAD, "aioc"), med(WORKLOAD, "libuv")
    ac, uc = med(CPU_WORKLOAD, "aioc"), med(CPU_WORKLOAD, "libuv")
    if a is None:
        return {}
    parts, oks = [], []
    if u is None:
        parts.append(">= libuv rt/s: n/a")
    else:
        oks.append(a >= u)
        parts.append(">= libuv rt/s: %s (%s vs %s)"
                     % ("ok" if a >= u else "NO", _fmt(a), _fmt(u)))
    if ac is None or uc is None:
        parts.append("<= libuv CPU/rt: n/a")
    else:
        oks.append(ac <= uc)
        parts.append("<= libuv CPU/rt: %s (%.3g vs %.3g \u00b5s)"
                     % ("ok" if ac <= uc else "NO", ac, uc))
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
    ap.add_argument("--b6-seconds", "--seconds", type=float, default=SECONDS,
                    dest="b6_seconds")
    ap.add_argument("--bench", default=WORKLOAD,
                    help="B6, B6n or both, comma-separated (default B6)")
    args = ap.parse_args()
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    prep = prepare(args, wanted)
    workloads = [w.strip() for w in args.bench.split(",")]
    if TLS_WORKLOAD in workloads:
        prepare_tls(args, prep)
    try:
        data = run(args, prep, workloads=workloads)
    finally:
        cleanup_tls(prep)
    for (w, rt), e in sorted(data.items()):
        _print("%-6s %-8s median %s %s  (%d run(s))"
               % (w, rt, _fmt(statistics.median(e["values"])), e["unit"],
                  len(e["values"])))
    return 0 if data else 1


if __name__ == "__main__":
    sys.exit(main())
