"""Imports every domain's models so `Base.metadata` knows all tables (migrations, drift checks)."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from atom.db.base import Base

MODEL_MODULES = (
    "atom.security.models",
    "atom.audit.models",
    "atom.agents.models",
    "atom.llm.models",
    "atom.training.models",
    "atom.workflows.models",
    "atom.chat.models",
    "atom.memory.models",
    "atom.feedback.models",
    "atom.graduation.models",
    "atom.skills.models",
    "atom.canvas.models",
    "atom.guidance.models",
)


def load_models() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata
