"""The in-process full-text ranking: its words, and Okapi BM25 over a tiny corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atom.memory.text_rank import TextRank, words


def test_words_split_ids_fold_accents_and_stem() -> None:
    expected = ["invoic", "inv", "40213", "cafe", "muller", "refund"]  # "for", "was": stop words
    assert words("Invoice INV-40213 for Café Müller was REFUNDED!") == expected
    assert words("x" * 39 + " " + "y" * 40) == ["x" * 39]  # 40 characters or more: dropped
    assert words("snake_case") == ["snake", "case"]


def test_bm25_scores() -> None:
    docs = ["refund for Acme", "Acme paid the invoice", "Globex refund refund refund delayed"]  # for, the: stop words
    rank = TextRank()
    for row, doc in enumerate(docs):
        rank.add(row, doc)
    everyone = np.ones(3, dtype=np.bool_)
    rows, scores = rank.scores("refund", everyone)
    lengths = [2, 3, 5]
    average = sum(lengths) / 3
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def bm25(tf: int, length: int) -> float:
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))

    assert dict(zip(rows.tolist(), scores.tolist(), strict=True)) == pytest.approx({0: bm25(1, 2), 2: bm25(3, 5)})
    # The filter removes rows from the ranking, not from the corpus statistics.
    rows, scores = rank.scores("refund", np.array([False, True, True]))
    assert rows.tolist() == [2] and scores[0] == pytest.approx(bm25(3, 5))
    # A rarer word weighs more: "globex" (1 row) beats "acme" (2 rows) for the same frequency.
    rows, scores = rank.scores("acme globex", everyone)
    assert dict(zip(rows.tolist(), scores.tolist(), strict=True))[2] > max(scores[rows != 2])
    assert rank.scores("nothing matches", everyone)[0].size == 0


def test_rows_are_appended_in_order() -> None:
    rank = TextRank()
    with pytest.raises(ValueError, match="appended in order"):
        rank.add(1, "skipped a row")
