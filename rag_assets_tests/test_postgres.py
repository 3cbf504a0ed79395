"""The Postgres-backed deployment path, end to end, on a real PostgreSQL server and the real Dagster daemon.

A throwaway cluster (Debian's `postgresql` binaries: initdb + pg_ctl in a temp dir, as an unprivileged
user) holds the Dagster instance's run, event-log and schedule storage. The instance config is the
deployment's storage block (deploy/dagster.yaml, what docker-compose.yml mounts) with the repo
dagster.yaml's own policies (pools, run retries), read from that file. Then `dagster-daemon run` does
what a deployment does: the git sensor sees new commits of two sources, their runs go through the queued
run coordinator, declarative automation carries the new chunks down to the collections, the store steps
of the two sources take the `qdrant_store` pool (limit 1) one at a time, and `rag-assets search` finds the
functions the commits added. While the two sources' refresh runs are requested, the test itself holds the
pool's only slot (a third store writer), so both store steps are waiting for it at once: the pool, not
timing luck, has to let them through one at a time (checked from step timestamps in Postgres' event log).

Without PostgreSQL binaries the tests skip, except in CI (`RAG_REQUIRE_POSTGRES=1`, set by .ci/run), where
they fail. `.ci/run` installs Debian's `postgresql` when it is missing.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REQUIRED = os.environ.get("RAG_REQUIRE_POSTGRES") == "1"
STORE_STEPS = ("qdrant_collection", "collection_alias")  # the assets in the qdrant_store pool
POOL = "qdrant_store"
AUTOMATION_SENSOR = "default_automation_condition_sensor"


def _unavailable(reason: str):
    """Skip outside CI; in CI (RAG_REQUIRE_POSTGRES=1) a missing server is a failure, not a skip."""
    if REQUIRED:
        pytest.fail(f"RAG_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live: $RAG_PG_BINDIR when set (only there), else Debian's
    /usr/lib/postgresql/<newest>/bin, else PATH."""
    if os.environ.get("RAG_PG_BINDIR"):
        candidates = [os.environ["RAG_PG_BINDIR"]]
    else:
        debian = glob.glob("/usr/lib/postgresql/*/bin")
        candidates = sorted(debian, key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                            reverse=True)
        candidates += [str(Path(shutil.which("initdb")).parent)] if shutil.which("initdb") else []
    for c in candidates:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    port: int
    user: str = "postgres"  # the cluster's superuser (initdb -U); trust auth, so no password is checked
    host: str = "127.0.0.1"

    def psql(self, sql: str, db: str = "postgres") -> str:
        return subprocess.run([str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user,
                               "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    def create_db(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def env(self, db: str) -> dict[str, str]:
        """The variables deploy/dagster.yaml's storage block reads (docker-compose.yml sets the same)."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": "unused-trust-auth", "DAGSTER_PG_DB": db}


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster in a temp dir on a free port, started here and stopped (and deleted) at teardown."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    if importlib.util.find_spec("dagster_postgres") is None:
        _unavailable("dagster-postgres is not installed: pip install -e '.[test]'")
    # initdb refuses to run as root: as root, the cluster belongs to an unprivileged user.
    run_as: dict = {}
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(name)
                break
            except KeyError:
                pw = None
        if pw is None:
            _unavailable("running as root and no unprivileged user (postgres, nobody) to own the cluster")
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    # Under /tmp itself (pytest's tmp_path is in a root-only 0700 folder the cluster's user cannot enter).
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    if run_as:
        os.chown(root, run_as["user"], run_as["group"])
    cluster = PgCluster(bindir, root, _free_port())
    data, log = root / "data", root / "server.log"

    def pg(*args: str, timeout: float = 120) -> None:
        proc = subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                              cwd=root, **run_as)
        if proc.returncode != 0:
            server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{server_log}")

    started = False
    try:
        pg("initdb", "-D", str(data), "-A", "trust", "-U", cluster.user, "-E", "UTF8", "--no-sync")
        # Sockets in the temp dir, TCP on 127.0.0.1 only; durability off (a throwaway cluster).
        opts = (f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        pg("pg_ctl", "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        started = True
        yield cluster
    finally:
        if started:
            try:
                pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop", timeout=60)
            except Exception as e:  # still delete the folder; say why the stop failed
                print(f"pg_ctl stop failed: {e}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


def instance_config() -> dict:
    """The test instance's dagster.yaml: the deployment's Postgres storage and run coordinator, and the repo
    dagster.yaml's policies (concurrency pools, run retries, ...) read from that file, so they cannot drift."""
    repo = yaml.safe_load((REPO / "dagster.yaml").read_text()) or {}
    deploy = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert "storage" not in repo and "run_coordinator" not in repo, "the repo dagster.yaml is the local (SQLite) one"
    return {**repo, "storage": deploy["storage"], "run_coordinator": deploy["run_coordinator"],
            "run_launcher": deploy["run_launcher"]}


@pytest.fixture
def pg_home(postgres, tmp_path, monkeypatch, request):
    """A DAGSTER_HOME whose instance lives in a fresh database of the cluster; env set for this process."""
    db = postgres.create_db(f"dagster_{request.node.name[:40].lower()}".replace("-", "_").replace("[", "_")
                            .replace("]", "_"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(), sort_keys=False))
    env = {**postgres.env(db), "DAGSTER_HOME": str(home), "RAG_DATA_DIR": str(tmp_path / "data"),
           "RAG_SOURCES": str(tmp_path / "sources.yaml"), "HF_HUB_OFFLINE": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("QDRANT_URL", "RAG_MODEL", "RAG_DAGSTER_URL"):
        monkeypatch.delenv(k, raising=False)
    yield home


def _instance(home: Path):
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def test_instance_on_postgres_has_the_repo_policies(pg_home):
    """The instance built from that config really is Postgres-backed, queued, pool limit 1, with run retries."""
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    repo = yaml.safe_load((REPO / "dagster.yaml").read_text())
    with _instance(pg_home) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == \
            repo["concurrency"]["pools"]["default_limit"] == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == repo["run_retries"]["max_retries"]
        instance.add_dynamic_partitions("source", ["a"])  # a round trip through the server
        assert instance.get_dynamic_partitions("source") == ["a"]


# ---------------------------------------------------------------------------------------------- the daemon
NEW = {
    "a": ("geometry.py", "circle_area", "area of a circle from its radius",
          'def circle_area(radius):\n    """Area of a circle from its radius."""\n    return 3.14159 * radius ** 2\n'),
    "b": ("slugs.py", "slugify", "turn a title into a lowercase url slug",
          'def slugify(title):\n    """Turn a title into a lowercase URL slug joined by hyphens."""\n'
          '    return "-".join(title.lower().split())\n'),
}
TEXT = '''"""Small text helpers."""


def shout(text: str) -> str:
    """Upper-case the text and add an exclamation mark at the end."""
    return text.upper() + "!"
'''


class Daemon:
    """`dagster-daemon run` in its own process group (its code server and run workers join the group)."""

    def __init__(self, log: Path):
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=log.parent, env=os.environ.copy(),
            start_new_session=True,
            # Default SIGINT/SIGTERM even when pytest itself was started with them ignored (a background job).
            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)],
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 60) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        """SIGTERM to the group (the daemon stops its threads and code server), then SIGKILL to whatever is
        left of the group (a run worker or step process that outlived it)."""
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()


@pytest.fixture
def daemon(pg_home):
    daemons: list[Daemon] = []

    def start() -> Daemon:
        daemons.append(Daemon(pg_home.parent / "daemon.log"))
        return daemons[-1]

    yield start
    for d in daemons:
        d.stop()


def _dagster(*args: str) -> str:
    proc = subprocess.run([str(BIN / "dagster"), *args, "-w", str(REPO / "workspace.yaml")],
                          capture_output=True, text=True, timeout=180, env=os.environ.copy())
    assert proc.returncode == 0, f"dagster {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc.stdout


def _sensor_ticks(instance, name: str) -> list:
    from dagster._core.scheduler.instigation import InstigatorType

    states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
              if s.instigator_name == name]
    return [t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=20)]


def _wait(cond, timeout: float, what: str, daemon: Daemon, instance, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if not daemon.alive() or time.monotonic() > deadline:
            raise AssertionError(f"{'daemon exited' if not daemon.alive() else f'timed out ({timeout:.0f}s)'} "
                                 f"waiting for {what}\n{_runs_report(instance)}\n--- daemon log ---\n{daemon.tail()}")
        time.sleep(interval)


def _runs_report(instance) -> str:
    """Every run with its status, and the one-line cause of each failed step (for assertion messages)."""
    from dagster import DagsterEventType

    lines = []
    for r in instance.get_runs(limit=50):
        lines.append(f"{r.run_id[:8]} {r.job_name} {r.tags.get('dagster/partition')} {r.status.value}")
        for e in instance.all_logs(r.run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}):
            error = getattr(e.dagster_event.event_specific_data, "error", None)
            lines.append(f"    {e.step_key}: {(error.message if error else e.message or '').strip()[:500]}")
    return "\n".join(lines)


def _collection_commit(instance, partition: str) -> str | None:
    """The commit in the latest qdrant_collection materialization of a (source, model) partition."""
    from dagster import AssetKey
    from dagster._core.storage.event_log.base import AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("qdrant_collection"), asset_partitions=[partition]), limit=1).records
    if not records:
        return None
    meta = records[0].asset_materialization.metadata
    return meta["commit"].value if "commit" in meta else None


def _step_windows(instance, run_id: str) -> dict[str, tuple[float, float | None]]:
    """{step key: (STEP_START time, STEP_SUCCESS/FAILURE time)} from the instance's (Postgres) event log."""
    from dagster import DagsterEventType

    out: dict[str, list] = {}
    for e in instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                                                DagsterEventType.STEP_FAILURE}):
        w = out.setdefault(e.step_key, [None, None])
        w[0 if e.dagster_event.event_type == DagsterEventType.STEP_START else 1] = e.timestamp
    return {k: (v[0], v[1]) for k, v in out.items()}


def _store_runs(instance, partitions) -> dict[str, list]:
    """{partition: the runs that materialize qdrant_collection for it}."""
    from dagster import AssetKey

    out: dict[str, list] = {p: [] for p in partitions}
    for r in instance.get_runs(limit=100):
        if AssetKey("qdrant_collection") in (r.asset_selection or ()) and r.tags.get("dagster/partition") in out:
            out[r.tags["dagster/partition"]].append(r)
    return out


def _waiting_for_pool(instance, run) -> bool:
    """The run waits for a qdrant_store slot: queued with only store steps (the queued run coordinator holds a
    run whose first steps find no free slot), or started with its store step blocked by the pool."""
    from dagster import DagsterEventType, DagsterRunStatus

    if run.status == DagsterRunStatus.QUEUED:
        return {k.path[-1] for k in run.asset_selection or ()} <= set(STORE_STEPS)
    return run.status == DagsterRunStatus.STARTED and any(
        f"blocked by limit for pool {POOL}" in (e.message or "")
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT))


@pytest.mark.slow
def test_daemon_on_postgres_indexes_new_commits_of_two_sources_one_store_writer_at_a_time(pg_home, daemon, tmp_path):
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    from rag_assets.defs.partitions import source_model_key
    from rag_assets.embedding.models import live_model_key
    from rag_assets.service.runs import index_source
    from rag_assets_tests.gitrepo import commit, make_repo
    from rag_assets_tests.test_pipeline import MATH

    t0 = time.monotonic()
    model = live_model_key()
    repos = {"a": make_repo(tmp_path / "a", {"mathutil.py": MATH}), "b": make_repo(tmp_path / "b", {"text.py": TEXT})}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": n, "kind": "git", "url": str(tmp_path / n), "branch": "main"} for n in repos]}))
    keys = {n: str(source_model_key(n, model)) for n in repos}
    timeline: list[str] = []

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - t0:5.0f}s {what}")

    with _instance(pg_home) as instance:
        # 1. First index of both sources, in process, recorded in the Postgres-backed instance.
        for n in repos:
            index_source(n, model, instance=instance)
        assert {n: _collection_commit(instance, keys[n]) for n in repos} == \
            {n: r.head.commit.hexsha for n, r in repos.items()}
        mark("first index of a and b (in process)")

        # 2. The daemon, with automation on. Automation must evaluate once before the commits: its first tick
        #    only records where it starts (an update before it is not "new").
        _dagster("sensor", "start", AUTOMATION_SENSOR)
        d = daemon()
        _wait(lambda: any(t.status.value in ("SKIPPED", "SUCCESS") for t in _sensor_ticks(instance, AUTOMATION_SENSOR)),
              180, "the automation sensor's first tick", d, instance)
        mark("daemon up, automation ticked")

        # 3. A third writer holds the store pool's only slot, so that both sources' store steps are waiting
        #    for it at the same time: the pool, not luck, must then let them through one at a time.
        events = instance.event_log_storage
        if not events.get_concurrency_info(POOL).slot_count:  # the first index's store steps set it up
            events.initialize_concurrency_limit_to_default(POOL)  # (on Postgres, only safe for a new pool)
        assert events.get_concurrency_info(POOL).slot_count == 1
        holder = ("held-by-test-" + os.urandom(4).hex(), "another_store_writer")
        assert events.claim_concurrency_slot(POOL, *holder).is_claimed
        try:
            # 4. New commits in both sources, then the git sensor on: its first tick requests both snapshots.
            heads = {n: commit(repos[n], {path: code}, f"add {path}") for n, (path, _, _, code) in NEW.items()}
            _dagster("sensor", "start", "git_heads_sensor")
            mark("committed to a and b, git sensor on")
            _wait(lambda: all(runs and all(_waiting_for_pool(instance, r) for r in runs)
                              for runs in _store_runs(instance, keys.values()).values()),
                  420, "both sources' store runs waiting for the qdrant_store slot", d, instance)
            mark("both store runs wait for the pool")
            time.sleep(3)  # a queue-daemon pass with both waiting
        finally:
            events.free_concurrency_slot_for_step(*holder)

        # 5. Both collections reach the new commits, and every run ends.
        _wait(lambda: all(_collection_commit(instance, keys[n]) == heads[n] for n in repos), 300,
              "both collections at the new commits", d, instance)
        mark("both collections at the new commits")
        unfinished = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                      DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
        _wait(lambda: not instance.get_runs(filters=RunsFilter(statuses=unfinished)), 180, "all runs to end", d,
              instance)
        mark("all runs ended")
        d.stop()

        report = _runs_report(instance)
        daemon_runs = [r for r in instance.get_runs() if "dagster/sensor_name" in r.tags]
        # Every run the daemon started succeeded (none failed, so no retry was needed either) ...
        assert daemon_runs and all(r.status == DagsterRunStatus.SUCCESS for r in daemon_runs), report
        # ... and went through the queue (the queued run coordinator), unlike the in-process first index.
        for r in daemon_runs:
            assert instance.all_logs(r.run_id, of_type=DagsterEventType.RUN_ENQUEUED), f"{r.run_id} not queued"
        # The git sensor requested one snapshot run per source, at its new commit.
        snaps = {r.tags["dagster/partition"]: r for r in daemon_runs if r.job_name == "snapshot_and_chunk"}
        assert {n: (r.tags["dagster/sensor_name"], r.tags["rag/commit"]) for n, r in snaps.items()} == \
            {n: ("git_heads_sensor", heads[n]) for n in repos}, report
        # Automation requested the rest (embeddings and the collections of both sources).
        assert all(r.tags["dagster/sensor_name"] == AUTOMATION_SENSOR for r in daemon_runs if r.job_name !=
                   "snapshot_and_chunk"), report

        # Pool limit 1: the store steps of all runs (both sources) never overlapped.
        store_runs = [r for runs in _store_runs(instance, keys.values()).values() for r in runs]
        windows = sorted((start, end, run.run_id[:8], step) for run in store_runs
                         for step, (start, end) in _step_windows(instance, run.run_id).items() if step in STORE_STEPS)
        assert {w[2] for w in windows} == {r.run_id[:8] for r in store_runs} and len(store_runs) >= 2, windows
        for (s1, e1, r1, k1), (s2, e2, r2, k2) in zip(windows, windows[1:]):
            assert e1 is not None and e1 <= s2, \
                f"store steps overlapped: {r1}/{k1} [{s1:.2f}, {e1}] and {r2}/{k2} [{s2:.2f}, {e2}]"
        info = events.get_concurrency_info(POOL)
        assert info.slot_count == 1 and info.active_slot_count == 0 and info.pending_step_count == 0, info

    # 6. Search (the CLI, a fresh process, through each source's alias) finds what the commits added.
    for n, (path, symbol, query, _) in NEW.items():
        proc = subprocess.run([str(BIN / "rag-assets"), "search", query, "--source", n, "--k", "3", "--json"],
                              capture_output=True, text=True, timeout=300, env=os.environ.copy())
        assert proc.returncode == 0, proc.stderr
        hit = json.loads(proc.stdout)[0]
        assert (hit["path"], hit["symbol"], hit["commit"]) == (path, symbol, heads[n]), proc.stdout
    mark("rag-assets search found circle_area in a and slugify in b")
    print("\n" + "\n".join(timeline) + "\nstore steps (start, end, run, step):\n" +
          "\n".join(f"  {s:.2f} {e:.2f} {r} {k}" for s, e, r, k in windows))

