#!/usr/bin/env python3
"""Drives examples/echo_server end to end: starts it on a free loopback
port, sends lines over two connections and checks they come back, then
sends SIGINT and checks the graceful stop (exit status 0, "bye").

Usage: run_echo_server.py ECHO_SERVER_BINARY [EMULATOR...]"""
import signal
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    cmd = sys.argv[2:] + [sys.argv[1]]
    port = free_port()
    p = subprocess.Popen(cmd + [str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        conns = []
        while len(conns) < 2:
            try:
                conns.append(socket.create_connection(("127.0.0.1", port), 5))
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    print("echo_server did not start")
                    return 1
                time.sleep(0.05)
        for i, c in enumerate(conns):
            c.settimeout(30)
            line = ("hello %d\n" % i).encode()
            c.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                part = c.recv(100)
                if not part:
                    break
                got += part
            if got != line:
                print("echoed %r instead of %r" % (got, line))
                return 1
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        for c in conns:
            c.close()
        print(out, end="")
        if p.returncode != 0 or "bye" not in out:
            print("exit status %d" % p.returncode)
            return 1
        return 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
