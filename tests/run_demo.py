#!/usr/bin/env python3
"""The demo end to end (`make demo` runs the same program): every section
passes (exit 0), the look inside prints seed 000's RPC call dumped
mid-stream (the client waiting on the response iterator at its line of
seed_000_4_rpc.c) and the stall detector's report of the task that
blocks the loop (its name and the blocking function), and the call's
trace is valid trace-event JSON that tools/aioc-trace2svg.py draws.

Usage: run_demo.py DEMO_PROGRAM CHECK_TRACE_JSON TRACE2SVG"""
import os
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    demo, checker, svg = sys.argv[1:]
    problems = []
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "demo-rpc-trace.json")
        p = subprocess.run([demo, "--trace", trace], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=240)
        out = p.stdout
        if p.returncode != 0:
            problems.append("demo exited %d" % p.returncode)
        for want in ["-- the loop's tasks at t=1.50, mid-stream --",
                     "suspended on iterator in aioc_iter_next at ",
                     "seed_000_4_rpc.c:57",
                     "suspended on sleep in aioc_sleep at ",
                     "blocker",
                     "blocking_call",
                     "the call's events, as a Chrome trace: " + trace]:
            if want not in out:
                problems.append("not in the output: %r" % want)
        if "!!" in out:
            problems.append("a section failed (a line with '!!')")
        if os.path.exists(trace):
            c = subprocess.run([sys.executable, checker, trace, "--svg", svg,
                                "--lanes", "4"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               timeout=120)
            if c.returncode != 0:
                problems.append("the trace does not check:\n" + c.stdout)
        else:
            problems.append("no trace written")
    if problems:
        sys.stdout.write(out)
        for p in problems:
            print("run_demo: " + p)
        return 1
    print("run_demo: every section passed; dump, stall report and trace "
          "as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
