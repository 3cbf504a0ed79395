"""Chunking throughput per language over real packages, and Python's ast chunker against a
tree-sitter reading of the same files.

    .venv/bin/python benchmarks/chunking_bench.py [--repeat 3] [--max-tokens 512]

Corpora (fetched once into $RAG_BENCH_CACHE/chunking, default ~/.cache/rag-assets/bench):
npm packages (express, commander, @tanstack/query-core, zod), the click sdist, Debian's Go
and Rust source packages (golang-github-gorilla-mux-dev, librust-serde-json-dev), the JDK's
src.zip, system C / C++ headers, Ruby's standard library (Debian ``ruby``) and PHP files
that ship with the Google Cloud SDK. A corpus that is not on this machine is skipped with
a note. Timings: best of ``--repeat`` passes, files read into memory first, one thread.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag_assets.chunking import chunk_file, chunk_file_with_status, grammars, split_lines  # noqa: E402
from rag_assets.chunking.python_chunker import chunk_python, parse  # noqa: E402
from rag_assets.chunking.syntax_chunker import chunk_syntax  # noqa: E402
from rag_assets.chunking.syntax_languages import Def, LangSpec, text  # noqa: E402
from rag_assets.chunking.text_chunker import make_counter  # noqa: E402

CACHE = Path(os.environ.get("RAG_BENCH_CACHE", Path.home() / ".cache" / "rag-assets" / "bench")) / "chunking"
NPM = ["express@4.21.2", "commander@12.1.0", "@tanstack/query-core@5.59.0", "zod@3.23.8"]

# Python through the generic engine, for the ast comparison only (chunk_file keeps ast).
grammars.GRAMMARS.setdefault("python", ("tree_sitter_python", "language"))
PYTHON_TS = LangSpec(
    "python",
    {"function_definition": Def("function"), "class_definition": Def("class")},
    wrappers=frozenset({"decorated_definition"}),
    decorations=frozenset({"decorator"}),
    stub="...",
    imports={
        "import_statement": lambda n: [text(c.child_by_field_name("name") or c) for c in n.named_children],
        "import_from_statement": lambda n: [text(n.child_by_field_name("module_name"))],
    },
)


def npm_package(spec: str) -> Path:
    """``npm pack`` once; the unpacked package folder."""
    name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
    version = spec.rsplit("@", 1)[1]
    dest = CACHE / "npm" / f"{name}-{version}"
    if not dest.exists():
        (CACHE / "npm").mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", spec], cwd=CACHE / "npm", check=True, capture_output=True)
        with tarfile.open(CACHE / "npm" / f"{name}-{version}.tgz") as tar:
            tar.extractall(dest, filter="data")
    return dest / "package"


def click_sdist(spec: str = "click==8.1.7") -> Path:
    dest = CACHE / spec.replace("==", "-")
    if not dest.exists():
        dl = CACHE / "sdists"
        dl.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(dl), spec], check=True)
        archive = next(dl.glob(spec.replace("==", "-") + ".tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    return dest


def jdk_util() -> Path | None:
    dest = CACHE / "jdk-java-util"
    if not dest.exists():
        zips = sorted(glob.glob("/usr/lib/jvm/*/lib/src.zip"))
        readable = [z for z in zips if os.path.isfile(z)]
        if not readable:
            return None
        with zipfile.ZipFile(readable[-1]) as z:
            names = [n for n in z.namelist() if n.startswith("java.base/java/util/") and n.endswith(".java")]
            z.extractall(dest, names)
    return dest


def files(pattern: str, limit: int | None = None) -> list[str]:
    found = sorted(glob.glob(pattern, recursive=True))
    return found[:limit] if limit else found


def corpora() -> list[tuple[str, str, list[str]]]:
    """(language, corpus label, files)."""
    out = []
    try:
        express, commander = npm_package(NPM[0]), npm_package(NPM[1])
        query, zod = npm_package(NPM[2]), npm_package(NPM[3])
        out.append(("javascript", "express 4.21.2 + commander 12 (lib)",
                    files(f"{express}/**/*.js") + files(f"{commander}/lib/*.js")))
        out.append(("typescript", "@tanstack/query-core src + .d.ts (commander, zod)",
                    [f for f in files(f"{query}/src/**/*.ts") if "__tests__" not in f]
                    + files(f"{commander}/**/*.d.ts") + files(f"{zod}/**/*.d.ts")))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"note: npm packages unavailable ({exc})")
    out.append(("go", "gorilla/mux (Debian golang-github-gorilla-mux-dev)",
                files("/usr/share/gocode/src/github.com/gorilla/mux/*.go")))
    out.append(("rust", "serde_json 1.0.87 + serde 1.0.152 (Debian librust-*-dev)",
                files("/usr/share/cargo/registry/serde_json-*/src/**/*.rs")
                + files("/usr/share/cargo/registry/serde-1*/src/**/*.rs")))
    util = jdk_util()
    out.append(("java", "JDK java.util (src.zip)", files(f"{util}/**/*.java", 150) if util else []))
    out.append(("c", "/usr/include/*.h (glibc et al.)", files("/usr/include/*.h")))
    out.append(("cpp", "libstdc++ bits/*.h", files("/usr/include/c++/*/bits/*.h", 80)))
    out.append(("ruby", "Ruby 3.1 stdlib (Debian ruby)", files("/usr/lib/ruby/3.*/**/*.rb", 300)))
    out.append(("php", "Google Cloud SDK *.php", files("/usr/lib/google-cloud-sdk/**/*.php")))
    out.append(("shell", "/usr/share/**/*.sh", files("/usr/share/**/*.sh", 100)))
    out.append(("toml", "Cargo.toml of /usr/share/cargo/registry", files("/usr/share/cargo/registry/*/Cargo.toml")))
    return [c for c in out if c[2] or print(f"note: no {c[0]} corpus here ({c[1]})")]


def read(paths: list[str]) -> list[tuple[str, str]]:
    docs = []
    for p in paths:
        try:
            docs.append((p, Path(p).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            pass
    return docs


def timed(run, docs, repeat: int) -> tuple[float, int, collections.Counter]:
    """Best time over ``repeat`` passes, chunks and statuses of one pass."""
    best, n_chunks, statuses = float("inf"), 0, collections.Counter()
    for _ in range(repeat):
        statuses = collections.Counter()
        n_chunks = 0
        t0 = time.perf_counter()
        for path, src in docs:
            chunks, status = run(path, src)
            n_chunks += len(chunks)
            statuses[status] += 1
        best = min(best, time.perf_counter() - t0)
    return best, n_chunks, statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()
    budget, encoding = args.max_tokens, "cl100k_base"
    count = make_counter(encoding)
    chunk_file("warmup.py", "x = 1\n")  # load the encoding outside the timings

    rows = []

    def row(lang, label, docs, seconds, n_chunks, statuses):
        kb = sum(len(s.encode()) for _, s in docs) / 1024
        lines = sum(len(split_lines(s)) for _, s in docs)
        rows.append((lang, label, len(docs), lines, kb, len(docs) / seconds, n_chunks / seconds, kb / seconds,
                     ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))))

    # Python: ast (what chunk_file uses) and the tree-sitter engine, on the same files.
    py_docs = read(files(f"{click_sdist()}/**/*.py"))

    def with_ast(path, src):
        return chunk_file_with_status(path, src, budget, encoding, "python")

    def with_tree_sitter(path, src):
        return chunk_syntax(PYTHON_TS, "python", path, split_lines(src), budget, count, encoding)

    for name, fn in (("python (ast)", with_ast), ("python (tree-sitter)", with_tree_sitter)):
        fn(*py_docs[0])  # load the grammar outside the timing
        row(name, "click 8.1.7 sdist", py_docs, *timed(fn, py_docs, args.repeat))

    agree = total = 0
    for path, src in py_docs:  # same boundaries? (kind, symbol, span) of each chunk
        ast_chunks = chunk_python(path, split_lines(src), parse(src), budget, count, encoding)
        a = {(c.kind, c.symbol, c.start_line, c.end_line) for c in ast_chunks}
        b = {(c.kind, c.symbol, c.start_line, c.end_line) for c in with_tree_sitter(path, src)[0]}
        agree += len(a & b)
        total += len(a | b)

    for lang, label, paths in corpora():
        docs = read(paths)

        def run(path, src, lang=lang):
            return chunk_file_with_status(path, src, budget, encoding, lang)

        run(*docs[0])
        row(lang, label, docs, *timed(run, docs, args.repeat))

    head = ("language", "files", "lines", "KiB", "files/s", "chunks/s", "KiB/s", "status", "corpus")
    print(f"\nmax_tokens={budget}, best of {args.repeat}, {os.cpu_count()} CPUs (shared), one thread\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for lang, label, n, lines, kb, fps, cps, kbps, st in rows:
        print(f"| {lang} | {n} | {lines} | {kb:.0f} | {fps:.0f} | {cps:.0f} | {kbps:.0f} | {st} | {label} |")
    print(f"\npython: ast and tree-sitter chunks with identical (kind, symbol, span): {agree}/{total} "
          f"({100 * agree / max(total, 1):.0f}%)")
    print(f"grammars unavailable: {grammars.unavailable() or 'none'}")


if __name__ == "__main__":
    main()
