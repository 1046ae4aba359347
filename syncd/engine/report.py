"""What a pass did, in a person's words: the wording shared by the logs, the CLI and metrics.

* :class:`Done` — one thing that happened to a file or a remote id, as a log line and JSON;
* :class:`PassReport` — a pass's counts, actions, errors and exit status;
* :func:`plan_lines` — what a dry run would do, one line per planned action;
* :class:`ExitStatus` — what every command and the daemon exit with.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from syncd.engine.model import (
    Action,
    Adopt,
    Attach,
    Cleanup,
    Detach,
    FolderProblem,
    Forget,
    LocalFile,
    Move,
    Plan,
    Reject,
    Restat,
    Retag,
    Retire,
    Upload,
)
from syncd.engine.names import where

__all__ = [
    "COUNTS",
    "Done",
    "ExitStatus",
    "Outcome",
    "PassReport",
    "PassScope",
    "StopReason",
    "describe_action",
    "errors",
    "human_size",
    "plan_line",
    "plan_lines",
    "predict",
    "predicted_counts",
    "what_became_of",
]


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
    "waiting",
    "skipped",
    "forgotten",
    "restat",
    "moved",
    "retagged",
    "ingesting",
]

#: Why a pass stopped before it was done: the key was refused, the service could not be
#: listed, the state directory could not be written (its disk is full), or the delete guard
#: tripped.
StopReason = Literal["auth", "service", "state", "delete_guard"]

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
    target: str | None = None  # the assistant or vector store
    previous: str | None = None  # the file id an upload replaced
    replaced_by: str | None = None  # for a deleted old version: the file that replaced it
    detail: str | None = None  # the error, the reason, or size and time
    already_gone: bool | None = None  # a deletion that found the file deleted by someone else

    @property
    def where(self) -> str:
        """The file (``[folder] path``), or the remote id when no path goes with it."""
        return where(self.folder, self.path) if self.path is not None else str(self.file_id)

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
                return f"attached {self.where} to {self.target}"
            case "detached":
                return f"detached {self.file_id} from {self.target}{detail}"
            case "deleted" if self.already_gone:
                return f"remote {self.file_id} was already gone{detail}"
            case "deleted":
                return f"deleted remote {self.file_id}{detail}"
            case "released":
                return f"left remote {self.file_id} in place{detail}"
            case "rejected":
                return f"rejected {self.where}: {self.detail}"
            case "failed" | "unresolved" | "waiting" | "skipped":
                return f"{self.where}: {self.detail}"
            case "forgotten":
                return f"forgot {self.where}{detail}"
            case "restat":
                return f"noted the new timestamps of {self.where}"
            case "moved":
                return f"moved {self.where} ({self.file_id}){detail}"
            case "retagged":
                return f"updated the attributes of {self.where} in {self.target}"
            case "ingesting":
                return f"{self.where}: {self.target}: {self.detail}"
            case _:
                return f"{self.what} {self.where}{detail}"

    def to_json(self) -> dict[str, Any]:
        # Its fields are plain values: read directly, not copied deep as ``asdict`` would
        # (which made the report of a 100,000-upload pass cost seconds), by names listed once.
        values = ((name, getattr(self, name)) for name in _DONE_FIELDS)
        return {k: v for k, v in values if v is not None}


#: The fields of a :class:`Done`, in order (``to_json`` runs once a result).
_DONE_FIELDS = tuple(f.name for f in dataclasses.fields(Done))


def human_size(n: int) -> str:
    """``12 KB``, ``3.4 MB``, ``512 MB``: sizes as the service counts them, 1 KB = 1,024 bytes.

    The service's "512 MB per file" is 512 × 1,024² bytes (the limit syncd and its emulator
    enforce), so a file at the limit shows as 512 MB, not 537 MB: one unit system for sizes and
    limits alike."""
    if n < 1024:
        return f"{n} B"
    units = ("KB", "MB", "GB", "TB")
    value, step = n / 1024, 0
    while value >= 1023.5 and step < len(units) - 1:
        value, step = value / 1024, step + 1
    return f"{value:.1f} {units[step]}" if value < 10 else f"{value:.0f} {units[step]}"


#: The summary's counts, in the order they are printed.
COUNTS = (
    "uploaded",
    "replaced",
    "deleted",
    "attached",
    "detached",
    "unchanged",
    "rejected",
    "failed",
    "adopted",
    "unresolved",
)


@dataclass
class PassReport:
    """What a pass did (or, with ``dry_run``, would do)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    actions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    problems: list[FolderProblem] = field(default_factory=list)
    #: (folder, path) -> why: files that exist but could not be read (they need attention)
    unreadable: dict[tuple[str, str], str] = field(default_factory=dict)
    planned: list[Action] = field(default_factory=list)  # a dry run's plan
    # A dry run's scan, which its plan was made from (for the words of plan_lines).
    scanned: Mapping[tuple[str, str], LocalFile] = field(default_factory=dict)
    stopped_reason: StopReason | None = None
    stopped_message: str | None = None
    dry_run: bool = False
    waiting: int = 0  # files held back by their retry backoff, grace period or another upload
    held: frozenset[tuple[str, str]] = frozenset()  # (folder, path) waiting for another upload
    rounds: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0

    def exit_code(self) -> ExitStatus:
        """OK in sync; DIFFERS finished with failed, rejected, unresolved or unreadable files
        or a skipped folder; STOPPED before acting (credentials refused, service unreachable,
        delete guard), or a target skipped because the service no longer offers it (the
        Assistants API)."""
        if self.stopped_reason is not None or any(
            p.kind == "target_unavailable" for p in self.problems
        ):
            return ExitStatus.STOPPED
        counts = self.counts
        if counts["failed"] or counts["rejected"] or counts["unresolved"]:
            return ExitStatus.DIFFERS
        if self.problems or self.errors or self.unreadable:
            return ExitStatus.DIFFERS
        return ExitStatus.OK

    def summary(self) -> str:
        """``uploaded 3, replaced 1, …`` — every count, zeros included, so scripts can rely
        on the shape."""
        text = ", ".join(f"{name} {self.counts[name]}" for name in COUNTS)
        prefix = "dry run, would have: " if self.dry_run else ""
        return prefix + text

    def to_json(self) -> dict[str, Any]:
        return {
            **self.counts,
            "dry_run": self.dry_run,
            "waiting": self.waiting,
            "stopped": self.stopped_reason,
            "exit_status": self.exit_code(),
            "actions": self.actions,
            "errors": self.errors,
        }


def describe_action(action: Action) -> dict[str, Any]:
    """A planned action as a JSON object: ``{"action": "upload", "folder": …, …}``."""
    fields = {k: v for k, v in dataclasses.asdict(action).items() if v not in (None, ())}
    return {"action": type(action).__name__.lower(), **fields}


def predict(report: PassReport, files: Mapping[tuple[str, str], LocalFile], decided: Plan) -> None:
    """A dry run's report: the plan, and the counts it would come to (``files``: the scan
    the plan was made from)."""
    report.planned = list(decided.actions)
    report.scanned = files
    report.actions = [describe_action(a) for a in decided.actions]
    report.counts.update(predicted_counts(decided.actions))
    report.counts["rejected"] = sum(1 for f in files.values() if f.problem is not None)


def predicted_counts(actions: Collection[Action]) -> Counter[str]:
    """What ``actions`` would add to a report's counts."""
    counts: Counter[str] = Counter()
    for action in actions:
        match action:
            case Upload():
                counts["replaced" if action.replaces else "uploaded"] += 1
                counts["attached"] += len(action.attach_to)
            case Adopt():
                counts["adopted"] += 1
                counts["attached"] += len(action.attach_to)
            case Attach():
                counts["attached"] += 1
            case Detach():
                counts["detached"] += 1
            case Cleanup():
                counts["detached"] += len(action.detach_from)
                counts["deleted"] += int(action.delete)
    return counts


def errors(
    report: PassReport, dones: list[Done], unresolved: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """A report's ``errors``: why it stopped, the folders' problems, each failed action, and
    each upload whose outcome is still unknown (``unresolved``: folder, path)."""
    found: list[dict[str, Any]] = []
    if report.stopped_message:
        found.append({"kind": report.stopped_reason, "message": report.stopped_message})
    for problem in report.problems:
        if problem.kind != "delete_guard":
            found.append(
                {"kind": problem.kind, "folder": problem.folder, "message": problem.message}
            )
    for (folder, path), why in sorted(report.unreadable.items()):
        message = f"cannot read {where(folder, path)}: {why.removeprefix('unreadable: ')}"
        found.append({"kind": "unreadable", "folder": folder, "path": path, "message": message})
    for done in dones:
        if done.what == "failed":
            found.append({"kind": "failed", **done.to_json(), "message": done.message()})
    for folder, path in unresolved:
        message = (
            f"{folder}/{path}: the service has not shown whether its upload was stored; "
            "the next pass looks for it again"
        )
        found.append({"kind": "unresolved", "folder": folder, "path": path, "message": message})
    return found


def what_became_of(action: Retire, local: LocalFile | None) -> str:
    """Why a synced file's remote copy goes, in true words: ``[docs] a.md was removed``, or —
    ``local`` still there with content the service refuses — ``was emptied``, most often."""
    file = where(action.folder, action.path)
    if local is None:
        return f"{file} was removed"
    if local.size == 0:
        return f"{file} was emptied; the service refuses empty files"
    return f"{file} now has content the service refuses ({local.problem or 'see its rejection'})"


def plan_lines(
    actions: Sequence[Action], scanned: Mapping[tuple[str, str], LocalFile] | None = None
) -> Iterator[str]:
    """What a dry run says it would do, in words: one line per action, except that a removed
    file's Retire and the Cleanup after it make one line. ``scanned``: the scan the plan was
    made from, which tells a removed file from an emptied one."""
    scanned = scanned or {}
    removed: dict[str, Retire] = {}
    for action in actions:
        if isinstance(action, Retire) and action.mode != "keep":
            removed[action.file_id] = action
        elif isinstance(action, Cleanup) and action.file_id in removed:
            retire = removed.pop(action.file_id)
            why = what_became_of(retire, scanned.get((retire.folder, retire.path)))
            if action.delete:
                yield f"delete remote {action.file_id} ({why})"
            else:
                assistants = ", ".join(action.detach_from) or "nothing"
                yield f"detach {action.file_id} from {assistants} ({why}; on_delete = detach)"
        elif isinstance(action, Retire):  # on_delete = keep
            yield plan_line(action, scanned.get((action.folder, action.path)))
        else:
            yield plan_line(action)
    for retire in removed.values():  # a Retire without its Cleanup
        yield plan_line(retire, scanned.get((retire.folder, retire.path)))


def plan_line(action: Action, local: LocalFile | None = None) -> str:
    """One planned action in words (``local``: for a Retire, the file as scanned, if any)."""
    match action:
        case Upload():
            what = (
                f"replace {where(action.folder, action.path)} (now {action.replaces})"
                if action.replaces
                else f"upload {where(action.folder, action.path)}"
            )
            to = f", attach to {', '.join(action.attach_to)}" if action.attach_to else ""
            return f"{what}{to}"
        case Adopt():
            return f"adopt {action.file_id} for {where(action.folder, action.path)}"
        case Attach():
            file = where(action.folder, action.path)
            return f"attach {file} ({action.file_id}) to {action.target}"
        case Detach():
            return f"detach {action.file_id} from {action.target} ({action.reason})"
        case Retire():
            why = what_became_of(action, local)
            return f"let go of {action.file_id}: {why} (on_delete = {action.mode})"
        case Cleanup():
            steps = [f"detach from {a}" for a in action.detach_from]
            if action.delete:
                steps.append("delete")
            return f"clean up {action.file_id}: {', '.join(steps) or 'forget'}"
        case Reject():
            return f"reject {where(action.folder, action.path)}: {action.reason}"
        case Forget():
            return f"forget {action.file_id or where(action.folder, action.path)}"
        case Restat():
            return f"note the new timestamps of {where(action.folder, action.path)}"
        case Move():
            return f"rename {where(action.folder, action.src)} to {action.dst} (no upload)"
        case Retag():
            file = where(action.folder, action.path)
            return f"update the attributes of {file} in {action.target}"
    raise TypeError(action)
