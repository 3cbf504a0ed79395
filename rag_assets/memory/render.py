"""Notes and memories as text: the Markdown an agent (or a person) reads."""

from __future__ import annotations

import datetime as dt

from rag_assets.memory.records import Note, age_text


def iso(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds") if ts else None


def note_markdown(n: Note, now: float) -> str:
    tags = f" · tags: {', '.join(n.tags)}" if n.tags else ""
    revised = f" · replaces {', '.join(n.supersedes)}" if n.supersedes else ""
    when = f"{iso(n.created_at)[:10]} ({age_text(now - n.created_at)} ago)"
    return (f"## {n.title}\n_{n.id} · {when}{tags}{revised}_\n\n"
            f"{n.body.strip()}\n")


def notes_markdown(source: str, notes: list[Note], now: float) -> str:
    """Every live note of a source, newest first: decisions and conventions agents recorded."""
    head = f"# Notes: {source}\n\n{len(notes)} note(s), newest first.\n"
    return "\n".join([head, *(note_markdown(n, now) for n in sorted(notes, key=lambda n: -n.created_at))])
