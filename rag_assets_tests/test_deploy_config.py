"""docker-compose.yml's Dagster instance config agrees with the repo's dagster.yaml (fast: parses files only).

The repo's dagster.yaml (what `make ui` and the CLI put in DAGSTER_HOME) sets the policies: the store pool
limit and run retries. The compose deployment mounts its own dagster.yaml (Postgres storage): it must keep
the same policies, the same (queued) run coordinator, and name only classes and env vars that exist.
test_postgres.py runs the real daemon on that file's storage block.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.ref import InstanceRef

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


def repo_instance_config() -> dict:
    return yaml.safe_load((REPO / "dagster.yaml").read_text()) or {}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the `<<: *app` merge keys


def _config_text(compose: dict, name: str) -> str:
    spec = compose["configs"][name]
    if "file" in spec:
        return (COMPOSE.parent / spec["file"]).read_text()
    return spec["content"]


def _dagster_services(compose: dict) -> dict[str, dict]:
    """Services that run Dagster (they set DAGSTER_HOME)."""
    return {name: svc for name, svc in compose["services"].items()
            if "DAGSTER_HOME" in (svc.get("environment") or {})}


def _mounted(svc: dict, target: str) -> str | None:
    for entry in svc.get("configs") or []:
        entry = {"source": entry} if isinstance(entry, str) else entry
        if entry.get("target", f"/{entry['source']}") == target:
            return entry["source"]
    return None


def compose_instance_configs() -> dict[str, str]:
    """{service: the text of the dagster.yaml it gets in $DAGSTER_HOME} for each Dagster service."""
    compose = _compose()
    out = {}
    for name, svc in _dagster_services(compose).items():
        source = _mounted(svc, f"{svc['environment']['DAGSTER_HOME']}/dagster.yaml")
        assert source, f"compose service '{name}' runs Dagster but mounts no dagster.yaml in its DAGSTER_HOME"
        out[name] = _config_text(compose, source)
    return out


def _ref(tmp_path: Path, text: str) -> InstanceRef:
    """Dagster's own reading of an instance config (schema-checked, defaults filled in); connects to nothing."""
    home = tmp_path / f"home{len(list(tmp_path.iterdir()))}"
    home.mkdir()
    (home / "dagster.yaml").write_text(text)
    return InstanceRef.from_dir(str(home))


def test_compose_runs_dagster_in_three_services_with_one_config():
    configs = compose_instance_configs()
    assert set(configs) == {"code", "webserver", "daemon"}
    assert len(set(configs.values())) == 1, "the Dagster services must share one instance config"


def test_compose_instance_config_agrees_with_repo_dagster_yaml(tmp_path):
    repo = repo_instance_config()
    repo_ref = _ref(tmp_path, (REPO / "dagster.yaml").read_text())
    for service, text in compose_instance_configs().items():
        ref = _ref(tmp_path, text)
        # Policies: the pool limit (one store writer at a time) and run retries, exactly as in dagster.yaml.
        assert ref.settings.get("concurrency") == repo["concurrency"], service
        assert ref.settings.get("run_retries") == repo["run_retries"], service
        assert ref.settings["concurrency"]["pools"]["default_limit"] == 1
        assert ref.settings["run_retries"]["enabled"] is True
        # Every other setting of the repo's dagster.yaml (run monitoring, telemetry, ...) is repeated unchanged.
        deployed = yaml.safe_load(text)
        assert {key: deployed.get(key) for key in repo} == repo, f"{service}: deploy config drifted from dagster.yaml"
        # The same run coordinator (the repo leaves Dagster's default, the queued one; compose writes it out).
        coordinator = (ref.run_coordinator_data.module_name, ref.run_coordinator_data.class_name)
        assert coordinator == (repo_ref.run_coordinator_data.module_name, repo_ref.run_coordinator_data.class_name)
        assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
        # Storage: Postgres for runs, event log and schedules (the repo's default is SQLite under DAGSTER_HOME).
        assert ref.storage_data.module_name == "dagster_postgres", service
        assert ref.storage_data.class_name == "DagsterPostgresStorage"
        for data in (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data):
            assert data.module_name == "dagster_postgres", (service, data)


def test_compose_instance_config_names_classes_that_load(tmp_path):
    """Every class the deployment's config names loads: a typo would stop the webserver and daemon at boot."""
    for text in set(compose_instance_configs().values()):
        ref = _ref(tmp_path, text)
        for data in (ref.run_coordinator_data, ref.run_launcher_data, ref.scheduler_data):
            data.rehydrate()  # imports the module, checks the config, builds it (none of these connects)


def _env_refs(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def test_compose_sets_every_env_var_the_storage_reads_and_matches_the_postgres_service(monkeypatch, tmp_path):
    if os.environ.get("RAG_REQUIRE_POSTGRES") != "1":
        pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed (pip install -e '.[test]')")
    compose = _compose()
    pg = compose["services"]["postgres"]["environment"]
    for service, text in compose_instance_configs().items():
        env = {k: str(v) for k, v in compose["services"][service]["environment"].items()}
        missing = _env_refs(yaml.safe_load(text)) - set(env)
        assert not missing, f"compose service '{service}' does not set {sorted(missing)}"
        assert env["DAGSTER_PG_HOST"] in compose["services"], "DAGSTER_PG_HOST must be the Postgres service"
        assert (env["DAGSTER_PG_USER"], env["DAGSTER_PG_PASSWORD"], env["DAGSTER_PG_DB"]) == (
            pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
        # The storage class accepts the config once the env vars resolve (a schema error fails here, not at boot).
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        data = _ref(tmp_path, text).storage_data
        cls = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(cls.config_type(), yaml.safe_load(data.config_yaml))
        assert result.success, result.errors
        assert result.value["postgres_db"]["port"] == int(env["DAGSTER_PG_PORT"])
        # The URL scheme's driver is installed: SQLAlchemy >= 2.1 reads a bare postgresql:// as psycopg 3,
        # while dagster-postgres brings psycopg2 (a missing driver fails every Dagster process at boot).
        from sqlalchemy.engine import make_url

        scheme = result.value["postgres_db"]["scheme"]
        make_url(f"{scheme}://user@host/db").get_dialect().import_dbapi()


def test_compose_installs_the_postgres_extra_pinned_to_dagster():
    """The image installs `.[postgres]`, whose dagster-postgres matches the dagster pin (1.X.Y -> 0.(X+16).Y)."""
    text = COMPOSE.read_text()
    assert re.search(r"pip install [^\n]*-e \"?\.\[postgres\]", text), "the images must install the postgres extra"
    pyproject = (REPO / "pyproject.toml").read_text()
    dagster = re.search(r'"dagster==1\.(\d+)\.(\d+)"', pyproject)
    pins = re.findall(r'"dagster-postgres==0\.(\d+)\.(\d+)"', pyproject)
    assert dagster and pins
    for minor, patch in pins:
        assert (int(minor), patch) == (int(dagster.group(1)) + 16, dagster.group(2)), pins


def test_compose_workspace_names_the_code_location_the_services_use():
    from rag_assets.service.runs import CODE_LOCATION

    compose = _compose()
    workspace = yaml.safe_load(_config_text(compose, "workspace_yaml"))
    assert [e["grpc_server"]["location_name"] for e in workspace["load_from"]] == [CODE_LOCATION]
    local = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert [e["python_module"]["location_name"] for e in local["load_from"]] == [CODE_LOCATION]
