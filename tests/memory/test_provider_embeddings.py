"""Provider embeddings: an OpenAI-compatible /embeddings server on 127.0.0.1, its wire format and failures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from atom.errors import Unavailable
from atom.memory.embedding import ProviderEmbedder
from tests.support.integration_servers import serve

seen: list[dict[str, Any]] = []


async def embeddings(request: Request) -> JSONResponse:
    body = await request.json()
    seen.append({"auth": request.headers.get("authorization"), **body})
    if body["model"] == "broken":
        return JSONResponse({"error": {"message": "boom"}}, status_code=500)
    dim = 3 if body["model"] == "small" else 4
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0, 0.0][:dim]}
        for i, t in enumerate(body["input"])
    ]
    return JSONResponse({"object": "list", "data": list(reversed(data)), "model": body["model"]})


APP = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])


async def test_provider_embeddings_wire_format_and_errors() -> None:
    seen.clear()
    async with serve(APP) as base:
        good = ProviderEmbedder(
            provider="local", model="emb", dim=4, base_url=f"{base}/v1", api_key="sk-test", timeout_s=5
        )
        vectors = await good.embed(["ab", "abcd"])
        assert good.model_id == "local/emb"
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)  # normalised, in input order
        assert vectors[1][0] > vectors[0][0]
        assert seen[0] == {"auth": "Bearer sk-test", "model": "emb", "input": ["ab", "abcd"]}
        wrong_dim = ProviderEmbedder(
            provider="local", model="small", dim=4, base_url=f"{base}/v1", api_key="", timeout_s=5
        )
        with pytest.raises(Unavailable) as err:
            await wrong_dim.embed(["x"])
        assert err.value.code == "EMBEDDING_DIMENSION_MISMATCH"
        broken = ProviderEmbedder(
            provider="local", model="broken", dim=4, base_url=f"{base}/v1", api_key="k", timeout_s=5
        )
        with pytest.raises(Unavailable) as err:
            await broken.embed(["x"])
        assert err.value.code == "EMBEDDING_PROVIDER_FAILED" and "k" not in err.value.message.split()
        for embedder in (good, wrong_dim, broken):
            await embedder.close()
