"""What a pass did, in a person's words: the wording shared by the logs, the CLI and metrics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

__all__ = ["Done", "ExitStatus", "Outcome", "PassScope", "StopReason", "human_size"]


class ExitStatus(IntEnum):
    """What every ``syncd`` command, and the daemon, exits with."""

    OK = 0  # done: in sync, healthy
    DIFFERS = 1  # finished, but something failed, differs, or was refused
    CONFIG = 2  # usage or configuration error
    STOPPED = 3  # stopped before acting: key refused, service down, lock held, delete guard


#: What happened to one file or remote id (a :class:`Done`).
Outcome = Literal[
    "uploaded",
    "replaced",
    "adopted",
    "resynced",
    "attached",
    "detached",
    "deleted",
    "released",
    "rejected",
    "failed",
    "unresolved",
    "skipped",
    "forgotten",
    "restat",
]

#: Why a pass stopped before it was done: the key was refused, the service could not be
#: listed, or the delete guard tripped.
StopReason = Literal["auth", "service", "delete_guard"]

#: A pass over whole folders, or over the paths the daemon saw change.
PassScope = Literal["full", "paths"]


@dataclass(frozen=True, slots=True)
class Done:
    """One thing that happened — or failed to — as a log line and a JSON record.

    ``what`` says which; :meth:`message` words it.
    """

    what: Outcome
    folder: str | None = None
    path: str | None = None
    file_id: str | None = None
    assistant_id: str | None = None
    previous: str | None = None  # the file id an upload replaced
    replaced_by: str | None = None  # for a deleted old version: the file that replaced it
    detail: str | None = None  # the error, the reason, or size and time

    @property
    def where(self) -> str:
        return f"{self.folder}/{self.path}" if self.path is not None else str(self.file_id)

    def message(self) -> str:
        """The log line, in a person's words."""
        detail = f" ({self.detail})" if self.detail else ""
        match self.what:
            case "uploaded":
                return f"uploaded {self.where} → {self.file_id}{detail}"
            case "replaced":
                return f"replaced {self.where} → {self.file_id} (was {self.previous})"
            case "adopted":
                return f"adopted {self.file_id} for {self.where}{detail}"
            case "resynced":
                return f"{self.where} is synced again with {self.file_id}{detail}"
            case "attached":
                return f"attached {self.where} to {self.assistant_id}"
            case "detached":
                return f"detached {self.file_id} from {self.assistant_id}{detail}"
            case "deleted":
                return f"deleted remote {self.file_id}{detail}"
            case "released":
                return f"left remote {self.file_id} in place{detail}"
            case "rejected":
                return f"rejected {self.where}: {self.detail}"
            case "failed" | "unresolved" | "skipped":
                return f"{self.where}: {self.detail}"
            case "forgotten":
                return f"forgot {self.where}{detail}"
            case "restat":
                return f"noted the new timestamps of {self.where}"
            case _:
                return f"{self.what} {self.where}{detail}"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def human_size(n: int) -> str:
    """``12 KB``, ``3.4 MB``: decimal units, as file managers show them."""
    if n < 1000:
        return f"{n} B"
    units = ("KB", "MB", "GB", "TB")
    value, step = n / 1000, 0
    while value >= 999.5 and step < len(units) - 1:
        value, step = value / 1000, step + 1
    return f"{value:.1f} {units[step]}" if value < 10 else f"{value:.0f} {units[step]}"
