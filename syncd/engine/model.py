"""The model: the snapshot types the planner reads and the actions it decides.

Three snapshots, plain immutable values built at the edges:

* ``LocalFolder`` — what a scan found on disk for one configured folder,
* ``Manifest`` — what syncd recorded (entries, attachments it made, retired remote ids),
* ``Remote`` — what the service lists (files, and the files attached to each configured assistant).

and the actions (``Upload`` … ``Restat``) with the ``Plan`` that holds them. Every other module —
scan, manifest, executor, daemon, CLI — speaks in these types; only the planner decides.
This module imports nothing from syncd, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

__all__ = [
    "ASSISTANT_FILE_LIMIT",
    "Action",
    "Adopt",
    "Attach",
    "Attempt",
    "Cleanup",
    "Detach",
    "Duplicate",
    "Entry",
    "FolderProblem",
    "FolderSpec",
    "Forget",
    "LocalFile",
    "LocalFolder",
    "Manifest",
    "OnDelete",
    "Plan",
    "Purpose",
    "Reject",
    "Remote",
    "RemoteFile",
    "Restat",
    "Retire",
    "Retired",
    "State",
    "Upload",
]

Purpose = Literal["assistants", "fine-tune"]
OnDelete = Literal["delete", "detach", "keep"]

#: The service's limit on files attached to one assistant (Assistants v1).
ASSISTANT_FILE_LIMIT = 20


class State(StrEnum):
    """A local entry's state, as ``syncd status`` shows it."""

    PENDING = "pending"  # seen, not uploaded yet
    UPLOADING = "uploading"  # intent recorded: an upload may exist remotely (invariant 2)
    SYNCED = "synced"  # remote file_id holds this content
    FAILED = "failed"  # retrying with backoff; after max attempts waits for a full pass
    REJECTED = "rejected"  # bad input; not retried until the file changes
    DELETING = "deleting"  # local file gone, remote clean-up under way


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One eligible (not excluded) regular file found by a scan."""

    path: str  # relative POSIX path inside the folder
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    problem: str | None = None  # why validation rejected it; None when it may be uploaded
    # Changes with every write, and cannot be set back (unlike mtime: ``cp -p``, ``touch -r``).
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class FolderSpec:
    """The part of a folder's configuration that decisions depend on."""

    name: str
    purpose: Purpose
    assistants: tuple[str, ...] = ()
    on_delete: OnDelete = "delete"


@dataclass(frozen=True, slots=True)
class LocalFolder:
    """A scan of one folder. ``error`` set means the root was missing, unreadable or not
    the mount it was before: the folder is skipped and nothing under it is deleted."""

    spec: FolderSpec
    files: Mapping[str, LocalFile] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """The manifest's row for one local path."""

    folder: str
    path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    state: State
    file_id: str | None = None  # the remote file holding the last synced content
    attempts: int = 0
    next_attempt_at: float | None = None  # unix seconds; None = may act now
    last_error: str | None = None
    # The upload intent (invariant 2); set while state is UPLOADING.
    intent_sha256: str | None = None
    intent_size: int | None = None
    intent_at: float | None = None  # unix seconds, taken before the request was sent
    ctime_ns: int = 0  # with size, mtime and inode: the stat the hash was taken at


@dataclass(frozen=True, slots=True)
class Retired:
    """A remote file syncd owns that no longer stands for a local entry."""

    file_id: str
    folder: str
    delete: bool  # True: detach and delete; False: detach only, then forget
    replaced_by: str | None = None  # don't touch until this file is attached (invariant 4)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upload request syncd sent. While its answer has not come (``file_id`` None), a
    file the service stores for it, however late, is syncd's own (invariant 2). An answered
    one is kept for a while with the id it was answered with, so that file — released later,
    say — is never taken for another attempt's late copy."""

    folder: str
    path: str
    filename: str  # the name as sent (see ``syncd.api.sent_filename``)
    size: int
    purpose: str | None  # None: recorded before syncd kept it (then the folder's)
    sha256: str
    sent_at: float  # unix seconds, taken before the request was sent
    file_id: str | None = None  # the answer, once it came


@dataclass(frozen=True, slots=True)
class Manifest:
    entries: Mapping[tuple[str, str], Entry]  # (folder, path) -> entry
    attachments: frozenset[tuple[str, str]] = frozenset()  # (file_id, assistant_id) syncd made
    retired: Mapping[str, Retired] = field(default_factory=dict)  # file_id -> retired
    attempts: tuple[Attempt, ...] = ()  # unanswered upload requests, oldest first

    def owned_ids(self) -> set[str]:
        """Every remote file id syncd may touch (invariant 1)."""
        ids = {e.file_id for e in self.entries.values() if e.file_id}
        return ids | set(self.retired)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file as the service lists it: what lost-upload matching and ownership need. Whether
    it is processed is the executor's concern (it waits for that before attaching)."""

    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Remote:
    files: Mapping[str, RemoteFile]  # every file listFiles returned, by id
    attachments: Mapping[str, frozenset[str]]  # assistant_id -> attached file ids (configured ones)


# --- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    """Validate-again, record intent, upload, wait until processed, attach, then retire
    ``replaces`` — the entry's file id as planned, gone from the service or not. Where an
    assistant is at its file limit the plan detaches ``replaces`` from it first, with a
    ``Detach`` in an earlier stage."""

    folder: str
    path: str
    sha256: str
    size: int
    attach_to: tuple[str, ...] = ()
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class Adopt:
    """An earlier upload whose response was lost was found remotely: take it as the entry's
    file instead of uploading again (invariant 2). ``replaces`` is the entry's file id as
    planned; when it is ``file_id`` itself the row only becomes synced again."""

    folder: str
    path: str
    file_id: str
    sha256: str  # the content the intent was for
    attach_to: tuple[str, ...] = ()
    replaces: str | None = None
    sent_at: float | None = None  # the attempt whose file this is, now answered


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A second copy of one of syncd's own uploads (an attempt answered late, after another
    copy was adopted or sent again): it becomes a retired id to delete, and the attempt is
    closed. The ``Cleanup`` the plan puts right after it deletes it."""

    folder: str
    path: str
    file_id: str
    sent_at: float


@dataclass(frozen=True, slots=True)
class Attach:
    folder: str
    path: str
    file_id: str
    assistant_id: str


@dataclass(frozen=True, slots=True)
class Detach:
    file_id: str
    assistant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Retire:
    """The local file is gone (or its new content was rejected): drop the entry and hand
    its remote file to the retired list — or, for ``keep``, let go of it. No request: the
    ``Cleanup`` the plan puts right after it does the detaching and deleting."""

    folder: str
    path: str
    file_id: str
    mode: OnDelete


@dataclass(frozen=True, slots=True)
class Cleanup:
    """Detach (syncd's own attachments of) a retired file and, if ``delete``, delete it."""

    file_id: str
    detach_from: tuple[str, ...]
    delete: bool


@dataclass(frozen=True, slots=True)
class Reject:
    folder: str
    path: str
    sha256: str
    reason: str


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop a manifest row (or a retired id) that no longer stands for anything remote."""

    folder: str
    path: str | None = None
    file_id: str | None = None


@dataclass(frozen=True, slots=True)
class Restat:
    """Same content, new stat (a touch, a copy over itself, a chmod): remember the new stat."""

    folder: str
    path: str
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0


Action = Upload | Adopt | Attach | Detach | Retire | Duplicate | Cleanup | Reject | Forget | Restat


@dataclass(frozen=True, slots=True)
class FolderProblem:
    """Why (part of) a folder was not acted on in this pass."""

    folder: str
    kind: Literal["unavailable", "delete_guard", "assistant_full"]
    message: str
    # For "assistant_full": which assistant, and the file left unattached (one problem each).
    assistant: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    problems: tuple[FolderProblem, ...] = ()
    waiting: int = 0  # entries held back by their retry backoff, grace period or another upload
    # (folder, path) of the files waiting for another path's upload to be resolved: nothing in
    # the manifest says so, so whoever runs passes must bring them up again.
    held: frozenset[tuple[str, str]] = frozenset()
