#!/usr/bin/env python3
"""Drives examples/multiloop_server end to end: two loops on one port
(SO_REUSEPORT), 32 connections sending 3 lines each, every line checked on
its way back; then SIGINT, and the graceful stop's report checked: exit
status 0, every connection and line counted once, both loops served.

Usage: run_multiloop.py MULTILOOP_SERVER_BINARY [EMULATOR...]"""
import re
import signal
import socket
import subprocess
import sys

CONNECTIONS = 32
LINES = 3


def main():
    cmd = sys.argv[2:] + [sys.argv[1], "-n", "2", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        first = p.stdout.readline()
        m = re.search(r"(\d+) loop\(s\) listening on 127\.0\.0\.1:(\d+)",
                      first)
        if not m or m.group(1) != "2":
            print("unexpected start: %r" % first)
            return 1
        port = int(m.group(2))
        conns = [socket.create_connection(("127.0.0.1", port), 30)
                 for _ in range(CONNECTIONS)]
        for i in range(LINES):
            for k, c in enumerate(conns):
                c.sendall(b"line %d of %d\n" % (i, k))
            for k, c in enumerate(conns):
                want = b"line %d of %d\n" % (i, k)
                got = b""
                while not got.endswith(b"\n"):
                    part = c.recv(100)
                    if not part:
                        break
                    got += part
                if got != want:
                    print("echoed %r instead of %r" % (got, want))
                    return 1
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        for c in conns:
            c.close()
        out = first + out
        print(out, end="")
        shares = [(int(a), int(b)) for a, b in re.findall(
            r"^loop \d+: (\d+) connection\(s\) \(\d+%\), (\d+) line",
            out, re.M)]
        if p.returncode != 0 or "bye" not in out or len(shares) != 2:
            print("exit status %d, report incomplete" % p.returncode)
            return 1
        if sum(c for c, _ in shares) != CONNECTIONS or \
           sum(l for _, l in shares) != CONNECTIONS * LINES:
            print("the loops' shares do not add up: %r" % shares)
            return 1
        # SO_REUSEPORT hashes each connection to a socket: all 32 on one
        # loop would mean the loops do not share the port (chance 2^-31).
        if min(c for c, _ in shares) == 0:
            print("one loop served nothing: %r" % shares)
            return 1
        return 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
