"""JSON, YAML and TOML: a file within the budget is one chunk (kind "module"); a larger
one is packed greedily into "section" chunks cut at top-level keys (TOML tables), its
symbol naming the keys it holds. A single key over the budget is split at its nested keys
(then blank lines), each part keeping the key as symbol and a part number.

Keys come from the tree-sitter grammar; a file that does not parse is windowed
("partial"), as is one whose grammar is missing ("fallback", via GrammarUnavailable).
"""

from __future__ import annotations

from collections.abc import Sequence

from .syntax_chunker import parse_lines
from .syntax_languages import text, unquote
from .text_chunker import Counter, blank_separated_starts, span_pieces
from .types import Chunk

CONFIG_LANGUAGES = frozenset({"json", "yaml", "toml"})
_COMMENT = {"json": "//", "yaml": "#", "toml": "#"}
_WRAPPERS = frozenset({"block_node", "flow_node", "block_mapping", "block_sequence", "object", "array"})


def _entries(language: str, root) -> list[tuple[object, str]]:
    """(node, key) of each top-level entry."""
    out: list[tuple[object, str]] = []
    if language == "toml":
        for n in root.named_children:
            if n.type == "pair":
                out.append((n, text(n.named_children[0]) if n.named_children else ""))
            elif n.type in ("table", "table_array_element"):
                key = next((c for c in n.named_children if c.type in ("bare_key", "dotted_key", "quoted_key")), None)
                out.append((n, text(key)))
        return out
    if language == "json":
        containers = [c for c in root.named_children if c.type in ("object", "array")]
    else:  # yaml: a stream of documents, each usually one block mapping
        containers = []
        for doc in root.named_children:
            if doc.type != "document":
                continue
            node = doc
            while node.type in ("document", "block_node", "flow_node") and node.named_children:
                node = next((c for c in node.named_children if "comment" not in c.type), node.named_children[0])
            if node.type in ("block_mapping", "block_sequence", "flow_mapping", "flow_sequence"):
                containers.append(node)
            elif node is not doc:
                out.append((doc, ""))
    for container in containers:
        for i, n in enumerate(c for c in container.named_children if "comment" not in c.type):
            key = n.child_by_field_name("key")
            out.append((n, unquote(text(key)) if key is not None else f"[{i}]"))
    return out


def _symbol(keys: list[str]) -> str:
    return ", ".join(keys) if len(keys) <= 4 else f"{keys[0]}, {keys[1]}, …, {keys[-1]}"


def chunk_config(language: str, path: str, lines: Sequence[str], budget: int, count: Counter,
                 encoding: str) -> tuple[list[Chunk], str] | None:
    """Chunks and "ok"; None when the file does not parse (the caller windows it).
    Raises GrammarUnavailable only for a file over the budget (small ones need no parse)."""
    whole = span_pieces(lines, 1, len(lines), budget, count, encoding)
    if len(whole) == 1:
        a, b, t, nt = whole[0]
        return [Chunk(path, language, "module", "<module>", a, b, t, nt)], "ok"
    tree, _ = parse_lines(language, lines)
    if tree.root_node.has_error:
        return None
    comment = _COMMENT[language]
    starts: dict[int, str] = {}  # first line of each entry (with its comments above) -> key
    nested: set[int] = set()  # lines where a second-level entry starts
    for node, key in _entries(language, tree.root_node):
        line = node.start_point.row + 1
        while line > 1 and lines[line - 2].lstrip().startswith(comment) and (line - 1) not in starts:
            line -= 1
        starts[line] = key
        stack = [node.child_by_field_name("value") or node]
        while stack:  # look through block_node / flow_node wrappers to the nested entries
            for c in stack.pop().named_children:
                if c.type in _WRAPPERS:
                    stack.append(c)
                elif c.start_point.row + 1 > line:
                    nested.add(c.start_point.row + 1)
    order = sorted(starts)
    cuts = (set(order), nested, blank_separated_starts(lines))
    out: list[Chunk] = []
    pieces = span_pieces(lines, 1, len(lines), budget, count, encoding, cuts)
    for a, b, t, nt in pieces:
        # Keys starting in the piece, or the key whose entry the piece continues.
        keys = [starts[s] for s in order if a <= s <= b]
        before = [s for s in order if s < a]
        if before and (not keys or min(s for s in order if a <= s <= b) > a):
            keys.insert(0, starts[before[-1]])
        if keys:
            out.append(Chunk(path, language, "section", _symbol(keys), a, b, t, nt))
        else:
            out.append(Chunk(path, language, "module", "<module>", a, b, t, nt))
    # Consecutive pieces of one key are numbered parts.
    numbered: list[Chunk] = []
    i = 0
    while i < len(out):
        j = i
        while j + 1 < len(out) and out[j + 1].kind == "section" and out[j + 1].symbol == out[i].symbol:
            j += 1
        run = out[i : j + 1]
        if len(run) > 1 and run[0].kind == "section":
            run = [Chunk(c.path, c.language, c.kind, c.symbol, c.start_line, c.end_line, c.text, c.n_tokens,
                         part=k + 1) for k, c in enumerate(run)]
        numbered.extend(run)
        i = j + 1
    return numbered, "ok"
