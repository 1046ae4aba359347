"""What several emulator test modules check the same way."""

from __future__ import annotations

from typing import Any

import httpx2

__all__ = ["error_of", "refused"]


def error_of(response: httpx2.Response) -> dict[str, Any]:
    """The ``error`` object of an error answer, which must have exactly the service's four keys."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def refused(response: httpx2.Response, status: int = 400) -> dict[str, Any]:
    """The ``error`` object of an answer that must be a refusal with ``status``."""
    assert response.status_code == status, response.text
    return error_of(response)
