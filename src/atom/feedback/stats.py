"""The statistics of A/B results, from scipy: two-proportion z-test for rates, Welch's t-test for means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    statistic: float | None
    p_value: float | None
    difference: float | None  # b - a
    ci_low: float | None
    ci_high: float | None


UNDEFINED = Comparison(None, None, None, None, None)


def two_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int) -> Comparison:
    """Pooled two-sided z-test of p_b - p_a; the interval uses the unpooled (Wald) standard error."""
    if n_a == 0 or n_b == 0:
        return UNDEFINED
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    difference = p_b - p_a
    from scipy import stats as scipy_stats  # here, not at the top: importing it costs every process ~1 s at start

    z_crit = float(scipy_stats.norm.ppf(0.5 + CONFIDENCE / 2))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    if se_pooled == 0:  # both all-success or all-failure: no evidence of a difference
        return Comparison(0.0, 1.0, difference, difference, difference)
    z = difference / se_pooled
    p_value = float(2 * scipy_stats.norm.sf(abs(z)))
    return Comparison(z, p_value, difference, difference - z_crit * se, difference + z_crit * se)


def welch(values_a: Sequence[float], values_b: Sequence[float]) -> Comparison:
    """Welch's t-test of mean_b - mean_a (unequal variances), with its confidence interval."""
    if len(values_a) < 2 or len(values_b) < 2:
        return UNDEFINED
    if len(set(values_a)) == 1 and len(set(values_b)) == 1:
        difference = values_b[0] - values_a[0]
        return Comparison(None, 0.0 if difference else 1.0, difference, difference, difference)
    from scipy import stats as scipy_stats  # see two_proportions

    result = scipy_stats.ttest_ind(values_b, values_a, equal_var=False)
    interval = result.confidence_interval(confidence_level=CONFIDENCE)
    difference = sum(values_b) / len(values_b) - sum(values_a) / len(values_a)
    return Comparison(
        float(result.statistic), float(result.pvalue), difference, float(interval.low), float(interval.high)
    )
