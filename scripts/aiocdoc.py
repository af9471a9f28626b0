"""Reading the public headers and the reference pages of aioc.

Shared by gen-man.py, check-docs.py and check-examples.py (Python 3
standard library only).

- public_functions(): every function declared with AIOC_API in
  include/aioc/*.h.
- parse_docs(): the sections of docs/*.md. A section starts at a `## `
  heading; the functions it documents are the public names its heading
  lists (`## aioc_sleep`, `## aioc_queue_size, aioc_queue_empty`). Its
  `### ` headings (Synopsis, Description, Return values, Suspension point,
  Example) split it into subsections. Headings inside ``` fences do not
  count.
"""

import glob
import os
import re

IDENT = re.compile(r"[A-Za-z_]\w*")


def repo_root(start=None):
    """The source tree: the parent of this script's folder."""
    return os.path.dirname(os.path.dirname(os.path.abspath(start or __file__)))


def strip_c_comments(text):
    """Comments replaced by spaces (newlines kept, so lines still count)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_preprocessor(text):
    """Preprocessor lines (with their continuations) replaced by blanks."""
    lines = text.split("\n")
    out = []
    cont = False
    for line in lines:
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def declared_function(decl):
    """The name a declaration declares: the identifier before its first '('
    (or, for a function returning a function pointer, '(*name(')."""
    m = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\(", decl)
    if m:
        return m.group(1)
    m = re.search(r"([A-Za-z_]\w*)\s*\(", decl)
    return m.group(1) if m else None


def normalize_decl(decl):
    decl = re.sub(r"\s+", " ", decl).strip()
    decl = re.sub(r"\s*([(),*;\[\]])\s*", r"\1", decl)
    return decl


def c_pieces(text):
    """The top-level pieces of C text, each normalized: declarations (up to
    their ';') and preprocessor lines (continuations joined). Comments and
    C++ extern "C" guards are left out."""
    text = strip_c_comments(text).replace("\\\n", " ")
    text = re.sub(r'#ifdef __cplusplus\s*\n\s*(extern "C" \{|\})\s*\n\s*#endif',
                  "", text)
    out, cur, depth = [], "", 0
    for line in text.split("\n"):
        if depth == 0 and line.lstrip().startswith("#"):
            out.append(line)
            continue
        for ch in line + "\n":
            cur += ch
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == ";" and depth == 0:
                out.append(cur)
                cur = ""
    out.append(cur)
    return [normalize_decl(p) for p in out if p.strip()]


def public_headers(root):
    return [os.path.join(root, "include", "aioc.h")] + sorted(
        glob.glob(os.path.join(root, "include", "aioc", "*.h")))


def public_functions(root):
    """{name: (path relative to root, line, declaration)} for every
    AIOC_API function of include/aioc/*.h, in header order."""
    funcs = {}
    for path in sorted(glob.glob(os.path.join(root, "include", "aioc", "*.h"))):
        text = strip_preprocessor(strip_c_comments(open(path, encoding="utf-8").read()))
        for m in re.finditer(r"\bAIOC_API\b", text):
            end = len(text)
            for stop in (";", "{"):
                k = text.find(stop, m.end())
                if 0 <= k < end:
                    end = k
            decl = text[m.start():end + 1]
            name = declared_function(decl[len("AIOC_API"):])
            if name:
                line = text.count("\n", 0, m.start()) + 1
                funcs.setdefault(name, (os.path.relpath(path, root), line,
                                        decl.rstrip("{").strip()))
    return funcs


class Block:
    """A fenced code block of a reference page."""

    def __init__(self, path, line, info, text, section, subsection):
        self.path = path            # relative to the root
        self.line = line            # line of the opening fence
        self.info = info            # the fence's info string ("c", "sh")
        self.text = text
        self.section = section      # the Section it is in, or None
        self.subsection = subsection  # its "### " title, or None


class Section:
    """A `## ` section of a reference page."""

    def __init__(self, path, line, heading):
        self.path = path
        self.line = line
        self.heading = heading
        self.names = []             # the public names the heading lists
        self.preamble = []          # lines before the first "### "
        self.subsections = []       # [(title, [lines])]
        self.blocks = []

    def sub(self, title):
        """The lines of the first subsection whose title starts with
        title (case-insensitive), or None."""
        for t, lines in self.subsections:
            if t.lower().startswith(title.lower()):
                return lines
        return None

    def anchor(self):
        return slug(self.heading)


def heading_names(heading):
    """The identifiers a heading lists, when it is a list of identifiers
    (`aioc_a, aioc_b`); otherwise an empty list."""
    parts = [p.strip().strip("`").rstrip("()") for p in re.split(r",|\band\b", heading)]
    if parts and all(IDENT.fullmatch(p) for p in parts):
        return parts
    return []


def slug(heading):
    """The anchor GitHub gives a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def doc_pages(root):
    return sorted(glob.glob(os.path.join(root, "docs", "*.md")))


def parse_page(root, path):
    """(sections, blocks, headings) of one page; blocks includes those
    outside any section; headings are all the (level, text, line)."""
    rel = os.path.relpath(path, root)
    lines = open(path, encoding="utf-8").read().split("\n")
    sections, blocks, headings = [], [], []
    sec, sub = None, None
    target = None  # the list lines are appended to
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(```+|~~~+)\s*(.*)$", line)
        if fence:
            mark = fence.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].startswith(mark):
                j += 1
            body = "\n".join(lines[i + 1:j])
            b = Block(rel, i + 1, fence.group(2).strip(), body, sec, sub)
            blocks.append(b)
            if sec:
                sec.blocks.append(b)
            if target is not None:
                target.extend(lines[i:j + 1])
            i = j + 1
            continue
        h = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if h:
            level, text = len(h.group(1)), h.group(2)
            headings.append((level, text, i + 1))
            if level <= 2:
                sec, sub = None, None
                target = None
                if level == 2:
                    sec = Section(rel, i + 1, text)
                    sec.names = heading_names(text)
                    sections.append(sec)
                    target = sec.preamble
            elif level == 3 and sec:
                sub = text
                sec.subsections.append((text, []))
                target = sec.subsections[-1][1]
            elif target is not None:
                target.append(line)
            i += 1
            continue
        if target is not None:
            target.append(line)
        i += 1
    return sections, blocks, headings


def parse_docs(root):
    """(sections, blocks, headings by page) of every docs/*.md."""
    sections, blocks, headings = [], [], {}
    for path in doc_pages(root):
        s, b, h = parse_page(root, path)
        sections += s
        blocks += b
        headings[os.path.relpath(path, root)] = h
    return sections, blocks, headings


def synopsis_functions(section):
    """Names declared with AIOC_API in a section's Synopsis blocks."""
    names = []
    for name, _ in synopsis_declarations(section):
        if name not in names:
            names.append(name)
    return names


def synopsis_declarations(section):
    """[(name, declaration)] of a section's Synopsis blocks."""
    out = []
    for b in section.blocks:
        if b.subsection and b.subsection.lower().startswith("synopsis"):
            text = strip_c_comments(b.text)
            for m in re.finditer(r"\bAIOC_API\b[^;{]*;", text):
                name = declared_function(m.group(0)[len("AIOC_API"):])
                if name:
                    out.append((name, m.group(0)))
    return out


def documented(sections, funcs):
    """{function: (section, how)}: the section that documents each public
    function: its heading lists it (how "heading"), or else a Synopsis
    block of another section declares it (how "synopsis")."""
    doc = {}
    for s in sections:
        for n in s.names:
            if n in funcs and n not in doc:
                doc[n] = (s, "heading")
    for s in sections:
        for n in synopsis_functions(s):
            if n in funcs and n not in doc:
                doc[n] = (s, "synopsis")
    return doc
