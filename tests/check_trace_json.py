#!/usr/bin/env python3
"""Checks a Chrome trace-event JSON file (as aioc_loop_trace_write()
writes it) against the trace-event format, then draws it with
tools/aioc-trace2svg.py.

  check_trace_json.py TRACE.json [--svg TOOL] [--lanes N]
  check_trace_json.py --selftest

What is checked:
  - the file is JSON: an object with a "traceEvents" list (or a list);
  - every event is an object with the fields its phase needs: "ph",
    "name", "pid", "tid"; "ts" (a number >= 0) unless metadata; "X" a
    "dur" >= 0; "i"/"I" a scope "s" of "g", "p" or "t" if any; "M" one of
    the metadata names with its "args"; "args", if any, an object;
  - "thread_name" metadata names every lane ((pid, tid) of an event);
  - on each lane the timestamps never go back, in the file's order;
  - no two "X" events of one lane overlap;
  - with --svg: the tool draws it, one lane per named lane; with --lanes:
    the number of named lanes.
--selftest runs the checks on made-up traces, each breaking one rule, and
fails unless each is caught. Exits 1 on a problem, 2 on bad usage.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

PHASES = {"X", "B", "E", "i", "I", "M", "C", "b", "e", "n", "s", "t", "f",
          "P", "O", "N", "D"}
METADATA = {"process_name": "name", "thread_name": "name",
            "process_sort_index": "sort_index",
            "thread_sort_index": "sort_index", "process_labels": "labels"}
EPS = 1e-6


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_events(doc):
    """The problems of a parsed trace (a list of strings) and its named
    lanes."""
    problems = []
    if isinstance(doc, dict):
        events = doc.get("traceEvents")
        if not isinstance(events, list):
            return ["no \"traceEvents\" list"], set()
    elif isinstance(doc, list):
        events = doc
    else:
        return ["neither an object nor a list"], set()
    named, used, last_ts, slices = set(), set(), {}, {}
    for k, e in enumerate(events):
        where = "event %d" % k
        if not isinstance(e, dict):
            problems.append("%s: not an object" % where)
            continue
        ph = e.get("ph")
        if ph not in PHASES:
            problems.append("%s: bad phase %r" % (where, ph))
            continue
        if not isinstance(e.get("name"), str):
            problems.append("%s: no name" % where)
        if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"),
                                                               int):
            problems.append("%s: no integer pid and tid" % where)
            continue
        if "args" in e and not isinstance(e["args"], dict):
            problems.append("%s: args not an object" % where)
        lane = (e["pid"], e["tid"])
        if ph == "M":
            key = METADATA.get(e.get("name"))
            if key is None:
                problems.append("%s: unknown metadata %r" % (where,
                                                              e.get("name")))
            elif not isinstance(e.get("args"), dict) or key not in e["args"]:
                problems.append("%s: metadata without args.%s" % (where, key))
            elif e["name"] == "thread_name":
                if not isinstance(e["args"]["name"], str) or \
                        not e["args"]["name"]:
                    problems.append("%s: empty thread name" % where)
                named.add(lane)
            continue
        ts = e.get("ts")
        if not is_num(ts) or ts < 0:
            problems.append("%s: bad ts %r" % (where, ts))
            continue
        used.add(lane)
        if ts + EPS < last_ts.get(lane, float("-inf")):
            problems.append("%s: ts %s before %s on lane %s" %
                            (where, ts, last_ts[lane], lane))
        last_ts[lane] = max(ts, last_ts.get(lane, ts))
        if ph == "X":
            dur = e.get("dur")
            if not is_num(dur) or dur < 0:
                problems.append("%s: bad dur %r" % (where, dur))
                continue
            slices.setdefault(lane, []).append((ts, ts + dur, k))
        if ph in ("i", "I") and "s" in e and e["s"] not in ("g", "p", "t"):
            problems.append("%s: bad instant scope %r" % (where, e["s"]))
    for lane in sorted(used - named):
        problems.append("lane %s has no thread_name" % (lane,))
    for lane, v in slices.items():
        v.sort()
        for a, b in zip(v, v[1:]):
            if b[0] + EPS < a[1]:
                problems.append("lane %s: X events %d and %d overlap" %
                                (lane, a[2], b[2]))
    return problems, named


def check_file(path, tool=None, lanes=None):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return ["%s: %s" % (path, e)]
    problems, named = check_events(doc)
    if lanes is not None and len(named) != lanes:
        problems.append("%d named lanes, not %d" % (len(named), lanes))
    if tool:
        out = tempfile.mktemp(suffix=".svg")
        p = subprocess.run([sys.executable, tool, path, "-o", out],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"(\d+) lane\(s\)", p.stdout)
        if p.returncode != 0 or not m:
            problems.append("the SVG tool failed: %s%s" % (p.stdout,
                                                            p.stderr))
        elif int(m.group(1)) != len(named):
            problems.append("the SVG has %s lanes, the trace names %d" %
                            (m.group(1), len(named)))
        if os.path.exists(out):
            import xml.etree.ElementTree as ET
            try:
                ET.parse(out)
            except ET.ParseError as e:
                problems.append("the SVG does not parse: %s" % e)
            os.unlink(out)
    return problems


def selftest():
    def meta(tid, name="t"):
        return {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "args": {"name": name}}

    def x(tid, ts, dur):
        return {"name": "run", "ph": "X", "pid": 1, "tid": tid, "ts": ts,
                "dur": dur}

    def i(tid, ts):
        return {"name": "wake", "ph": "i", "s": "t", "pid": 1, "tid": tid,
                "ts": ts, "args": {}}
    good = {"traceEvents": [meta(1), x(1, 0, 5), i(1, 5), x(1, 6, 1)]}
    bad = {
        "no list": {"events": []},
        "bad phase": {"traceEvents": [meta(1), dict(i(1, 1), ph="?")]},
        "X without dur": {"traceEvents": [meta(1), {
            "name": "r", "ph": "X", "pid": 1, "tid": 1, "ts": 1}]},
        "negative dur": {"traceEvents": [meta(1), x(1, 0, -1)]},
        "unnamed lane": {"traceEvents": [meta(1), i(2, 1)]},
        "time goes back": {"traceEvents": [meta(1), i(1, 5), i(1, 4)]},
        "overlap": {"traceEvents": [meta(1), x(1, 0, 5), x(1, 4, 2)]},
        "no ts": {"traceEvents": [meta(1), {"name": "w", "ph": "i",
                                            "pid": 1, "tid": 1}]},
        "metadata without args": {"traceEvents": [{
            "name": "thread_name", "ph": "M", "pid": 1, "tid": 1}]},
        "args not an object": {"traceEvents": [meta(1),
                                               dict(i(1, 1), args=[])]},
    }
    fails = 0
    p, _ = check_events(good)
    if p:
        print("FAIL the good trace:", p)
        fails += 1
    for what, doc in bad.items():
        p, _ = check_events(doc)
        if not p:
            print("FAIL not caught:", what)
            fails += 1
    print("selftest: %d problem(s)" % fails)
    return 1 if fails else 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    args, tool, lanes = [], None, None
    it = iter(argv[1:])
    for a in it:
        if a == "--svg":
            tool = next(it, None)
        elif a == "--lanes":
            lanes = int(next(it, "0"))
        else:
            args.append(a)
    if len(args) != 1 or (tool is None and "--svg" in argv):
        print(__doc__, file=sys.stderr)
        return 2
    problems = check_file(args[0], tool, lanes)
    for p in problems:
        print("FAIL", p)
    if not problems:
        print("%s: a valid trace" % args[0])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
