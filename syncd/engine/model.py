"""The model: the snapshot types the planner reads and the actions it decides.

Three snapshots, plain immutable values built at the edges:

* ``LocalFolder`` — what a scan found on disk for one configured folder,
* ``Manifest`` — what syncd recorded (entries, attachments it made, retired remote ids),
* ``Remote`` — what the service lists (files, and the files attached to each configured target).

A *target* is something a file is attached to: a vector store (``vs_…``) or an assistant of
the v1 contract (``asst_…``). Targets are named by their ids everywhere; the service's id
prefix says the kind (:func:`target_kind`), so one set of rules serves both and only the few
places where the kinds differ (ingestion, attributes, the assistant file limit) ask.

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
    "INGESTION_TIMEOUT",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_CHARS",
    "SYNCD_ATTRIBUTES",
    "Action",
    "Adopt",
    "Attach",
    "Attempt",
    "AttributeValue",
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
    "Move",
    "OnDelete",
    "Plan",
    "Purpose",
    "Reject",
    "Remote",
    "RemoteFile",
    "Restat",
    "Retag",
    "Retire",
    "Retired",
    "State",
    "StoreFile",
    "TargetKind",
    "Upload",
    "store_attributes",
    "target_kind",
]

Purpose = Literal["assistants", "fine-tune"]
OnDelete = Literal["delete", "detach", "keep"]

#: The service's limit on files attached to one assistant (Assistants v1).
ASSISTANT_FILE_LIMIT = 20
#: The service's limits on a vector-store file's attributes: keys, and characters of a string
#: value.
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_CHARS = 512
#: The attributes syncd writes on each store file it attaches; they count within the 16.
SYNCD_ATTRIBUTES = ("syncd_instance", "syncd_folder", "syncd_path", "syncd_sha256", "syncd_mtime")
#: Seconds a store file may stay ``in_progress`` before it is reported (by default).
INGESTION_TIMEOUT = 3600.0

TargetKind = Literal["store", "assistant"]
AttributeValue = str | int | float | bool


def target_kind(target: str) -> TargetKind:
    """The kind of the target ``target`` (an id): ``vs_…`` is a vector store, anything else an
    assistant (``asst_…``)."""
    return "store" if target.startswith("vs_") else "assistant"


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
    vector_stores: tuple[str, ...] = ()
    # The user's attributes for every store file of the folder, sorted by key (hashable).
    attributes: tuple[tuple[str, AttributeValue], ...] = ()
    ingestion_timeout: float = INGESTION_TIMEOUT

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target the folder's files belong on (none for fine-tune files), sorted."""
        if self.purpose != "assistants":
            return ()
        return tuple(sorted(set(self.assistants) | set(self.vector_stores)))


def store_attributes(
    spec: FolderSpec, instance: str, path: str, sha256: str, mtime_ns: int
) -> dict[str, AttributeValue]:
    """The attributes a store file of ``spec``'s ``path`` carries: the user's, then syncd's own
    (who attached it, for which folder and path, which content, modified when). The one place
    they are made: the executor sends them, the planner compares the store's with them.

    A path longer than the service takes keeps its last characters (the file name).
    """
    own: dict[str, AttributeValue] = {
        "syncd_instance": instance,
        "syncd_folder": spec.name,
        "syncd_path": path[-MAX_ATTRIBUTE_CHARS:],
        "syncd_sha256": sha256,
        "syncd_mtime": mtime_ns // 1_000_000_000,
    }
    return {**dict(spec.attributes), **own}


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
    attachments: frozenset[tuple[str, str]] = frozenset()  # (file_id, target) syncd made
    retired: Mapping[str, Retired] = field(default_factory=dict)  # file_id -> retired
    attempts: tuple[Attempt, ...] = ()  # unanswered upload requests, oldest first
    # Synced entries left out of ``entries`` because nothing can happen to them (see
    # ``syncd.engine.rest``), by folder: they still count for the delete guard.
    resting: Mapping[str, int] = field(default_factory=dict)

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
class StoreFile:
    """A file attached to a vector store, as the store lists it."""

    status: Literal["in_progress", "completed", "failed", "cancelled"]
    created_at: int  # when it was attached (the service's clock)
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    last_error: str | None = None  # why ingestion failed, in the service's words

    @property
    def instance(self) -> str | None:
        """The syncd instance that attached it, if one did."""
        value = self.attributes.get("syncd_instance")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Remote:
    files: Mapping[str, RemoteFile]  # every file listFiles returned, by id
    attachments: Mapping[str, frozenset[str]]  # target -> attached file ids (configured ones)
    # store -> file id -> its ingestion and attributes (configured stores; their ids are also
    # in ``attachments``).
    store_files: Mapping[str, Mapping[str, StoreFile]] = field(default_factory=dict)
    # Targets the service no longer serves (the retired Assistants API), with why: skipped,
    # nothing attached to or detached from them.
    unavailable: Mapping[str, str] = field(default_factory=dict)


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
    """Attach the entry's file to ``target``; to a store with the folder's chunking and the
    file's attributes (a cancelled ingestion is attached afresh)."""

    folder: str
    path: str
    file_id: str
    target: str


@dataclass(frozen=True, slots=True)
class Detach:
    file_id: str
    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Move:
    """The same content under another path (a rename) in a folder whose stores carry the path
    as an attribute: the row moves to ``dst`` with its file, nothing is uploaded; the stores'
    attributes follow with a ``Retag``."""

    folder: str
    src: str
    dst: str
    file_id: str
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int

    @property
    def path(self) -> str:
        return self.dst


@dataclass(frozen=True, slots=True)
class Retag:
    """Write ``attributes`` on the entry's store file (renamed, touched, or changed by someone
    else); the file is not ingested again."""

    folder: str
    path: str
    file_id: str
    target: str
    attributes: tuple[tuple[str, AttributeValue], ...]


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


Action = (
    Upload
    | Adopt
    | Attach
    | Detach
    | Retire
    | Duplicate
    | Cleanup
    | Reject
    | Forget
    | Restat
    | Move
    | Retag
)


@dataclass(frozen=True, slots=True)
class FolderProblem:
    """Why (part of) a folder was not acted on in this pass."""

    folder: str
    kind: Literal[
        "unavailable", "delete_guard", "assistant_full", "target_unavailable", "ingestion_slow"
    ]
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
    # (folder, path, sent_at) of unanswered upload attempts that no copy can turn up for any
    # more (see planner._find_lost_uploads): whoever runs passes forgets them.
    expired: frozenset[tuple[str, str, float]] = frozenset()
