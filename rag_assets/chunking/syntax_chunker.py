"""One tree-sitter chunker for every language in syntax_languages.SPECS.

The chunk contract is python_chunker's, applied to syntax trees:

* function / method: its lines, with the comments (doc comments) and decorators /
  attributes directly above it (no blank line between); nested functions stay inside.
* type (class, interface, struct, enum, trait, impl, module): an *outline*: the type's own
  lines (header, doc, fields, closing brace) with each member definition replaced by its
  header and a stub (``{ ... }``). Span: first line .. last own non-blank line. Members
  then get their own chunks, nested types recursively.
* namespaces are transparent: they prefix symbols; their loose lines are module code.
* module: the lines between definitions, packed greedily under the budget, cut at
  statement starts.
* A definition over the budget is split at statement starts (then blank lines, then any
  line start); every part keeps kind and symbol and gets ``part`` 1, 2, ...

Files with syntax errors still index: definitions whose subtree is clean are chunked as
usual, the lines of broken statements are line windows (kind "text"), status "partial".
All spans are line-granular: several definitions on one line stay in one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from .grammars import GrammarUnavailable, parser_for
from .syntax_languages import FILE_STEM, FUNCTION_KINDS, Def, LangSpec
from .text_chunker import Counter, blank_separated_starts, is_blank, one_line, pack, span_pieces, window_spans
from .types import Chunk

# Parent node types whose children are statements / members: the preferred cut points.
_BLOCKISH = re.compile(r"block|body|program|source_file|translation_unit|compilation_unit|declaration_list|"
                       r"compound_statement|statement_list|switch|case|document|stream|^module$")


def _last_row(node) -> int:
    """Last row holding the node's text (a node may end at column 0 after its newline)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _is_comment(node) -> bool:
    return "comment" in node.type


class _LazySet(Collection[int]):
    """A set computed on first use: cut points are only needed when something is split."""

    def __init__(self, compute: Callable[[], set[int]]):
        self._compute, self._set = compute, None

    def _get(self) -> set[int]:
        if self._set is None:
            self._set = self._compute()
        return self._set

    def __contains__(self, x: object) -> bool:
        return x in self._get()

    def __iter__(self) -> Iterator[int]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


@dataclass(frozen=True)
class _Scope:
    prefix: str = ""  # qualified name of the enclosing type / namespace
    sep: str = ""  # between prefix and a nested name
    in_type: bool = False  # functions here are methods
    member_sep: str = ""  # between prefix and a method name


@dataclass
class _Item:
    """One definition found in a scope."""

    start: int  # first line, attached comments and decorators included
    end: int
    stub_start: int  # first line without the attached comments (decorators stay)
    node: object  # the outermost node (export / template wrapper included)
    defn: object  # the definition node itself
    rule: Def
    kind: str
    name: str
    body: object | None
    scope: _Scope  # where it was found


def _join(prefix: str, sep: str, name: str) -> str:
    return f"{prefix}{sep}{name}" if prefix and name else prefix or name


class SyntaxChunker:
    def __init__(self, spec: LangSpec, path: str, language: str, lines: Sequence[str], tree, source: bytes,
                 budget: int, count: Counter, encoding: str, imports: tuple[str, ...]):
        self.spec, self.path, self.language, self.lines, self.tree = spec, path, language, lines, tree
        self.source = source
        self.budget, self.count, self.encoding, self.imports = budget, count, encoding, imports
        self.ns_sep = spec.ns_sep or spec.sep
        self.member_sep = spec.member_sep or spec.sep
        self.out: list[Chunk] = []
        self.error_lines: set[int] = set()
        stmts, others = _LazySet(lambda: self._cut_points()[0]), _LazySet(lambda: self._cut_points()[1])
        self.cuts = (stmts, _LazySet(lambda: blank_separated_starts(lines)), others)
        self._cut_cache: tuple[set[int], set[int]] | None = None

    # --- finding definitions ---------------------------------------------------------------

    def _classify(self, node, depth: int = 0) -> tuple[object, Def] | None:
        """(definition node, rule) for a definition or a wrapper around one, else None."""
        rule = self.spec.defs.get(node.type)
        if rule is not None:
            return node, rule
        if node.type in self.spec.wrappers and depth < 4:
            for child in node.named_children:
                if child.type in self.spec.attach or child.type in self.spec.decorations or _is_comment(child):
                    continue
                found = self._classify(child, depth + 1)
                if found is not None:
                    return found
        return None

    def _body(self, defn, rule: Def):
        if rule.body is not None:
            return rule.body(defn)
        body = defn.child_by_field_name("body")
        if body is None and self.spec.body_types:
            body = next((c for c in defn.named_children if c.type in self.spec.body_types), None)
        return body

    def _members(self, container, body) -> Iterator[object]:
        """Children of ``container``, looking through ``body`` and the spec's flatten types."""
        stack = [(c, False) for c in reversed(container.children)]
        while stack:
            node, in_error = stack.pop()
            # Inside an ERROR, a block (say the body of a namespace whose header did not parse)
            # still holds clean definitions.
            if (node == body or node.type in self.spec.flatten or node.type == "ERROR"
                    or (in_error and _BLOCKISH.search(node.type) and node.type not in self.spec.defs)):
                if node.type == "ERROR":
                    self.error_lines.update(range(node.start_point.row + 1, _last_row(node) + 2))
                inside = in_error or node.type == "ERROR"
                stack.extend((c, inside) for c in reversed(node.children))
            elif node.is_named:
                yield node

    def _collect(self, container, body, scope: _Scope, floor: int, lo: int = 0, hi: int = 1 << 30) -> list[_Item]:
        """Definitions among ``container``'s members, namespaces expanded, in line order.

        ``floor``: the last row comments may not attach across. Items must lie on lines
        lo < line < hi, or be the container's last node (Python-style bodies), so that no
        line holds both a member and the container's own header or closing brace.
        """
        items: list[_Item] = []
        pending: list[object] = []  # comments / decorators directly above the next node
        for node in self._members(container, body):
            if _is_comment(node) or node.type in self.spec.attach:
                if pending and node.start_point.row > _last_row(pending[-1]) + 1:
                    pending = []  # a blank line breaks the run
                pending.append(node)
                continue
            attached, pending = pending, []
            prev_floor, floor = floor, _last_row(node)
            found = self._classify(node)
            name = found[1].name(found[0]) if found is not None else None
            if name == FILE_STEM:
                name = self._file_stem()
            if name is None:  # not a definition: module code / the type's own lines
                if node.has_error:
                    self.error_lines.update(range(node.start_point.row + 1, _last_row(node) + 2))
                continue
            defn, rule = found
            kind = rule.kind(defn) if callable(rule.kind) else rule.kind
            body_node = self._body(defn, rule)
            if kind == "namespace":
                if body_node is None:  # C# `namespace A;` / PHP `namespace A;`: the rest of the scope
                    scope = self._ns_scope(scope, name, rule)
                else:
                    # The body's parent: a JS callback holding definitions sits below the call.
                    items += self._collect(body_node.parent or defn, body_node, self._ns_scope(scope, name, rule),
                                           node.start_point.row)
                continue
            if kind in FUNCTION_KINDS and body_node is None:
                continue  # a declaration (abstract / interface method, prototype): plain lines
            start_row = node.start_point.row
            # Attach the run of comments/decorators ending right above the node.
            keep = []
            for a in reversed(attached):
                if _last_row(a) < start_row - 1 or a.start_point.row <= prev_floor:
                    break
                keep.append(a)
                start_row = a.start_point.row
            stub_row = min([node.start_point.row] + [a.start_point.row for a in keep if not _is_comment(a)])
            item = _Item(start_row + 1, _last_row(node) + 1, stub_row + 1, node, defn, rule, kind, name,
                         body_node, scope)
            if node.has_error:
                self.error_lines.update(range(item.start, item.end + 1))
                if kind not in FUNCTION_KINDS and body_node is not None:
                    # Keep the clean members of a broken type; its own lines become windows.
                    items += self._collect(body_node.parent or defn, body_node, self._type_scope(item),
                                           node.start_point.row)
                continue
            if item.start <= lo or (item.end >= hi and node.end_byte < container.end_byte):
                continue  # shares a line with the container's header / closing line
            items.append(item)
        items.sort(key=lambda it: it.start)
        return self._merge_overloads(self._disjoint(items))

    def _file_stem(self) -> str:
        """The name of a file's anonymous default export: its stem, or its directory for index.*."""
        p = PurePosixPath(self.path.replace("\\", "/"))
        stem = p.name.split(".")[0] or p.name
        return p.parent.name if stem == "index" and p.parent.name else stem

    @staticmethod
    def _disjoint(items: list[_Item]) -> list[_Item]:
        out: list[_Item] = []
        for it in items:
            if out and it.start <= out[-1].end:
                continue  # on a line already taken: stays in that chunk's text
            out.append(it)
        return out

    @staticmethod
    def _merge_overloads(items: list[_Item]) -> list[_Item]:
        """TS overload signatures join the implementation that follows them."""
        out: list[_Item] = []
        group: list[_Item] = []
        for it in items:
            if it.kind == "overload":
                if group and group[-1].name != it.name:
                    group = []
                group.append(it)
                continue
            if group and group[-1].name == it.name and it.kind in FUNCTION_KINDS:
                it.start, it.stub_start = group[0].start, group[0].stub_start
            group = []
            out.append(it)
        return out

    def _ns_scope(self, scope: _Scope, name: str, rule: Def) -> _Scope:
        if scope.in_type:  # Ruby `class << self`: same type, other member separator
            return _Scope(scope.prefix, scope.sep, True, rule.member_sep or scope.member_sep)
        return _Scope(_join(scope.prefix, scope.sep, name), self.ns_sep if (scope.prefix or name) else "")

    def _type_scope(self, item: _Item) -> _Scope:
        return _Scope(self._symbol(item), self.spec.sep, True, self.member_sep)

    def _symbol(self, item: _Item) -> str:
        scope, rule = item.scope, item.rule
        owner = rule.owner(item.defn) if rule.owner is not None else None
        if item.kind in FUNCTION_KINDS:
            member_sep = rule.member_sep or scope.member_sep or self.member_sep
            if owner:
                return _join(_join(scope.prefix, scope.sep, owner), member_sep, item.name)
            if scope.in_type:
                return _join(scope.prefix, member_sep, item.name)
        return _join(scope.prefix, scope.sep, item.name)

    def _kind(self, item: _Item) -> str:
        if item.kind in FUNCTION_KINDS:
            owner = item.rule.owner(item.defn) if item.rule.owner is not None else None
            return "method" if item.scope.in_type or owner else item.kind
        return item.kind

    # --- headers: signatures and outline stubs -----------------------------------------------

    def _header_end(self, item: _Item):
        """(byte, point) where the header ends: the end of what precedes the body."""
        body = item.body
        if body is None:
            return None
        prev = body.prev_sibling
        while prev is not None and _is_comment(prev):
            prev = prev.prev_sibling
        return (prev.end_byte, prev.end_point) if prev is not None else (body.start_byte, body.start_point)

    def _skipped_ranges(self, node, end: int, out: list[tuple[int, int]], depth: int = 0) -> None:
        """Byte ranges of decorators / comments inside the header (not part of a signature)."""
        for c in node.children:
            if c.start_byte >= end:
                break
            if c.type in self.spec.decorations or c.type in self.spec.attach or _is_comment(c):
                out.append((c.start_byte, c.end_byte))
            elif depth < 4 and c.end_byte > c.start_byte and (
                    c.type in self.spec.wrappers or c.type in self.spec.defs or c.type == "modifiers"):
                self._skipped_ranges(c, end, out, depth + 1)

    def _signature(self, item: _Item) -> str:
        node = item.node
        header = self._header_end(item)
        end = header[0] if header is not None else node.end_byte
        skip: list[tuple[int, int]] = []
        self._skipped_ranges(node, end, skip)
        src, parts, pos = self.source, [], node.start_byte
        for a, b in sorted(skip):
            if a > pos:
                parts.append(src[pos:a])
            pos = max(pos, b)
        if end > pos:
            parts.append(src[pos:end])
        sig = b"".join(parts).decode("utf-8", "replace")
        if header is None:  # no body: the first line stands for the header
            sig = next((ln for ln in sig.splitlines() if ln.strip()), "")
        return one_line(sig).rstrip(" {:=;").strip()

    def _stub(self, item: _Item) -> list[tuple[str, int | None, bool]]:
        """A member in its type's outline: decorators + header lines, then the stub."""
        if item.node.start_point.row == _last_row(item.node):  # one-liner: keep it whole
            return [(self.lines[n - 1], n, False) for n in range(item.stub_start, item.end + 1)]
        header = self._header_end(item)
        row = header[1].row if header is not None else item.node.start_point.row
        entries = [(self.lines[n - 1], n, False) for n in range(item.stub_start, row + 2)]
        last = self.lines[row]
        if header is not None:
            col = header[1].column
            raw = last.encode("utf-8", "surrogatepass")
            if row == 0 and last.startswith("\ufeff"):
                col += 3  # the parser saw the line without its BOM
            last = raw[:col].decode("utf-8", "ignore").rstrip()
        entries[-1] = (f"{last} {self.spec.stub}", row + 1, False)
        return entries

    # --- emitting ----------------------------------------------------------------------------

    def _chunk(self, kind: str, symbol: str, a: int, b: int, text: str, nt: int, signature: str = "",
               part: int = 0) -> None:
        self.out.append(Chunk(self.path, self.language, kind, symbol, a, b, text, nt, signature, self.imports, part))

    def _emit(self, kind: str, symbol: str, start: int, end: int, signature: str) -> None:
        pieces = span_pieces(self.lines, start, end, self.budget, self.count, self.encoding, self.cuts)
        for i, (a, b, text, nt) in enumerate(pieces):
            self._chunk(kind, symbol, a, b, text, nt, signature, i + 1 if len(pieces) > 1 else 0)

    def _gap(self, start: int, end: int) -> None:
        """Lines between definitions: module code, or windows where the parse failed."""
        line = start
        while line <= end:
            broken = line in self.error_lines
            stop = line
            while stop + 1 <= end and ((stop + 1) in self.error_lines) == broken:
                stop += 1
            if broken:
                for a, b, text, nt in window_spans(self.lines[line - 1 : stop], self.budget, self.count, self.encoding):
                    self._chunk("text", "", a + line - 1, b + line - 1, text, nt)
            else:
                for a, b, text, nt in span_pieces(self.lines, line, stop, self.budget, self.count, self.encoding,
                                                  self.cuts):
                    self._chunk("module", "<module>", a, b, text, nt)
            line = stop + 1

    def run(self) -> list[Chunk]:
        root = self.tree.root_node
        pos = 1
        for item in self._collect(root, None, _Scope(), -1):
            if item.start > pos:
                self._gap(pos, item.start - 1)
            self._definition(item)
            pos = item.end + 1
        if pos <= len(self.lines):
            self._gap(pos, len(self.lines))
        return self.out

    def _definition(self, item: _Item) -> None:
        if item.kind in FUNCTION_KINDS:
            self._emit(self._kind(item), self._symbol(item), item.start, item.end, self._signature(item))
        else:
            self._type(item)

    def _type(self, item: _Item) -> None:
        symbol = self._symbol(item)
        members: list[_Item] = []
        if item.body is not None:
            container = item.body.parent or item.defn
            header_row = self._header_end(item)[1].row  # members start below the header
            members = self._collect(container, item.body, self._type_scope(item), header_row,
                                    lo=header_row + 1, hi=_last_row(item.node) + 1)
        entries: list[tuple[str, int | None, bool]] = []
        stub_idx: set[int] = set()
        line, mi = item.start, 0
        while line <= item.end:
            if mi < len(members) and line == members[mi].start:
                stub_idx.add(len(entries))
                entries.extend(self._stub(members[mi]))
                line = members[mi].end + 1
                mi += 1
            else:
                entries.append((self.lines[line - 1], line, True))
                line += 1
        # Cut an oversized outline before a stub or a statement of the type's own lines.
        cut_idx = _LazySet(lambda: stub_idx | {i for i, (_, n, own) in enumerate(entries) if own and n in self.cuts[0]})
        self._outline(entries, cut_idx, item.kind, symbol, self._signature(item))
        for m in members:
            self._definition(m)

    def _outline(self, entries, cut_idx: Collection[int], kind: str, symbol: str, signature: str) -> None:
        pieces = pack([e[0] for e in entries], self.budget, self.count, self.encoding, (cut_idx,))
        for i, p in enumerate(pieces):
            part = entries[p.first : p.last + 1]
            own = [n for t, n, is_own in part if is_own and not is_blank(t)]
            nums = own or [n for _, n, _ in part if n is not None]
            if nums:
                self._chunk(kind, symbol, min(nums), max(nums), p.text, p.n_tokens, signature,
                            i + 1 if len(pieces) > 1 else 0)

    # --- cut points --------------------------------------------------------------------------

    def _cut_points(self) -> tuple[set[int], set[int]]:
        """Lines where a statement / member starts (1-based), and where any other node starts
        a line; moved up over the comments and decorators directly above them."""
        if self._cut_cache is not None:
            return self._cut_cache
        stmts: set[int] = set()
        others: set[int] = set()
        leading: set[int] = set()  # comment / decorator lines
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            if node.start_point.row == node.end_point.row:
                continue  # nothing inside starts a line
            tier = stmts if _BLOCKISH.search(node.type) else others
            prev_row = node.start_point.row
            for c in node.children:
                row = c.start_point.row
                if row > prev_row and c.is_named:
                    tier.add(row + 1)
                    if _is_comment(c) or c.type in self.spec.attach or c.type in self.spec.decorations:
                        leading.update(range(row + 1, _last_row(c) + 2))
                prev_row = max(prev_row, _last_row(c))
                if c.end_point.row > c.start_point.row:
                    stack.append(c)

        def up(cuts: set[int]) -> set[int]:
            out = set()
            for c in cuts:
                while c - 1 in leading:
                    c -= 1
                out.add(c)
            return out

        self._cut_cache = (up(stmts), up(others))
        return self._cut_cache


# --- entry point ---------------------------------------------------------------------------

# A file whose lines average more than this many characters is minified / generated:
# parsing it buys nothing (everything is on a few lines) and costs seconds.
MINIFIED_CHARS_PER_LINE = 1000


def find_imports(spec: LangSpec, root) -> tuple[str, ...]:
    """Imports among the top-level statements (looking through namespaces and #ifdefs)."""
    found: list[str] = []
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        get = spec.imports.get(node.type)
        if get is not None:
            try:
                found.extend(s for s in get(node) if s)
            except (AttributeError, IndexError, TypeError):
                pass  # a partial node (parse error) without the expected fields
        rule = spec.defs.get(node.type)
        if node.type in spec.flatten or node.type == "ERROR":
            stack.extend(reversed(node.children))
        elif rule is not None and rule.kind == "namespace":
            body = node.child_by_field_name("body")
            if body is not None:
                stack.extend(reversed(body.children))
    return tuple(dict.fromkeys(found))


def parse_lines(language: str, lines: Sequence[str]):
    """(tree, source bytes): the file parsed as the chunker sees it, lines joined by "\\n" (so
    tree rows are line numbers whatever the file's line endings), without a BOM."""
    text = "\n".join(lines)
    if text.startswith("\ufeff"):
        text = text[1:]
    source = text.encode("utf-8", "surrogatepass")
    return parser_for(language).parse(source), source


def chunk_syntax(spec: LangSpec, language: str, path: str, lines: Sequence[str], budget: int, count: Counter,
                 encoding: str, grammar: str | None = None, specs: dict[str, LangSpec] | None = None
                 ) -> tuple[list[Chunk], str]:
    """Chunks and parse status ("ok" or "partial"); raises GrammarUnavailable."""
    tree, source = parse_lines(grammar or spec.grammar, lines)
    if tree.root_node.has_error and spec.alternate and specs and spec.alternate in specs:
        # A .h file may be C++: keep the C++ reading if it parses cleanly.
        try:
            alt_tree, alt_source = parse_lines(spec.alternate, lines)
        except GrammarUnavailable:
            alt_tree = None
        if alt_tree is not None and not alt_tree.root_node.has_error:
            spec, tree, source = specs[spec.alternate], alt_tree, alt_source
    imports = find_imports(spec, tree.root_node)
    chunker = SyntaxChunker(spec, path, language, lines, tree, source, budget, count, encoding, imports)
    chunks = chunker.run()
    return chunks, "partial" if tree.root_node.has_error else "ok"
