"""The answer cache: a model's answer to a question, reused when the same question meets the same context.

    <data_dir>/memory/answers/<source>.jsonl     one line per answer, appended like the memory log

The key is a hash of the source, the model endpoint and name, the system prompt, the question and the
exact context the model read (every span's text and citation, so its commit). A re-index that changes a
cited span, a new note in the context, another model or another budget that changes the spans: a new
key. Nothing goes stale by time, only by its inputs, so no TTL. Failed model calls are never cached.
RAG_ANSWER_CACHE=0 turns it off.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

from rag_assets import settings
from rag_assets.memory.log import append_line, memory_dir

_LOCK = threading.Lock()
_LOADED: dict[Path, tuple[int, dict[str, str]]] = {}  # path -> (size read, key -> answer)


def cache_path(data_dir: str | Path, source: str) -> Path:
    return memory_dir(data_dir) / "answers" / f"{source}.jsonl"


def answer_key(source: str, question: str, context_text: str, model: str, base_url: str, system_prompt: str) -> str:
    raw = json.dumps([source, base_url, model, system_prompt, " ".join(question.split()), context_text])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def lookup(source: str, key: str) -> str | None:
    """The cached answer, or None (also when the cache is off or unreadable: it never fails an ask)."""
    if not settings.current().answer_cache:
        return None
    try:
        return _entries(cache_path(settings.current().data_dir, source)).get(key)
    except OSError:
        return None


def store(source: str, key: str, question: str, model: str, answer: str) -> None:
    """Keep a model's answer (never a failed call's message); a full disk only loses the cache entry."""
    if not settings.current().answer_cache:
        return
    try:
        append_line(cache_path(settings.current().data_dir, source), json.dumps(
            {"key": key, "ts": round(time.time(), 3), "model": model, "question": question, "answer": answer},
            ensure_ascii=False))
    except OSError:
        pass


def _entries(path: Path) -> dict[str, str]:
    """Key -> answer, re-reading only what was appended since the last call (by any process)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    with _LOCK:
        done, entries = _LOADED.get(path, (0, {}))
        if size < done:  # replaced or truncated by hand: start over
            done, entries = 0, {}
        if size > done:
            with open(path, "rb") as f:
                f.seek(done)
                data = f.read(size - done)
            complete = data[: data.rfind(b"\n") + 1]
            for raw in complete.splitlines():
                try:
                    row = json.loads(raw)
                    entries[row["key"]] = row["answer"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line: skip it
            done += len(complete)
            _LOADED[path] = (done, entries)
        return entries
