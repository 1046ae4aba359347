"""What several emulator test modules check the same way."""

from __future__ import annotations

from typing import Any

import httpx2


def error_of(response: httpx2.Response) -> dict[str, Any]:
    """The ``error`` object of an error answer, which must have exactly the service's four keys."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]
