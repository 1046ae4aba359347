"""Fixtures for the vector-store tests: the engine workspace of ``tests/engine`` with a store."""

from __future__ import annotations

from tests.engine.conftest import Workspace, ws

__all__ = ["Workspace", "ws"]
