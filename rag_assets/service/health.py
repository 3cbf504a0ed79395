"""Health of the MCP HTTP server: GET /healthz, GET /readyz and GET /metrics beside /mcp.

- /healthz  liveness: the process answers (no token, no I/O).
- /readyz   readiness (no token): the store opens, every live alias resolves to a collection that
            answers a count; 503 otherwise. The body also says how far each source's index lags its head
            (state, indexed and head commits, commits behind, failed runs in a row), which never makes
            the server unready: a stale index still answers.
- /metrics  Prometheus text (service/metrics.py); the same bearer token as /mcp when one is set.

Remote heads are cached for HEAD_TTL_S, so probes and scrapes do not run `git ls-remote` each time.
"""

from __future__ import annotations

import hmac
import subprocess
import threading
import time

from rag_assets import settings
from rag_assets.service.errors import one_line

HEAD_TTL_S = 60.0
OPS_PATHS = ("/healthz", "/readyz", "/metrics")

_heads: dict[str, tuple[float, str | None, str | None]] = {}  # source -> (when, head, error)
_heads_lock = threading.Lock()


def cached_head(src) -> str | None:
    """The source's head, asked of its remote at most once per HEAD_TTL_S (errors are cached too)."""
    from rag_assets.sources.git import SnapshotError
    from rag_assets.sources.readers import reader_for

    key = f"{src.name}\0{src.url}\0{src.branch}"
    with _heads_lock:
        hit = _heads.get(key)
    if hit is None or time.monotonic() - hit[0] > HEAD_TTL_S:
        try:
            hit = (time.monotonic(), reader_for(src).head(src), None)
        except SnapshotError as e:
            hit = (time.monotonic(), None, str(e))
        with _heads_lock:
            _heads[key] = hit
    if hit[2]:
        raise SnapshotError(hit[2])
    return hit[1]


def commits_behind(source: str, indexed: str | None, head: str | None) -> int | None:
    """Commits from the indexed commit to the head, when the source's git mirror holds both; else None."""
    if not indexed or not head:
        return None
    if indexed == head:
        return 0
    from rag_assets.sources.git import mirror_path

    mirror = mirror_path(settings.current().data_dir / "mirrors", source)
    if not mirror.is_dir():
        return None
    try:
        out = subprocess.run(["git", "--git-dir", str(mirror), "rev-list", "--count", f"{indexed}..{head}", "--"],
                             capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None


def store_figures() -> dict:
    """Open the store: {"ok", "engine", "error", "collections": {name: points}, "aliases": {alias: {...}}}."""
    from rag_assets.service.stores import open_store_for_reading

    out: dict = {"ok": False, "engine": None, "error": None, "collections": {}, "aliases": {}}
    try:
        with open_store_for_reading() as store:
            out["engine"] = store.engine
            out["collections"] = store.list_collections()
            for alias, target in sorted(store.aliases().items()):
                ok = target in out["collections"]
                out["aliases"][alias] = {"collection": target, "ok": ok,
                                         "points": out["collections"].get(target)}
        out["ok"] = True
    except Exception as e:  # busy, unreachable, a damaged catalog file: not ready, and say why
        out["error"] = one_line(e)
    return out


def source_lags() -> dict[str, dict]:
    """Per configured source: state, indexed and head commits, stale, commits behind, failed runs in a row."""
    from rag_assets.service.status import source_status
    from rag_assets.service.stores import embedded_lock

    try:
        with embedded_lock():
            rows = source_status(check_remote=True, head=cached_head)
    except Exception as e:  # busy store, unusable sources file: nothing to say per source
        return {"(all)": {"state": f"unknown: {one_line(e)}", "indexed_commit": None, "head_commit": None,
                          "stale": None, "commits_behind": None, "failures": 0, "failure": None}}
    out = {}
    for r in rows:
        indexed, head = r.get("indexed_commit"), r.get("head_commit")
        stale = None if r.get("error") or r.get("damaged") else (indexed is None or bool(head and head != indexed))
        out[r["source"]] = {"state": r["state"], "indexed_commit": indexed, "head_commit": head, "stale": stale,
                            "commits_behind": commits_behind(r["source"], indexed, head),
                            "failures": r.get("failures", 0), "failure": r.get("failure")}
    return out


def readiness() -> tuple[bool, dict]:
    """(ready, body): ready when the store opens and every live alias resolves to a collection."""
    store = store_figures()
    broken = {a: v["collection"] for a, v in store["aliases"].items() if not v["ok"]}
    problems = ([f"store: {store['error']}"] if not store["ok"] else []) + \
        [f"alias {a} -> {c}: collection missing" for a, c in broken.items()]
    ready = not problems
    body = {"status": "ready" if ready else "not ready", "problems": problems,
            "store": {k: store[k] for k in ("ok", "engine", "error")}, "aliases": store["aliases"],
            "sources": source_lags() if store["ok"] else {}}
    return ready, body


def bearer_authorized(scope, token: str) -> bool:
    """Whether an ASGI request carries `Authorization: Bearer <token>` (compared in constant time)."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"")
    scheme, _, credentials = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token.encode())


def unauthorized():
    """The 401 answer of /mcp and /metrics."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": "unauthorized", "error_description": "missing or wrong bearer token"},
                        status_code=401, headers={"WWW-Authenticate": 'Bearer realm="rag-assets"'})


def ops_routes(app, token: str | None = None):
    """ASGI: answer /healthz, /readyz and /metrics here; everything else goes to `app` (the MCP server,
    with its own bearer check). /metrics asks for the same token as /mcp when one is set."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse, Response

    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in OPS_PATHS:
            return await app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("method not allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        elif scope["path"] == "/healthz":
            response = JSONResponse({"status": "ok"})
        elif scope["path"] == "/readyz":
            ready, body = await run_in_threadpool(readiness)
            response = JSONResponse(body, status_code=200 if ready else 503)
        elif token and not bearer_authorized(scope, token):
            response = unauthorized()
        else:
            from rag_assets.service.metrics import CONTENT_TYPE_LATEST, render

            response = Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
        await response(scope, receive, send)

    return asgi
