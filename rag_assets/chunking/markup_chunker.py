"""Markdown and reStructuredText: one chunk per section, symbol = heading path.

A section runs from its heading's first line to the line before the next heading of any
level; text before the first heading is a section with symbol "". Oversized sections are
split at paragraph starts outside code (then anywhere), keeping kind and symbol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .text_chunker import Counter, blank_separated_starts, is_blank, span_pieces
from .types import Chunk

# (first line of the heading, level, title); lines are 1-based.
Heading = tuple[int, int, str]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BLOCK_START = re.compile(r"^ {0,3}(?:(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)|[>|<])")


def markdown_headings(lines: Sequence[str]) -> tuple[list[Heading], set[int]]:
    """ATX and setext headings outside fenced code; also the set of lines inside fences."""
    headings: list[Heading] = []
    in_code: set[int] = set()
    fence: tuple[str, int] | None = None  # (char, length) of the open fence
    start = 0
    # Front matter (YAML '---' / TOML '+++'): its closing line must not read as an underline.
    if lines and lines[0].strip() in ("---", "+++"):
        for i in range(1, len(lines)):
            if lines[i].strip() in (lines[0].strip(), "..."):
                start = i + 1
                in_code.update(range(1, i + 2))
                break
    # The open paragraph: (index of its first line, may it become a setext heading?).
    para: tuple[int, bool] | None = None
    for i in range(start, len(lines)):
        line, num = lines[i], i + 1
        if fence:
            in_code.add(num)
            m = _FENCE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
            continue
        m = _FENCE.match(line)
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = (m.group(1)[0], len(m.group(1)))
            in_code.add(num)
            para = None
            continue
        m = _ATX.match(line)
        if m:
            title = _ATX_CLOSE.sub("", m.group(2) or "").strip()
            headings.append((num, len(m.group(1)), title))
            para = None
            continue
        m = _SETEXT.match(line)
        if m and para and para[1]:  # the whole paragraph above is the title
            title = " ".join(t.strip() for t in lines[para[0] : i])
            headings.append((para[0] + 1, 1 if m.group(1)[0] == "=" else 2, title))
            para = None
            continue
        if is_blank(line) or _THEMATIC.match(line):
            para = None
        elif para is None and not line.startswith(("    ", "\t")):  # else: indented code
            # List items, quotes, HTML and tables never take a setext underline.
            para = (i, not _BLOCK_START.match(line))
    return headings, in_code


_ADORN_CHARS = re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ADORNMENT = re.compile(rf"^([{_ADORN_CHARS}])\1+[ \t]*$")


def rst_headings(lines: Sequence[str]) -> list[Heading]:
    """Title lines with an underline (and optional matching overline) of one punctuation
    character, at least as long as the title. Levels follow the order in which adornment
    styles (char, overlined?) first appear, as docutils does."""
    styles: dict[tuple[str, bool], int] = {}
    headings: list[Heading] = []
    prev_underline = -1  # index of the last heading's underline
    n = len(lines)
    for i in range(1, n):
        under = _ADORNMENT.match(lines[i])
        if not under:
            continue
        title_raw = lines[i - 1]
        title = title_raw.strip()
        if not title or _ADORNMENT.match(title_raw) or len(lines[i].rstrip()) < len(title):
            continue
        # An overline repeats the underline exactly (and is not the previous title's underline).
        over = i >= 2 and lines[i - 2].rstrip() == lines[i].rstrip() and i - 2 > prev_underline
        if not over and title_raw[0] in " \t":  # only overlined titles may be inset
            continue
        first = i - 2 if over else i - 1
        # A title starts a block: preceded by a blank line, the file start or another title.
        if first > 0 and not is_blank(lines[first - 1]) and first - 1 != prev_underline:
            continue
        style = (under.group(1), over)
        level = styles.setdefault(style, len(styles) + 1)
        headings.append((first + 1, level, title))
        prev_underline = i
    return headings


def _section_chunks(
    path: str,
    language: str,
    lines: Sequence[str],
    headings: list[Heading],
    budget: int,
    count: Counter,
    encoding: str,
    in_code: set[int] = frozenset(),
) -> list[Chunk]:
    cuts = ({n for n in blank_separated_starts(lines) if n not in in_code}, blank_separated_starts(lines))
    bounds: list[tuple[int, str]] = [(1, "")]  # (first line, symbol)
    stack: list[tuple[int, str]] = []  # (level, title) of the enclosing headings
    for num, level, title in headings:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        if num == 1:
            bounds.pop()  # no preamble
        bounds.append((num, " > ".join(t for _, t in stack)))
    out: list[Chunk] = []
    for k, (start, symbol) in enumerate(bounds):
        end = bounds[k + 1][0] - 1 if k + 1 < len(bounds) else len(lines)
        for a, b, text, nt in span_pieces(lines, start, end, budget, count, encoding, cuts):
            out.append(Chunk(path, language, "section", symbol, a, b, text, nt))
    return out


def chunk_markdown(path: str, lines: Sequence[str], budget: int, count: Counter, encoding: str) -> list[Chunk]:
    headings, in_code = markdown_headings(lines)
    return _section_chunks(path, "markdown", lines, headings, budget, count, encoding, in_code)


def chunk_rst(path: str, lines: Sequence[str], budget: int, count: Counter, encoding: str) -> list[Chunk]:
    return _section_chunks(path, "rst", lines, rst_headings(lines), budget, count, encoding)
