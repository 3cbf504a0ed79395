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


def error_cause(error) -> str:
    """One line from a Dagster SerializableErrorInfo: the innermost cause (the user's exception; Dagster
    wraps it), its last message line without the "module.Class: " prefix, or the class name."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    if error is None:
        return "unknown cause"
    lines = (error.message or "").strip().splitlines()
    if not lines:
        return error.cls_name
    line = lines[-1].strip()
    head, sep, rest = line.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == error.cls_name:
        line = rest
    return line or error.cls_name


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
    step, cause = None, "run failed"
    for event in result.all_events:
        if event.is_step_failure:
            step, cause = event.step_key, error_cause(event.event_specific_data.error)
            break
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
