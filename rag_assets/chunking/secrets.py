"""Secrets inside ordinary files: found by well-known, high-precision token shapes and redacted.

A credential committed by mistake (an AWS key in a config module, a private key pasted into a test
fixture) must not become searchable text in the index. `redact_secrets` replaces each secret by
``[REDACTED <kind>]`` before a document is chunked, keeping every line break of the original (a
multi-line private key keeps its BEGIN/END lines, its body becomes one marker line and blank lines),
so line numbers and citations stay exact and the chunker's token counts describe the redacted text.

Only shapes that are nearly never anything but a secret are matched (prefixed tokens, PEM private
key blocks, an AWS secret key assigned to its own name). Generic ``password = "..."`` assignments are
left alone: too many are examples, placeholders or variable names. A regex module rather than
`detect-secrets` 1.5.0: that library took 3.5-5 s per MB of code with only its AWS, private-key,
GitHub and Slack detectors (7 s with its defaults) on the shared 2-core machine, would be a new
dependency, and reports a private key by its BEGIN line only. This module takes ~15 ms per MB of
ordinary code (~35 ms when the text holds every pattern's hint), because each pattern runs only
on text holding one of its literal hints, and starts with a literal prefix `re` can scan for.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# The chunkers' line breaks (chunking.text_chunker.split_lines): a replacement keeps all of them.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_B64 = r"A-Za-z0-9+/"


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    hints: tuple[str, ...]  # the pattern can only match text containing one of these (cheap pre-check)
    group: str | int = 0  # the part of the match that is the secret
    # Only the lines holding a hint are scanned: for a pattern without a literal prefix for `re` to look
    # for (a case-insensitive one), which would otherwise be tried at every position. It matches within a line.
    per_line: bool = False


PATTERNS: tuple[_Pattern, ...] = (
    # PEM / OpenSSH / PGP private keys: the block's body (BEGIN and END lines are no secret). The body
    # may be real lines, or one line with escaped "\n" (a JSON service-account file).
    _Pattern("private-key", re.compile(
        r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----"
        r"(?P<body>[A-Za-z0-9+/=\s:,.\\-]{32,65536}?)"
        r"-----END (?P=label)-----"), ("-----BEGIN ",), "body"),
    _Pattern("aws-access-key", re.compile(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
             ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")),
    # An AWS secret key is 40 base64 characters: only taken when assigned to a name that says so.
    _Pattern("aws-secret-key", re.compile(
        r"(?i:aws[_.-]?secret(?:[_.-]?access)?[_.-]?key|secret[_.-]?access[_.-]?key)[\"']?\s*(?:=>|:=|=|:)\s*[\"']?"
        rf"(?<![{_B64}])(?P<secret>[{_B64}]{{40}})(?![{_B64}=])"),
        # the names' usual spellings (aws_secret_access_key, AWS_SECRET_KEY, secretAccessKey...), first letter
        # left out for its case: lower-casing a megabyte costs more than all the scanning
        ("ws_secret", "WS_SECRET", "wsSecret", "ws-secret", "ws.secret", "ecret_access", "ECRET_ACCESS",
         "ecretAccess", "ecret-access", "ecret.access"), "secret", per_line=True),
    _Pattern("github-token", re.compile(
        r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])"), ("gh", "github_pat_")),
    _Pattern("gitlab-token", re.compile(r"glpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])"), ("glpat-",)),
    _Pattern("slack-token", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,250}"), ("xox",)),
    _Pattern("slack-webhook", re.compile(
        r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"), ("hooks.slack.com",)),
    _Pattern("google-api-key", re.compile(r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"), ("AIza",)),
    _Pattern("stripe-key", re.compile(r"sk_live_[0-9A-Za-z]{24,99}(?![A-Za-z0-9])"), ("sk_live_",)),
    _Pattern("stripe-key", re.compile(r"rk_live_[0-9A-Za-z]{24,99}(?![A-Za-z0-9])"), ("rk_live_",)),
    _Pattern("npm-token", re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"), ("npm_",)),
    _Pattern("pypi-token", re.compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"), ("pypi-AgEIcHlwaS5vcmc",)),
)
# Token shapes start with a fixed prefix: one that continues a longer word or token is no match
# (checked in code: a leading look-behind would keep `re` from scanning for the prefix).
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_PREFIXED = frozenset({"aws-access-key", "github-token", "gitlab-token", "slack-token", "google-api-key",
                        "stripe-key", "npm-token", "pypi-token"})
KINDS = tuple(dict.fromkeys(p.kind for p in PATTERNS))


def marker(kind: str) -> str:
    return f"[REDACTED {kind}]"


def redact_secrets(text: str) -> tuple[str, Counter]:
    """``text`` with every secret replaced by its marker, and how many were found per kind.

    Line breaks are kept one for one, so the result has the same lines (count and numbering) as
    ``text``; lines without a secret are unchanged. Text without secrets is returned as is."""
    found: Counter = Counter()
    for p in PATTERNS:
        if not any(h in text for h in p.hints):
            continue
        spans = _lines_with(text, p.hints) if p.per_line else None  # None: scan it all
        n = 0

        def replace(m: re.Match, p: _Pattern = p) -> str:
            nonlocal n
            start, end = m.span(p.group)
            if p.kind in _PREFIXED and m.start() and m.string[m.start() - 1] in _WORD:
                return m.group(0)
            secret = m.string[start:end]
            if p.kind == "private-key":  # keep the body's leading and trailing whitespace (its line breaks)
                core = secret.strip()
                if not core:
                    return m.group(0)
                lead = secret[: len(secret) - len(secret.lstrip())]
                trail = secret[len(secret.rstrip()):]
                n += 1
                return (m.string[m.start():start] + lead + _replacement(p.kind, core) + trail
                        + m.string[end:m.end()])
            n += 1
            return m.string[m.start():start] + _replacement(p.kind, secret) + m.string[end:m.end()]

        if spans is None:
            new = p.regex.sub(replace, text)
        else:
            parts, last = [], 0
            for a, b in spans:
                parts += [text[last:a], p.regex.sub(replace, text[a:b])]
                last = b
            new = "".join(parts) + text[last:]
        if n:
            found[p.kind] += n
            text = new
    return text, found


def _lines_with(text: str, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each line of `text` holding one of `needles`, in order, without repeats."""
    starts = set()
    for needle in needles:
        i = text.find(needle)
        while i >= 0:
            starts.add(text.rfind("\n", 0, i) + 1)
            i = text.find(needle, i + 1)
    spans = []
    for a in sorted(starts):
        b = text.find("\n", a)
        spans.append((a, len(text) if b < 0 else b))
    return spans


def _replacement(kind: str, secret: str) -> str:
    """The marker, followed by the secret's own line breaks (so no line moves)."""
    return marker(kind) + "".join(_LINE_BREAK.findall(secret))
