"""In-process runs whose process is gone, and waits for a pool slot.

An in-process run (the CLI's) carries its process id, host and process start time as tags. Before each run
the runs on this host whose process is gone (kill -9, OOM) are marked failed and their pool slots freed:
otherwise they stay STARTED in the UI and keep the store's one slot, and every later store write waits
forever. While a run waits for a slot, `PoolWatch` says once who holds it, stops on Ctrl-C and gives up
after a timeout (Dagster's executor would wait forever and ignore Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import dagster as dg

from rag_assets.service.errors import Interrupted, PoolWaitTimeout
from rag_assets.service.failures import partition_source

# Who runs an in-process run: a later CLI call tells a run whose process died from one still working.
PID_TAG, HOST_TAG, PROCESS_STARTED_TAG = "rag/pid", "rag/host", "rag/process_started"
UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")
_POOL_POLL_S = 1.0


def _say(line: str) -> None:
    print(f"rag-assets: {line}", file=sys.stderr, flush=True)


def process_started(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - no psutil, or no such process: the pid alone is checked
        return None


def _process_alive(pid: int, started: str | None) -> bool:
    """Whether the process that ran a run is still there (a reused pid is told apart by its start time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not started or abs(proc.create_time() - float(started)) < 1.0
    except Exception:  # noqa: BLE001 - no psutil, or it vanished meanwhile: trust os.kill
        return True


def _run_label(run) -> str:
    source = partition_source(run.tags.get("dagster/partition"))
    who = f", source '{source}'" if source else ""
    proc = f"; pid {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG, '?')}" if run.tags.get(PID_TAG) else ""
    return f"run {run.run_id[:8]} ({run.job_name}{who}{proc}, {run.status.value})"


def _held_pools(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    storage = instance.event_log_storage
    held = []
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        if any(c.run_id == run_id for c in info.claimed_slots) or any(p.run_id == run_id for p in info.pending_steps):
            held.append(key)
    return held


def reap_dead_runs(instance: dg.DagsterInstance, say=_say) -> list[str]:
    """Runs this instance still shows as started whose process is gone (killed, crashed): mark them failed
    and free their pool slots, so they neither stay STARTED in the UI nor block every later store write.
    Only runs launched in process by this code on this host are judged (they carry their pid); runs the
    daemon launched are its run monitoring's. Also frees slots still held by runs that have finished.
    Returns the ids of the runs it marked failed."""
    storage = instance.event_log_storage
    pooled = storage.supports_global_concurrency_limits
    host = socket.gethostname()
    reaped = []
    statuses = [dg.DagsterRunStatus(s) for s in UNFINISHED]
    for record in instance.get_run_records(dg.RunsFilter(statuses=statuses, tags={HOST_TAG: host})):
        run = record.dagster_run
        try:
            pid = int(run.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _process_alive(pid, run.tags.get(PROCESS_STARTED_TAG)):
            continue
        run = instance.get_run_by_id(run.run_id)  # another CLI may have just done it
        if run is None or run.status.value not in UNFINISHED:
            continue
        pools = _held_pools(instance, run.run_id) if pooled else []
        instance.report_run_failed(run, message=f"its process {pid} on {host} is gone (killed or crashed); "
                                                "marked failed by the next rag-assets run")
        if pooled:
            storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
        freed = f" and freed its {', '.join(pools)} pool slot{'s' if len(pools) > 1 else ''}" if pools else ""
        say(f"{_run_label(run)} was left running by process {pid}, which is gone: marked it failed{freed}")
    for run_id in storage.get_concurrency_run_ids() if pooled else ():  # slots of runs that ended holding them
        run = instance.get_run_by_id(run_id)
        if run is None or run.status.value not in UNFINISHED:
            pools = _held_pools(instance, run_id)
            storage.free_concurrency_slots_for_run(run_id)
            if pools:
                say(f"freed the {', '.join(pools)} pool slot held by finished run {run_id[:8]}")
    return reaped


def _holders(instance: dg.DagsterInstance, info) -> str:
    runs = []
    for run_id in dict.fromkeys(c.run_id for c in info.claimed_slots):
        run = instance.get_run_by_id(run_id)
        runs.append(_run_label(run) if run else f"run {run_id[:8]} (no longer in this instance)")
    return ", ".join(runs) or "no run (slots are being reassigned)"


class PoolWatch:
    """While an in-process run waits for a pool slot, Dagster's executor spins (a full CPU core) without
    ever looking at Ctrl-C (it captures SIGINT for the run) and without a timeout. This watch says once who
    holds the slot; while the wait lasts it slows the spin down; on Ctrl-C or after `timeout_s` it stops
    the wait. A thread watches the pool and signals the main thread (SIGUSR1), whose handler sleeps or
    raises there: only in the executor's wait loop, never inside a step or a storage call."""

    _STEP_FRAMES = frozenset({"dagster_event_sequence_for_step", "core_dagster_event_sequence_for_step"})

    def __init__(self, instance: dg.DagsterInstance, run_id: str, job_name: str, timeout_s: float, say=_say):
        self.instance, self.run_id, self.job_name, self.timeout_s, self.say = instance, run_id, job_name, timeout_s, say
        self.abort: BaseException | None = None
        self.raised = False
        self.waiting = False
        self._thread: threading.Thread | None = None
        self._old_handler = None

    def __enter__(self) -> "PoolWatch":
        if (threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_kill")
                or not self.instance.event_log_storage.supports_global_concurrency_limits):
            return self  # signals reach the main thread only: elsewhere, Dagster waits as it does
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._old_handler = signal.signal(signal.SIGUSR1, self._on_signal)
        self._thread = threading.Thread(target=self._watch, name="rag-assets-pool-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            signal.signal(signal.SIGUSR1, self._old_handler)

    def _waiting_for(self):
        storage = self.instance.event_log_storage
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            mine = [p for p in info.pending_steps if p.run_id == self.run_id and p.assigned_timestamp is None]
            if mine and not any(c.run_id == self.run_id for c in info.claimed_slots):
                return key, info
        return None

    def _watch(self) -> None:
        from dagster._utils.interrupts import check_captured_interrupt

        since = None
        while not self._stop.wait(_POOL_POLL_S):
            if self.abort is None:
                try:
                    waiting = self._waiting_for()
                except Exception:  # noqa: BLE001 - a busy sqlite file: look again next time
                    continue
                self.waiting = waiting is not None
                if waiting is None:
                    since = None
                    continue
                pool, info = waiting
                if since is None:
                    since = time.monotonic()
                    self.say(f"run {self.run_id[:8]} ({self.job_name}) waits for the {pool} pool, held by "
                             f"{_holders(self.instance, info)} (Ctrl-C stops waiting)")
                if check_captured_interrupt():
                    self.abort = Interrupted(f"interrupted while run {self.run_id[:8]} ({self.job_name}) waited for "
                                             f"the {pool} pool, held by {_holders(self.instance, info)}")
                elif time.monotonic() - since > self.timeout_s:
                    self.abort = PoolWaitTimeout(
                        f"run {self.run_id[:8]} ({self.job_name}) waited {self.timeout_s:.0f}s for the {pool} pool, "
                        f"held by {_holders(self.instance, info)}: wait for that run to finish or, if it is stuck "
                        f"or its process is gone, terminate it in the Dagster UI, then retry")
            if self.abort is not None and self.raised:
                continue
            signal.pthread_kill(self._main, signal.SIGUSR1)  # again each poll until the handler raises

    def _in_wait_loop(self, frame) -> bool:
        """The main thread is in the executor's loop between steps, not in a step nor in a storage call."""
        loop = False
        while frame is not None:
            code = frame.f_code
            if code.co_name in self._STEP_FRAMES or "sqlalchemy" in code.co_filename or \
                    f"{os.sep}storage{os.sep}" in code.co_filename:
                return False
            loop = loop or code.co_name == "inner_plan_execution_iterator"
            frame = frame.f_back
        return loop

    def _on_signal(self, signo, frame) -> None:
        if self.raised or not (self.abort is not None or self.waiting) or not self._in_wait_loop(frame):
            return
        if self.abort is not None:
            self.raised = True
            raise self.abort
        time.sleep(_POOL_POLL_S * 0.9)  # spare the CPU the executor's spin; a Ctrl-C meanwhile is seen next poll
