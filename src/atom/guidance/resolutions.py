"""The resolutions of each error category: data (`resolutions.yaml`), checked when first loaded.

Every category of `ErrorCategory` must be present with exactly one `agent` and one `person`
resolution and exactly one default; the file failing these checks is a programming error and
raises at first use (a test loads it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.guidance.classify import ErrorCategory

DATA_FILE = Path(__file__).with_name("resolutions.yaml")


class Resolution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    who: Literal["agent", "person"]
    title: str = Field(min_length=1, max_length=200)
    steps: tuple[str, ...] = Field(min_length=1, max_length=10)
    default: bool = False


class CategoryGuide(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1, max_length=100)
    meaning: str = Field(min_length=1, max_length=500)
    resolutions: tuple[Resolution, ...]

    @model_validator(mode="after")
    def _one_each(self) -> CategoryGuide:
        whos = sorted(r.who for r in self.resolutions)
        if whos != ["agent", "person"]:
            raise ValueError("a category needs exactly one agent and one person resolution")
        if sum(r.default for r in self.resolutions) != 1:
            raise ValueError("a category needs exactly one default resolution")
        return self

    @property
    def default(self) -> Resolution:
        return next(r for r in self.resolutions if r.default)

    def by_who(self, who: str) -> Resolution:
        return next(r for r in self.resolutions if r.who == who)

    def get(self, resolution_id: str) -> Resolution | None:
        return next((r for r in self.resolutions if r.id == resolution_id), None)


@cache
def guides() -> dict[ErrorCategory, CategoryGuide]:
    raw = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    loaded = {ErrorCategory(name): CategoryGuide.model_validate(value) for name, value in raw.items()}
    missing = set(ErrorCategory) - set(loaded)
    if missing:
        raise ValueError(f"{DATA_FILE.name} lacks categories: {sorted(missing)}")
    return loaded


def guide(category: ErrorCategory) -> CategoryGuide:
    return guides()[category]
