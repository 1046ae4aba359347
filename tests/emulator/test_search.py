"""The lexical scorer, the chunker and the attribute filters, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.emulator.search import chunks, matches, query_words, score

ATTRS = {"year": 2024, "lang": "en", "draft": False, "size": 1.5}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"type": "eq", "key": "lang", "value": "en"}, True),
        ({"type": "ne", "key": "lang", "value": "en"}, False),
        ({"type": "gt", "key": "year", "value": 2023}, True),
        ({"type": "gte", "key": "year", "value": 2024}, True),
        ({"type": "lt", "key": "size", "value": 1.5}, False),
        ({"type": "lte", "key": "size", "value": 1.5}, True),
        ({"type": "in", "key": "lang", "value": ["de", "en"]}, True),
        ({"type": "nin", "key": "lang", "value": ["de", "en"]}, False),
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "eq", "key": "draft", "value": 0}, False),  # a boolean is not a number
        ({"type": "gt", "key": "lang", "value": 3}, False),  # no ordering across types
        ({"type": "eq", "key": "missing", "value": "x"}, False),
        ({"type": "ne", "key": "missing", "value": "x"}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "lang", "value": "en"},
                    {"type": "or", "filters": [{"type": "lt", "key": "year", "value": 2000}]},
                ],
            },
            False,
        ),
    ],
)
def test_filters(filter_: dict[str, Any], expected: bool) -> None:
    assert matches(filter_, ATTRS) is expected


def test_chunks_overlap_as_told() -> None:
    text = " ".join(f"w{i}" for i in range(10))
    assert chunks(text, 4, 2) == ["w0 w1 w2 w3", "w2 w3 w4 w5", "w4 w5 w6 w7", "w6 w7 w8 w9"]
    assert chunks(text, 800, 400) == [text]
    assert chunks("   ", 100, 0) == []


def test_score_is_within_0_and_1_and_rewards_coverage() -> None:
    words = query_words(["Quick fox", "FOX"])
    assert words == {"quick", "fox"}
    full = score(words, "quick fox")
    half = score(words, "a fox among many other words")
    assert 0 < half < full <= 1
    assert score(words, "nothing here") == 0
