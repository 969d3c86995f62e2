"""Constitutional rule sets: compile errors name the rule and line; abuse is refused; evaluation fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from atom.errors import InvalidInput
from atom.governance.maturity import MaturityLevel
from atom.graduation import rules
from atom.graduation.service import Criteria, criteria, readiness_score
from tests.conftest import make_settings

GOOD = """rules:
  - id: small-payments
    description: Payments above 1000 need a person.
    actions: [payment, transfer]
    condition: "double(params.amount) <= 1000.0"
  - id: no-private-hosts
    actions: ["*"]
    condition: "!has(params.url) || !params.url.startsWith('http://127.')"
"""


def refused(source: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        rules.parse(source)
    return caught.value


def test_a_rule_set_checks_actions_by_name_and_condition() -> None:
    rule_set = rules.parse(GOOD)
    assert [r.id for r in rule_set.rules] == ["small-payments", "no-private-hosts"]
    assert rule_set.check("payment", {"amount": 20}, {}) == []
    assert [v.rule_id for v in rule_set.check("payment", {"amount": 5000}, {})] == ["small-payments"]
    assert rule_set.check("get_current_time", {}, {}) == []
    assert [v.rule_id for v in rule_set.check("http_request", {"url": "http://127.0.0.1/x"}, {})] == [
        "no-private-hosts"
    ]


def test_evaluation_errors_are_violations() -> None:
    rule_set = rules.parse(GOOD)
    broken = rule_set.check("transfer", {}, {})  # no amount: cannot be evaluated
    assert [v.rule_id for v in broken] == ["small-payments"] and "could not be evaluated" in broken[0].reason
    typed = rule_set.check("transfer", {"amount": "lots"}, {})
    assert [v.rule_id for v in typed] == ["small-payments"]


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("rules:\n  - id: a\n    actions: [x]\n    condition: 'params.amount <='\n", 2, "does not compile"),
        ("rules:\n  - id: a\n    actions: [x]\n    condition: 'true'\n    when: now\n", 2, "unknown field 'when'"),
        (
            "rules:\n  - id: a\n    actions: [x]\n    condition: 'true'\n"
            "  - id: a\n    actions: [y]\n    condition: 'true'\n",
            5,
            "duplicate",
        ),
        (
            "rules:\n  - id: ok\n    actions: [x]\n    condition: 'true'\n  - actions: [x]\n    condition: 'true'\n",
            5,
            "`id` is required",
        ),
        ("rules:\n  - id: a\n    actions: []\n    condition: 'true'\n", 2, "`actions`"),
        ("rules:\n  - id: a\n    actions: [x]\n", 2, "`condition`"),
        ("rules: {a: 1}\n", 1, "must be a list"),
        ("policies: []\n", 1, "one key, `rules`"),
        ("rules: [\n", None, "not valid YAML"),
    ],
)
def test_a_broken_rule_set_is_refused_naming_rule_and_line(source: str, line: int | None, words: str) -> None:
    problem = refused(source)
    assert words in problem.message
    assert problem.code == "RULE_SET_INVALID"
    if line is not None:
        assert problem.details["line"] == line


def test_injection_and_exhaustion_attempts_are_refused() -> None:
    alias_bomb = "a: &a [1, 2]\nb: &b [*a, *a]\nrules: [*b]\n"
    assert "aliases" in refused(alias_bomb).message
    nested = "[1,2,3].map(a, [1,2,3].map(b, [1,2,3].map(c, [1,2,3].map(d, [1,2,3].map(e, a*b*c*d*e)))))"
    assert (
        "macros" in refused(f"rules:\n  - id: deep\n    actions: [x]\n    condition: '{nested}.size() > 0'\n").message
    )
    long = " || ".join(["params.a == 1"] * 200)
    assert (
        "at most 2000 characters"
        in refused(f"rules:\n  - id: long\n    actions: [x]\n    condition: '{long}'\n").message
    )
    assert "at most" in refused("rules: []\n" + "#" * (rules.MAX_SOURCE_BYTES + 1)).message
    # CEL has no way to reach Python: a call to something that is not a CEL function never runs anything.
    sneaky = rules.parse(
        "rules:\n  - id: s\n    actions: [x]\n    condition: \"__import__('os').system('true') == 0\"\n"
    )
    assert [v.rule_id for v in sneaky.check("x", {}, {})] == ["s"]


def test_readiness_score_and_criteria_follow_rules_md(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    assert criteria(settings, MaturityLevel.INTERN) == Criteria(10, 0.5, 0.7)
    assert criteria(settings, MaturityLevel.SUPERVISED) == Criteria(25, 0.2, 0.85)
    assert criteria(settings, MaturityLevel.AUTONOMOUS) == Criteria(50, 0.0, 0.95)
    c = Criteria(10, 0.5, 0.7)
    assert readiness_score(c, 10, 0.0, 0.7) == 100
    assert readiness_score(c, 5, 0.25, 0.35) == pytest.approx(20 + 15 + 15)
    assert readiness_score(c, 30, 0.9, 1.0) == pytest.approx(40 + 0 + 30)
    strict = Criteria(50, 0.0, 0.95)
    assert readiness_score(strict, 50, 0.0, 0.95) == 100
    assert readiness_score(strict, 50, 0.01, 0.95) == 70
