"""The memory runtime of one process: the embedder, the vector store, the clock, the context hooks.

Built by `build(settings)` at start-up (never at import); `create_app` keeps it on `app.state.memory`,
the CLI builds its own. Tests pass a controllable `clock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import EmbeddingProvider, Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.errors import ConfigurationError
from atom.memory.context import canvas_actions, feedback_scores
from atom.memory.embedding import Embedder, LocalEmbedder, ProviderEmbedder
from atom.memory.segmentation import Rules
from atom.memory.vectors import VectorStore

Clock = Callable[[], datetime]
# Hooks for the parts of an episode's context that other domains hold; each answers for episode ids.
# Canvas: the episodes with canvas actions, each with its actions (`memory/context.py`, through the canvas
# domain's reads). Feedback: each episode's average feedback score, through the feedback service.
CanvasHook = Callable[[AsyncSession, list[str]], Awaitable[Mapping[str, list[dict[str, Any]]]]]
FeedbackHook = Callable[[AsyncSession, list[str]], Awaitable[dict[str, float]]]


@dataclass
class Memory:
    settings: Settings
    embedder: Embedder
    store: VectorStore
    clock: Clock = utcnow
    canvas_hook: CanvasHook = canvas_actions
    feedback_hook: FeedbackHook = feedback_scores
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def rules(self) -> Rules:
        from datetime import timedelta

        return Rules(
            gap=timedelta(minutes=self.settings.memory_segment_gap_minutes),
            topic_similarity=self.settings.memory_topic_similarity,
        )


async def build_embedder(settings: Settings, db: Database | None) -> Embedder:
    if settings.memory_embedding_provider is EmbeddingProvider.LOCAL:
        return await asyncio.to_thread(LocalEmbedder, settings)
    name = settings.memory_embedding_llm_provider
    if not name or db is None:
        raise ConfigurationError(
            "provider embeddings need a configured LLM provider.",
            setting="ATOM_MEMORY_EMBEDDING_LLM_PROVIDER",
            fix="name an OpenAI-compatible LLM provider, or use ATOM_MEMORY_EMBEDDING_PROVIDER=local.",
        )
    from atom.llm import service as llm_service
    from atom.security.secrets_store import load_cipher

    async with db.session_scope() as session:
        provider = await llm_service.get_provider(session=session, name=name)
        key = await llm_service.reveal_key(session=session, cipher=load_cipher(settings), provider=provider)
    if provider.kind != "openai":
        raise ConfigurationError(
            f"the LLM provider {name!r} is {provider.kind}, which has no OpenAI-compatible /embeddings.",
            setting="ATOM_MEMORY_EMBEDDING_LLM_PROVIDER",
            fix="name an OpenAI-compatible provider.",
        )
    return ProviderEmbedder(
        provider=name,
        model=settings.memory_embedding_model,
        dim=settings.memory_embedding_dim,
        base_url=provider.base_url,
        api_key=key,
        timeout_s=settings.llm_timeout_s,
    )


def vector_dir(settings: Settings) -> str:
    return str(settings.memory_vector_dir or settings.data_dir / "memory.lance")


async def build(
    settings: Settings, db: Database | None = None, *, clock: Clock = utcnow, search_index: bool = True
) -> Memory:
    """Load (and check) the embedding model and open the vector store; a bad model fails here, loudly.

    `search_index=False` (a one-shot CLI command): searches go to LanceDB directly, since reading an
    agent into the in-process index costs more than the one search it would speed up.
    """
    from pathlib import Path

    embedder = await build_embedder(settings, db)
    rows = settings.memory_index_max_rows if search_index else 0
    store = await asyncio.to_thread(VectorStore, Path(vector_dir(settings)), embedder.dim, rows)
    return Memory(settings=settings, embedder=embedder, store=store, clock=clock)
