#!/usr/bin/env python3
"""Tests scripts/check-docs.py and scripts/check-examples.py on small
made-up trees: a consistent tree passes, and each kind of problem is
reported (and fails the check).

Usage: selftest.py --cc CC --include DIR --lib LIBRARY
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "..", "scripts")

TREE = {
    "include/aioc.h": (
        "/* The one header. Its parts:\n"
        " *   aioc/base.h   the base\n"
        " */\n"
        '#include "aioc/base.h"\n'),
    "include/aioc/base.h": (
        "#define AIOC_API\n"
        "/* Alpha. */\n"
        "AIOC_API int aioc_alpha(int x);\n"
        "AIOC_API int aioc_beta(void);\n"
        "#define AIOC_N 1\n"),
    "src/core/a.c": "int a;\n",
    "src/core/a.h": "extern int a;\n",
    "README.md": (
        "# t\n\n## Reading the source\n\n"
        "1. `src/core/` — `a.c` and `a.h`.\n\n## Other\n\n`src/core/zz.c`\n"),
    "docs/ref.md": (
        "# Ref\n\n"
        "## aioc_alpha, aioc_beta\n\n"
        "### Synopsis\n\n"
        "```c\nAIOC_API int aioc_alpha(int x);\nAIOC_API int aioc_beta(void);\n"
        "#define AIOC_N 1\n```\n\n"
        "### Description\n\n"
        "See [both](#aioc_alpha-aioc_beta), [other](other.md#top) and\n"
        "[the web](https://example.org/x). Counts in /proc/sys/vm/.\n\n"
        "### Return values\n\n`0`.\n\n"
        "### Suspension point\n\nNo.\n"),
    "docs/other.md": "# Top\n\nText.\n",
}

# (what is changed, the text check-docs.py must print)
DOC_CASES = [
    ("include/aioc/base.h", "+AIOC_API int aioc_gamma(void);\n",
     "aioc_gamma has no section"),
    ("include/aioc/base.h", ("#define AIOC_N 1", "#define AIOC_N 2"),
     "synopsis differs from the headers: `#define AIOC_N 1`"),
    ("src/core/b.c", "+int b;\n", "does not name src/core/b.c"),
    ("README.md", ("`a.c` and", "`a.c`, `gone.c` and"),
     "names src/core/gone.c, which does not exist"),
    ("include/aioc/more.h", "+int more;\n",
     "the list of parts does not name aioc/more.h"),
    ("include/aioc/more.h", "+int more;\n", "does not include aioc/more.h"),
    ("docs/ref.md", "+\nBackground in `../shared/notes/`.\n",
     "path ../shared/notes/ points outside the repository"),
    ("docs/ref.md", "+\nAs in /work/main/docs/x.md.\n",
     "absolute path /work/main/docs/x.md"),
    ("include/aioc/base.h", "+/* see /home/someone/notes.txt */\n",
     "absolute path /home/someone/notes.txt"),
    ("docs/ref.md", "+\n[x](../../elsewhere/y.md)\n",
     "link to ../../elsewhere/y.md points outside the repository"),
    ("docs/ref.md", "+\n[x](other.md#nope)\n", "no heading #nope there"),
    ("docs/ref.md", "+\n[x](missing.md)\n", "no such file in the repository"),
    ("docs/ref.md", ("### Suspension point", "### Notes"),
     "has no `### Suspension point` subsection"),
    ("docs/ref.md", "+\n## aioc_removed\n\nGone.\n",
     "names aioc_removed, which the headers do not declare"),
]

GOOD_EXAMPLES = (
    "# Ex\n\n## aioc_version\n\n### Synopsis\n\n```c\nthis is not C;\n```\n\n"
    "### Example\n\n"
    "```c\n#include <aioc.h>\n#include <stdio.h>\n\n"
    "int main(void) {\n  printf(\"%s\\n\", aioc_version_string());\n"
    "  return aioc_version() == 0;\n}\n```\n\n"
    "```c\n#include <aioc.h>\n\nstatic int unused(void) { return aioc_yield(); }\n```\n\n"
    "```c\nint rc = aioc_sleep(0.5);\n(void)rc;\n```\n\n"
    "```c no-check\nnot C at all\n```\n\n```sh\nnot C either\n```\n")

# (a block added to the page, the text check-examples.py must print)
EXAMPLE_CASES = [
    ("```c\n#include <aioc.h>\nint main(void) { int unused; return 0; }\n```\n",
     "does not compile"),
    ("```c\n#include <aioc.h>\nint main(void) { return 3; }\n```\n",
     "exit status 3"),
    ("```c\n#include <aioc.h>\n#include <unistd.h>\n"
     "int main(void) { for (;;) pause(); }\n```\n", "still running"),
    ("```c\naioc_no_such_function(1);\n```\n", "does not compile"),
    ("```c\n#include <aioc.h>\nstatic int f(void) { return aioc_sleep(); }\n```\n",
     "does not compile"),
]

failures = 0


def report(ok, what):
    global failures
    print("%s: %s" % ("ok" if ok else "FAILED", what))
    failures += not ok


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return r.returncode, r.stdout


def check_docs(tmp):
    script = os.path.join(SCRIPTS, "check-docs.py")
    root = os.path.join(tmp, "good")
    write_tree(root, TREE)
    rc, out = run([sys.executable, script, root])
    report(rc == 0, "check-docs passes a consistent tree")
    if rc:
        print(out)
    for i, (rel, change, expect) in enumerate(DOC_CASES):
        root = os.path.join(tmp, "docs%d" % i)
        files = dict(TREE)
        if isinstance(change, tuple):
            files[rel] = files[rel].replace(*change)
        else:
            files[rel] = files.get(rel, "") + change[1:]
        write_tree(root, files)
        rc, out = run([sys.executable, script, root])
        report(rc == 1 and expect in out, "check-docs reports: %s" % expect)
        if rc != 1 or expect not in out:
            print(out)


def check_examples(tmp, args):
    script = os.path.join(SCRIPTS, "check-examples.py")
    base = [sys.executable, script, "--cc", args.cc, "--lib", args.lib,
            "--include", args.include, "--run", "--timeout", "2"]
    root = os.path.join(tmp, "ex-good")
    write_tree(root, {"docs/ex.md": GOOD_EXAMPLES})
    rc, out = run(base + ["--source", root, "--out", os.path.join(root, "out")])
    report(rc == 0 and "3 examples" in out,
           "check-examples passes good examples (synopsis, no-check, sh skipped)")
    if rc or "3 examples" not in out:
        print(out)
    for i, (block, expect) in enumerate(EXAMPLE_CASES):
        root = os.path.join(tmp, "ex%d" % i)
        write_tree(root, {"docs/ex.md": GOOD_EXAMPLES + "\n" + block})
        rc, out = run(base + ["--source", root, "--out", os.path.join(root, "out")])
        report(rc == 1 and expect in out and "docs/ex.md:" in out,
               "check-examples reports: %s" % expect)
        if rc != 1 or expect not in out:
            print(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--include", required=True)
    ap.add_argument("--lib", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="aioc-docs-selftest-")
    try:
        check_docs(tmp)
        check_examples(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("passed" if not failures else "FAILED (%d)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
