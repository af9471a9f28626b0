#!/usr/bin/env python3
"""Compiles the C examples of docs/*.md (and runs the complete programs).

Which blocks, and how:

- Every fenced block whose info string is `c` is an example, except the
  blocks of `### Synopsis` subsections (declarations copied from the
  headers: check-docs.py compares them with the headers) and blocks whose
  info string is `c no-check` (code shown as what not to do).
- A block with `int main(` is a complete program: it is compiled with
  -Wall -Wextra -Werror, linked with the library, and (with --run) run with
  a timeout; it must exit with status 0.
- A block with an `#include` line is a translation unit (declarations and
  functions nobody calls): it is compiled to an object with -Wall -Wextra
  -Werror -Wno-unused-function.
- Any other block is a run of statements: it is compiled as the body of a
  function, after `#include <aioc.h>`, with -Wno-unused-variable too.

Errors point into the docs: each extracted file starts with a #line
directive naming the page and line of the block.

Usage: check-examples.py --cc CC --include DIR --lib LIBRARY
                         [--libs "-lpthread -lm"] --out DIR [--run]
                         [--timeout SECONDS] [--source SRC] [-j N]
"""

import argparse
import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aiocdoc  # noqa: E402

WARN = ["-Wall", "-Wextra", "-Werror"]


def classify(block):
    words = block.info.split()
    if not words or words[0] != "c" or "no-check" in words[1:]:
        return None
    if block.subsection and block.subsection.lower().startswith("synopsis"):
        return None
    if re.search(r"\bint\s+main\s*\(", block.text):
        return "program"
    if re.search(r"^\s*#\s*include\b", block.text, re.M):
        return "unit"
    return "statements"


def source_of(block, kind):
    line = '#line %d "%s"\n' % (block.line + 1, block.path)
    if kind == "statements":
        return ("#include <aioc.h>\n\nvoid aioc_doc_example(void);\n"
                "void aioc_doc_example(void) {\n" + line + block.text + "\n}\n")
    return line + block.text + "\n"


def check(block, kind, index, args):
    name = "%s_%d" % (os.path.splitext(os.path.basename(block.path))[0], block.line)
    src = os.path.join(args.out, name + ".c")
    with open(src, "w", encoding="utf-8") as f:
        f.write(source_of(block, kind))
    where = "%s:%d" % (block.path, block.line)
    cc = shlex.split(args.cc)
    inc = ["-I" + d for d in args.include]
    if kind == "program":
        exe = os.path.join(args.out, name)
        cmd = cc + WARN + inc + ["-o", exe, src, args.lib] + shlex.split(args.libs)
    else:
        extra = ["-Wno-unused-function"]
        if kind == "statements":
            extra += ["-Wno-unused-variable", "-Wno-unused-but-set-variable"]
        cmd = cc + WARN + extra + inc + ["-c", "-o", os.path.join(args.out, name + ".o"), src]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if r.returncode != 0:
        return False, "FAIL %s (%s): does not compile\n%s" % (where, kind, r.stdout)
    if kind != "program" or not args.run:
        return True, "ok   %s (%s, compiled)" % (where, kind)
    t0 = time.monotonic()
    try:
        r = subprocess.run([exe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=args.timeout,
                           cwd=args.out, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return False, "FAIL %s (program): still running after %g s\n%s" % (
            where, args.timeout, out[-2000:])
    dt = time.monotonic() - t0
    if r.returncode != 0:
        return False, "FAIL %s (program): exit status %d\n%s" % (
            where, r.returncode, r.stdout[-2000:])
    return True, "ok   %s (program, ran in %.2f s)" % (where, dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--include", action="append", default=[])
    ap.add_argument("--lib", required=True, help="the library to link programs with")
    ap.add_argument("--libs", default="-lpthread -lm")
    ap.add_argument("--out", required=True)
    ap.add_argument("--run", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--source", default=aiocdoc.repo_root())
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    root = os.path.abspath(args.source)
    if not args.include:
        args.include = [os.path.join(root, "include")]
    os.makedirs(args.out, exist_ok=True)
    _, blocks, _ = aiocdoc.parse_docs(root)
    todo = [(b, classify(b)) for b in blocks]
    todo = [(b, k) for b, k in todo if k]
    failures = 0
    counts = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        results = ex.map(lambda a: check(a[1][0], a[1][1], a[0], args), enumerate(todo))
        for (b, kind), (ok, msg) in zip(todo, results):
            print(msg)
            counts[kind] = counts.get(kind, 0) + 1
            failures += not ok
    summary = ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items()))
    print("check-examples: %d examples (%s), %d failed" % (len(todo), summary, failures))
    return 1 if failures or not todo else 0


if __name__ == "__main__":
    sys.exit(main())
