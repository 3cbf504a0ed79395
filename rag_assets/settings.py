"""Configuration: the one module that reads the environment.

Everything else asks `current()` (read at call time, never at import, so a test or a CLI flag that sets
a variable is honoured) or takes the value as an argument. Dagster resources fall back to the same
values when a field is left unset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat endpoint for `ask` (RAG_LLM_BASE_URL, RAG_LLM_API_KEY, RAG_LLM_MODEL)."""

    base_url: str
    api_key: str
    model: str


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # RAG_DATA_DIR, else <DAGSTER_HOME>/rag_data, else ./.rag_data
    sources_file: Path  # RAG_SOURCES, else ./sources.yaml
    dagster_home: Path | None  # DAGSTER_HOME
    cache_dir: Path  # RAG_CACHE_DIR, else ~/.cache/rag-assets: unpacked models, tiktoken files
    tiktoken_cache_dir: Path | None  # TIKTOKEN_CACHE_DIR, when the user points tiktoken elsewhere
    qdrant_url: str | None  # QDRANT_URL: a Qdrant server instead of the embedded store
    qdrant_api_key: str | None  # QDRANT_API_KEY
    store_engine: str | None  # RAG_STORE_ENGINE: edge (default) | local
    quantization: str | None  # RAG_QUANTIZATION: int8 | binary | none
    recall_threshold: float  # RAG_RECALL_THRESHOLD: the absolute floor of the golden-recall gate
    embed_mode: str  # RAG_EMBED_MODE: in_process | subprocess | kaggle
    model: str | None  # RAG_MODEL: the default embedding model key
    llm: LlmSettings | None
    dagster_url: str | None  # RAG_DAGSTER_URL: the webserver that queues runs for `reindex`
    mcp_token: str | None  # RAG_MCP_TOKEN: bearer token of the MCP HTTP server
    kaggle_username: str | None  # KAGGLE_USERNAME / KAGGLE_KEY, else KAGGLE_CONFIG_DIR/kaggle.json
    kaggle_key: str | None
    kaggle_config_dir: Path
    debug: bool  # RAG_DEBUG: tracebacks instead of one-line errors
    timing: bool  # RAG_TIMING: print each CLI command's wall time
    alert_webhook: str | None = None  # RAG_ALERT_WEBHOOK: a URL that gets a JSON POST per final run failure
    run_max_retries: int = 2  # RAG_RUN_MAX_RETRIES: dagster/max_retries on sensor and schedule runs
    backup_dir: Path | None = None  # RAG_BACKUP_DIR, else <data_dir>/backups: where store snapshots go
    backup_keep: int = 7  # RAG_BACKUP_KEEP: the backup schedule keeps the newest N snapshots
    gate_tolerance: float = 0.01  # RAG_GATE_TOLERANCE: how far below the live collection a candidate may measure
    memory_session_ttl_s: float = 86400.0  # RAG_MEMORY_SESSION_TTL: seconds a `session` memory lives
    answer_cache: bool = True  # RAG_ANSWER_CACHE=0 turns off reusing a model's answer to the same question + context
    query_encoder: str = "onnx"  # RAG_QUERY_ENCODER: onnx (int8 ONNX for the default model when installed) | reference


def _get(name: str) -> str | None:
    return os.environ.get(name) or None


def _path(name: str) -> Path | None:
    value = _get(name)
    return Path(value).expanduser() if value else None


def current() -> Settings:
    """The settings as the environment gives them now."""
    home = _path("DAGSTER_HOME")
    data_dir = _path("RAG_DATA_DIR") or (home / "rag_data" if home else Path(".rag_data"))
    base = _get("RAG_LLM_BASE_URL")
    return Settings(
        data_dir=data_dir.resolve(),
        sources_file=_path("RAG_SOURCES") or Path("sources.yaml"),
        dagster_home=home,
        cache_dir=_path("RAG_CACHE_DIR") or Path.home() / ".cache" / "rag-assets",
        tiktoken_cache_dir=_path("TIKTOKEN_CACHE_DIR"),
        qdrant_url=_get("QDRANT_URL"),
        qdrant_api_key=_get("QDRANT_API_KEY"),
        store_engine=_get("RAG_STORE_ENGINE"),
        quantization=_get("RAG_QUANTIZATION"),
        recall_threshold=float(_get("RAG_RECALL_THRESHOLD") or 0.5),
        gate_tolerance=float(_get("RAG_GATE_TOLERANCE") or 0.01),
        embed_mode=_get("RAG_EMBED_MODE") or "in_process",
        model=_get("RAG_MODEL"),
        llm=LlmSettings(base.rstrip("/"), _get("RAG_LLM_API_KEY") or "", _get("RAG_LLM_MODEL") or "gpt-4o-mini")
        if base else None,
        dagster_url=_get("RAG_DAGSTER_URL"),
        mcp_token=_get("RAG_MCP_TOKEN"),
        kaggle_username=_get("KAGGLE_USERNAME"),
        kaggle_key=_get("KAGGLE_KEY"),
        kaggle_config_dir=_path("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle",
        debug=bool(_get("RAG_DEBUG")),
        alert_webhook=_get("RAG_ALERT_WEBHOOK"),
        run_max_retries=int(_get("RAG_RUN_MAX_RETRIES") or 2),
        backup_dir=(_path("RAG_BACKUP_DIR") or data_dir / "backups").resolve(),
        backup_keep=int(_get("RAG_BACKUP_KEEP") or 7),
        memory_session_ttl_s=float(_get("RAG_MEMORY_SESSION_TTL") or 86400),
        answer_cache=(_get("RAG_ANSWER_CACHE") or "1").lower() not in ("0", "false", "no", "off"),
        timing=bool(_get("RAG_TIMING")),
        query_encoder=(_get("RAG_QUERY_ENCODER") or "onnx").strip().lower(),
    )


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME for the CLI and the MCP server: default ./.dagster_home, with an instance config."""
    home = current().dagster_home
    if home is None:
        home = Path(".dagster_home").resolve()
        os.environ["DAGSTER_HOME"] = str(home)  # Dagster itself reads it
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text((Path(__file__).with_name("dagster_instance.yaml")).read_text())
    return home
