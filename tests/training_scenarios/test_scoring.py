"""The scenario measures that need no run: the reference match and the strict reading of a judge's verdict."""

from __future__ import annotations

import pytest

from atom.training.scoring import JudgeFailed, parse_verdict, reference_score, tokens


def test_normalization_folds_case_width_and_punctuation() -> None:
    assert tokens("Order #5 — SHIPPED, on Monday!") == ["order", "5", "shipped", "on", "monday"]
    assert tokens("\uff21\uff22\uff23 \uff44\uff45\uff46") == ["abc", "def"]  # NFKC: full-width letters
    assert tokens("Straße") == tokens("STRASSE")  # case folding, not lower()


@pytest.mark.parametrize(
    ("answer", "reference", "match", "score"),
    [
        ("Order 5 was created.", "order 5 created", "f1", round(2 * 0.75 * 1.0 / 1.75, 4)),
        ("order 5 created", "Order 5: created!", "f1", 1.0),
        ("nothing relevant", "order 5 created", "f1", 0.0),
        (
            "the the the",
            "the cat",
            "f1",
            round(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), 4),
        ),  # a repeat counts as often as in the other
        ("Order 5 created.", "order 5 created", "exact", 1.0),
        ("Order 5 was created.", "order 5 created", "exact", 0.0),
        ("Yes: order 5 created today.", "Order 5 created", "contains", 1.0),
        ("order created 5", "order 5 created", "contains", 0.0),
        ("", "", "f1", 1.0),
    ],
)
def test_reference_match_measures(answer: str, reference: str, match: str, score: float) -> None:
    assert reference_score(answer, reference, match) == score


def test_a_verdict_is_read_strictly() -> None:
    assert parse_verdict('{"score": 0.75, "reason": "Polite and complete."}') == (0.75, "Polite and complete.")
    assert parse_verdict('```json\n{"score": 1, "reason": "ok"}\n```') == (1.0, "ok")  # one fence is tolerated


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I'd give it a 9/10, great work.", "did not answer with JSON"),
        ('Sure! {"score": 0.9, "reason": "x"}', "did not answer with JSON"),  # no hunting inside prose
        ('{"score": 0.9}', 'exactly the keys "score" and "reason"'),
        ('{"score": 0.9, "reason": "x", "confidence": "high"}', 'exactly the keys "score" and "reason"'),
        ('{"score": "0.9", "reason": "x"}', "not a number"),
        ('{"score": true, "reason": "x"}', "not a number"),
        ('{"score": NaN, "reason": "x"}', "not a number"),
        ('{"score": 9, "reason": "x"}', "outside 0..1"),
        ('{"score": -0.1, "reason": "x"}', "outside 0..1"),
        ('{"score": 0.5, "reason": 3}', "reason must be text"),
        ("[0.5]", 'exactly the keys "score" and "reason"'),
        ("", "did not answer with JSON"),
    ],
)
def test_a_garbage_verdict_is_an_error_never_a_score(text: str, words: str) -> None:
    with pytest.raises(JudgeFailed) as caught:
        parse_verdict(text)
    assert words in caught.value.message
