"""The graduation minima of each level (settings, RULES.md defaults) and the readiness score."""

from __future__ import annotations

from dataclasses import dataclass

from atom.config import Settings
from atom.errors import InvalidInput
from atom.governance.maturity import MaturityLevel


@dataclass(frozen=True)
class Criteria:
    min_episodes: int
    max_intervention_rate: float
    min_constitutional_score: float


def criteria(settings: Settings, level: MaturityLevel) -> Criteria:
    if level is MaturityLevel.INTERN:
        return Criteria(
            settings.graduation_intern_min_episodes,
            settings.graduation_intern_max_intervention_rate,
            settings.graduation_intern_min_constitutional_score,
        )
    if level is MaturityLevel.SUPERVISED:
        return Criteria(
            settings.graduation_supervised_min_episodes,
            settings.graduation_supervised_max_intervention_rate,
            settings.graduation_supervised_min_constitutional_score,
        )
    if level is MaturityLevel.AUTONOMOUS:
        return Criteria(
            settings.graduation_autonomous_min_episodes,
            settings.graduation_autonomous_max_intervention_rate,
            settings.graduation_autonomous_min_constitutional_score,
        )
    raise InvalidInput("Nobody graduates to STUDENT.", code="NOT_A_PROMOTION", details={"field": "level"})


def readiness_score(c: Criteria, episodes: int, rate: float, score: float) -> float:
    part_episodes = 40 * min(episodes / c.min_episodes, 1) if c.min_episodes > 0 else 40
    if c.max_intervention_rate == 0:
        part_rate = 30.0 if rate == 0 else 0.0
    else:
        part_rate = 30 * (1 - min(rate / c.max_intervention_rate, 1))
    part_score = 30 * min(score / c.min_constitutional_score, 1) if c.min_constitutional_score > 0 else 30
    return round(part_episodes + part_rate + part_score, 2)
