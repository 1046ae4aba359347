"""``daemon.json``: what a running ``syncd run`` says it is doing, for ``syncd status``.

The daemon rewrites it after every pass and heartbeat; ``status`` reads it. It lives apart from
``syncd.service.daemon`` so that ``status`` answers without importing the watcher and the engine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["FILENAME", "clear_activity", "read_activity", "write_activity"]

FILENAME = "daemon.json"

log = logging.getLogger("syncd.daemon")


def write_activity(state_dir: Path, state: dict[str, Any]) -> None:
    """Replace ``daemon.json`` atomically: a reader sees the old or the new one, never half."""
    path = state_dir / FILENAME
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)
    except OSError as exc:
        log.debug("could not write %s: %s", path, exc)


def clear_activity(state_dir: Path) -> None:
    """Remove ``daemon.json`` as the daemon leaves."""
    with contextlib.suppress(OSError):
        (state_dir / FILENAME).unlink()


def read_activity(state_dir: Path) -> dict[str, Any] | None:
    """What a running daemon last said it is doing, or None when no daemon runs on this state
    directory (no file, or its process is gone)."""
    try:
        data = json.loads((state_dir / FILENAME).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data
