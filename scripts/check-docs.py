#!/usr/bin/env python3
"""Checks that the reference, the README and the headers agree with the
source tree. Prints each problem and exits 1 if there is any.

1. Every AIOC_API function of include/aioc/*.h has a section in docs/*.md
   whose `## ` heading names it (`## aioc_name`, or a heading listing it:
   `## aioc_a, aioc_b`); a heading that names an aioc_ identifier the
   headers do not declare is stale. A function's section has the
   subsections `### Synopsis`, `### Description`, `### Return values` and
   `### Suspension point` (the man pages are made of them).
2. Every declaration in a `### Synopsis` block appears, as written, in the
   headers (whitespace and comments aside).
3. The layer map of README.md (its "Reading the source" section) names
   every file under src/, and names no file that does not exist. A file is
   named by its path (`src/group/group.c`) or by its name after its
   folder (`src/coro/` ... `coro.c`).
4. The list of parts in include/aioc.h's opening comment names every
   header of include/aioc/ (and no other), and aioc.h includes them all.
5. The docs, the README and the headers hold no link or path that points
   outside the repository: relative links and `../` paths must lead to a
   file of the repository (and a `#anchor` to a heading of that page);
   absolute paths are allowed only under the system's own directories
   (/etc, /usr, /proc, ...). Web links (http, https) are allowed.

Usage: check-docs.py [SOURCE_DIR]   (default: this script's tree)
"""

import fnmatch
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aiocdoc  # noqa: E402

SYSTEM_DIRS = {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "opt",
               "proc", "run", "sbin", "srv", "sys", "tmp", "usr", "var"}

REQUIRED_SUBSECTIONS = ("synopsis", "description", "return values",
                        "suspension point")

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def check_sections(root, funcs, sections):
    doc = aiocdoc.documented(sections, funcs)
    for name, (path, line, _) in funcs.items():
        if name not in doc:
            problem(f"{path}:{line}",
                    f"{name} has no section in docs/*.md (no `## {name}` heading)")
        elif doc[name][1] != "heading":
            s = doc[name][0]
            problem(f"{path}:{line}",
                    f"{name} is declared in the synopsis of `## {s.heading}` "
                    f"({s.path}:{s.line}) but no heading names it")
    for s in sections:
        if not any(n in funcs for n in s.names):
            continue
        titles = [t.lower() for t, _ in s.subsections]
        for need in REQUIRED_SUBSECTIONS:
            if not any(t == need or t.startswith(need + ":") for t in titles):
                problem(f"{s.path}:{s.line}",
                        f"`## {s.heading}` has no `### {need.capitalize()}` subsection")
    declared = set()
    for h in aiocdoc.public_headers(root):
        declared |= set(aiocdoc.IDENT.findall(
            aiocdoc.strip_c_comments(open(h, encoding="utf-8").read())))
    for s in sections:
        for n in s.names:
            if n.startswith("aioc_") and n not in declared:
                problem(f"{s.path}:{s.line}",
                        f"`## {s.heading}` names {n}, which the headers do not declare")


def check_synopses(root, blocks):
    pieces = set()
    for h in aiocdoc.public_headers(root):
        pieces |= set(aiocdoc.c_pieces(open(h, encoding="utf-8").read()))
    for b in blocks:
        if not (b.subsection and b.subsection.lower().startswith("synopsis")):
            continue
        if b.info.split()[:1] != ["c"]:
            continue
        for p in aiocdoc.c_pieces(b.text):
            if p not in pieces:
                problem(f"{b.path}:{b.line}",
                        f"synopsis differs from the headers: `{p}`")


def files_under(root, top):
    out = set()
    for d, _, names in os.walk(os.path.join(root, top)):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def markdown_section(text, title):
    """Lines of the `## title` section (outside code fences)."""
    out, inside, fence = [], False, False
    for line in text.split("\n"):
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#{1,2} ", line):
            inside = line.strip("# ").strip().lower() == title.lower()
            continue
        if inside:
            out.append(line)
    return out


def check_layer_map(root):
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    lines = markdown_section(text, "Reading the source")
    if not lines:
        problem("README.md", 'no "## Reading the source" section (the layer map)')
        return
    named, stale = set(), []
    folder = ""
    for tok in re.findall(r"`([^`\s]+)`", "\n".join(lines)):
        if tok.endswith("/"):
            folder = tok
            continue
        if not re.search(r"\.[A-Za-z]+$", tok):
            continue
        path = os.path.normpath(tok if "/" in tok else folder + tok)
        if any(c in path for c in "*?["):
            named |= {f for f in files_under(root, path.split("/")[0])
                      if fnmatch.fnmatch(f, path)}
            continue
        named.add(path)
        if path.startswith("src/") and not os.path.exists(os.path.join(root, path)):
            stale.append(path)
    for f in sorted(files_under(root, "src") - named):
        problem("README.md", f'the layer map ("Reading the source") does not name {f}')
    for f in stale:
        problem("README.md", f"the layer map names {f}, which does not exist")


def check_umbrella(root):
    path = os.path.join(root, "include", "aioc.h")
    text = open(path, encoding="utf-8").read()
    m = re.search(r"/\*.*?\*/", text, re.S)
    listed = set(re.findall(r"\baioc/[\w.-]+\.h\b", m.group(0) if m else ""))
    included = set(re.findall(r'^\s*#\s*include\s*[<"](aioc/[\w.-]+\.h)[>"]', text, re.M))
    actual = {"aioc/" + os.path.basename(f)
              for f in files_under(root, "include/aioc") if f.endswith(".h")}
    for h in sorted(actual - listed):
        problem("include/aioc.h", f"the list of parts does not name {h}")
    for h in sorted(listed - actual):
        problem("include/aioc.h", f"the list of parts names {h}, which does not exist")
    for h in sorted(actual - included):
        problem("include/aioc.h", f"does not include {h}")


def inside(root, path):
    root = os.path.realpath(root)
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def check_paths(root, headings):
    files = ["README.md"] + [os.path.relpath(p, root) for p in aiocdoc.doc_pages(root)]
    files += [os.path.relpath(p, root) for p in aiocdoc.public_headers(root)]
    anchors = {p: {aiocdoc.slug(t) for _, t, _ in hs} for p, hs in headings.items()}
    link = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
    updir = re.compile(r"(?<![\w/.-])((?:\./)?(?:\.\./)+[\w./*-]*)")
    absolute = re.compile(r"(?<![\w./~:<>-])(/[A-Za-z_][\w.-]*)(/[\w./*-]*)?")
    for rel in files:
        text = open(os.path.join(root, rel), encoding="utf-8").read()
        here = os.path.dirname(os.path.join(root, rel))
        for lineno, line in enumerate(text.split("\n"), 1):
            where = f"{rel}:{lineno}"
            for target in link.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                    if not re.match(r"^(https?|mailto):", target, re.I):
                        problem(where, f"link to {target} (outside the repository)")
                    continue
                page, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(here, page)) if page else \
                    os.path.join(root, rel)
                if page.startswith("/") or not inside(root, dest):
                    problem(where, f"link to {target} points outside the repository")
                elif not os.path.exists(dest):
                    problem(where, f"link to {target}: no such file in the repository")
                elif anchor and dest.endswith(".md"):
                    page_rel = os.path.relpath(dest, root)
                    hs = anchors.get(page_rel)
                    if hs is None:
                        hs = {aiocdoc.slug(t) for _, t, _ in
                              aiocdoc.parse_page(root, dest)[2]}
                        anchors[page_rel] = hs
                    if anchor not in hs:
                        problem(where, f"link to {target}: no heading #{anchor} there")
            bare = link.sub("", line)
            for p in updir.findall(bare):
                dest = os.path.normpath(os.path.join(here, p))
                if not inside(root, dest) or not os.path.exists(dest.split("*")[0]):
                    problem(where, f"path {p} points outside the repository")
            for first, rest in absolute.findall(bare):
                if not rest:
                    continue  # "/" followed by one word: not a path
                if first[1:] not in SYSTEM_DIRS:
                    problem(where, f"absolute path {first}{rest} "
                                   "(a reference outside the repository)")


def main():
    root = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else aiocdoc.repo_root()
    funcs = aiocdoc.public_functions(root)
    if not funcs:
        problem("include/aioc", "no AIOC_API function found")
    sections, blocks, headings = aiocdoc.parse_docs(root)
    check_sections(root, funcs, sections)
    check_synopses(root, blocks)
    check_layer_map(root)
    check_umbrella(root)
    check_paths(root, headings)
    for p in problems:
        print(p)
    if problems:
        print(f"check-docs: {len(problems)} problem(s)")
        return 1
    print(f"check-docs: {len(funcs)} functions documented, layer map, "
          "list of parts and paths consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
