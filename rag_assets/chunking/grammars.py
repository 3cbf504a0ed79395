"""Tree-sitter grammar loading: one pinned PyPI wheel per language, loaded lazily.

A missing or broken wheel must never stop indexing: ``parser_for`` raises
``GrammarUnavailable`` (one line: "grammar for 'kotlin' unavailable: <reason>"), the
chunker falls back to line windows, and the failure is logged once per language and kept
in ``unavailable()`` for reports.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

# Chunker language -> (module, function returning the grammar pointer). "tsx" is a chunker
# language of its own because .tsx needs the TSX variant of the TypeScript grammar.
GRAMMARS: dict[str, tuple[str, str]] = {
    "javascript": ("tree_sitter_javascript", "language"),  # also parses JSX
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "kotlin": ("tree_sitter_kotlin", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
    "php": ("tree_sitter_php", "language_php"),  # the variant that accepts HTML around <?php
    "swift": ("tree_sitter_swift", "language"),
    "shell": ("tree_sitter_bash", "language"),
    "json": ("tree_sitter_json", "language"),
    "yaml": ("tree_sitter_yaml", "language"),
    "toml": ("tree_sitter_toml", "language"),
}


class GrammarUnavailable(RuntimeError):
    """The grammar wheel for a language is missing or does not load."""

    def __init__(self, language: str, reason: str):
        super().__init__(f"grammar for '{language}' unavailable: {reason}")
        self.language, self.reason = language, reason


_lock = threading.Lock()
_languages: dict[str, object] = {}  # language -> tree_sitter.Language
_failures: dict[str, GrammarUnavailable] = {}
_local = threading.local()  # Parser objects are not thread-safe: one per thread and language


def load_language(language: str):
    """The ``tree_sitter.Language`` for ``language``; raises ``GrammarUnavailable``."""
    with _lock:
        if language in _languages:
            return _languages[language]
        if language in _failures:
            raise _failures[language]
        try:
            if language not in GRAMMARS:
                raise LookupError("no grammar registered")
            module_name, func = GRAMMARS[language]
            import tree_sitter

            grammar = tree_sitter.Language(getattr(importlib.import_module(module_name), func)())
        except Exception as exc:  # ImportError, ABI mismatch (ValueError), a broken wheel...
            err = GrammarUnavailable(language, f"{type(exc).__name__}: {exc}")
            _failures[language] = err
            log.warning("%s", err)  # once per language and process
            raise err from exc
        _languages[language] = grammar
        return grammar


def parser_for(language: str):
    """A ``tree_sitter.Parser`` for ``language`` owned by the calling thread."""
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language)
    if parser is None:
        import tree_sitter

        parser = parsers[language] = tree_sitter.Parser(load_language(language))
    return parser


def unavailable() -> dict[str, str]:
    """Languages whose grammar failed to load in this process -> the one-line message."""
    with _lock:
        return {lang: str(err) for lang, err in _failures.items()}


def reset() -> None:
    """Forget loaded and failed grammars (tests that simulate a missing wheel)."""
    with _lock:
        _languages.clear()
        _failures.clear()
    _local.__dict__.clear()
