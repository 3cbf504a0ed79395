"""Failed runs are retried, and failures are seen: the instance's run retries, the git sensor asking again
for a head whose run failed (with backoff), the failure log shown by `sources` and `list_sources`, and the
alert webhook (a real local HTTP receiver)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
)

from rag_assets.cli import main
from rag_assets.defs.resources import RagSettings, VectorStoreResource
from rag_assets.service import failures
from rag_assets_tests.gitrepo import commit, make_repo

RES = {"settings": RagSettings(), "store": VectorStoreResource()}


class Receiver(BaseHTTPRequestHandler):
    """An alert webhook: keeps every JSON body POSTed to it."""

    received: list[dict] = []

    def do_POST(self):
        Receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/rag", Receiver.received
    finally:
        server.shutdown()


# ------------------------------------------------------------------ the failure log
def test_failure_log_counts_a_streak_until_a_success(tmp_path):
    for i in range(3):
        failures.record_failure(tmp_path, source="demo", job="snapshot_and_chunk", run_id=f"run{i}",
                                step="chunks", cause=f"Traceback...\nValueError: boom {i}", commit="a1b2c3d4e5f6a7b8")
    failures.record_failure(tmp_path, source="demo", job="snapshot_and_chunk", run_id="run2", step="chunks",
                            cause="seen twice")  # the same run again: recorded once
    failures.record_failure(tmp_path, source=None, job="store_backup", run_id="b1", step="store_snapshot",
                            cause="busy")
    with open(failures.failures_path(tmp_path), "a") as f:
        f.write('{"event": "failure", "source": "demo", "run_id": \n')  # a torn line is skipped
    s = failures.summary(tmp_path)
    assert set(s) == {"demo"}
    assert s["demo"]["count"] == 3 and s["demo"]["text"] == "failed 3× at a1b2c3d4e5f6: step chunks: ValueError: boom 2"
    failures.record_success(tmp_path, source="demo", job="embed_and_upsert", run_id="ok1")
    assert failures.summary(tmp_path) == {}
    failures.record_failure(tmp_path, source="demo", job="embed_and_upsert", run_id="run9", step=None,
                            cause="https://u:tok@h/x.git gone", will_retry=True)
    assert failures.summary(tmp_path)["demo"]["text"] == "failed 1× (retrying): https://u:***@h/x.git gone"


def test_alert_is_posted_as_json(webhook, tmp_path):
    url, received = webhook
    event = failures.record_failure(tmp_path, source="demo", job="j", run_id="abcdef123456", step="chunks",
                                    cause="boom", commit="f" * 40)
    assert failures.post_alert(url, failures.alert_payload(event, 2))
    [body] = received
    assert body["source"] == "demo" and body["cause"] == "boom" and body["failures_in_a_row"] == 2
    assert body["text"] == "rag-assets: source 'demo': run abcdef12 (j) failed 2× at ffffffffffff: step chunks: boom"
    assert not failures.post_alert("http://127.0.0.1:9/nothing", {"text": "x"})  # unreachable: False, no raise


# ------------------------------------------------------------------ retries
def test_instance_config_retries_failed_runs_from_failure(tmp_path, monkeypatch):
    from rag_assets import settings
    from rag_assets.defs import retries

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = settings.ensure_dagster_home()  # what the CLI writes into a new DAGSTER_HOME
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure
    monkeypatch.setenv("RAG_RUN_MAX_RETRIES", "4")
    assert retries.retry_tags() == {"dagster/max_retries": "4", "dagster/retry_strategy": "FROM_FAILURE"}
    assert retries.automation_sensor.run_tags["dagster/max_retries"] == "2"
    assert [retries.backoff_s(n) for n in (0, 1, 2, 10)] == [300, 600, 1200, 6 * 3600]


@pytest.mark.slow  # runs Dagster jobs
def test_the_instance_plans_a_retry_for_a_failed_run(tmp_path, monkeypatch):
    from rag_assets import settings
    from rag_assets.defs.retries import retry_tags
    from rag_assets.service.runs import register_sources

    for var, value in {"DAGSTER_HOME": tmp_path / "home", "RAG_DATA_DIR": tmp_path / "data",
                       "RAG_SOURCES": tmp_path / "sources.yaml"}.items():
        monkeypatch.setenv(var, str(value))
    make_repo(tmp_path / "demo", {"a.py": "x = 1\n"})
    (tmp_path / "sources.yaml").write_text(json.dumps(
        {"sources": [{"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "branch": "nope"}]}))
    with DagsterInstance.from_config(str(settings.ensure_dagster_home())) as instance:
        register_sources(instance)
        planned = _run(instance, "snapshot_and_chunk", "demo", retry_tags())
        assert instance.get_run_by_id(planned.run_id).tags["dagster/will_retry"] == "true"
        final = _run(instance, "snapshot_and_chunk", "demo", {**retry_tags(), "dagster/max_retries": "0"})
        assert instance.get_run_by_id(final.run_id).tags["dagster/will_retry"] == "false"


def _run(instance, job: str, partition: str, tags: dict | None = None):
    from rag_assets.definitions import defs

    return defs.resolve_job_def(job).execute_in_process(partition_key=partition, instance=instance, tags=tags,
                                                        raise_on_error=False)


def _git_sensor(instance, cursor=None):
    from rag_assets.defs import sensors

    ctx = build_sensor_context(instance=instance, cursor=cursor, resources=RES)
    return sensors.git_heads_sensor(ctx), ctx.cursor


@pytest.mark.slow  # runs Dagster jobs
def test_git_sensor_asks_again_for_a_head_whose_run_failed(env, tmp_path, monkeypatch):
    from rag_assets.defs import retries
    from rag_assets.service.runs import register_sources

    repo = make_repo(tmp_path / "a", {"a.py": "def a():\n    return 1\n"})
    head = repo.head.commit.hexsha
    env.write_sources({"name": "a", "kind": "git", "url": str(tmp_path / "a")})
    register_sources(env.instance)
    # A broken disk: the mirrors folder cannot be made, so repo_snapshot fails, every time, until fixed.
    env.data_dir.mkdir(parents=True)
    (env.data_dir / "mirrors").write_text("not a folder")

    [req], cursor = _git_sensor(env.instance)
    assert req.run_key == f"a:{head}" and req.tags["rag/commit"] == head and req.tags["dagster/max_retries"] == "2"
    # Requested, no run yet (the daemon launches it after the tick): nothing new is asked.
    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason) and "waiting" not in result.skip_message
    assert not _run(env.instance, "snapshot_and_chunk", "a", req.tags).success
    run = env.instance.get_runs()[0]

    # Dagster will retry it (the daemon's own retries): wait.
    env.instance.add_run_tags(run.run_id, {"dagster/will_retry": "true"})
    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason)

    # Failed for good: asked again after the backoff, under a new run key.
    env.instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})
    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason) and "failed, waiting to retry: a" in result.skip_message
    state = json.loads(cursor)["retries"]["a"]
    assert state["attempt"] == 0 and state["not_before"] == pytest.approx(state["failed_at"] + 300)
    cursor = json.dumps({**json.loads(cursor), "retries": {"a": {**state, "not_before": time.time() - 1}}})
    [again], cursor = _git_sensor(env.instance, cursor)  # the backoff has passed
    assert again.run_key == f"a:{head}:retry1" and again.tags["rag/attempt"] == "1"
    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason)  # its run has not failed (yet): nothing more

    # That one fails too: the next wait is twice as long, then a third key.
    assert not _run(env.instance, "snapshot_and_chunk", "a", again.tags).success
    result, cursor = _git_sensor(env.instance, cursor)
    state = json.loads(cursor)["retries"]["a"]
    assert isinstance(result, SkipReason) and state["attempt"] == 1
    assert state["not_before"] == pytest.approx(state["failed_at"] + 600)
    monkeypatch.setattr(retries, "RETRY_BASE_S", 0)  # (the backoff of the next failure)
    cursor = json.dumps({**json.loads(cursor), "retries": {"a": {**state, "not_before": time.time() - 1}}})
    [third], cursor = _git_sensor(env.instance, cursor)
    assert third.run_key == f"a:{head}:retry2"

    # A new commit: asked for at once, and the retry state of the old head is dropped.
    (env.data_dir / "mirrors").unlink()  # the disk is fixed
    sha = commit(repo, {"b.py": "def b():\n    return 2\n"}, "b")
    [new], cursor = _git_sensor(env.instance, cursor)
    assert new.run_key == f"a:{sha}" and json.loads(cursor)["retries"] == {}
    assert _run(env.instance, "snapshot_and_chunk", "a", new.tags).success
    result, cursor = _git_sensor(env.instance, cursor)
    assert isinstance(result, SkipReason) and "waiting" not in result.skip_message


# ------------------------------------------------------------------ the failure sensor
def _status_context(instance, run, sensor: str):
    event_type = DagsterEventType.RUN_FAILURE if sensor == "run_failures_sensor" else DagsterEventType.RUN_SUCCESS
    [record] = instance.get_records_for_run(run.run_id, of_type=event_type).records
    ctx = build_run_status_sensor_context(sensor_name=sensor, dagster_event=record.event_log_entry.dagster_event,
                                          dagster_instance=instance, dagster_run=run, resources=RES)
    return ctx.for_run_failure() if event_type == DagsterEventType.RUN_FAILURE else ctx


@pytest.mark.slow  # runs Dagster jobs
def test_failures_are_recorded_shown_and_alerted(env, tmp_path, monkeypatch, webhook, capsys):
    from rag_assets.defs.failures import run_failures_sensor, run_successes_sensor
    from rag_assets.mcp_server import list_sources
    from rag_assets.service.runs import register_sources

    url, received = webhook
    monkeypatch.setenv("RAG_ALERT_WEBHOOK", url)
    repo = make_repo(tmp_path / "demo", {"a.py": "def a():\n    return 1\n"})
    head = repo.head.commit.hexsha
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "branch": "nope"})
    register_sources(env.instance)

    first = _run(env.instance, "snapshot_and_chunk", "demo", {"rag/commit": head})
    assert not first.success
    run = env.instance.get_run_by_id(first.run_id)
    run_failures_sensor(_status_context(env.instance, run, "run_failures_sensor"))
    cause = f"source 'demo': branch 'nope' not found in '{tmp_path / 'demo'}'; available branches: main"
    [alert] = received
    assert alert["source"] == "demo" and alert["step"] == "repo_snapshot" and alert["cause"] == cause
    assert alert["text"] == f"rag-assets: source 'demo': run {run.run_id[:8]} (snapshot_and_chunk) failed 1× " \
        f"at {head[:12]}: step repo_snapshot: {cause}"

    # A run Dagster will retry is recorded, not alerted (one alert per final failure).
    second = _run(env.instance, "snapshot_and_chunk", "demo", {"rag/commit": head})
    env.instance.add_run_tags(second.run_id, {"dagster/will_retry": "true"})
    run_failures_sensor(_status_context(env.instance, env.instance.get_run_by_id(second.run_id),
                                        "run_failures_sensor"))
    assert len(received) == 1

    shown = f"failed 2× at {head[:12]} (retrying): step repo_snapshot: {cause}"
    assert main(["sources", "--offline"]) == 0
    assert shown in capsys.readouterr().out
    assert [s.failure for s in list_sources(check_remote=False)] == [shown]

    # Fixed: a successful run ends the streak.
    env.write_sources({"name": "demo", "kind": "git", "url": str(tmp_path / "demo"), "branch": "main",
                       "include": ["*.py"]})
    ok = _run(env.instance, "snapshot_and_chunk", "demo")
    assert ok.success
    run_successes_sensor(_status_context(env.instance, env.instance.get_run_by_id(ok.run_id), "run_successes_sensor"))
    assert failures.summary(env.data_dir) == {}
    assert main(["sources", "--offline", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["failure"] is None and row["failures"] == 0
