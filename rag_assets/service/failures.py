"""Run failures, kept where `rag-assets sources` and the MCP `list_sources` can show them.

One small JSON-lines file, `<data_dir>/failures.jsonl`: a line per failed run (source, job, step, one-line
cause, commit, retry number) and a line per successful run of a source, which ends its failure streak.
Appends take an flock and are fsynced, so the daemon's sensor, the CLI and several processes can write;
the file is trimmed to its newest MAX_EVENTS lines. A damaged line is skipped, never fatal.

`summary()` gives each source's current streak: "failed 3× at a1b2c3d4e5f6: step chunks: ...".
`post_alert()` sends a failure to a webhook (RAG_ALERT_WEBHOOK) as JSON, Slack-compatible (`text`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from pathlib import Path

from rag_assets.sources.git import redact_url

FAILURES_FILE = "failures.jsonl"
MAX_EVENTS = 2000
MAX_CAUSE = 300

log = logging.getLogger(__name__)


def failures_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FAILURES_FILE


def one_line_cause(text: str | None) -> str:
    """The cause on one line, credentials redacted, at most MAX_CAUSE characters."""
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    line = redact_url(" ".join(lines[-1].split())) if lines else "unknown cause"
    return line if len(line) <= MAX_CAUSE else line[: MAX_CAUSE - 3] + "..."


def _append(data_dir: str | Path, event: dict) -> None:
    path = failures_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(event, sort_keys=True) + "\n"
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
            f.seek(0)
            lines = f.readlines()
            if len(lines) > MAX_EVENTS:  # trim: rewrite the newest lines through a rename
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "w", encoding="utf-8") as out:
                    out.writelines(lines[-MAX_EVENTS:])
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def record_failure(data_dir: str | Path, *, source: str | None, job: str, run_id: str, step: str | None,
                   cause: str, commit: str | None = None, partition: str | None = None,
                   retry_number: int = 0, will_retry: bool = False) -> dict:
    """Append one failed run (once per run id: a sensor may see a run twice); returns the event."""
    for seen in read_events(data_dir):
        if seen["event"] == "failure" and seen.get("run_id") == run_id:
            return seen
    event = {"event": "failure", "time": round(time.time(), 3), "source": source, "job": job, "run_id": run_id,
             "step": step, "cause": one_line_cause(cause), "commit": commit, "partition": partition,
             "retry_number": retry_number, "will_retry": will_retry}
    _append(data_dir, event)
    return event


def record_success(data_dir: str | Path, *, source: str, job: str, run_id: str) -> None:
    """A run of `source` succeeded: its failure streak ends (nothing is written when it has none)."""
    if source not in summary(data_dir):
        return
    _append(data_dir, {"event": "success", "time": round(time.time(), 3), "source": source, "job": job,
                       "run_id": run_id})


def _chain(error) -> list:
    """An error and its explicit causes, outermost first (Dagster's wrapper, the user's exception, what
    that was raised from)."""
    out = []
    while error is not None and len(out) < 20:
        out.append(error)
        error = getattr(error, "cause", None)
    return out


def _error_text(error) -> str:
    """The last line of an error's message without its "module.Class: " prefix, else the class name."""
    lines = (error.message or "").strip().splitlines()
    if not lines:
        return error.cls_name
    line = lines[-1].strip()
    head, sep, rest = line.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        line = rest
    return line.strip() or error.cls_name


# What the store's engines say when another process holds it (qdrant_edge's flock, qdrant-client's portalocker).
_LOCK_WORDS = re.compile(r"WouldBlock|already locked|already accessed by another instance|locked by another process", re.I)


def busy_cause(detail: str = "") -> str:
    """A busy store in plain words; `detail` (the engine's or the store's text) only names what is held."""
    what = re.search(r"(collection '[^']+'|folder \S+)", detail or "")
    where = f" ({what.group(1)})" if what else ""
    return (f"store busy: another process is writing the vector store{where}; wait for it to finish, then "
            "retry (or point QDRANT_URL at a Qdrant server, which takes concurrent writers)")


def error_cause(error) -> str:
    """One line from a Dagster SerializableErrorInfo. Dagster wraps the user's exception; that exception
    (the first of the chain that is not Dagster's) says what went wrong, in the words its author chose for
    users: what it was raised from is detail (a busy store's raw lock error, a library's message). A busy
    store is said in plain words, whatever the engine said."""
    chain = _chain(error)
    if not chain:
        return "unknown cause"
    busy = next((e for e in chain if e.cls_name == "StoreBusyError"), None)
    if busy is not None or any(_LOCK_WORDS.search(e.message or "") for e in chain):
        return busy_cause(_error_text(busy or chain[-1]))
    user = next((e for e in chain if not e.cls_name.startswith("Dagster")), chain[-1])
    text = _error_text(user)
    if text == user.cls_name and user is not chain[-1]:  # a bare wrapper: what it was raised from says more
        text = _error_text(chain[-1])
    return text


# ------------------------------------------------------------------ a run's failure in one line
def _dagster_event(event):
    """A DagsterEvent from a DagsterEvent or an EventLogEntry (the instance's records)."""
    return getattr(event, "dagster_event", None) or event


def _metadata(data) -> dict:
    return {k: getattr(v, "value", v) for k, v in (getattr(data, "metadata", None) or {}).items()}


def _materializations(events) -> dict[str, dict]:
    """Asset name -> metadata of its (last) materialization in the run."""
    out = {}
    for event in events:
        ev = _dagster_event(event)
        if getattr(ev, "event_type_value", None) == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            out[mat.asset_key.path[-1]] = _metadata(mat)
    return out


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def no_indexable_files(source: str | None, chunks_meta: dict, fetch_meta: dict) -> str:
    """Why a source gave no chunks, from the materializations of its fetch and of `chunks`."""
    who = f"source '{source}'" if source else "the source"
    skipped = {k[len("skipped_"):]: int(v) for k, v in chunks_meta.items() if k.startswith("skipped_") and v}
    if "discovered" in fetch_meta:  # a docs source: pages, not files
        failed = fetch_meta.get("failed_reasons") or {}
        reasons = f": {_counts(failed)}" if isinstance(failed, dict) and failed else ""
        return (f"{who} has no indexable pages ({fetch_meta.get('discovered', 0)} discovered, "
                f"{fetch_meta.get('failed', 0)} failed{reasons}); check its url in sources.yaml")
    indexed = int(chunks_meta.get("files_indexed") or 0)
    total = int(fetch_meta.get("files_tracked") or (indexed + sum(skipped.values())))
    if total == 0:
        return f"{who} has no indexable files (its branch tracks no files)"
    if indexed == 0:
        hint = "; check its include/exclude globs in sources.yaml" if "not_included" in skipped or             "excluded" in skipped else ""
        return (f"{who} has no indexable files ({total} file{'s' if total != 1 else ''}, all skipped: "
                f"{_counts(skipped) or 'no reason recorded'}){hint}")
    return f"{who} has no indexable text ({indexed} of {total} files read, none gave a chunk; skipped: " \
           f"{_counts(skipped) or 'none'})"


def _check_failure(evaluation, source: str | None, events) -> str:
    meta = _metadata(evaluation)
    if evaluation.check_name == "chunks_are_sane" and meta.get("chunks") == 0:
        mats = _materializations(events)
        fetch = mats.get("repo_snapshot") if "files_tracked" in mats.get("repo_snapshot", {}) else \
            mats.get("doc_pages", {})
        return no_indexable_files(source, mats.get("chunks", {}), fetch or {})
    what = evaluation.description or ", ".join(
        f"{k}={v}" for k, v in meta.items() if isinstance(v, (int, float, str, bool)) and len(str(v)) < 60)
    return f"check {evaluation.check_name} on {evaluation.asset_key.path[-1]} failed" + (f": {what}" if what else "")


def run_failure(events, source: str | None = None) -> tuple[str | None, str]:
    """(step, one-line cause) of a failed run from its events (DagsterEvents or EventLogEntries): the first
    failed step's error, or the blocking checks that failed, said in terms of the source."""
    events = list(events)
    for event in events:
        ev = _dagster_event(event)
        if not getattr(ev, "is_step_failure", False):
            continue
        error = ev.event_specific_data.error
        if any(e.cls_name == "DagsterAssetCheckFailedError" for e in _chain(error)):
            failed = [ev2.event_specific_data for ev2 in map(_dagster_event, events)
                      if getattr(ev2, "event_type_value", None) == "ASSET_CHECK_EVALUATION"
                      and not ev2.event_specific_data.passed
                      and getattr(ev2.event_specific_data.severity, "value", "ERROR") == "ERROR"]
            if failed:
                return ev.step_key, "; ".join(_check_failure(c, source, events) for c in failed)
        return ev.step_key, error_cause(error)
    for event in events:  # failed outside any step (resources, launch, an interrupt)
        ev = _dagster_event(event)
        if getattr(ev, "event_type_value", None) == "PIPELINE_FAILURE":
            data = ev.event_specific_data
            if getattr(data, "error", None) is not None:
                return None, error_cause(data.error)
            return None, one_line_cause(ev.message) if ev.message else "run failed"
    return None, "run failed"


def partition_source(partition: str | None) -> str | None:
    """The source of a partition key: "demo", or "minilm-l6|demo" (source × model keys are "model|source")."""
    if not partition:
        return None
    return partition.split("|", 1)[1] if "|" in partition else partition


def record_result(data_dir: str | Path, job: str, partition: str | None, result) -> None:
    """Record a run executed in process (the CLI's): its failure, or the end of its source's failure streak."""
    source = partition_source(partition)
    if result.success:
        if source:
            record_success(data_dir, source=source, job=job, run_id=result.run_id)
        return
    step, cause = run_failure(result.all_events, source)
    record_failure(data_dir, source=source, job=job, run_id=result.run_id, step=step, cause=cause,
                   partition=partition)


def read_events(data_dir: str | Path) -> list[dict]:
    try:
        text = failures_path(data_dir).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a torn or edited line: skip it
        if isinstance(event, dict) and event.get("event") in ("failure", "success"):
            events.append(event)
    return events


def summary(data_dir: str | Path) -> dict[str, dict]:
    """Per source with failures since its last successful run: count, last failure, and a one-line text."""
    streaks: dict[str, list[dict]] = {}
    for event in read_events(data_dir):
        source = event.get("source")
        if not source:
            continue
        if event["event"] == "success":
            streaks.pop(source, None)
        else:
            streaks.setdefault(source, []).append(event)
    out = {}
    for source, failures in streaks.items():
        last = failures[-1]
        out[source] = {"count": len(failures), "commit": last.get("commit"), "step": last.get("step"),
                       "cause": last.get("cause"), "job": last.get("job"), "run_id": last.get("run_id"),
                       "time": last.get("time"), "will_retry": bool(last.get("will_retry")),
                       "text": describe(len(failures), last)}
    return out


def describe(count: int, last: dict) -> str:
    at = f" at {last['commit'][:12]}" if last.get("commit") else ""
    step = f"step {last['step']}: " if last.get("step") else ""
    retry = " (retrying)" if last.get("will_retry") else ""
    return f"failed {count}×{at}{retry}: {step}{last.get('cause') or 'unknown cause'}"


def alert_payload(event: dict, count: int | None = None) -> dict:
    """The webhook body: the failure's fields plus `text`, a one-line summary chat webhooks show as is."""
    who = f"source '{event['source']}'" if event.get("source") else f"partition {event.get('partition') or '-'}"
    text = f"rag-assets: {who}: run {str(event.get('run_id', ''))[:8]} ({event.get('job')}) " \
           + describe(count or 1, event)
    return {**event, "failures_in_a_row": count or 1, "text": text}


def post_alert(url: str, payload: dict, timeout_s: float = 10.0) -> bool:
    """POST the payload as JSON; False (logged, never raised) when the endpoint fails or cannot be reached."""
    import httpx

    try:
        resp = httpx.post(url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as e:
        log.warning("alert webhook %s unreachable: %s", redact_url(url), e)
        return False
    if resp.status_code >= 300:
        log.warning("alert webhook %s answered HTTP %s", redact_url(url), resp.status_code)
        return False
    return True
