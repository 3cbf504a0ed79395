"""`rag-assets` command line (a contract: see README). Errors: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag_assets import settings

EXIT_BAD_INPUT = 2


class CliError(Exception):
    pass


def _store():
    from rag_assets.service.stores import open_store_for_reading

    return open_store_for_reading()


# ------------------------------------------------------------------ commands
def cmd_register(args) -> int:
    from rag_assets.service.runs import register_sources

    settings.ensure_dagster_home()
    added, known = register_sources()
    print(f"registered {len(added)} new source partition(s): {', '.join(added) or '-'} ({len(known)} in sources file)")
    return 0


def cmd_index(args) -> int:
    from rag_assets.embedding.models import get_model, live_model_key
    from rag_assets.sources.config import get_source

    source = get_source(args.source)  # validates the sources file and the name first
    model = get_model(args.model or live_model_key())
    if args.dry_run:
        from rag_assets.service.dry_run import dry_run

        print(dry_run(source, model))
        return 0
    settings.ensure_dagster_home()
    from rag_assets.service.runs import index_source

    # Progress on stdout: stderr is for the one-line error, so a failed run is that line and nothing else.
    summary = index_source(source.name, model.key, progress_bar=True, pool_timeout_s=args.pool_timeout,
                           log_stream=sys.stdout)
    print(summary)
    return 0


def cmd_alias(args) -> int:
    from rag_assets.embedding.models import get_model
    from rag_assets.sources.config import get_source

    get_source(args.source)
    get_model(args.model)
    settings.ensure_dagster_home()
    from rag_assets.service.runs import promote

    print(promote(args.source, args.model, force=args.force, pool_timeout_s=args.pool_timeout, log_stream=sys.stdout))
    return 0


def cmd_collections(args) -> int:
    if args.drop:  # a kept collection, or everything of a source removed from sources.yaml
        from rag_assets.service.drop import drop

        print(drop(args.drop))
        return 0
    with _store() as store:
        aliases = store.aliases()
        live = set(aliases.values())
        for name, count in sorted(store.list_collections().items()):
            meta = store.get_metadata(name)
            mark = "live" if name in live else "kept"
            print(f"{name:<40}{count:>9} points  {str(meta.get('indexed_commit', ''))[:12]:<13}{mark}")
    return 0


def cmd_store_migrate(args) -> int:
    from tqdm import tqdm

    from rag_assets.store.migration import migrate_embedded

    bars: dict = {}

    def progress(collection: str, done: int, total: int) -> None:
        bar = bars.setdefault(collection, tqdm(total=total, desc=collection, unit="pt", leave=False))
        bar.update(done - bar.n)

    counts = migrate_embedded(None, args.from_engine, args.to_engine, progress=progress)
    for bar in bars.values():
        bar.close()
    for name, n in counts.items():
        print(f"{name}: {n} points copied {args.from_engine} -> {args.to_engine}")
    print(f"done; use it with RAG_STORE_ENGINE={args.to_engine} (the {args.from_engine} store is untouched)")
    return 0


def cmd_store_snapshot(args) -> int:
    from rag_assets.store.backup import snapshot_store

    path, manifest = snapshot_store(out_dir=args.out, source=args.source)
    points = sum(c["points"] for c in manifest["collections"].values())
    print(f"{path}: {len(manifest['collections'])} collections, {points} points, {len(manifest['aliases'])} aliases "
          f"({path.stat().st_size} bytes)")
    return 0


def cmd_store_restore(args) -> int:
    from rag_assets.store.backup import restore_store

    counts = restore_store(args.file, force=args.force)
    for name, n in sorted(counts.items()):
        print(f"{name}: {n} points restored")
    return 0


def cmd_search(args) -> int:
    from rag_assets.retrieval.search import Searcher, payload_filter

    with _store() as store:
        hits = Searcher(store, args.source, model=args.model).search(
            args.query, k=args.k, filter=payload_filter(args.language, args.kind, args.path), mode=args.mode,
            fusion=args.fusion, path_glob=args.path_glob, rerank=_scorer(args.rerank, store, args.source))
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=1))
        return 0
    if not hits:
        print("no hits")
    for i, h in enumerate(hits, 1):
        print(f"{i:>2}. {h.citation}  {h.symbol or '-'}  score={h.score:.3f}")
        if not args.no_text:
            for line in h.text.splitlines()[: args.lines]:
                print(f"      {line}")
    return 0


def cmd_eval(args) -> int:
    from rag_assets.retrieval.evaluate import check_query_paths, evaluate, load_queries
    from rag_assets.retrieval.search import Searcher

    queries = load_queries(args.queries)
    with _store() as store:
        searcher = Searcher(store, args.source, model=args.model)
        missing = check_query_paths(queries, searcher.paths(), args.source, args.queries)  # none found: raises
        if missing:
            print(f"rag-assets eval: warning: {missing}", file=sys.stderr)
        report = evaluate(searcher, queries, k=args.k, mode=args.mode,
                          fusion=args.fusion, rerank=_scorer(args.rerank, store, args.source))
    if args.json:
        print(json.dumps({"overall": report["overall"], "by_kind": report["by_kind"]}, indent=1))
        return 0
    header = f"{'':<14}{'n':>5}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}"
    print(header)
    for label, m in [("overall", report["overall"]), *report["by_kind"].items()]:
        print(f"{label:<14}{m['n']:>5}{m['recall@1']:>8.3f}{m['recall@5']:>8.3f}{m['recall@10']:>8.3f}{m['mrr@10']:>8.3f}")
    if report["misses"]:
        print(f"missed at 10: {', '.join(map(str, report['misses']))}")
    return 0


def cmd_queries_refresh(args) -> int:
    from rag_assets.retrieval.golden import refresh

    if args.check:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "q.jsonl"
            shutil.copy(args.file, copy)
            changed = refresh(copy, args.root)
        if changed:
            raise CliError(f"{args.file}: {len(changed)} span(s) are stale ({', '.join(changed[:10])}); "
                           f"run: rag-assets queries refresh {args.file}")
        print(f"{args.file}: all spans current")
        return 0
    changed = refresh(args.file, args.root)
    print(f"{args.file}: {len(changed)} span(s) updated{': ' + ', '.join(changed) if changed else ''}")
    return 0


def _scorer(spec: str | None, store=None, source: str | None = None):
    if not spec:
        return None
    from rag_assets.retrieval.rerank import get_scorer

    return get_scorer(spec, store, source)


def cmd_ask(args) -> int:
    from rag_assets.retrieval.answer import MIN_BUDGET
    from rag_assets.service.ask import ask

    if args.budget < MIN_BUDGET:
        raise CliError(f"--budget must be at least {MIN_BUDGET} tokens (got {args.budget})")
    result = ask(args.question, args.source, args.budget, k=args.k, model=args.model, mode=args.mode,
                 rerank=args.rerank, language=args.language, kind=args.kind, path_glob=args.path_glob)
    ctx = result.context
    if args.json:
        out = result.to_dict()
        print(json.dumps({"question": out["question"], "context": out["context"], "citations": out["citations"],
                          "tokens": out["tokens_used"], "budget": out["budget"], "source_tokens": out["source_tokens"],
                          "model": out["model"], "answer": out["answer"]}, indent=1))
        return 0
    print(ctx.text)
    print(f"-- {len(ctx.blocks)} spans, {ctx.tokens} tokens of {args.budget} budget; the whole source is "
          f"{ctx.source_tokens} tokens ({100 * ctx.saving:.1f}% fewer)")
    print(f"\n{result.answer}" if result.answer else "-- no model configured (set RAG_LLM_BASE_URL, RAG_LLM_API_KEY, RAG_LLM_MODEL)")
    return 0


def cmd_sources(args) -> int:
    from rag_assets.service.status import source_status

    rows = source_status(check_remote=not args.offline)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'source':<20}{'model':<12}{'indexed':<14}{'head':<14}{'chunks':>8}{'points':>8}  state")
    for r in rows:
        print(f"{r['source']:<20}{r['live_model'] or '-':<12}{(r['indexed_commit'] or '-')[:12]:<14}"
              f"{(r['head_commit'] or '-')[:12]:<14}{r['chunks'] if r['chunks'] is not None else '-':>8}"
              f"{r['points'] if r['points'] is not None else '-':>8}  {r['state']}"
              + (f"; {r['failure']}" if r.get("failure") else ""))
    return 0


# ------------------------------------------------------------------ parser
def _retrieval_args(s: argparse.ArgumentParser) -> None:
    from rag_assets.retrieval.search import DEFAULT_MODE

    s.add_argument("--mode", choices=["dense", "sparse", "hybrid"], default=DEFAULT_MODE,
                   help=f"retrieval: dense vectors, BM25 sparse, or both fused (default {DEFAULT_MODE})")
    s.add_argument("--fusion", choices=["score", "rrf"], default="score",
                   help="hybrid: fuse normalised scores (default) or reciprocal ranks (the store's own RRF)")
    s.add_argument("--rerank", metavar="SCORER",
                   help="rerank the top 50: collection:<model> (that model's stored vectors), <model> "
                   "(re-encode), or cross:<local folder>")


def _filter_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--language", help="only chunks of this language (python, go, typescript, markdown, ...)")
    s.add_argument("--kind", help="only chunks of this kind (function, method, class, interface, struct, ...)")
    s.add_argument("--path-glob", help="only paths matching this glob (** crosses folders)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _pool_timeout_arg(s: argparse.ArgumentParser) -> None:
    from rag_assets.service.errors import DEFAULT_POOL_TIMEOUT_S

    s.add_argument("--pool-timeout", type=_seconds, default=DEFAULT_POOL_TIMEOUT_S, metavar="SECONDS",
                   help="give up when another run has held the store's writer slot this long "
                   f"(default {DEFAULT_POOL_TIMEOUT_S:.0f}); Ctrl-C stops the wait at any time")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag-assets", description="Index git repos into Qdrant and search them.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("register", help="add a partition for every source in sources.yaml")
    s.set_defaults(func=cmd_register)

    s = sub.add_parser("index", help="index a source through the Dagster instance (shows in the UI)")
    s.add_argument("source")
    s.add_argument("--model", help="embedding model key (default: RAG_MODEL or minilm-l6)")
    s.add_argument("--dry-run", action="store_true", help="count files, chunks, tokens and estimate time; embed nothing")
    _pool_timeout_arg(s)
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("alias", help="point SOURCE's alias at MODEL's collection (switch or roll back), checks first")
    s.add_argument("source")
    s.add_argument("model")
    s.add_argument("--force", action="store_true",
                   help="move it even if it measures below the live collection (the floor and points == chunks "
                   "still apply); recorded in the run's metadata")
    _pool_timeout_arg(s)
    s.set_defaults(func=cmd_alias)

    s = sub.add_parser("collections", help="list collections (live or kept), or drop a kept one or a removed source")
    s.add_argument("--drop", metavar="NAME", help="delete a collection that no alias points at, or everything of a "
                   "source removed from sources.yaml (its collections, alias, tables, mirror and partition)")
    s.set_defaults(func=cmd_collections)

    s = sub.add_parser("store", help="the embedded store: migrate between engines, snapshot, restore")
    ssub = s.add_subparsers(dest="store_command", required=True)
    m = ssub.add_parser("migrate", help="copy every collection, alias and metadata, e.g. --from local --to edge")
    m.add_argument("--from", dest="from_engine", default="local", choices=["local", "edge"])
    m.add_argument("--to", dest="to_engine", default="edge", choices=["local", "edge"])
    m.set_defaults(func=cmd_store_migrate)
    m = ssub.add_parser("snapshot", help="write a consistent snapshot of the embedded store (collections, aliases, "
                        "metadata) as one .tar.gz with a manifest")
    m.add_argument("--source", help="only this source's collections and alias")
    m.add_argument("--out", metavar="DIR", help="folder for the snapshot (default: RAG_BACKUP_DIR or <data dir>/backups)")
    m.set_defaults(func=cmd_store_snapshot)
    m = ssub.add_parser("restore", help="restore a snapshot into the embedded store (refuses a non-empty store "
                        "without --force)")
    m.add_argument("file")
    m.add_argument("--force", action="store_true", help="replace what the store holds (a whole-store snapshot "
                   "replaces everything; a one-source snapshot replaces that source's collections and alias)")
    m.set_defaults(func=cmd_store_restore)

    s = sub.add_parser("search", help="search a source; prints hits with path:start-end citations")
    s.add_argument("query")
    s.add_argument("--source", required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--model", help="search this model's collection instead of the live one")
    s.add_argument("--path", help="only chunks of this exact path")
    _retrieval_args(s)
    _filter_args(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--lines", type=int, default=6, help="lines of text to show per hit")
    s.add_argument("--no-text", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("eval", help="recall@1/5/10 and MRR@10 against a query file")
    s.add_argument("--source", required=True)
    s.add_argument("--queries", required=True)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--model")
    _retrieval_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("ask", help="the best spans for a question within a token budget, with citations "
                       "(and a model's answer when RAG_LLM_BASE_URL is set)")
    s.add_argument("question")
    s.add_argument("--source", required=True)
    s.add_argument("--budget", type=int, default=4000, help="tokens of context (tiktoken cl100k_base)")
    s.add_argument("--k", type=int, default=20, help="candidates to draw spans from")
    s.add_argument("--model")
    _retrieval_args(s)
    _filter_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("mcp", help="serve search_code, ask, list_sources, reindex and the memory tools to agents "
                       "over MCP (stdio; --http [--host H --port P --token T] for streamable HTTP; --read-only: "
                       "no tool that writes or starts work)", add_help=False)
    # Parsed by mcp_server.main itself (see main below); listed here for --help.

    s = sub.add_parser("queries", help="maintain golden query files")
    qsub = s.add_subparsers(dest="queries_command", required=True)
    r = qsub.add_parser("refresh", help="re-resolve each query's `symbol` to its current line span")
    r.add_argument("file")
    r.add_argument("--root", default=".", help="repository folder the paths are relative to")
    r.add_argument("--check", action="store_true", help="fail (exit 2) if any span is stale; change nothing")
    r.set_defaults(func=cmd_queries_refresh)

    s = sub.add_parser("sources", help="sources with their indexed commit, live model, counts and staleness")
    s.add_argument("--offline", action="store_true", help="do not ask remotes for their head")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sources)

    from rag_assets.memory.cli import add_parsers as add_memory_parsers

    add_memory_parsers(sub)  # memory add|search|forget|list, notes add|list
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    # Expected: embed_and_upsert mixes embeddings' batching policy with per-partition ones and Dagster
    # picks one partition per run for the job (UI backfills of `embeddings` still batch).
    warnings.filterwarnings("ignore", message=".*materializes assets with varying BackfillPolicies.*")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["mcp"]:  # the server owns its options
        from rag_assets.mcp_server import main as mcp_main

        return mcp_main(argv[1:])
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        code = args.func(args)
    except KeyboardInterrupt as e:
        print(f"rag-assets {args.command}: {e}" if str(e) else "rag-assets: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every failure: one line, no traceback (RAG_DEBUG=1 shows it)
        if settings.current().debug:
            raise
        from rag_assets.service.errors import one_line

        print(f"rag-assets {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 1 if isinstance(e, RuntimeError) else EXIT_BAD_INPUT
    if settings.current().timing:
        print(f"({time.perf_counter() - t0:.2f}s)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
