"""Line splitting, the shared "fit lines into a token budget" packer, and plain line windows.

Every chunker works on ``split_lines(text)``; line N of the file is ``lines[N - 1]``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from .tokens import count_tokens, get_encoding

Counter = Callable[[str], int]

# Universal newlines: the rule Python's tokenizer uses for ast line numbers, and what
# editors show. Not str.splitlines(), which also breaks on \f, \v, \x1c-\x1e, \x85,
# \u2028, \u2029 and would shift line numbers in files containing them.
_NEWLINE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """File lines without their terminators; a final newline does not start a new line."""
    if not text:
        return []
    lines = _NEWLINE.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def is_blank(line: str) -> bool:
    return not line.strip()


def make_counter(encoding: str) -> Counter:
    get_encoding(encoding)  # fail early on an unknown encoding
    return lambda s: count_tokens(s, encoding)


class Piece(NamedTuple):
    first: int  # index into the packed sequence (inclusive)
    last: int  # inclusive; == first for a fragment
    text: str
    n_tokens: int
    partial: bool = False  # True: a character fragment of one over-long line


def split_long_line(line: str, budget: int, encoding: str) -> list[tuple[str, int]]:
    """Last resort for one line over budget: consecutive character slices of <= budget tokens.

    Slices are cut at token boundaries (so multi-byte characters stay whole) and re-counted,
    since a slice can tokenize differently from the same tokens inside the full line.
    Whitespace-only slices are dropped.
    """
    enc = get_encoding(encoding)
    toks = enc.encode(line, disallowed_special=())
    if line.isascii():  # one byte per character: offsets are running token lengths (fast)
        offsets = [0, *itertools.accumulate(map(len, enc.decode_tokens_bytes(toks)))][:-1]
    else:
        _, offsets = enc.decode_with_offsets(toks)
    n = len(toks)
    out: list[tuple[str, int]] = []

    def char_at(j: int) -> int:
        return offsets[j] if j < n else len(line)

    i = 0
    while i < n:
        j = min(i + budget, n)
        while True:
            while j < n and char_at(j) <= char_at(i):  # several tokens inside one character
                j += 1
            frag = line[char_at(i) : char_at(j)]
            nt = count_tokens(frag, encoding)
            if nt <= budget or j - i <= 1:
                break
            j = max(i + 1, j - max(1, nt - budget))
        if frag.strip():
            out.append((frag, nt))
        i = j
    return out


def _latest_cut(tier: Collection[int], lo: int, hi: int) -> int | None:
    """Largest c in tier with lo < c <= hi."""
    for c in range(hi, lo, -1):
        if c in tier:
            return c
    return None


def pack(
    texts: Sequence[str],
    budget: int,
    count: Counter,
    encoding: str,
    cuts: Sequence[Collection[int]] = (),
    offset: int = 0,
    est: Sequence[int] | None = None,
    first_only: bool = False,
) -> list[Piece]:
    """Split ``texts`` (lines) into consecutive runs joined by "\\n", each <= budget tokens.

    Blank lines at the edges of a run are dropped and all-blank runs skipped, so spans stay
    tight. ``cuts`` are tiers of preferred run starts (keys are index + offset); the first tier
    offering a cut that keeps the run at least a third full wins, else the run is cut where the
    budget runs out. A line over budget on its own becomes ``partial`` character fragments.
    ``est`` may pass precomputed per-line estimates (``count(line) + 1``) for reuse;
    ``first_only`` stops after the first run (or the first line's fragments).
    """
    lo, hi = 0, len(texts) - 1
    while lo <= hi and is_blank(texts[lo]):
        lo += 1
    while hi >= lo and is_blank(texts[hi]):
        hi -= 1
    if lo > hi:
        return []
    # The common case: everything fits. Skipped when the estimate is far over budget, so
    # callers packing many overlapping windows do not re-tokenize whole windows each time.
    if est is None or sum(est[lo : hi + 1]) <= 2 * budget:
        text = "\n".join(texts[lo : hi + 1])
        nt = count(text)
        if nt <= budget:
            return [Piece(lo, hi, text, nt)]

    # Per-line estimates (line + its newline) pick run ends; each run is then counted exactly.
    if est is None:
        est = [count(t) + 1 for t in texts]
    prefix = [0]
    for e in est:
        prefix.append(prefix[-1] + e)
    out: list[Piece] = []
    p = lo
    while p <= hi and not (first_only and out):
        while p <= hi and is_blank(texts[p]):
            p += 1
        if p > hi:
            break
        if est[p] - 1 > budget:
            out.extend(Piece(p, p, f, n, True) for f, n in split_long_line(texts[p], budget, encoding))
            p += 1
            continue
        e = p
        while e < hi and prefix[e + 2] - prefix[p] - 1 <= budget:
            e += 1
        q = e
        if e < hi:
            for tier in cuts:
                c = _latest_cut(tier, p + offset, e + 1 + offset)
                if c is not None and prefix[c - offset] - prefix[p] >= budget // 3:
                    q = c - offset - 1
                    break
        while True:
            while q > p and is_blank(texts[q]):
                q -= 1
            text = "\n".join(texts[p : q + 1])
            nt = count(text)
            if nt <= budget or q == p:
                break
            q -= 1  # the estimate was optimistic: drop a line and re-count
        if nt > budget:  # q == p: a single line that only fits by the estimate's rounding
            out.extend(Piece(p, p, f, n, True) for f, n in split_long_line(texts[p], budget, encoding))
        else:
            out.append(Piece(p, q, text, nt))
        p = q + 1
    return out


def span_pieces(
    lines: Sequence[str],
    start: int,
    end: int,
    budget: int,
    count: Counter,
    encoding: str,
    cuts: Sequence[Collection[int]] = (),
) -> list[tuple[int, int, str, int]]:
    """``pack`` file lines start..end (1-based, inclusive); cuts are file line numbers.

    Returns (start_line, end_line, text, n_tokens) with exact 1-based spans.
    """
    pieces = pack(lines[start - 1 : end], budget, count, encoding, cuts, offset=start)
    return [(p.first + start, p.last + start, p.text, p.n_tokens) for p in pieces]


def blank_separated_starts(lines: Sequence[str]) -> set[int]:
    """1-based numbers of non-blank lines that follow a blank line: paragraph starts."""
    return {i + 1 for i in range(1, len(lines)) if is_blank(lines[i - 1]) and not is_blank(lines[i])}


def window_spans(
    lines: Sequence[str],
    budget: int,
    count: Counter,
    encoding: str,
    window: int = 60,
    overlap: int = 10,
) -> list[tuple[int, int, str, int]]:
    """Windows of up to ``window`` lines overlapping by up to ``overlap`` lines.

    A window is cut early when the token budget runs out; its overlap then shrinks to a
    quarter of its length so short windows do not repeat most of their lines.
    """
    out: list[tuple[int, int, str, int]] = []
    n = len(lines)
    est: list[int] = []  # per-line estimates, shared by overlapping windows
    s, last_end = 1, 0
    while s <= n:
        e = min(n, s + window - 1)
        est.extend(count(line) + 1 for line in lines[len(est) : e])
        pieces = pack(lines[s - 1 : e], budget, count, encoding, est=est[s - 1 : e], first_only=True)
        if not pieces:  # an all-blank window
            s = e + 1
            continue
        first = pieces[0]
        if first.partial:  # one over-long line: emit all its fragments, no overlap
            line_no = first.first + s
            out.extend((line_no, line_no, p.text, p.n_tokens) for p in pieces if p.first == first.first)
            s = last_end = line_no
            s += 1
            continue
        a, b = first.first + s, first.last + s
        if b <= last_end:  # only overlap lines left before trailing blanks: nothing new
            s = max(last_end + 1, b + 1)
            continue
        out.append((a, b, first.text, first.n_tokens))
        last_end = b
        if b >= n:
            break
        s = b + 1 - min(overlap, (b - a + 1) // 4)
    return out


_OPEN_SPACE = re.compile(r"([(\[]|(?<=\w)<) ")
_CLOSE_SPACE = re.compile(r",? ([)\]])|, (>)")


def one_line(header: str) -> str:
    """A definition header on one line: whitespace collapsed, no padding inside brackets
    or trailing commas left by one-parameter-per-line layouts: ``f( a, b, )`` -> ``f(a, b)``."""
    s = " ".join(header.split())
    return _CLOSE_SPACE.sub(lambda m: m.group(1) or m.group(2), _OPEN_SPACE.sub(r"\1", s))
