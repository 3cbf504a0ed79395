"""`rag-assets memory add|search|forget|list` and `rag-assets notes add|list`: the MCP memory tools on the
command line (rag_assets/cli.py adds these subcommands; errors are its one-line errors, exit code 2)."""

from __future__ import annotations

import json
import sys
import time

from rag_assets.memory.records import CATEGORIES, DEFAULT_CATEGORY, age_text


def cmd_memory_add(args) -> int:
    from rag_assets.memory.api import remember

    out = remember(args.text, args.source, args.category, args.tags, args.importance, by="cli")
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        expires = f", expires {out['expires']}" if out["expires"] else ""
        print(f"remembered {out['id']} ({out['category']}{expires}) in {out['source']}")
    return 0


def cmd_memory_search(args) -> int:
    from rag_assets.memory.recall import recall

    t0, now = time.perf_counter(), time.time()
    hits = recall(args.query, args.source, args.category, args.tags, args.k, now=now)
    if args.json:
        print(json.dumps([h.to_dict(now) for h in hits], indent=1))
        return 0
    if not hits:
        print("no memories")
    for i, h in enumerate(hits, 1):
        extra = "".join([f" x{h.count}" if h.count > 1 else "", "" if h.indexed else " (new)",
                         f" [{', '.join(h.tags)}]" if h.tags else ""])
        print(f"{i:>2}. {h.id}  {h.category:<10} {age_text(h.age_s(now)):>4} ago  score={h.score:.3f}{extra}")
        print(f"      {h.text}")
    print(f"-- {len(hits)} memories in {1000 * (time.perf_counter() - t0):.0f} ms", file=sys.stderr)
    return 0


def cmd_memory_forget(args) -> int:
    from rag_assets.memory.api import forget

    out = forget(args.id, args.source, by="cli")
    print(json.dumps(out, indent=1) if args.json else
          f"forgot {', '.join(out['forgotten'])} in {out['source']}")
    return 0


def cmd_memory_list(args) -> int:
    from rag_assets.memory.api import list_memories
    from rag_assets.memory.render import iso

    now = time.time()
    rows = list_memories(args.source, args.category, args.tags)
    if args.json:
        print(json.dumps([{"id": m.id, "text": m.text, "category": m.category, "tags": m.tags,
                           "importance": m.importance, "created": iso(m.created_at),
                           "age": age_text(now - m.created_at),
                           "expires": iso(m.expires_at)} for m in rows], indent=1))
        return 0
    if not rows:
        print("no memories")
    for m in rows:
        tags = f" [{', '.join(m.tags)}]" if m.tags else ""
        print(f"{m.id}  {m.category:<10} {age_text(now - m.created_at):>4} ago  {m.text}{tags}")
    return 0


def cmd_notes_add(args) -> int:
    from rag_assets.memory.api import note

    body = sys.stdin.read() if args.body == "-" else args.body
    out = note(args.title, body, args.source, args.tags, by="cli")
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        replaced = f" (replaces {', '.join(out['replaces'])})" if out["replaces"] else ""
        print(f"noted {out['id']} '{out['title']}' in {out['source']}{replaced}")
    return 0


def cmd_notes_list(args) -> int:
    from rag_assets.memory.api import list_notes
    from rag_assets.memory.render import iso, notes_markdown

    now = time.time()
    notes = list_notes(args.source, args.tags)
    if args.json:
        print(json.dumps([{"id": n.id, "title": n.title, "body": n.body, "tags": n.tags, "created": iso(n.created_at),
                           "replaces": n.supersedes} for n in notes], indent=1))
        return 0
    print(notes_markdown(args.source, notes, now))
    return 0


def _tags(value: str) -> list[str]:
    return [t for t in value.split(",") if t.strip()]


def add_parsers(sub) -> None:
    """Add `memory` and `notes` to the `rag-assets` subcommands."""
    s = sub.add_parser("memory", help="agent memory of a source: add, search, forget, list (as the MCP tools)")
    msub = s.add_subparsers(dest="memory_command", required=True)

    a = msub.add_parser("add", help="remember TEXT (searchable at once)")
    a.add_argument("text")
    a.add_argument("--source", required=True)
    a.add_argument("--category", default=DEFAULT_CATEGORY, choices=CATEGORIES,
                   help="preference | project | session (session memories expire: RAG_MEMORY_SESSION_TTL)")
    a.add_argument("--tags", type=_tags, default=None, help="comma-separated labels")
    a.add_argument("--importance", type=float, default=0.5, help="0 to 1 (default 0.5)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_memory_add)

    q = msub.add_parser("search", help="memories closest to QUERY, with id, age and score")
    q.add_argument("query")
    q.add_argument("--source", required=True)
    q.add_argument("--category", choices=CATEGORIES)
    q.add_argument("--tags", type=_tags, default=None, help="only memories with any of these (comma-separated)")
    q.add_argument("--k", type=int, default=5)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_memory_search)

    f = msub.add_parser("forget", help="forget a memory or note by id")
    f.add_argument("id")
    f.add_argument("--source", help="its source (default: found by id)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_memory_forget)

    ls = msub.add_parser("list", help="live memories from the log, newest first")
    ls.add_argument("--source", required=True)
    ls.add_argument("--category", choices=CATEGORIES)
    ls.add_argument("--tags", type=_tags, default=None)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_memory_list)

    s = sub.add_parser("notes", help="a source's notes (decisions, conventions) as Markdown: add, list")
    nsub = s.add_subparsers(dest="notes_command", required=True)
    a = nsub.add_parser("add", help="record a note (same title: replaces the older one)")
    a.add_argument("title")
    a.add_argument("--body", required=True, help="Markdown text, or - to read it from stdin")
    a.add_argument("--source", required=True)
    a.add_argument("--tags", type=_tags, default=None)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_notes_add)
    ls = nsub.add_parser("list", help="every live note, newest first, as Markdown")
    ls.add_argument("--source", required=True)
    ls.add_argument("--tags", type=_tags, default=None)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_notes_list)

