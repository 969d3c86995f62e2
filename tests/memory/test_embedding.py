"""The local embedding model: offline, checked by sha256, 384-dim normalised, and loud when missing or altered."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from atom.errors import ConfigurationError
from atom.memory import embedding
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> embedding.LocalEmbedder:
    return embedding.LocalEmbedder(make_settings(tmp_path_factory.mktemp("emb"), None))


async def test_vectors_are_384_dim_normalised_and_meaningful(embedder: embedding.LocalEmbedder) -> None:
    vectors = await embedder.embed(
        ["Invoice INV-1042 for Acme Corp was paid", "Acme settled invoice 1042", "The office plants need water"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.7 > unrelated
    assert embedder.model_id == "all-MiniLM-L6-v2-onnx-int8"


def test_altered_model_is_a_startup_error_naming_the_file(tmp_path: Path) -> None:
    original = embedding.model_file(make_settings(tmp_path, None))
    altered = tmp_path / "model.onnx"
    data = bytearray(original.read_bytes())
    data[-1] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(ConfigurationError) as err:
        embedding.LocalEmbedder(make_settings(tmp_path, None, memory_model_path=altered))
    assert "sha256" in err.value.message and str(altered) in err.value.message
    assert err.value.setting == "ATOM_MEMORY_MODEL_PATH"


def test_missing_model_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        embedding.LocalEmbedder(make_settings(tmp_path, None, memory_model_path=tmp_path / "absent.onnx"))
    assert "missing" in err.value.message


def test_loads_and_embeds_with_the_network_refused(tmp_path: Path) -> None:
    """In a fresh interpreter where every socket connect fails and HF_HUB_OFFLINE=1, the model still loads."""
    script = textwrap.dedent(
        f"""
        import socket
        attempts = []
        def refuse(self, *args, **kwargs):
            attempts.append(args)
            raise OSError("network refused by the test")
        socket.socket.connect = refuse
        socket.create_connection = lambda *a, **k: refuse(None, *a)
        from pathlib import Path
        from atom.config import Settings
        from atom.memory.embedding import LocalEmbedder
        e = LocalEmbedder(Settings(data_dir=Path({str(tmp_path)!r}), _env_file=None))
        v = e.embed_sync(["customer Globex asked for a refund"])
        assert v.shape == (1, 384), v.shape
        assert not attempts, attempts
        print("offline-ok")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline-ok" in done.stdout
