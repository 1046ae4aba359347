"""The emulator's behaviour settings that can change while it runs (``/_emulator/settings``).

Faults (``faults.py``) say what goes *wrong*; these say how the service *behaves*: how long
vector-store ingestion takes, which share of files never finishes it, whether the Assistants v1
API is still served, how long an Upload lives, and the rate-limit budgets. A ``Knobs`` value is
immutable and validated whole; ``KnobHolder`` swaps it under a lock, as ``FaultInjector`` does.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AssistantsApi", "KnobHolder", "Knobs"]

AssistantsApi = Literal["v1", "retired"]


@dataclass(frozen=True, slots=True)
class Knobs:
    """How the emulated service behaves.

    ``ingestion_seconds``: how long an attached file stays ``in_progress`` before it ends
    ``completed`` or ``failed``. ``stuck_rate``: the share of attached files that stay
    ``in_progress`` for good. ``poll_after_ms``: the ``openai-poll-after-ms`` hint on the answers
    clients poll. ``assistants_api``: ``v1`` serves the Assistants v1 contract, ``retired``
    answers it as today's service does. ``upload_lifetime_s``: how long an Upload accepts parts.
    ``rate_limits``: whether the request budgets below are enforced (per minute each):
    ``upload_rpm`` for ``POST /files`` and the Uploads API, ``attach_rpm`` per vector store for
    attaching files and batches, ``default_rpm`` for every other request.
    """

    ingestion_seconds: float = 0.2
    stuck_rate: float = 0.0
    poll_after_ms: int = 100
    assistants_api: AssistantsApi = "v1"
    upload_lifetime_s: float = 3600.0
    rate_limits: bool = False
    upload_rpm: int = 1000
    attach_rpm: int = 300
    default_rpm: int = 10_000

    def __post_init__(self) -> None:
        for name in ("ingestion_seconds", "upload_lifetime_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        rate = self.stuck_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError(f"stuck_rate must be a number between 0 and 1, not {rate!r}")
        for name in ("poll_after_ms", "upload_rpm", "attach_rpm", "default_rpm"):
            value = getattr(self, name)
            minimum = 0 if name == "poll_after_ms" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be a whole number >= {minimum}, not {value!r}")
        if self.assistants_api not in ("v1", "retired"):
            raise ValueError(
                f"assistants_api must be 'v1' or 'retired', not {self.assistants_api!r}"
            )
        if not isinstance(self.rate_limits, bool):
            raise ValueError(f"rate_limits must be true or false, not {self.rate_limits!r}")

    def updated(self, **changes: Any) -> Knobs:
        """A copy with some fields changed; unknown names are a ValueError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return dataclasses.asdict(self)


class KnobHolder:
    """The ``Knobs`` in force, changed atomically from any thread."""

    def __init__(self, knobs: Knobs | None = None) -> None:
        self._lock = threading.Lock()
        self._knobs = knobs or Knobs()

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def update(self, **changes: Any) -> Knobs:
        """Change some settings (a ValueError leaves them as they were)."""
        with self._lock:
            self._knobs = self._knobs.updated(**changes)
            return self._knobs

    def replace(self, knobs: Knobs) -> None:
        """Install ``knobs`` whole."""
        with self._lock:
            self._knobs = knobs
