"""Reading JSON request bodies the way the service does: unknown keys and wrong types are 400s
that name the parameter."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from syncd.emulator import errors

#: ``expires_after.seconds`` bounds of a File (1 hour to 30 days).
MIN_FILE_EXPIRY_S = 3600
MAX_FILE_EXPIRY_S = 2_592_000

__all__ = [
    "check_file_expiry",
    "json_object",
    "list_of",
    "metadata",
    "optional_str",
    "required_str",
]


async def json_object(
    request: Request, allowed: set[str] | None, *, allow_empty_body: bool = False
) -> dict[str, Any]:
    """The request's JSON object; unknown keys (when ``allowed`` is given) are a 400."""
    raw = await request.body()
    if not raw.strip() and allow_empty_body:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.invalid_json() from None
    if not isinstance(body, dict):
        raise errors.invalid_json()
    if allowed is not None:
        for name in body:
            if name not in allowed:
                raise errors.unrecognized_argument(name)
    return body


def required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise errors.missing_parameter(name)
    if not isinstance(value, str):
        raise errors.invalid_type(name, "a string", value)
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise errors.invalid_type(name, "a string", value)
    return value


def list_of(body: dict[str, Any], name: str, item_type: type, expected: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, item_type) for item in value):
        raise errors.invalid_type(name, expected, value)
    return value


def metadata(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_type("metadata", "an object", value)
    return value


def check_file_expiry(anchor: object, seconds: object) -> int:
    """``expires_after`` of a File (``created_at`` anchor, 1 hour to 30 days) → seconds."""
    if anchor != "created_at":
        raise errors.invalid_value(
            "expires_after.anchor", f"expected 'created_at', but got {anchor!r}."
        )
    try:
        value = int(seconds)  # type: ignore[call-overload]  # a form field or a JSON number
    except (TypeError, ValueError):
        raise errors.invalid_type("expires_after.seconds", "an integer", seconds) from None
    if value < MIN_FILE_EXPIRY_S:
        raise errors.integer_below_min("expires_after.seconds", MIN_FILE_EXPIRY_S, value)
    if value > MAX_FILE_EXPIRY_S:
        raise errors.integer_above_max("expires_after.seconds", MAX_FILE_EXPIRY_S, value)
    return value
