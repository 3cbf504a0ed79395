"""Deterministic ids: the same chunk always gets the same id, so every step is idempotent."""

from __future__ import annotations

import hashlib
import uuid

_NS = uuid.UUID("6f1c3a52-8d0e-4f6b-9a51-2c7d93e4b1a0")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def chunk_id(source: str, path: str, start_line: int, end_line: int, text_hash: str) -> str:
    return hashlib.sha256(f"{source}\0{path}\0{start_line}\0{end_line}\0{text_hash}".encode()).hexdigest()[:32]


def point_id(chunk_id_: str) -> str:
    return str(uuid.uuid5(_NS, chunk_id_))
