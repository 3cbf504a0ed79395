"""The sensor path: a commit -> the git sensor's tick -> runs (daemon) -> searchable, with the default intervals.

What a deployment does, on this machine: a real git repo, the repo's dagster.yaml (SQLite instance), the real
`dagster-daemon` with the git sensor (60 s interval) and Dagster's automation sensor (30 s) on, the real model.
The source is indexed once first; then each round commits one new documented function and polls the store
(a fresh Searcher each 0.5 s, as a long-lived MCP server sees it) until a search finds it at the new commit.

Per round it reports, from the commit: the git sensor's run request, that run's end (snapshot + chunks), the
automation's run request and its end, and when the function became searchable. The waits are Dagster's
intervals: a commit lands at a random point of the 60 s sensor cycle, so expect ~30 s + the automation's
~15 s on average, plus the runs.

    .venv/bin/python benchmarks/sensor_path_bench.py --rounds 3      # ~5 min
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
RESULTS = HERE / "results"
SOURCE = "sensed"
AUTOMATION_SENSOR = "default_automation_condition_sensor"
BASE = '"""Text helpers."""\n\n\ndef shout(text):\n    """Upper-case a text and add an exclamation mark at its end."""\n    return text.upper() + "!"\n'
ADDED = ('\n\ndef bench_round_{n}(value):\n    """Measure how far the {word} ridge sits from the valley floor in metres."""\n'
         '    return value * {n}\n')
WORDS = ["granite", "basalt", "limestone", "sandstone", "marble", "quartz", "slate", "shale"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _dagster(*args: str) -> None:
    subprocess.run([str(BIN / "dagster"), *args, "-w", str(REPO / "workspace.yaml")], check=True,
                   capture_output=True, text=True, timeout=300)


def _runs(instance) -> list:
    return list(instance.get_runs(limit=100))


def _ended(run) -> bool | None:
    return True if run.status.value in ("SUCCESS", "FAILURE", "CANCELED") else None


def bench(rounds: int, work: Path) -> dict:
    from dagster import DagsterInstance

    repo = work / "repo"
    repo.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("config", "user.email", "b@x", cwd=repo)
    _git("config", "user.name", "bench", cwd=repo)
    (repo / "text.py").write_text(BASE)
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "base", cwd=repo)
    (work / "sources.yaml").write_text(json.dumps({"sources": [{"name": SOURCE, "kind": "git", "url": str(repo),
                                                                "branch": "main"}]}))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ.update({"DAGSTER_HOME": str(home), "RAG_DATA_DIR": str(work / "data"),
                       "RAG_SOURCES": str(work / "sources.yaml"), "HF_HUB_OFFLINE": "1"})
    for k in ("QDRANT_URL", "RAG_MODEL", "RAG_DAGSTER_URL"):
        os.environ.pop(k, None)
    subprocess.run([str(BIN / "rag-assets"), "index", SOURCE], check=True, capture_output=True, text=True)
    _dagster("sensor", "start", AUTOMATION_SENSOR)
    _dagster("sensor", "start", "git_heads_sensor")
    log = open(work / "daemon.log", "w")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], stdout=log,
                              stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    from rag_assets.retrieval.search import Searcher
    from rag_assets.service.stores import open_store_for_reading

    out: dict = {"rounds": []}
    try:
        instance = DagsterInstance.get()
        time.sleep(45)  # the automation sensor's first tick only records where it starts
        for n in range(1, rounds + 1):
            word = WORDS[n % len(WORDS)]
            with open(repo / "text.py", "a") as f:
                f.write(ADDED.format(n=n, word=word))
            _git("commit", "-qam", f"round {n}", cwd=repo)
            t0, head = time.time(), _git("rev-parse", "HEAD", cwd=repo)
            before = {r.run_id for r in _runs(instance)}
            found = None
            while time.time() - t0 < 600:
                with open_store_for_reading() as store:
                    hits = Searcher(store, SOURCE).search(f"how far the {word} ridge sits from the valley floor", k=1)
                if hits and hits[0].symbol == f"bench_round_{n}" and hits[0].commit == head:
                    found = time.time()
                    break
                time.sleep(0.5)
            deadline = time.time() + 120  # the checks after the store step: let the runs record their end
            while time.time() < deadline and any(_ended(r) is None for r in _runs(instance) if r.run_id not in before):
                time.sleep(1)
            new = [r for r in _runs(instance) if r.run_id not in before]
            snap = [r for r in new if r.job_name == "snapshot_and_chunk"]
            auto = [r for r in new if r.tags.get("dagster/sensor_name") == AUTOMATION_SENSOR]
            recs = {r.run_id: instance.get_run_record_by_id(r.run_id) for r in new}

            def rel(t):
                return round(t - t0, 2) if t else None

            row = {
                "round": n, "searchable_s": rel(found),
                "git_sensor_requested_s": rel(min((recs[r.run_id].create_timestamp.timestamp() for r in snap),
                                                  default=None)),
                "snapshot_run_ended_s": rel(max((recs[r.run_id].end_time or 0 for r in snap), default=0) or None),
                "automation_requested_s": rel(min((recs[r.run_id].create_timestamp.timestamp() for r in auto),
                                                  default=None)),
                "automation_runs": len(auto),
                "automation_runs_ended_s": rel(max((recs[r.run_id].end_time or 0 for r in auto), default=0) or None),
            }
            print(json.dumps(row), flush=True)
            out["rounds"].append(row)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        log.close()
    got = [r["searchable_s"] for r in out["rounds"] if r["searchable_s"] is not None]
    out["searchable_median_s"] = round(statistics.median(got), 2) if got else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--note", default="", help="a line on the conditions (load), written with the results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sensor-path-"))
    out = bench(args.rounds, work)
    lines = ["# Sensor path (benchmarks/sensor_path_bench.py)", "",
             "A commit to a one-file repo, the real `dagster-daemon` with the default intervals (git sensor 60 s, "
             "automation 30 s), SQLite instance, the real model. Seconds from the commit.", "",
             *([args.note, ""] if args.note else []),
             "| round | git sensor requested | snapshot run ended | automation requested | automation runs | "
             "automation runs ended | **searchable** |", "|---|---|---|---|---|---|---|"]
    for r in out["rounds"]:
        lines.append(f"| {r['round']} | {r['git_sensor_requested_s']} | {r['snapshot_run_ended_s']} | "
                     f"{r['automation_requested_s']} | {r['automation_runs']} | {r['automation_runs_ended_s']} | "
                     f"**{r['searchable_s']}** |")
    lines += ["", f"Median searchable: {out['searchable_median_s']} s.", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sensor_path.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
