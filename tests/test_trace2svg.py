#!/usr/bin/env python3
"""tools/aioc-trace2svg.py on made-up traces: one lane per task, named by
the metadata events; a bar for each complete event and each begin/end
pair (an unmatched begin runs to the end), a tick for each instant, the
same colour for the same name; --from/--to cut the window; an unreadable
file is an error.

Usage: test_trace2svg.py TOOL"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def run(tool, trace, *extra):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "t.json")
    with open(path, "w") as f:
        json.dump(trace, f)
    out = os.path.join(d, "t.svg")
    p = subprocess.run([sys.executable, tool, path, "-o", out] + list(extra),
                       capture_output=True, text=True, timeout=60)
    root = ET.parse(out).getroot() if p.returncode == 0 else None
    return p, root


def bars(root):
    return [r for r in root.iter(NS + "rect") if r.find(NS + "title") is not None]


def main():
    tool = sys.argv[1]
    trace = {"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 7,
         "args": {"name": "main"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 9,
         "args": {"name": "worker-1"}},
        {"ph": "X", "name": "run", "pid": 1, "tid": 7, "ts": 0, "dur": 100},
        {"ph": "X", "name": "run", "pid": 1, "tid": 9, "ts": 150, "dur": 50},
        {"ph": "B", "name": "wait queue", "pid": 1, "tid": 9, "ts": 200},
        {"ph": "E", "pid": 1, "tid": 9, "ts": 400},
        {"ph": "B", "name": "wait future", "pid": 1, "tid": 7, "ts": 100},
        {"ph": "i", "name": "timer", "pid": 1, "tid": 9, "ts": 300, "s": "t"},
        {"ph": "X", "name": "run", "pid": 1, "tid": 12, "ts": 500, "dur": 20,
         "args": {"site": "a.c:12"}},
    ]}
    p, root = run(tool, trace)
    check(p.returncode == 0, "exit 0 (%d: %s)" % (p.returncode, p.stderr))
    if root is None:
        return 1
    check("3 lane(s), 6 mark(s)" in p.stdout, "summary line: %r" % p.stdout)
    texts = [t.text for t in root.iter(NS + "text")]
    check("main" in texts and "worker-1" in texts, "named lanes %r" % texts)
    check("tid 12" in texts, "an unnamed lane gets its tid")
    b = bars(root)
    check(len(b) == 5, "5 bars (3 complete, 1 pair, 1 unmatched): %d" % len(b))
    titles = [r.find(NS + "title").text for r in b]
    check(any(t.startswith("wait queue: 200.000") and "200.000 \u00b5s long"
              in t for t in titles), "the begin/end pair: %r" % titles)
    # the unmatched begin runs to the end of the trace (520)
    check(any(t.startswith("wait future: 100.000") and "420.000 \u00b5s long"
              in t for t in titles), "the unmatched begin: %r" % titles)
    check(any('"site": "a.c:12"' in t for t in titles), "arguments shown")
    runs = [r.get("fill") for r in b
            if r.find(NS + "title").text.startswith("run:")]
    check(len(runs) == 3 and len(set(runs)) == 1, "one colour per name")
    ticks = [l for l in root.iter(NS + "line")
             if l.find(NS + "title") is not None]
    check(len(ticks) == 1, "one instant tick: %d" % len(ticks))
    # main's bar starts at the left edge and ends a fifth of the way
    main_bar = [r for r in b
                if r.find(NS + "title").text.startswith("run: 0.000")][0]
    x, w = float(main_bar.get("x")), float(main_bar.get("width"))
    check(abs(w / (1200 - 160 - 10) - 100 / 520) < 0.01,
          "bar width proportional to duration: %.2f" % w)
    # a window: only what overlaps [150, 250]
    p, root = run(tool, trace, "--from", "150", "--to", "250")
    check(p.returncode == 0 and root is not None, "window run")
    if root is not None:
        names = sorted(r.find(NS + "title").text.split(":")[0]
                       for r in bars(root))
        check(names == ["run", "wait future", "wait queue"],
              "window keeps what overlaps it: %r" % names)
    # a bare list is accepted too
    p, root = run(tool, trace["traceEvents"])
    check(p.returncode == 0 and root is not None and len(bars(root)) == 5,
          "a bare list of events")
    # errors
    d = tempfile.mkdtemp()
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write("{not json")
    p = subprocess.run([sys.executable, tool, bad], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 1 and "bad.json" in p.stderr,
          "unreadable file: exit 1 with its name (%d %r)"
          % (p.returncode, p.stderr))
    p = subprocess.run([sys.executable, tool, os.path.join(d, "missing")],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 1, "missing file: exit 1")
    print("%d check(s) failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
