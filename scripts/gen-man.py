#!/usr/bin/env python3
"""Generates the man pages (section 3) of aioc from docs/*.md.

One page per AIOC_API function of include/aioc/*.h. A `## aioc_name`
section of docs/*.md becomes the page aioc_name.3: its `### Synopsis`,
`### Description`, `### Return values`, `### Suspension point` and
`### Example` subsections become SYNOPSIS, DESCRIPTION, RETURN VALUE,
SUSPENSION POINT and EXAMPLE; other `###` subsections go under
DESCRIPTION; SEE ALSO lists the public functions the section mentions.
NAME takes the first sentence of the description.

A section whose heading lists several functions (`## aioc_a, aioc_b`), or
a function declared only in another section's synopsis, gives one full
page (the first name) and a `.so` page for each other name.

Usage: gen-man.py --source SRC --out DIR --version X.Y.Z [--date YYYY-MM-DD]

Python 3 standard library only. The date defaults to SOURCE_DATE_EPOCH,
else to the newest modification time of the pages read.
"""

import argparse
import datetime
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aiocdoc  # noqa: E402

# (subsection title, man section): "### Return values" is RETURN VALUE;
# "### Example: what" is EXAMPLE, with "What:" leading it.
STANDARD = [("synopsis", "SYNOPSIS"), ("description", "DESCRIPTION"),
            ("return values?", "RETURN VALUE"),
            ("suspension points?", "SUSPENSION POINT"), ("examples?", "EXAMPLE")]


def title_key(title):
    """(standard key, rest of the title) or (None, title)."""
    for key, _ in STANDARD:
        m = re.match(r"^(%s)\b[\s:]*(.*)$" % key, title.strip(), re.I)
        if m:
            return key, m.group(2)
    return None, title


# ---- roff escaping -------------------------------------------------------

def esc_chars(s, code=False):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\e")
        elif code and ch == "-":
            out.append("\\-")
        elif code and ch == "'":
            out.append("\\(aq")
        elif code and ch == "`":
            out.append("\\(ga")
        elif code and ch == "^":
            out.append("\\(ha")
        elif code and ch == "~":
            out.append("\\(ti")
        elif ord(ch) > 127:
            out.append("\\[u%04X]" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def line_safe(s):
    """A text line must not start with a control character."""
    return "\\&" + s if s[:1] in (".", "'") else s


FONTS = {(False, False): "R", (True, False): "B", (False, True): "I",
         (True, True): "BI"}


def inline(text):
    """Markdown inline text to roff: `code` bold, **strong** bold, *em*
    italic, [text](link) as its text."""
    text = re.sub(r"\[([^\]]*)\]\((?:[^()\s]|\([^()]*\))*\)", r"\1", text)
    text = re.sub(r"<(https?://[^>\s]+)>", r"\1", text)
    out = []
    bold = italic = False
    cur = "R"

    def font(f):
        nonlocal cur
        if f != cur:
            out.append("\\f[%s]" % f)
            cur = f

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "`":
            m = re.match(r"(`+)(.+?)\1(?!`)", text[i:], re.S)
            if m:
                font(FONTS[(True, italic)])
                # \% : code is never hyphenated
                out.append("\\%" + esc_chars(m.group(2).strip(), code=True))
                font(FONTS[(bold, italic)])
                i += m.end()
                continue
        if ch == "\\" and i + 1 < n and text[i + 1] in "\\`*_{}[]()#+-.!|<>":
            out.append(esc_chars(text[i + 1]))
            i += 2
            continue
        if text.startswith("**", i):
            bold = not bold
            font(FONTS[(bold, italic)])
            i += 2
            continue
        if ch == "*" and (italic or (i + 1 < n and not text[i + 1].isspace())):
            italic = not italic
            font(FONTS[(bold, italic)])
            i += 1
            continue
        out.append(esc_chars(ch))
        i += 1
    font("R")
    return "".join(out)


def plain(text):
    """Markdown inline text as plain words (for NAME)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("`", "")
    text = re.sub(r"(?<!\w)\*(\S[^*]*)\*", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


# ---- blocks --------------------------------------------------------------

def code_block(lines, out):
    out.append(".PP")
    out.append(".in +4n")
    out.append(".EX")
    for line in lines:
        line = line.expandtabs(8).rstrip()
        out.append(line_safe(esc_chars(line, code=True)) if line else "")
    out.append(".EE")
    out.append(".in")


def table(rows, out):
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    head = cells[0]
    body = [r for r in cells[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    for r in body:
        out.append(".TP")
        out.append(line_safe(inline(r[0]) if r[0] else "\\&"))
        rest = list(zip(head[1:], r[1:]))
        if len(head) == 2:
            out.append(line_safe(inline(rest[0][1])) if rest else "\\&")
            continue
        for k, (h, c) in enumerate(rest):
            if k:
                out.append(".br")
            label = "\\f[I]%s:\\f[R] " % inline(h) if h else ""
            out.append(line_safe(label + inline(c)))


ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")


def render(lines, out):
    """Markdown block structure to roff: paragraphs, lists, code, tables."""
    i, n = 0, len(lines)
    para = []
    in_list = False

    def flush():
        nonlocal para
        if para:
            text = inline(" ".join(p.strip() for p in para))
            out.append(".IP" if in_list else ".PP")
            out.append(line_safe(text))
            para = []

    while i < n:
        line = lines[i]
        fence = re.match(r"^\s*(```+|~~~+)", line)
        if fence:
            flush()
            in_list = False
            j = i + 1
            while j < n and not lines[j].lstrip().startswith(fence.group(1)):
                j += 1
            indent = len(line) - len(line.lstrip())
            code_block([l[indent:] if l[:indent].isspace() else l
                        for l in lines[i + 1:j]], out)
            i = j + 1
            continue
        if line.lstrip().startswith("|"):
            flush()
            in_list = False
            j = i
            while j < n and lines[j].lstrip().startswith("|"):
                j += 1
            table(lines[i:j], out)
            i = j
            continue
        h = re.match(r"^#{3,6}\s+(.*)$", line)
        if h:
            flush()
            in_list = False
            out.append(".SS " + esc_chars(h.group(1)))
            i += 1
            continue
        m = ITEM.match(line)
        if m:
            flush()
            marker = m.group(2)
            tag = "\\(bu" if marker in "-*+" else marker
            width = 2 if marker in "-*+" else len(marker) + 2
            item = [m.group(3)]
            i += 1
            while i < n and lines[i].strip() and not ITEM.match(lines[i]) \
                    and not lines[i].lstrip().startswith(("```", "|")):
                item.append(lines[i])
                i += 1
            out.append('.IP "%s" %d' % (tag, width))
            out.append(line_safe(inline(" ".join(s.strip() for s in item))))
            in_list = True
            continue
        if not line.strip():
            flush()
            # An indented paragraph after a blank line continues a list item.
            if in_list and i + 1 < n and lines[i + 1].startswith("  ") \
                    and not ITEM.match(lines[i + 1]):
                pass
            elif i + 1 < n and lines[i + 1].strip():
                in_list = False
            i += 1
            continue
        para.append(line)
        i += 1
    flush()


# ---- pages ---------------------------------------------------------------

def first_sentence(lines):
    text = []
    for line in lines:
        if not line.strip():
            if text:
                break
            continue
        if line.lstrip().startswith(("```", "|")) or ITEM.match(line):
            if text:
                break
            continue
        text.append(line)
    s = plain(" ".join(text))
    m = re.search(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(\s|$)", s)
    if m:
        s = s[:m.start()]
    # Short, as NAME lines go: cut at a dash or a semicolon, then, if still
    # long, at a colon or a parenthesis.
    for seps in ((" \u2014 ", "; "), (": ", " (")):
        for sep in seps:
            k = s.find(sep)
            if len(s) > 70 and k >= 20:
                s = s[:k]
    s = s.rstrip(":;, ")
    if len(s) > 100:
        s = s[:97].rsplit(" ", 1)[0] + "..."
    return s[:1].lower() + s[1:] if s[:2] != s[:2].upper() else s


def see_also(section, own, funcs, page_sections):
    names = []
    text = "\n".join(section.preamble)
    for _, lines in section.subsections:
        text += "\n" + "\n".join(lines)
    for n in re.findall(r"\baioc_\w+", text):
        if n in funcs and n not in own and n not in names:
            names.append(n)
    if not names:  # the neighbours on the same page
        for s in page_sections:
            for n in s.names:
                if n in funcs and n not in own and n not in names:
                    names.append(n)
        names = names[:6]
    return names


def page(section, own, funcs, version, date, page_sections):
    title = own[0].upper()
    out = [
        ".\\\" Generated from %s by scripts/gen-man.py; do not edit." % section.path,
        '.TH %s 3 "%s" "aioc %s" "aioc Manual"' % (title, date, version),
        ".SH NAME",
    ]
    desc = next((l for t, l in section.subsections
                 if title_key(t)[0] == "description"), section.preamble)
    summary = first_sentence(desc) or plain(section.heading)
    out.append(line_safe("%s \\- %s" % (", ".join(esc_chars(n) for n in own),
                                         esc_chars(summary))))

    out.append(".SH SYNOPSIS")
    out.append(".nf")
    out.append(".B #include <aioc.h>")
    synopsis = next((l for t, l in section.subsections
                     if title_key(t)[0] == "synopsis"), [])
    code = False
    for line in synopsis:
        if line.lstrip().startswith("```"):
            code = not code
            if code:
                out.append(".PP")
            continue
        if code:
            line = line.expandtabs(8).rstrip()
            out.append(line_safe(esc_chars(line, code=True)) if line else "")
        elif line.strip():
            out.append(line_safe(inline(line.strip())))
    out.append(".fi")

    extra = [(t, l) for t, l in section.subsections if title_key(t)[0] is None]
    for key, name in STANDARD[1:]:
        parts = [(title_key(t)[1], l) for t, l in section.subsections
                 if title_key(t)[0] == key]
        if key == "description":
            parts = ([("", section.preamble)] if any(x.strip() for x in section.preamble)
                     else []) + parts
        if not parts and not (key == "description" and extra):
            continue
        out.append(".SH " + name)
        for rest, lines in parts:
            if rest:
                out.append(".PP")
                out.append(line_safe(inline(rest[:1].upper() + rest[1:]) + ":"))
            render(lines, out)
        if key == "description":
            for t, lines in extra:
                out.append(".SS " + esc_chars(t))
                render(lines, out)

    also = see_also(section, own, funcs, page_sections)
    if also:
        out.append(".SH SEE ALSO")
        out.append(".ad l")
        out.append(",\n".join(".BR \\%%%s (3)" % esc_chars(n) for n in also))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=aiocdoc.repo_root())
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--date")
    args = ap.parse_args()

    root = os.path.abspath(args.source)
    funcs = aiocdoc.public_functions(root)
    sections, _, _ = aiocdoc.parse_docs(root)
    doc = aiocdoc.documented(sections, funcs)

    date = args.date
    if not date:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if not epoch:
            epoch = max(os.path.getmtime(p) for p in aiocdoc.doc_pages(root))
        date = datetime.datetime.fromtimestamp(
            int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d")

    # The names of each documenting section, heading order first.
    by_section = {}
    for name in funcs:
        if name in doc:
            by_section.setdefault(id(doc[name][0]), (doc[name][0], []))[1].append(name)
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if f.endswith(".3"):
            os.remove(os.path.join(args.out, f))
    pages = links = 0
    for section, names in by_section.values():
        own = [n for n in section.names if n in names] + \
              [n for n in names if n not in section.names]
        page_sections = [s for s in sections if s.path == section.path]
        text = page(section, own, funcs, args.version, date, page_sections)
        with open(os.path.join(args.out, own[0] + ".3"), "w", encoding="ascii") as f:
            f.write(text)
        pages += 1
        for other in own[1:]:
            with open(os.path.join(args.out, other + ".3"), "w", encoding="ascii") as f:
                f.write(".so man3/%s.3\n" % own[0])
            links += 1
    missing = [n for n in funcs if n not in doc]
    for n in missing:
        print("gen-man: no docs section for %s: no page" % n, file=sys.stderr)
    print("gen-man: %d pages and %d links in %s" % (pages, links, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
