"""Maturity levels and the confidence thresholds that define them (RULES.md, Maturity)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from atom.config import Settings


class MaturityLevel(StrEnum):
    STUDENT = "STUDENT"
    INTERN = "INTERN"
    SUPERVISED = "SUPERVISED"
    AUTONOMOUS = "AUTONOMOUS"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def max_complexity(self) -> int:
        """The highest action complexity this level may perform: STUDENT 1 ... AUTONOMOUS 4."""
        return _RANK[self]

    @classmethod
    def for_complexity(cls, complexity: int) -> MaturityLevel:
        """The lowest level allowed to perform an action of this complexity."""
        return _BY_RANK[max(1, min(4, complexity))]


_RANK = {
    MaturityLevel.STUDENT: 1,
    MaturityLevel.INTERN: 2,
    MaturityLevel.SUPERVISED: 3,
    MaturityLevel.AUTONOMOUS: 4,
}
_BY_RANK = {rank: level for level, rank in _RANK.items()}


@dataclass(frozen=True)
class MaturityThresholds:
    intern: float = 0.5
    supervised: float = 0.7
    autonomous: float = 0.9

    @classmethod
    def from_settings(cls, settings: Settings) -> MaturityThresholds:
        return cls(
            intern=settings.maturity_intern_threshold,
            supervised=settings.maturity_supervised_threshold,
            autonomous=settings.maturity_autonomous_threshold,
        )

    def floor(self, level: MaturityLevel) -> float:
        """The lowest confidence at which an agent may hold `level`."""
        return {
            MaturityLevel.STUDENT: 0.0,
            MaturityLevel.INTERN: self.intern,
            MaturityLevel.SUPERVISED: self.supervised,
            MaturityLevel.AUTONOMOUS: self.autonomous,
        }[level]

    def level_for(self, confidence: float) -> MaturityLevel:
        """Boundaries belong to the higher level: exactly 0.5 is INTERN."""
        if confidence >= self.autonomous:
            return MaturityLevel.AUTONOMOUS
        if confidence >= self.supervised:
            return MaturityLevel.SUPERVISED
        if confidence >= self.intern:
            return MaturityLevel.INTERN
        return MaturityLevel.STUDENT
