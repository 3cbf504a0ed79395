"""Language detection by file name / extension (no content sniffing: chunking stays pure)."""

from __future__ import annotations

import posixpath

_BY_NAME = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "make",
    "gnumakefile": "make",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "vagrantfile": "ruby",
    "jenkinsfile": "groovy",
    "build": "starlark",
    "build.bazel": "starlark",
    "workspace": "starlark",
    "sconstruct": "python",
    "sconscript": "python",
    ".bashrc": "shell",
    ".bash_profile": "shell",
    ".zshrc": "shell",
    ".profile": "shell",
    "pipfile": "toml",
    "cargo.lock": "toml",
    "poetry.lock": "toml",
    "go.mod": "go-mod",
    "go.sum": "text",
}

_BY_EXT = {
    # Python
    ".py": "python", ".pyi": "python", ".pyw": "python",
    # Markup / docs
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".mdown": "markdown",
    ".rst": "rst", ".rest": "rst",
    ".txt": "text", ".text": "text",
    ".adoc": "asciidoc", ".asciidoc": "asciidoc",
    ".tex": "latex",
    ".ipynb": "json",
    # Web
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "typescript",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".css": "css", ".scss": "scss", ".sass": "scss", ".less": "less",
    ".vue": "vue", ".svelte": "svelte",
    # Systems / compiled
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala", ".sc": "scala",
    ".groovy": "groovy", ".gradle": "groovy",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".inl": "cpp",
    ".cu": "cuda", ".cuh": "cuda",
    ".m": "objective-c", ".mm": "objective-c",
    ".cs": "csharp",
    ".fs": "fsharp", ".fsx": "fsharp",
    ".swift": "swift",
    ".zig": "zig",
    ".nim": "nim",
    ".d": "d",
    # Scripting
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".ksh": "shell", ".fish": "fish",
    ".ps1": "powershell", ".psm1": "powershell",
    ".bat": "batch", ".cmd": "batch",
    ".rb": "ruby",
    ".php": "php",
    ".pl": "perl", ".pm": "perl",
    ".lua": "lua",
    ".r": "r",
    ".jl": "julia",
    ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".hrl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml", ".mli": "ocaml",
    ".clj": "clojure", ".cljs": "clojure", ".cljc": "clojure",
    ".el": "elisp",
    ".dart": "dart",
    ".sql": "sql",
    ".proto": "protobuf",
    ".graphql": "graphql", ".gql": "graphql",
    ".tf": "terraform", ".hcl": "hcl",
    ".bzl": "starlark", ".star": "starlark",
    ".cmake": "cmake",
    ".mk": "make",
    ".nix": "nix",
    # Data / config
    ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml",
    ".json": "json", ".jsonc": "json", ".json5": "json",
    ".xml": "xml", ".xsd": "xml", ".svg": "xml", ".plist": "xml",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini", ".properties": "ini",
    ".env": "dotenv",
    ".csv": "csv", ".tsv": "csv",
    ".dockerfile": "dockerfile",
}


def language_for(path: str) -> str:
    """Language name for ``path`` ("python", "markdown", "rst", ... or "text")."""
    name = posixpath.basename(path.replace("\\", "/")).lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    if name.startswith("requirements") and name.endswith(".txt"):
        return "requirements"
    _, ext = posixpath.splitext(name)
    if ext in _BY_EXT:
        return _BY_EXT[ext]
    if name.startswith(".env"):
        return "dotenv"
    return "text"
