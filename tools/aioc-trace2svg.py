#!/usr/bin/env python3
"""Draws a Chrome trace-event JSON file as an SVG timeline, one lane per
task, so that a person can look at what the tasks did instead of reading
the events.

  aioc-trace2svg.py TRACE.json [-o OUT.svg] [--width PX] [--from US]
                    [--to US]

TRACE.json is the trace-event format that Perfetto and chrome://tracing
open: either {"traceEvents": [...]} or a bare list of events. Each event
has "ph" (phase), "ts" (microseconds), "pid" and "tid"; the lanes are the
(pid, tid) pairs, named by "thread_name" metadata events ("ph": "M") where
there are some, in the order of their first event. What is drawn:

  "X" (complete, with "dur")    a bar over its duration
  "B" ... "E" (begin, end)      a bar from the begin to the matching end
                                on the same lane (an unmatched begin runs
                                to the end of the trace)
  "i" or "I" (instant)          a tick
  anything else                 nothing

Each bar's colour comes from its name (the same name, the same colour),
and its title (shown on hover by browsers) gives its name, start,
duration and arguments. --from and --to cut the window (microseconds, as
in the file). Writes OUT.svg, or TRACE.svg beside the input; prints the
path and the number of lanes and marks drawn. Exits 1 on an unreadable
file, 2 on bad usage.
"""

import argparse
import colorsys
import html
import json
import os
import sys
import zlib

LANE_H = 18
LANE_GAP = 4
LABEL_W = 160
AXIS_H = 24
MIN_BAR_W = 0.5


def load(path):
    with open(path) as f:
        data = json.load(f)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise ValueError("no list of trace events")
    return [e for e in events if isinstance(e, dict)]


def colour(name):
    h = (zlib.crc32(name.encode()) % 360) / 360.0
    r, g, b = colorsys.hls_to_rgb(h, 0.6, 0.55)
    return "#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255))


def marks(events):
    """(lanes in order, names of lanes, bars, ticks): bars are (lane,
    start, end, name, args), ticks (lane, ts, name, args)."""
    lanes, names, bars, ticks, open_ = [], {}, [], [], {}
    end_of_trace = 0.0

    def lane(e):
        key = (e.get("pid", 0), e.get("tid", 0))
        if key not in lanes:
            lanes.append(key)
        return key

    for e in events:
        ph = e.get("ph")
        if ph == "M":
            if e.get("name") == "thread_name":
                key = (e.get("pid", 0), e.get("tid", 0))
                names[key] = str(e.get("args", {}).get("name", ""))
                if key not in lanes:
                    lanes.append(key)
            continue
        try:
            ts = float(e["ts"])
        except (KeyError, TypeError, ValueError):
            continue
        name = str(e.get("name", ""))
        args = e.get("args") or {}
        if ph == "X":
            dur = float(e.get("dur", 0) or 0)
            bars.append((lane(e), ts, ts + dur, name, args))
            end_of_trace = max(end_of_trace, ts + dur)
        elif ph == "B":
            open_.setdefault(lane(e), []).append((ts, name, args))
            end_of_trace = max(end_of_trace, ts)
        elif ph == "E":
            stack = open_.get(lane(e))
            if stack:
                t0, n0, a0 = stack.pop()
                bars.append((lane(e), t0, ts, n0, a0))
            end_of_trace = max(end_of_trace, ts)
        elif ph in ("i", "I"):
            ticks.append((lane(e), ts, name, args))
            end_of_trace = max(end_of_trace, ts)
    for key, stack in open_.items():
        for t0, n0, a0 in stack:
            bars.append((key, t0, end_of_trace, n0, a0))
    return lanes, names, bars, ticks


def render(lanes, names, bars, ticks, width, t_from=None, t_to=None):
    times = [b[1] for b in bars] + [b[2] for b in bars] + [t[1] for t in ticks]
    t0 = t_from if t_from is not None else (min(times) if times else 0.0)
    t1 = t_to if t_to is not None else (max(times) if times else 1.0)
    if t1 <= t0:
        t1 = t0 + 1.0
    plot_w = max(width - LABEL_W - 10, 100)
    scale = plot_w / (t1 - t0)
    row = {key: i for i, key in enumerate(lanes)}
    height = AXIS_H + len(lanes) * (LANE_H + LANE_GAP) + 10

    def x(t):
        return LABEL_W + (min(max(t, t0), t1) - t0) * scale

    def y(key):
        return AXIS_H + row[key] * (LANE_H + LANE_GAP)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>']
    # the time axis: ten ticks, in ms or µs
    unit, div = ("ms", 1000.0) if t1 - t0 >= 2000 else ("\u00b5s", 1.0)
    for i in range(11):
        t = t0 + (t1 - t0) * i / 10
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                   % (x(t), AXIS_H - 4, x(t), height))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s %s</text>'
                   % (x(t), AXIS_H - 8, "%.6g" % ((t - t0) / div), unit))
    for key in lanes:
        label = names.get(key) or "tid %s" % (key[1],)
        out.append('<text x="4" y="%d">%s</text>'
                   % (y(key) + LANE_H - 5, html.escape(label[:28])))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>'
                   % (LABEL_W, y(key) + LANE_H, width, y(key) + LANE_H))
    drawn = 0
    for key, s, e, name, args in sorted(bars, key=lambda b: b[1]):
        if e < t0 or s > t1:
            continue
        w = max((min(e, t1) - max(s, t0)) * scale, MIN_BAR_W)
        title = "%s: %.3f \u00b5s, %.3f \u00b5s long%s" % (
            name, s, e - s, (" " + json.dumps(args)) if args else "")
        out.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s"><title>%s</title></rect>'
                   % (x(s), y(key), w, LANE_H, colour(name),
                      html.escape(title)))
        drawn += 1
    for key, t, name, args in ticks:
        if t < t0 or t > t1:
            continue
        title = "%s at %.3f \u00b5s%s" % (name, t, (" " + json.dumps(args))
                                          if args else "")
        out.append('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="#333">'
                   '<title>%s</title></line>'
                   % (x(t), y(key), x(t), y(key) + LANE_H, html.escape(title)))
        drawn += 1
    out.append("</svg>")
    return "\n".join(out) + "\n", drawn


def main():
    ap = argparse.ArgumentParser(
        description="Draws a Chrome trace-event JSON file as an SVG "
                    "timeline, one lane per task.")
    ap.add_argument("trace")
    ap.add_argument("-o", "--output")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--from", dest="t_from", type=float)
    ap.add_argument("--to", dest="t_to", type=float)
    args = ap.parse_args()
    try:
        events = load(args.trace)
    except (OSError, ValueError) as e:
        print("aioc-trace2svg: %s: %s" % (args.trace, e), file=sys.stderr)
        return 1
    lanes, names, bars, ticks = marks(events)
    svg, drawn = render(lanes, names, bars, ticks, args.width, args.t_from,
                        args.t_to)
    out = args.output or os.path.splitext(args.trace)[0] + ".svg"
    with open(out, "w") as f:
        f.write(svg)
    print("%s: %d lane(s), %d mark(s)" % (out, len(lanes), drawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
