#!/usr/bin/env python3
"""examples/fetch end to end: a small HTTP server on 127.0.0.1 (a 1 KiB
body, a 404, and a body that stalls after its first 100 bytes), and
`fetch -c 2 -t 0.5` over them: each result printed, the stalled URL failed
by the timeout between chunks (with the bytes that came), the others
fetched, exit status 1.

Usage: run_fetch.py FETCH_PROGRAM"""
import http.server
import re
import subprocess
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/ok":
            body = b"x" * 1024
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"s" * 100)
            self.wfile.flush()
            time.sleep(5)
            return
        else:
            body = b"no such thing\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    urls = [base + "/ok", base + "/stall", base + "/missing", base + "/ok"]
    p = subprocess.run([sys.argv[1], "-c", "2", "-t", "0.5"] + urls,
                       capture_output=True, text=True, timeout=60)
    out = p.stdout
    print(out, end="")
    sys.stderr.write(p.stderr)
    checks = [
        (p.returncode == 1, "exit status 1 (some URLs failed)"),
        (re.search(r"^\[1\] .*/ok: 200, 1024 bytes", out, re.M), "[1] fetched"),
        (re.search(r"^\[4\] .*/ok: 200, 1024 bytes", out, re.M), "[4] fetched"),
        (re.search(r"^\[3\] .*/missing: 404, ", out, re.M), "[3] a 404"),
        (re.search(r"^\[2\] .*/stall: failed \(ETIMEDOUT\) after 100 bytes .*"
                   r"no data for 0.5 s between chunks", out, re.M),
         "[2] failed by the timeout between chunks after 100 bytes"),
        (out.rstrip().endswith("2 of 4 URLs fetched"), "the summary line"),
        # results come as transfers end: the stalled one is not last
        # printed before the two fast ones that come after it
        (out.index("[2]") > out.index("[1]"), "completion order"),
    ]
    bad = [what for ok, what in checks if not ok]
    for what in bad:
        print("FAIL:", what)
    srv.shutdown()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
