"""Vector-store search: a deterministic lexical scorer and the spec's attribute filters.

It is not semantic search; it lets a user (and a test) see that their files are findable. Each
file's text is cut into chunks as its chunking strategy says — counting words as tokens (an
emulator choice) — and a chunk scores the share of the query's distinct words it contains, a
little more the denser they are, always within 0..1. Results are chunks, best first, ties in
attachment order, so the same store and query always answer the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from syncd.emulator import errors

__all__ = ["Chunk", "chunks", "matches", "parse_filter", "query_words", "rank", "score"]

_WORD = re.compile(r"\w+", re.UNICODE)
_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
_COMPOUNDS = ("and", "or")


def parse_filter(value: object, name: str = "filters") -> dict[str, Any]:
    """A comparison or compound filter, checked whole (400 naming the faulty part)."""
    if not isinstance(value, dict):
        raise errors.invalid_type(name, "an object", value)
    kind = value.get("type")
    if kind in _COMPOUNDS:
        for key in value:
            if key not in ("type", "filters"):
                raise errors.unrecognized_argument(f"{name}.{key}")
        parts = value.get("filters")
        if not isinstance(parts, list):
            raise errors.invalid_type(f"{name}.filters", "an array", parts)
        for i, part in enumerate(parts):
            parse_filter(part, f"{name}.filters[{i}]")
        return value
    if kind not in _COMPARISONS:
        raise errors.invalid_value(
            f"{name}.type",
            f"expected one of {', '.join(repr(k) for k in _COMPARISONS + _COMPOUNDS)}, "
            f"but got {kind!r}.",
        )
    for key in value:
        if key not in ("type", "key", "value"):
            raise errors.unrecognized_argument(f"{name}.{key}")
    if not isinstance(value.get("key"), str):
        raise errors.invalid_type(f"{name}.key", "a string", value.get("key"))
    operand = value.get("value")
    if kind in ("in", "nin"):
        if not isinstance(operand, list) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in operand
        ):
            raise errors.invalid_type(f"{name}.value", "an array of strings or numbers", operand)
    elif not isinstance(operand, str | int | float | bool):
        raise errors.invalid_type(f"{name}.value", "a string, number or boolean", operand)
    return value


def matches(filter_: dict[str, Any], attributes: dict[str, Any] | None) -> bool:
    """Whether attributes pass a (checked) filter. A missing key, or values of different
    types, pass only ``ne`` and ``nin``."""
    kind = filter_["type"]
    if kind == "and":
        return all(matches(part, attributes) for part in filter_["filters"])
    if kind == "or":
        return any(matches(part, attributes) for part in filter_["filters"])
    attrs = attributes or {}
    operand = filter_["value"]
    if filter_["key"] not in attrs:
        return kind in ("ne", "nin")
    actual = attrs[filter_["key"]]
    if kind == "in":
        return actual in operand
    if kind == "nin":
        return actual not in operand
    if kind == "eq":
        return _same_kind(actual, operand) and actual == operand
    if kind == "ne":
        return not (_same_kind(actual, operand) and actual == operand)
    if not _same_kind(actual, operand) or isinstance(actual, bool):
        return False
    if kind == "gt":
        return bool(actual > operand)
    if kind == "gte":
        return bool(actual >= operand)
    if kind == "lt":
        return bool(actual < operand)
    return bool(actual <= operand)


def _same_kind(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str)
    return True  # two numbers


def chunks(text: str, size: int, overlap: int) -> list[str]:
    """``text`` cut into windows of ``size`` words, each starting ``size - overlap`` words
    after the previous one (whitespace kept as it was inside a chunk)."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    if not spans:
        return []
    step = max(1, size - overlap)
    result = []
    for start in range(0, len(spans), step):
        window = spans[start : start + size]
        result.append(text[window[0][0] : window[-1][1]])
        if start + size >= len(spans):
            break
    return result


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def score(query_words: set[str], chunk: str) -> float:
    """The share of the query's distinct words in ``chunk`` (0.9 of the score), plus their
    density in it (the other 0.1)."""
    if not query_words:
        return 0.0
    words = _words(chunk)
    if not words:
        return 0.0
    hits = sum(1 for w in words if w in query_words)
    coverage = len(query_words & set(words)) / len(query_words)
    return round(0.9 * coverage + 0.1 * min(1.0, hits / len(words)), 6)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One scored chunk of one file."""

    file_id: str
    filename: str
    attributes: dict[str, Any] | None
    text: str
    score: float

    def to_api(self) -> dict[str, Any]:
        """An item of the service's search results page."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "score": self.score,
            "attributes": self.attributes,
            "content": [{"type": "text", "text": self.text}],
        }


def rank(candidates: Sequence[Chunk], *, limit: int, threshold: float) -> list[Chunk]:
    """The best ``limit`` chunks that score above zero and at least ``threshold``."""
    kept = [c for c in candidates if c.score > 0 and c.score >= threshold]
    # sorted() is stable: equal scores stay in attachment order.
    return sorted(kept, key=lambda c: -c.score)[:limit]


def query_words(queries: list[str]) -> set[str]:
    """The distinct words of all the queries."""
    return {w for q in queries for w in _words(q)}
