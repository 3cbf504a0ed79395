"""Declarative per-language specs for the tree-sitter chunker (syntax_chunker.py).

A spec says which node types are definitions (``Def``: its kind noun, how to read its
name, owner and body), which nodes merely wrap one (``export``, ``template <...>``), which
to look through (``#ifdef``, ERROR), which siblings attach to the next definition
(decorators, Rust ``#[...]``), how symbols are joined, and where imports are.

Kinds: "function" (becomes "method" inside a type or with an owner), "class", "interface",
"struct", "enum", "trait", "impl", "type", "module" (Ruby); two kinds are never emitted:
"namespace" (a transparent scope that only prefixes symbols: C++/C#/PHP/TS namespaces,
Rust ``mod``, Ruby ``class << self``) and "overload" (a TS signature that joins the
implementation following it).

Symbol separators (scope/type, namespace, member): JS/TS, Go, Java, Kotlin, C#, Swift
"."; Rust and C++ "::"; PHP "\\" between namespace parts and the class, "::" before a
method (``App\\Models\\User::save``); Ruby "::" between modules/classes, "#" before an
instance method and "." before a singleton method (``Mod::Cls#run``, ``Mod::Cls.build``),
as in Ruby's own docs.

JS/TS definitions by assignment (``app.use = function use(fn) {}``) are named by their
target, ``.prototype`` dropped (``Router.prototype.route`` -> ``Router.route``), computed
members as written (``app[method]``); ``module.exports = function`` by the function's name,
else the file's stem (FILE_STEM). See _js_assigned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Node = object  # tree_sitter.Node; kept untyped so this module imports without tree_sitter

FUNCTION_KINDS = frozenset({"function", "method"})


def text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def by_field(name: str, default: str | None = None) -> Callable[[Node], str | None]:
    """Name = the text of a field (``default`` when the field is absent, e.g. anonymous)."""

    def get(node):
        child = node.child_by_field_name(name)
        return text(child) if child is not None else default

    return get


def first_child(node, types: Iterable[str]):
    types = frozenset(types)
    return next((c for c in node.named_children if c.type in types), None)


def strip_generics(name: str) -> str:
    """``Pair[K, V]`` / ``Parser<'a>`` / ``*Command`` -> the bare type name."""
    depth, out = 0, []
    for ch in name:
        if ch in "<[":
            depth += 1
        elif ch in ">]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out).strip().lstrip("*&").strip()


def unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] in "\"'`<" and s[-1] in "\"'`>":
        return s[1:-1]
    return s


@dataclass(frozen=True)
class Def:
    """How one node type defines something. ``name`` returning None: not a definition
    (``const x = 1`` is a lexical_declaration too)."""

    kind: str | Callable[[Node], str]
    name: Callable[[Node], str | None] = by_field("name")
    # Body: members of a type / namespace, or a function's body. The header (signature,
    # outline stub) is everything before it. None: the spec's default lookup.
    body: Callable[[Node], Node | None] | None = None
    owner: Callable[[Node], str | None] | None = None  # Go receiver, Kotlin receiver, C++ Foo::
    member_sep: str | None = None  # overrides the spec's (Ruby singleton methods: ".")


Imports = Callable[[Node], Iterable[str]]


@dataclass(frozen=True)
class LangSpec:
    grammar: str
    defs: Mapping[str, Def]
    wrappers: frozenset[str] = frozenset()  # span of the wrapper, meaning of the def inside
    flatten: frozenset[str] = frozenset()  # looked through when listing a scope's members
    attach: frozenset[str] = frozenset()  # siblings that belong to the next definition
    decorations: frozenset[str] = frozenset()  # left out of signatures
    body_types: frozenset[str] = frozenset()  # body lookup when there is no "body" field
    sep: str = "."
    ns_sep: str | None = None  # defaults to sep
    member_sep: str | None = None  # defaults to sep
    stub: str = "{ ... }"  # replaces a member's body in a type outline
    imports: Mapping[str, Imports] = field(default_factory=dict)
    alternate: str | None = None  # language to retry with when the parse has errors (.h -> C++)


_DECORATIONS = frozenset({
    "decorator", "annotation", "marker_annotation", "attribute", "attribute_list",
    "attribute_item", "attribute_declaration", "attributes",
})


# --- imports ------------------------------------------------------------------------------


def _field_import(name: str) -> Imports:
    return lambda n: [unquote(text(n.child_by_field_name(name)))] if n.child_by_field_name(name) else []


def _strings(node, limit: int = 1) -> list[str]:
    """Content of the first ``limit`` string literals below ``node`` (small nodes only)."""
    out: list[str] = []
    stack = [node]
    while stack and len(out) < limit:
        n = stack.pop()
        if n.type in ("string", "string_literal", "interpreted_string_literal", "raw_string_literal"):
            out.append(unquote(text(n)))
            continue
        stack.extend(reversed(n.named_children))
    return out


_KEYWORD_IMPORT = re.compile(r"^\s*(?:import|using|use|global|static|extern\s+crate|"
                             r"typealias|struct|class|enum|protocol|let|var|func)\s+")


def _keyword_import(node) -> list[str]:
    """``import static a.b.C;`` / ``using X = A.B;`` / ``import Foundation`` -> "a.b.C"..."""
    s = " ".join(text(node).split()).rstrip(";").strip()
    while True:
        stripped = _KEYWORD_IMPORT.sub("", s, count=1)
        if stripped == s:
            break
        s = stripped
    if "=" in s:  # C# alias: using Json = Newtonsoft.Json;
        s = s.split("=", 1)[1].strip()
    s = re.sub(r"\s+as\s+\S+$", "", s)  # Kotlin / Rust alias
    return [s] if s else []


def _js_require(node) -> list[str]:
    out = []
    for decl in node.named_children:
        value = decl.child_by_field_name("value") if decl.type == "variable_declarator" else None
        if value is None or value.type != "call_expression":
            continue
        if text(value.child_by_field_name("function")) == "require":
            out += _strings(value.child_by_field_name("arguments"))
    return out


def _go_imports(node) -> list[str]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type == "import_spec":
            out.append(unquote(text(n.child_by_field_name("path"))))
        else:
            stack.extend(reversed(n.named_children))
    return out


def _ruby_require(node) -> list[str]:
    if text(node.child_by_field_name("method")) in ("require", "require_relative", "load", "autoload"):
        return _strings(node.child_by_field_name("arguments") or node, limit=2)[-1:]
    return []


def _php_use(node) -> list[str]:
    prefix = next((text(c) for c in node.named_children if c.type == "namespace_name"), "")
    group = node.child_by_field_name("body")
    clauses = group.named_children if group is not None else node.named_children
    names = [text(c).split(" as ")[0].strip() for c in clauses if c.type == "namespace_use_clause"]
    return [f"{prefix}\\{n}" if prefix else n for n in names]


def _php_require(node) -> list[str]:
    inner = node.named_children[0] if node.named_children else None
    if inner is not None and inner.type in ("require_expression", "require_once_expression",
                                            "include_expression", "include_once_expression"):
        return _strings(inner)
    return []


def _bash_source(node) -> list[str]:
    if text(node.child_by_field_name("name")) in ("source", "."):
        arg = node.child_by_field_name("argument")
        return [unquote(text(arg))] if arg is not None else []
    return []


# --- JavaScript / TypeScript --------------------------------------------------------------

_JS_FUNCS = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_JS_CLASSES = frozenset({"class"})


# A name the chunker replaces with the file's stem (the parent directory for index.*):
# ``module.exports = function () {}`` in lib/express.js is "express".
FILE_STEM = "<file>"

_JS_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_JS_MODULE_OBJECTS = frozenset({"module", "exports", "module.exports"})


def _js_target(node) -> list[str] | None:
    """Symbol segments of an assignment target: ``Router.prototype.route`` -> ["Router", ".route"]
    (``.prototype`` dropped), ``app[method]`` -> ["app", "[method]"], ``app["get"]`` ->
    ["app", ".get"]; None for anything else (calls, casts, ...)."""
    if node is None:
        return None
    if node.type in ("identifier", "this"):
        return [text(node)]
    obj = _js_target(node.child_by_field_name("object"))
    if obj is None:
        return None
    if node.type == "member_expression":
        prop = text(node.child_by_field_name("property"))
        return obj if prop == "prototype" else obj + ["." + prop] if prop else None
    if node.type == "subscript_expression":
        index = node.child_by_field_name("index")
        if index is None:
            return None
        key = unquote(text(index)) if index.type == "string" else ""
        if _JS_IDENT.fullmatch(key):
            return obj + ["." + key]
        return obj + ["[" + " ".join(text(index).split()) + "]"]
    return None


def _js_assigned(node):
    """(name, kind, value) of ``target = [other =] <function or class>``, else None.

    Name: the target, ``.prototype`` dropped (``Router.prototype.route`` -> Router.route);
    ``module.exports`` -> the value's own name, else FILE_STEM. In a chain (``var p =
    module.exports = function`` / ``a = b = function``) the innermost target names it.
    Kind: "class" for a class; "method" for a member of an object or prototype
    (``app.use``, ``res.send``, ``Router.route``); "function" for a plain identifier and for
    members of the module's exports (``exports.compileETag``)."""
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    while right is not None and right.type == "assignment_expression":
        left, right = right.child_by_field_name("left"), right.child_by_field_name("right")
    if right is None or right.type not in _JS_FUNCS | _JS_CLASSES:
        return None
    parts = _js_target(left) or [" ".join(text(left).split())]  # `(window as any).x`: as written
    name = "".join(parts)
    if name in ("module.exports", "exports"):
        name = by_field("name")(right) or FILE_STEM
        parts = [name]
    if right.type in _JS_CLASSES:
        kind = "class"
    else:
        kind = "method" if len(parts) > 1 and "".join(parts[:-1]) not in _JS_MODULE_OBJECTS else "function"
    return name, kind, right


def _js_declared(node):
    """(name, kind, value) of a single-declarator ``const x = <function or class>`` (or
    ``var x = module.exports = <function>``: see _js_assigned), else None."""
    decls = [c for c in node.named_children if c.type == "variable_declarator"]
    if len(decls) != 1:
        return None
    value = decls[0].child_by_field_name("value")
    if value is not None and value.type == "assignment_expression":
        return _js_assigned(value)
    if value is None or value.type not in _JS_FUNCS | _JS_CLASSES:
        return None
    return text(decls[0].child_by_field_name("name")), _js_value_kind(value), value


def _js_value_kind(value) -> str:
    return "class" if value is not None and value.type in _JS_CLASSES else "function"


def _js_callback(node):
    """(callback body, its function-assignment statements) for a call passing (or calling) a
    function whose body assigns functions: ``methods.forEach(function (m) { app[m] =
    function () {...} })``, ``(function () { Foo.prototype.x = function () {...} })()``."""
    fn = node.child_by_field_name("function")
    while fn is not None and fn.type == "parenthesized_expression" and fn.named_child_count == 1:
        fn = fn.named_children[0]
    args = node.child_by_field_name("arguments")
    candidates = [fn] + (list(args.named_children) if args is not None and args.type == "arguments" else [])
    for c in candidates:
        body = c.child_by_field_name("body") if c is not None and c.type in _JS_FUNCS else None
        if body is None or body.type != "statement_block":
            continue
        assigns = [s for s in body.named_children if s.type == "expression_statement" and s.named_child_count
                   and s.named_children[0].type == "assignment_expression"
                   and _js_assigned(s.named_children[0]) is not None]
        if assigns:
            return body, assigns
    return None


def _js_call_def(node):
    """A top-level call around function assignments. One assignment, alone in the callback
    (comments aside), makes the whole call a definition named by it (kind "function" or
    "method"); several (or other statements) make the callback body a transparent scope
    whose definitions get their own chunks (kind "namespace", name "")."""
    found = _js_callback(node)
    if found is None:
        return None
    body, assigns = found
    stmts = [c for c in body.named_children if "comment" not in c.type]
    if len(stmts) == 1:
        name, kind, value = _js_assigned(assigns[0].named_children[0])
        if kind != "class":
            return name, kind, value.child_by_field_name("body")
    return "", "namespace", body


def _js_binding_def(get: Callable[[Node], tuple | None]) -> Def:
    return Def(lambda n: get(n)[1], lambda n: (get(n) or (None,))[0],
               lambda n: (v := get(n)) is not None and v[2].child_by_field_name("body") or None)


def _js_field_name(node):
    value = node.child_by_field_name("value")
    if value is None or value.type not in _JS_FUNCS:
        return None
    return by_field("name")(node) or by_field("property")(node)  # TS says "name", JS "property"


def _value_body(get_value):
    def body(node):
        value = get_value(node)
        return value.child_by_field_name("body") if value is not None else None
    return body


_JS_DEFS: dict[str, Def] = {
    "function_declaration": Def("function"),
    "generator_function_declaration": Def("function"),
    # Reached only through `export default ...` (statements are the only scope members).
    "function_expression": Def("function", by_field("name", "default")),
    "function": Def("function", by_field("name", "default")),
    "generator_function": Def("function", by_field("name", "default")),
    "arrow_function": Def("function", lambda n: "default"),
    "class_declaration": Def("class"),
    "class": Def("class", by_field("name", "default")),
    "lexical_declaration": _js_binding_def(_js_declared),
    "variable_declaration": _js_binding_def(_js_declared),
    # `app.use = function use(fn) {}`, `exports.x = () => {}`, `module.exports = class {}`.
    "assignment_expression": _js_binding_def(_js_assigned),
    # `methods.forEach(function (m) { app[m] = function () {} })` (see _js_call_def).
    "call_expression": Def(lambda n: _js_call_def(n)[1], lambda n: (_js_call_def(n) or (None,))[0],
                           lambda n: (_js_call_def(n) or (None, None, None))[2]),
    "method_definition": Def("function"),
    # Class fields holding a function (`handle = () => {...}`) are methods.
    "field_definition": Def("function", _js_field_name, _value_body(lambda n: n.child_by_field_name("value"))),
    "public_field_definition": Def("function", _js_field_name, _value_body(lambda n: n.child_by_field_name("value"))),
}

_TS_DEFS: dict[str, Def] = {
    **_JS_DEFS,
    "abstract_class_declaration": Def("class"),
    "interface_declaration": Def("interface"),
    "type_alias_declaration": Def("type"),
    "enum_declaration": Def("enum"),
    "internal_module": Def("namespace"),  # namespace A.B { }
    "module": Def("namespace", lambda n: unquote(text(n.child_by_field_name("name")))),  # declare module "x" { }
    "function_signature": Def("overload"),
    "method_signature": Def("overload"),
}

_JS_IMPORTS: dict[str, Imports] = {
    "import_statement": lambda n: _strings(n.child_by_field_name("source") or n),
    "export_statement": _field_import("source"),  # export { x } from "./y"
    "lexical_declaration": _js_require,
    "variable_declaration": _js_require,
}

_JS_COMMON = dict(
    wrappers=frozenset({"export_statement", "expression_statement", "ambient_declaration"}),
    attach=frozenset({"decorator"}),  # class members' decorators are siblings
    decorations=_DECORATIONS,
    imports=_JS_IMPORTS,
)

JAVASCRIPT = LangSpec("javascript", _JS_DEFS, **_JS_COMMON)
TYPESCRIPT = LangSpec("typescript", _TS_DEFS, **_JS_COMMON)
TSX = LangSpec("tsx", _TS_DEFS, **_JS_COMMON)

# --- Go -------------------------------------------------------------------------------------


def _go_type_spec(node):
    specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
    return specs[0] if len(specs) == 1 else None  # `type ( A int; B string )`: module code


def _go_type_name(node):
    spec = _go_type_spec(node)
    return by_field("name")(spec) if spec is not None else None


def _go_type_kind(node) -> str:
    t = _go_type_spec(node).child_by_field_name("type")
    return {"struct_type": "struct", "interface_type": "interface"}.get(t.type if t is not None else "", "type")


def _go_receiver(node):
    recv = node.child_by_field_name("receiver")
    param = first_child(recv, ("parameter_declaration",)) if recv is not None else None
    return strip_generics(text(param.child_by_field_name("type"))) if param is not None else None


GO = LangSpec(
    "go",
    {
        "function_declaration": Def("function"),
        "method_declaration": Def("function", owner=_go_receiver),
        # Go types hold no methods (those are top-level with a receiver): no outline stubs.
        "type_declaration": Def(_go_type_kind, _go_type_name, body=lambda n: None),
    },
    imports={"import_declaration": _go_imports},
)

# --- Rust -----------------------------------------------------------------------------------


def _rust_impl_name(node):
    # `impl<'a, R> Deserializer<'de> for &'a mut Deserializer<R>` names the type `Deserializer`:
    # references, lifetimes and `mut` are how it is borrowed, not what it is.
    name = strip_generics(text(node.child_by_field_name("type")))
    return re.sub(r"^(?:[&*]\s*|'\w+\s+|(?:mut|const|dyn)\s+)+", "", name).strip()


RUST = LangSpec(
    "rust",
    {
        "function_item": Def("function"),
        "struct_item": Def("struct"),
        "union_item": Def("struct"),
        "enum_item": Def("enum"),
        "trait_item": Def("trait"),
        "impl_item": Def("impl", _rust_impl_name),
        "type_item": Def("type"),
        # `mod x;` (no body) only declares a file: module code.
        "mod_item": Def("namespace", lambda n: by_field("name")(n) if n.child_by_field_name("body") else None),
    },
    attach=frozenset({"attribute_item"}),
    decorations=_DECORATIONS,
    sep="::",
    imports={"use_declaration": lambda n: [" ".join(text(n.child_by_field_name("argument")).split())],
             "extern_crate_declaration": lambda n: [text(n.child_by_field_name("name"))]},
)

# --- JVM ------------------------------------------------------------------------------------

JAVA = LangSpec(
    "java",
    {
        "class_declaration": Def("class"),
        "record_declaration": Def("class"),
        "interface_declaration": Def("interface"),
        "annotation_type_declaration": Def("interface"),
        "enum_declaration": Def("enum"),
        "method_declaration": Def("function"),
        "constructor_declaration": Def("function"),
        "compact_constructor_declaration": Def("function"),
    },
    flatten=frozenset({"enum_body_declarations"}),
    decorations=_DECORATIONS,
    imports={"import_declaration": _keyword_import},
)


def _kotlin_kind(node) -> str:
    if any(c.type == "interface" for c in node.children):
        return "interface"
    mods = first_child(node, ("modifiers",))
    if mods is not None and any(text(c) == "enum" for c in mods.named_children):
        return "enum"
    return "class"


def _kotlin_receiver(node):
    """``fun String.shout()``: the type before the '.' that precedes the name."""
    kids = node.children
    for i, c in enumerate(kids[:-1]):
        if c.type == "simple_identifier" or node.field_name_for_child(i) == "name":
            return None
        if c.is_named and c.type.endswith("type") and kids[i + 1].type == ".":
            return strip_generics(text(c))
    return None


_KOTLIN_BODIES = frozenset({"class_body", "enum_class_body", "function_body"})

KOTLIN = LangSpec(
    "kotlin",
    {
        "class_declaration": Def(_kotlin_kind),
        "object_declaration": Def("class"),
        "companion_object": Def("class", by_field("name", "Companion")),
        "function_declaration": Def("function", owner=_kotlin_receiver),
        "secondary_constructor": Def("function", lambda n: "constructor"),
        "anonymous_initializer": Def("function", lambda n: "init", body=lambda n: first_child(n, ("block",))),
    },
    decorations=_DECORATIONS,
    body_types=_KOTLIN_BODIES | {"block"},
    imports={"import": _keyword_import, "import_header": _keyword_import},
)

# --- C family -------------------------------------------------------------------------------


def _c_function_declarator(node):
    d = node.child_by_field_name("declarator")
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    return d


def _c_qualified(node) -> tuple[str | None, str | None]:
    """(owner, name) of a function definition: ``int Foo::bar()`` -> ("Foo", "bar")."""
    d = _c_function_declarator(node)
    if d is None:
        return None, None
    name = " ".join(text(d.child_by_field_name("declarator")).split())
    if "::" in name:
        owner, _, short = name.rpartition("::")
        return "::".join(strip_generics(p) for p in owner.split("::")), short
    return None, name


_C_SPECIFIERS = {"struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum",
                 "class_specifier": "class"}


def _c_specifier(node):
    """The struct/union/enum/class with a body that a declaration / typedef defines."""
    if node.type in _C_SPECIFIERS:
        return node if node.child_by_field_name("body") is not None else None
    spec = node.child_by_field_name("type")
    return spec if spec is not None and spec.type in _C_SPECIFIERS and spec.child_by_field_name("body") else None


def _c_type_name(node):
    spec = _c_specifier(node)
    if spec is None:
        return None
    name = spec.child_by_field_name("name")
    if name is None and node is not spec:  # typedef struct { ... } T;
        name = node.child_by_field_name("declarator")
    return strip_generics(text(name)) if name is not None else None


def _c_type_def() -> Def:
    return Def(lambda n: _C_SPECIFIERS[_c_specifier(n).type], _c_type_name,
               body=lambda n: _c_specifier(n).child_by_field_name("body"))


_C_DEFS = {
    "function_definition": Def("function", lambda n: _c_qualified(n)[1], owner=lambda n: _c_qualified(n)[0]),
    "struct_specifier": _c_type_def(),
    "union_specifier": _c_type_def(),
    "enum_specifier": _c_type_def(),
    "type_definition": _c_type_def(),
    "declaration": _c_type_def(),  # struct foo { ... } x;
}
_C_FLATTEN = frozenset({"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"})
_C_IMPORTS = {"preproc_include": lambda n: [unquote(text(n.child_by_field_name("path")))]}

C = LangSpec("c", _C_DEFS, flatten=_C_FLATTEN, decorations=_DECORATIONS, imports=_C_IMPORTS, sep="::",
             alternate="cpp")

CPP = LangSpec(
    "cpp",
    {
        **_C_DEFS,
        "class_specifier": _c_type_def(),
        "field_declaration": _c_type_def(),  # a nested struct inside a class
        "namespace_definition": Def("namespace", by_field("name", "")),
        "linkage_specification": Def("namespace", lambda n: ""),  # extern "C" { }
    },
    wrappers=frozenset({"template_declaration", "friend_declaration"}),
    flatten=_C_FLATTEN,
    decorations=_DECORATIONS,
    sep="::",
    imports=_C_IMPORTS,
)

CSHARP = LangSpec(
    "csharp",
    {
        "class_declaration": Def("class"),
        "record_declaration": Def("class"),
        "struct_declaration": Def("struct"),
        "record_struct_declaration": Def("struct"),
        "interface_declaration": Def("interface"),
        "enum_declaration": Def("enum"),
        "method_declaration": Def("function"),
        "constructor_declaration": Def("function"),
        "destructor_declaration": Def("function", lambda n: "~" + (by_field("name")(n) or "")),
        "operator_declaration": Def("function", lambda n: "operator " + text(n.child_by_field_name("operator"))),
        "namespace_declaration": Def("namespace"),
        "file_scoped_namespace_declaration": Def("namespace"),  # applies to the rest of the file
    },
    decorations=_DECORATIONS,
    imports={"using_directive": _keyword_import},
)

# --- Scripting and Swift --------------------------------------------------------------------


def _ruby_method_body(node):
    # An empty method has no body: its `end` ends the header instead.
    return node.child_by_field_name("body") or next((c for c in node.children if c.type == "end"), None)


RUBY = LangSpec(
    "ruby",
    {
        "module": Def("module"),
        "class": Def("class"),
        "method": Def("function", body=_ruby_method_body),
        "singleton_method": Def("function", body=_ruby_method_body, member_sep="."),
        # `class << self`: its methods are the class's singleton methods.
        "singleton_class": Def("namespace", lambda n: "", member_sep="."),
    },
    # `private def x ... end` is a call whose argument is the method.
    wrappers=frozenset({"call", "argument_list"}),
    flatten=frozenset({"body_statement"}),
    sep="::",
    member_sep="#",
    stub="... end",
    imports={"call": _ruby_require},
)

PHP = LangSpec(
    "php",
    {
        "function_definition": Def("function"),
        "method_declaration": Def("function"),
        "class_declaration": Def("class"),
        "interface_declaration": Def("interface"),
        "trait_declaration": Def("trait"),
        "enum_declaration": Def("enum"),
        "namespace_definition": Def("namespace", by_field("name", "")),  # `namespace A;` or `namespace A { }`
    },
    decorations=_DECORATIONS,
    sep="\\",
    member_sep="::",
    imports={"namespace_use_declaration": _php_use, "expression_statement": _php_require},
)


def _swift_kind(node) -> str:
    decl = text(node.child_by_field_name("declaration_kind"))
    return {"struct": "struct", "enum": "enum", "extension": "impl"}.get(decl, "class")


SWIFT = LangSpec(
    "swift",
    {
        "class_declaration": Def(_swift_kind),  # class, struct, enum, actor, extension
        "protocol_declaration": Def("interface"),
        "function_declaration": Def("function"),
        "init_declaration": Def("function", lambda n: "init"),
        "deinit_declaration": Def("function", lambda n: "deinit"),
        "subscript_declaration": Def("function", lambda n: "subscript"),
    },
    decorations=_DECORATIONS,
    imports={"import_declaration": _keyword_import},
)

BASH = LangSpec(
    "shell",
    {"function_definition": Def("function")},
    imports={"command": _bash_source},
)

# Chunker language (languages.language_for) -> spec. TypeScript files ending in .tsx use TSX.
SPECS: dict[str, LangSpec] = {
    "javascript": JAVASCRIPT,
    "typescript": TYPESCRIPT,
    "tsx": TSX,
    "go": GO,
    "rust": RUST,
    "java": JAVA,
    "kotlin": KOTLIN,
    "c": C,
    "cpp": CPP,
    "csharp": CSHARP,
    "ruby": RUBY,
    "php": PHP,
    "swift": SWIFT,
    "shell": BASH,
}
