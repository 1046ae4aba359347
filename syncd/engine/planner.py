"""The planner: a pure function from three snapshots to the actions that bring them in line.

``plan()`` reads the snapshots of :mod:`syncd.engine.model` and nothing else: no clock (``now``
is passed in), no disk, no network. That keeps the hard part of syncd — deciding what to do —
testable with tables and hypothesis. ``stages()`` and ``chains()`` say in which order the
executor may run a plan's actions. The invariants it implements are those of the design brief
(see ARCHITECTURE.md).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum

from syncd.api.names import sent_filename
from syncd.engine.model import (
    ASSISTANT_FILE_LIMIT,
    Action,
    Adopt,
    Attach,
    Attempt,
    Cleanup,
    Detach,
    Duplicate,
    Entry,
    FolderProblem,
    FolderSpec,
    Forget,
    LocalFile,
    LocalFolder,
    Manifest,
    Move,
    Plan,
    Reject,
    Remote,
    RemoteFile,
    Restat,
    Retag,
    Retire,
    Retired,
    State,
    StoreFile,
    Upload,
    store_attributes,
    target_kind,
)
from syncd.engine.names import where

__all__ = ["ATTEMPT_HORIZON", "CLOCK_SLACK", "chains", "plan", "stages", "upload_name"]

# --- the planner --------------------------------------------------------------------------------

#: How far a lost upload's ``created_at`` (whole seconds, the service's clock) may sit before the
#: intent's time (our clock) and still be taken for that upload.
CLOCK_SLACK = 2.0

#: How long after it was sent an unanswered upload may still land and be known for syncd's
#: own, once its entry no longer waits for it (it was sent again, or the file changed). A
#: file someone else uploads under the same name and size within that time would be taken
#: for it: the API has no idempotency key.
ATTEMPT_HORIZON = 600.0


def upload_name(path: str) -> str:
    """The name the service lists an upload of ``path`` under: its last part, as sent."""
    return sent_filename(posixpath.basename(path))


_REMOVALS = (Retire, Duplicate, Cleanup, Detach)
_ADDITIONS = (Upload, Adopt, Attach, Move, Retag)


def stages(actions: Sequence[Action]) -> list[tuple[Action, ...]]:
    """Split a plan's actions into the stages an executor must run one after another.

    A stage is a maximal run of actions of one group: removals (Retire, Duplicate, Cleanup,
    Detach), additions (Upload, Adopt, Attach, Move, Retag) or records (Forget, Reject,
    Restat). Finish a stage before starting the next. Inside a stage actions may run
    concurrently, except that actions on the same remote file id or the same local path run in
    plan order.
    """
    result: list[list[Action]] = []
    last: int | None = None
    for action in actions:
        group = _group(action)
        if group != last:
            result.append([])
            last = group
        result[-1].append(action)
    return [tuple(stage) for stage in result]


def _group(action: Action) -> int:
    if isinstance(action, _REMOVALS):
        return 0
    if isinstance(action, _ADDITIONS):
        return 1
    return 2


def _keys(action: Action, purposes: Mapping[str, str]) -> Iterable[Hashable]:
    """What an action must not share with a concurrently running one."""
    match action:
        case Upload():
            name = upload_name(action.path)
            yield ("upload", name, action.size, purposes[action.folder])
            yield ("path", action.folder, action.path)
            if action.replaces:
                yield ("file", action.replaces)
        case Adopt():
            yield ("path", action.folder, action.path)
            yield ("file", action.file_id)
            if action.replaces:
                yield ("file", action.replaces)
        case Attach() | Retire() | Retag():
            yield ("path", action.folder, action.path)
            yield ("file", action.file_id)
        case Move():
            yield ("path", action.folder, action.src)
            yield ("path", action.folder, action.dst)
            yield ("file", action.file_id)
        case Duplicate():
            yield ("file", action.file_id)
        case Detach() | Cleanup():
            yield ("file", action.file_id)
        case Forget():
            if action.path is not None:
                yield ("path", action.folder, action.path)
            if action.file_id is not None:
                yield ("file", action.file_id)
        case Reject() | Restat():
            yield ("path", action.folder, action.path)


def chains(stage: Sequence[Action], purposes: Mapping[str, str]) -> list[list[Action]]:
    """Split a stage into groups that may run concurrently; each keeps plan order inside.

    Two actions that share a key (see :func:`_keys`) end up in the same group.
    """
    parent = list(range(len(stage)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Hashable, int] = {}
    for i, action in enumerate(stage):
        for key in _keys(action, purposes):
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[Action]] = {}
    for i, action in enumerate(stage):
        groups.setdefault(find(i), []).append(action)
    return list(groups.values())


class _Phase(IntEnum):
    """Where a step goes in the plan; see :func:`stages` for what the executor does with it."""

    FORGET = 0  # manifest rows and ids that stand for nothing remote any more
    EARLY = 1  # removals moved ahead of the additions to make room at an assistant's limit
    ADD = 2  # uploads, adoptions, attachments
    LATE = 3  # removals, after the additions: nothing goes missing in between (invariant 4)
    NOTE = 4  # Reject and Restat, after a Retire of the same path


# Within one (phase, folder, path): a Retire before its Cleanup, an Adopt before its Attach.
_KIND_ORDER: dict[type, int] = {
    kind: i
    for i, kind in enumerate(
        (
            Forget,
            Retire,
            Duplicate,
            Cleanup,
            Detach,
            Move,
            Upload,
            Adopt,
            Attach,
            Retag,
            Reject,
            Restat,
        )
    )
}


@dataclass(slots=True)
class _Step:
    """An action with where it goes (mutable while the limits are fitted)."""

    phase: _Phase
    folder: str
    path: str  # "" for a retired id, which no longer has a path
    action: Action

    def sort_key(self) -> tuple[int, str, str, int, str, str]:
        file_id = getattr(self.action, "file_id", None) or ""
        assistant = getattr(self.action, "target", "")
        return (
            self.phase,
            self.folder,
            self.path,
            _KIND_ORDER[type(self.action)],
            file_id,
            assistant,
        )


@dataclass(frozen=True, slots=True)
class _Holding:
    """A retired file kept on ``assistants`` until ``replacement`` is attached there."""

    folder: str
    replacement: str
    assistants: tuple[str, ...]


#: What a lost upload is recognised by: the name as sent, the size and the purpose (``None``:
#: the purpose of a folder not planned in this pass, which matches any).
_UploadKey = tuple[str, int, str | None]


@dataclass(slots=True)
class _Context:
    """The snapshots, indexed once for the whole pass."""

    remote: Remote
    now: float
    instance: str  # this syncd's instance id, carried by the store files it attaches
    entries: dict[str, dict[str, Entry]]  # folder -> path -> entry
    recorded: dict[str, set[str]]  # file id -> targets syncd attached it to
    targets: dict[str, tuple[str, ...]]  # planned folder -> targets its files belong on
    live: set[str]  # file ids of the entries of the planned folders
    resting: Mapping[str, int]  # folder -> synced entries left out (see Manifest.resting)
    # (folder, path) -> its lost upload, and the time of the attempt that made it
    orphans: dict[tuple[str, str], tuple[RemoteFile, float]]
    duplicates: list[tuple[Attempt, RemoteFile]]  # late copies of syncd's own uploads
    expired: frozenset[tuple[str, str, float]]  # attempts no copy can turn up for any more
    # (sent name, size, purpose) -> the path whose unresolved upload holds that key
    # (sent name, size, purpose) -> the (folder, path, sha256) of its unresolved attempts
    held: dict[_UploadKey, set[tuple[str, str, str]]] = field(default_factory=dict)
    # Retired ids that wait for their replacement (invariant 4), by id.
    holding: dict[str, _Holding] = field(default_factory=dict)

    def listed(self, file_id: str, target: str) -> bool:
        return file_id in self.remote.attachments.get(target, frozenset())

    def store_file(self, file_id: str, store: str) -> StoreFile | None:
        return self.remote.store_files.get(store, {}).get(file_id)

    def ready(self, file_id: str, target: str) -> bool:
        """Whether ``file_id`` serves at ``target``: attached to an assistant, ingested
        (``completed``) in a store."""
        if target_kind(target) == "assistant":
            return self.listed(file_id, target)
        found = self.store_file(file_id, target)
        return found is not None and found.status == "completed"

    def foreign(self, file_id: str, store: str) -> bool:
        """Whether the store file carries another syncd instance's id: never touch it."""
        found = self.store_file(file_id, store)
        return found is not None and found.instance not in (None, self.instance)

    def detach_from(self, file_id: str, folder: str) -> tuple[str, ...]:
        """The targets to detach one of syncd's files from before it is let go.

        Those syncd recorded attaching it to (unless the listing shows it is no longer there),
        and those configured for its folder that list it: an attachment whose response was
        lost was made by syncd but never recorded, and must not outlive the file's entry.
        Never a target the service no longer serves, nor a store file of another instance.
        """
        recorded = {
            a
            for a in self.recorded.get(file_id, ())
            if a not in self.remote.attachments or self.listed(file_id, a)
        }
        claimed = {a for a in self.targets.get(folder, ()) if self.listed(file_id, a)}
        return tuple(
            sorted(
                t
                for t in recorded | claimed
                if t not in self.remote.unavailable and not self.foreign(file_id, t)
            )
        )

    def held_by_another(self, folder: str, path: str, local: LocalFile, purpose: str) -> bool:
        """Whether an unresolved upload of other content — another path's, or an earlier
        version of this one — could be mistaken for this one's: then this one waits until a
        listing resolves it (invariant 2). The same content sent again is the same intent."""
        name = upload_name(path)
        for key in ((name, local.size, purpose), (name, local.size, None)):
            if self.held.get(key, set()) - {(folder, path, local.sha256)}:
                return True
        return False


@dataclass(slots=True)
class _FolderSteps:
    """What one folder's pass decided."""

    spec: FolderSpec
    targets: tuple[str, ...]
    steps: list[_Step] = field(default_factory=list)
    # Paths whose Retire, or whose Detach from a store, removes content (the delete guard).
    losses: list[str] = field(default_factory=list)
    problems: list[FolderProblem] = field(default_factory=list)
    waiting: int = 0
    held: list[str] = field(default_factory=list)  # paths waiting for another's upload

    def add(self, phase: _Phase, path: str, action: Action) -> None:
        self.steps.append(_Step(phase, self.spec.name, path, action))


def plan(
    folders: list[LocalFolder],
    manifest: Manifest,
    remote: Remote,
    *,
    now: float,
    max_delete_fraction: float = 0.5,
    force: bool = False,
    assistant_file_limit: int = ASSISTANT_FILE_LIMIT,
    instance: str = "",
) -> Plan:
    """Decide what to do. Pure: same inputs, same plan.

    ``folders`` are complete scans: a path missing from ``LocalFolder.files`` is taken for
    deleted. Only these folders are acted on; other folders' manifest rows are left as they
    are, but ``manifest`` must still hold them all, so that no file they own is ever adopted.
    ``remote.attachments`` must list every target configured for a folder here (and
    ``remote.store_files`` every store), except those in ``remote.unavailable``. ``instance``
    is this syncd's id: store files carrying another are never touched.

    Actions come in stages (see :func:`stages`), then by folder, then by path.
    """
    planned = {folder.spec.name: folder for folder in folders}
    available = {name for name, folder in planned.items() if folder.error is None}
    ctx = _context(planned, available, manifest, remote, now, instance)
    steps: list[_Step] = []
    problems: list[FolderProblem] = []
    waiting = 0
    held: set[tuple[str, str]] = set()
    for name in sorted(planned):
        folder = planned[name]
        if folder.error is not None:
            problems.append(
                FolderProblem(
                    name,
                    "unavailable",
                    f"{name} is unavailable ({folder.error}); nothing in it is changed "
                    "until it is back",
                )
            )
            continue
        decided = _plan_folder(folder, ctx)
        problems += decided.problems
        if not force:
            problem = _delete_guard(decided, ctx, max_delete_fraction)
            if problem is not None:
                problems.append(problem)
        steps += decided.steps
        waiting += decided.waiting
        held |= {(name, path) for path in decided.held}
    steps += _plan_retired(manifest, available, ctx)
    steps += _plan_duplicates(ctx)
    problems += _fit_assistant_limits(steps, ctx, assistant_file_limit)
    steps.sort(key=_Step.sort_key)
    problems.sort(key=lambda p: (p.folder, p.kind, p.message))
    return Plan(
        tuple(step.action for step in steps),
        tuple(problems),
        waiting,
        frozenset(held),
        ctx.expired,
    )


def _context(
    planned: Mapping[str, LocalFolder],
    available: set[str],
    manifest: Manifest,
    remote: Remote,
    now: float,
    instance: str,
) -> _Context:
    entries: dict[str, dict[str, Entry]] = {}
    for (folder, path), entry in manifest.entries.items():
        entries.setdefault(folder, {})[path] = entry
    recorded: dict[str, set[str]] = {}
    for file_id, assistant in manifest.attachments:
        recorded.setdefault(file_id, set()).add(assistant)
    targets = {
        name: tuple(t for t in planned[name].spec.targets if t not in remote.unavailable)
        for name in sorted(available)
    }
    live = {
        entry.file_id
        for name in available
        for entry in entries.get(name, {}).values()
        if entry.file_id
    }
    foreign = _other_instances(remote, instance)
    orphans, duplicates, expired = _find_lost_uploads(
        planned, available, manifest, remote, foreign, now
    )
    resolved = {(path, at) for (_, path), (_, at) in orphans.items()}
    resolved |= {(attempt.path, attempt.sent_at) for attempt, _ in duplicates}
    held = _unresolved_uploads(planned, manifest, resolved, now)
    return _Context(
        remote,
        now,
        instance,
        entries,
        recorded,
        targets,
        live,
        manifest.resting,
        orphans,
        duplicates,
        expired,
        held,
    )


def _other_instances(remote: Remote, instance: str) -> set[str]:
    """The files a store lists as attached by another syncd instance: theirs, never adopted."""
    return {
        file_id
        for files in remote.store_files.values()
        for file_id, found in files.items()
        if found.instance not in (None, instance)
    }


def _attempts(
    planned: Mapping[str, LocalFolder], available: set[str], manifest: Manifest
) -> list[Attempt]:
    """The unanswered attempts of the available planned folders, oldest first, with each
    one's purpose filled in; an intent with no attempt recorded stands for its one attempt."""
    recorded = [a for a in manifest.attempts if a.folder in available and a.file_id is None]
    with_attempts = {(a.folder, a.path) for a in recorded}
    for key, entry in manifest.entries.items():
        if (
            entry.folder in available
            and key not in with_attempts
            and entry.state is State.UPLOADING
            and entry.intent_at is not None
            and entry.intent_size is not None
            and entry.intent_sha256 is not None
        ):
            name = upload_name(entry.path)
            recorded.append(
                Attempt(
                    entry.folder,
                    entry.path,
                    name,
                    entry.intent_size,
                    None,
                    entry.intent_sha256,
                    entry.intent_at,
                )
            )
    attempts = [replace(a, purpose=a.purpose or planned[a.folder].spec.purpose) for a in recorded]
    return sorted(attempts, key=lambda a: (a.sent_at, a.folder, a.path))


_LostUploads = tuple[
    dict[tuple[str, str], tuple[RemoteFile, float]],
    list[tuple[Attempt, RemoteFile]],
    frozenset[tuple[str, str, float]],
]


def _find_lost_uploads(
    planned: Mapping[str, LocalFolder],
    available: set[str],
    manifest: Manifest,
    remote: Remote,
    foreign: set[str],
    now: float,
) -> _LostUploads:
    """Match syncd's unanswered upload attempts to the files they left behind (invariant 2).

    A match has the attempt's filename (as sent), size and purpose, was created no earlier
    than the attempt (less :data:`CLOCK_SLACK`) and belongs to nobody (``foreign``: files a
    store lists as another syncd instance's belong to it). Attempts are served
    oldest first, each taking the oldest file that fits; files left over are someone else's.
    No two unresolved uploads share a key (see :func:`_unresolved_uploads`), so the order of
    the files is the order of the attempts.

    Returns the lost uploads to adopt — an entry's first matched attempt of the content its
    intent is for, by (folder, path), with that attempt's time — and the other matches: late
    copies of syncd's own uploads, to delete. For an attempt whose entry no longer waits
    for it, only a file created within :data:`ATTEMPT_HORIZON` seconds of it counts.

    Last, the (folder, path, sent_at) of the attempts that matched nothing although no copy
    of theirs can turn up any more: their entry does not wait for them, and the horizon
    after them closed a whole horizon before ``now``, so this listing (taken well within
    that) shows every file that could be theirs. Only such a listing may let an attempt
    go: a late copy first listed long after it landed — no pass ran in between — is still
    known for syncd's own.
    """
    candidates: dict[tuple[str, int, str], list[RemoteFile]] = {}
    # An answered attempt's file is known for what it is, owned or let go since.
    owned = manifest.owned_ids() | {a.file_id for a in manifest.attempts if a.file_id} | foreign
    for file in remote.files.values():
        if file.id not in owned:
            candidates.setdefault((file.filename, file.bytes, file.purpose), []).append(file)
    for files in candidates.values():
        files.sort(key=lambda f: (f.created_at, f.id))
    found: dict[tuple[str, str], tuple[RemoteFile, float]] = {}
    duplicates: list[tuple[Attempt, RemoteFile]] = []
    expired: set[tuple[str, str, float]] = set()
    for attempt in _attempts(planned, available, manifest):
        key = (attempt.folder, attempt.path)
        entry = manifest.entries.get(key)
        wanted = (
            entry is not None
            and entry.state is State.UPLOADING
            and entry.intent_sha256 == attempt.sha256
            and key not in found
        )
        assert attempt.purpose is not None  # filled in by _attempts
        files = candidates.get((attempt.filename, attempt.size, attempt.purpose), [])
        latest = math.inf if wanted else attempt.sent_at + ATTEMPT_HORIZON
        for i, file in enumerate(files):
            if attempt.sent_at - CLOCK_SLACK <= file.created_at <= latest:
                if wanted:
                    found[key] = (files.pop(i), attempt.sent_at)
                else:
                    duplicates.append((attempt, files.pop(i)))
                break
        else:
            if latest < now - ATTEMPT_HORIZON:
                expired.add((attempt.folder, attempt.path, attempt.sent_at))
    return found, duplicates, frozenset(expired)


def _unresolved_uploads(
    planned: Mapping[str, LocalFolder],
    manifest: Manifest,
    resolved: set[tuple[str, float]],
    now: float,
) -> dict[_UploadKey, set[tuple[str, str, str]]]:
    """The upload attempts this listing did not resolve, by what their file would be known
    by: (folder, path, sha256) of each.

    Two unresolved uploads with one key could not be told apart when their files turn up
    (``created_at`` has whole seconds), so while one is unresolved no other upload with its
    key is sent — in any folder, planned in this pass or not — for at most
    :data:`ATTEMPT_HORIZON` after the attempt. ``resolved``: the (path, time) of the attempts
    matched in this plan.
    """
    held: dict[_UploadKey, set[tuple[str, str, str]]] = {}
    every = _attempts(planned, set(planned), manifest) + [
        a for a in manifest.attempts if a.folder not in planned and a.file_id is None
    ]
    for attempt in sorted(every, key=lambda a: (a.sent_at, a.folder, a.path)):
        # Past the horizon an attempt holds nothing back, even one that is still waited for
        # (a request that never left, cut off by a crash, would otherwise hold for ever).
        if (attempt.path, attempt.sent_at) in resolved or attempt.sent_at < now - ATTEMPT_HORIZON:
            continue
        key = (attempt.filename, attempt.size, attempt.purpose)
        held.setdefault(key, set()).add((attempt.folder, attempt.path, attempt.sha256))
    return held


# --- one folder ---------------------------------------------------------------------------------


def _plan_folder(folder: LocalFolder, ctx: _Context) -> _FolderSteps:
    spec = folder.spec
    decided = _FolderSteps(spec, ctx.targets[spec.name])
    entries = ctx.entries.get(spec.name, {})
    # A removed path whose content is still here under another name is a rename: no loss.
    kept = {f.sha256 for f in folder.files.values() if f.problem is None}
    for target in spec.targets:
        if target in ctx.remote.unavailable:
            message = f"{spec.name}: {target} is skipped: {ctx.remote.unavailable[target]}"
            decided.problems.append(FolderProblem(spec.name, "target_unavailable", message))
    moves = _renames(folder, entries, ctx)
    moved = set(moves) | {src for src, _ in moves.values()}
    for dst, (src, entry) in sorted(moves.items()):
        local = folder.files[dst]
        assert entry.file_id is not None  # only synced entries move
        move = Move(
            spec.name,
            src,
            dst,
            entry.file_id,
            local.size,
            local.mtime_ns,
            local.inode,
            local.ctime_ns,
        )
        decided.add(_Phase.ADD, dst, move)
    for path in sorted((set(folder.files) | set(entries)) - moved):
        _plan_path(decided, path, folder.files.get(path), entries.get(path), kept, ctx)
    return decided


def _renames(
    folder: LocalFolder, entries: Mapping[str, Entry], ctx: _Context
) -> dict[str, tuple[str, Entry]]:
    """Renames to carry out without an upload: new path -> (old path, its entry).

    Only in a folder with a vector store, whose files carry their path as an attribute (an
    assistant knows a file by the name it was uploaded with, so there a rename is uploaded
    again). A new valid path takes the synced entry of a removed path with the same content
    and a file still on the service; pairs are made in path order.
    """
    if not any(target_kind(t) == "store" for t in ctx.targets[folder.spec.name]):
        return {}
    name = folder.spec.name
    gone: dict[str, list[tuple[str, Entry]]] = {}
    for path in sorted(set(entries) - set(folder.files)):
        entry = entries[path]
        if (
            entry.state is State.SYNCED
            and entry.file_id in ctx.remote.files
            and (name, path) not in ctx.orphans
        ):
            gone.setdefault(entry.sha256, []).append((path, entry))
    moves: dict[str, tuple[str, Entry]] = {}
    for path in sorted(set(folder.files) - set(entries)):
        local = folder.files[path]
        candidates = gone.get(local.sha256)
        if local.problem is None and candidates:
            moves[path] = candidates.pop(0)
    return moves


def _plan_path(
    out: _FolderSteps,
    path: str,
    local: LocalFile | None,
    entry: Entry | None,
    kept: set[str],
    ctx: _Context,
) -> None:
    """The decision table for one path."""
    name = out.spec.name
    if entry is None:
        assert local is not None  # the path came from one side or the other
        if local.problem is not None:
            out.add(_Phase.NOTE, path, Reject(name, path, local.sha256, local.problem))
        else:
            _upload(out, path, local, None, ctx)
        return
    orphan = ctx.orphans.get((name, path))
    if orphan is not None:
        _adopt_lost_upload(out, path, local, entry, *orphan)
    elif local is None:
        if entry.file_id is not None:
            _retire(out, path, entry, kept, ctx)
        else:
            out.add(_Phase.FORGET, path, Forget(name, path=path))
    elif local.problem is not None:
        _reject(out, path, local, entry, kept, ctx)
    elif entry.state is State.REJECTED and entry.file_id is None and entry.sha256 == local.sha256:
        # Refused content (by the service, or by its ingestion) is not sent again until it
        # changes: a re-upload loop is what the tools people use today get wrong.
        _restat_if_moved(out, path, local, entry)
    elif (
        entry.file_id is not None
        and entry.state is not State.REJECTED
        and entry.sha256 == local.sha256
        and entry.file_id in ctx.remote.files
        # A folder reconfigured to another purpose needs its files uploaded for it.
        and ctx.remote.files[entry.file_id].purpose == out.spec.purpose
    ):
        failure = _ingestion_failure(out, entry.file_id, ctx)
        if failure is not None:
            _ingestion_failed(out, path, local, entry, failure, ctx)
        else:
            _in_sync(out, path, local, entry, ctx)
    elif (
        # A failed upload in its backoff, or an unanswered one in its grace period: the
        # service may still store it, and the next listing may show it.
        entry.state in (State.FAILED, State.UPLOADING)
        and entry.next_attempt_at is not None
        and entry.next_attempt_at > ctx.now
    ):
        out.waiting += 1
    else:
        # New content, never uploaded, its remote file deleted outside syncd or uploaded for
        # another purpose. The old id, if any, is always passed on as ``replaces``: the
        # executor retires it (a vanished one is then forgotten), so no id syncd owns is
        # ever dropped silently.
        _upload(out, path, local, entry.file_id, ctx)


def _upload(
    out: _FolderSteps, path: str, local: LocalFile, replaces: str | None, ctx: _Context
) -> None:
    """Upload ``local`` — unless another path's unresolved upload holds its key: then it
    waits (see :func:`_unresolved_uploads`)."""
    if ctx.held_by_another(out.spec.name, path, local, out.spec.purpose):
        out.waiting += 1
        out.held.append(path)
        return
    upload = Upload(out.spec.name, path, local.sha256, local.size, out.targets, replaces)
    out.add(_Phase.ADD, path, upload)


def _adopt_lost_upload(
    out: _FolderSteps,
    path: str,
    local: LocalFile | None,
    entry: Entry,
    orphan: RemoteFile,
    sent_at: float,
) -> None:
    """Take the file an unanswered upload left behind as the entry's file (invariant 2).

    Attach it only if the local file still holds the content it was uploaded from; otherwise
    the next pass replaces or retires it like any out-of-date file, and until then the
    version it replaces stays attached.
    """
    assert entry.intent_sha256 is not None  # only complete intents are matched
    current = local is not None and local.problem is None and local.sha256 == entry.intent_sha256
    attach_to = out.targets if current else ()
    adopt = Adopt(
        out.spec.name, path, orphan.id, entry.intent_sha256, attach_to, entry.file_id, sent_at
    )
    out.add(_Phase.ADD, path, adopt)


def _retire(out: _FolderSteps, path: str, entry: Entry, kept: set[str], ctx: _Context) -> None:
    """Let go of an entry's remote file as the folder's ``on_delete`` says.

    ``Retire`` moves the id from the entry to the retired list (or, for ``keep``, lets go of
    it); the ``Cleanup`` after it does the detaching and deleting, as for any retired id.
    """
    assert entry.file_id is not None
    mode = out.spec.on_delete
    out.add(_Phase.LATE, path, Retire(out.spec.name, path, entry.file_id, mode))
    if mode == "keep":
        return
    if entry.sha256 not in kept:
        out.losses.append(path)
    present = entry.file_id in ctx.remote.files
    detach_from = ctx.detach_from(entry.file_id, out.spec.name)
    cleanup = Cleanup(entry.file_id, detach_from, delete=mode == "delete" and present)
    out.add(_Phase.LATE, path, cleanup)


def _reject(
    out: _FolderSteps,
    path: str,
    local: LocalFile,
    entry: Entry,
    kept: set[str],
    ctx: _Context,
) -> None:
    """Bad input: say so once, and take its previous version off the service.

    The old remote version no longer stands for an eligible local file, so it goes as if the
    file had been deleted (and counts for the delete guard). The Reject runs after the Retire:
    a REJECTED row never holds a remote id.
    """
    if entry.state is State.REJECTED and entry.sha256 == local.sha256 and entry.file_id is None:
        _restat_if_moved(out, path, local, entry)
        return
    if entry.file_id is not None:
        _retire(out, path, entry, kept, ctx)
    assert local.problem is not None
    out.add(_Phase.NOTE, path, Reject(out.spec.name, path, local.sha256, local.problem))


def _ingestion_failure(out: _FolderSteps, file_id: str, ctx: _Context) -> str | None:
    """Why a store of the folder could not ingest the file, if one could not."""
    for target in out.targets:
        found = ctx.store_file(file_id, target)
        if found is not None and found.status == "failed":
            return f"{target} could not ingest it: {found.last_error or 'no reason given'}"
    return None


def _ingestion_failed(
    out: _FolderSteps, path: str, local: LocalFile, entry: Entry, reason: str, ctx: _Context
) -> None:
    """A store could not read the file: it is rejected with the service's words and its
    remote file deleted (it is syncd's, and no store can use it); it is not uploaded again
    until its content changes."""
    assert entry.file_id is not None
    name = out.spec.name
    out.add(_Phase.LATE, path, Retire(name, path, entry.file_id, "delete"))
    detach_from = ctx.detach_from(entry.file_id, name)
    out.add(_Phase.LATE, path, Cleanup(entry.file_id, detach_from, delete=True))
    out.add(_Phase.NOTE, path, Reject(name, path, local.sha256, reason))


def _in_sync(out: _FolderSteps, path: str, local: LocalFile, entry: Entry, ctx: _Context) -> None:
    """The remote file holds the local content: keep its attachments right."""
    assert entry.file_id is not None
    if entry.state is not State.SYNCED:
        # A failed or unanswered upload of content that the remote file already holds
        # (the file was changed back): nothing to upload, the row is synced again.
        adopt = Adopt(out.spec.name, path, entry.file_id, entry.sha256, (), entry.file_id)
        out.add(_Phase.ADD, path, adopt)
    recorded = ctx.recorded.get(entry.file_id, set())
    for target in out.targets:
        found = ctx.store_file(entry.file_id, target)
        # Attaching an attached file answers the attachment: that records a claim on one
        # whose response was lost, so that syncd may detach it later. A cancelled ingestion
        # is attached again.
        if (
            not ctx.listed(entry.file_id, target)
            or target not in recorded
            or (found is not None and found.status == "cancelled")
        ):
            out.add(_Phase.ADD, path, Attach(out.spec.name, path, entry.file_id, target))
        elif found is not None:
            _check_store_file(out, path, local, entry, target, found, ctx)
    configured = set(out.spec.targets)
    for target in sorted(recorded - set(out.targets)):
        if target in ctx.remote.unavailable or ctx.foreign(entry.file_id, target):
            continue
        if target_kind(target) == "store" and target not in configured:
            out.losses.append(path)
        reason = f"{target} is no longer configured for {out.spec.name}"
        out.add(_Phase.LATE, path, Detach(entry.file_id, target, reason))
    _restat_if_moved(out, path, local, entry)


def _check_store_file(
    out: _FolderSteps,
    path: str,
    local: LocalFile,
    entry: Entry,
    store: str,
    found: StoreFile,
    ctx: _Context,
) -> None:
    """An attached store file: its attributes say what they should (a rename, a touch, or
    someone else's edit is put right without ingesting it again); one ingesting for longer
    than the folder allows is reported, and waited for — never uploaded again."""
    assert entry.file_id is not None
    # The local stat: the row takes it with this plan's Restat, if it has one.
    wanted = store_attributes(out.spec, ctx.instance, path, entry.sha256, local.mtime_ns)
    if dict(found.attributes) != wanted:
        retag = Retag(out.spec.name, path, entry.file_id, store, tuple(sorted(wanted.items())))
        out.add(_Phase.ADD, path, retag)
    waited = ctx.now - found.created_at
    if found.status == "in_progress" and waited > out.spec.ingestion_timeout:
        out.problems.append(
            FolderProblem(
                out.spec.name,
                "ingestion_slow",
                f"{out.spec.name}/{path} has been ingesting in {store} for {waited / 60:.0f} min "
                f"(more than ingestion_timeout_seconds = {out.spec.ingestion_timeout:g}); "
                "syncd waits for it and does not upload it again",
            )
        )


def _restat_if_moved(out: _FolderSteps, path: str, local: LocalFile, entry: Entry) -> None:
    now = (local.size, local.mtime_ns, local.inode, local.ctime_ns)
    if now != (entry.size, entry.mtime_ns, entry.inode, entry.ctime_ns):
        restat = Restat(out.spec.name, path, *now)
        out.add(_Phase.NOTE, path, restat)


def _delete_guard(decided: _FolderSteps, ctx: _Context, fraction: float) -> FolderProblem | None:
    """Hold back a folder's removals when they look like an accident (invariant 3).

    Removals are Retires that take content off the service (``delete`` or ``detach``, not a
    rename), and Detaches from a vector store no longer configured. The guard trips when they
    exceed ``fraction`` of the folder's files with a remote id; a single removal never trips
    it. Tripped, those removals (with their Cleanups, and the Rejects that come with a
    rejected file's retirement) are dropped; the rest of the folder goes ahead.
    """
    name = decided.spec.name
    managed = sum(1 for e in ctx.entries.get(name, {}).values() if e.file_id is not None)
    managed += ctx.resting.get(name, 0)
    removals = len(decided.losses)
    if removals <= max(1, fraction * managed):
        return None
    held = set(decided.losses)
    decided.steps = [
        step
        for step in decided.steps
        if not (step.path in held and isinstance(step.action, Retire | Cleanup | Reject | Detach))
    ]
    return FolderProblem(
        name,
        "delete_guard",
        f"would remove {removals} of {managed} files from {name} (limit {fraction:.0%}); "
        "run with --force if that is intended",
    )


# --- retired ids --------------------------------------------------------------------------------


def _plan_retired(manifest: Manifest, available: set[str], ctx: _Context) -> list[_Step]:
    """Clean up the retired ids of the planned folders that are available.

    A retired id of an unavailable folder waits with the rest of that folder. One that is
    gone from the service is forgotten. One that replaced nothing, or whose replacement is
    already attached wherever it is, is detached and (if so recorded) deleted.
    """
    steps: list[_Step] = []
    for file_id in sorted(manifest.retired):
        retired = manifest.retired[file_id]
        if retired.folder not in available:
            continue
        if file_id not in ctx.remote.files:
            steps.append(
                _Step(_Phase.FORGET, retired.folder, "", Forget(retired.folder, None, file_id))
            )
            continue
        detach_from = ctx.detach_from(file_id, retired.folder)
        missing = _replacement_missing(retired, detach_from, ctx)
        if missing:
            assert retired.replaced_by is not None  # nothing is missing without one
            ctx.holding[file_id] = _Holding(retired.folder, retired.replaced_by, missing)
            continue
        cleanup = Cleanup(file_id, detach_from, retired.delete)
        steps.append(_Step(_Phase.LATE, retired.folder, "", cleanup))
    return steps


def _plan_duplicates(ctx: _Context) -> list[_Step]:
    """Late copies of syncd's own uploads: claim each (so it is syncd's to delete) and
    delete it. Nothing is attached to them: nobody was told of them."""
    steps = []
    for attempt, file in ctx.duplicates:
        claim = Duplicate(attempt.folder, attempt.path, file.id, attempt.sent_at)
        steps.append(_Step(_Phase.LATE, attempt.folder, attempt.path, claim))
        cleanup = Cleanup(file.id, (), delete=True)
        steps.append(_Step(_Phase.LATE, attempt.folder, attempt.path, cleanup))
    return steps


def _replacement_missing(
    retired: Retired, detach_from: tuple[str, ...], ctx: _Context
) -> tuple[str, ...]:
    """The targets where a retired file must stay until its replacement serves there:
    attached to an assistant, ingested (``completed``) in a store — so a search never stops
    finding the document (invariant 4).

    Only a replacement that is still an entry's file and still exists is waited for, and
    only on the folder's configured targets that still hold the old file: anywhere else
    taking it away leaves no gap.
    """
    new = retired.replaced_by
    if new is None or new not in ctx.live or new not in ctx.remote.files:
        return ()
    configured = ctx.targets[retired.folder]
    return tuple(a for a in detach_from if a in configured and not ctx.ready(new, a))


# --- the assistant file limit -------------------------------------------------------------------


def _fit_assistant_limits(steps: list[_Step], ctx: _Context, limit: int) -> list[FolderProblem]:
    """Keep every assistant within its file limit while the additions run.

    Where the additions would take an assistant over ``limit``: first the removals already
    planned for it move ahead of the additions; then old versions are detached from it before
    their successors are attached — the one case where a version leaves before the next one
    arrives (invariant 4), each making room for exactly its successor; new files that still
    do not fit are uploaded but not attached to it, with a problem that says so.
    """
    problems: list[FolderProblem] = []
    assistants = sorted(
        {
            a
            for s in steps
            if s.phase is _Phase.ADD and isinstance(s.action, Upload | Adopt | Attach)
            for a in _attaches(s.action)
            if target_kind(a) == "assistant"
        }
    )
    for assistant in assistants:
        listed = ctx.remote.attachments.get(assistant, frozenset())
        adds = sorted(
            (s for s in steps if s.phase is _Phase.ADD and _adds(s.action, assistant, listed)),
            key=_Step.sort_key,
        )
        freed = {
            file_id
            for s in steps
            if s.phase is _Phase.EARLY and (file_id := _frees(s.action, assistant, ctx)) is not None
        }
        need = len(listed) + len(adds) - len(freed) - limit
        if need > 0:
            need -= _move_removals_ahead(steps, assistant, freed, need, ctx)
        if need > 0:
            detached, successors = _detach_old_versions_first(
                steps, adds, assistant, freed, need, limit, ctx
            )
            need -= detached
            if need > 0:
                kept = {id(step) for step in successors}
                newcomers = [s for s in adds if id(s) not in kept]
                problems += _skip_attachments(steps, newcomers[-need:], assistant, limit)
    return problems


def _attaches(action: Action) -> tuple[str, ...]:
    """The targets an addition attaches its file to."""
    if isinstance(action, Attach):
        return (action.target,)
    return action.attach_to if isinstance(action, Upload | Adopt) else ()


def _adds(action: Action, assistant: str, listed: frozenset[str]) -> bool:
    """Whether ``action`` takes one more of ``assistant``'s slots."""
    if assistant not in _attaches(action):
        return False
    return isinstance(action, Upload) or getattr(action, "file_id", None) not in listed


def _frees(action: Action, assistant: str, ctx: _Context) -> str | None:
    """The file whose slot at ``assistant`` the action frees, if it frees one."""
    if isinstance(action, Detach):
        frees = action.target == assistant
    elif isinstance(action, Cleanup):
        frees = assistant in action.detach_from
    else:
        return None
    return action.file_id if frees and ctx.listed(action.file_id, assistant) else None


def _move_removals_ahead(
    steps: list[_Step], assistant: str, freed: set[str], need: int, ctx: _Context
) -> int:
    """Move planned removals that free a slot at ``assistant`` ahead of the additions."""
    moved = 0
    for step in sorted((s for s in steps if s.phase is _Phase.LATE), key=_Step.sort_key):
        if moved == need:
            break
        file_id = _frees(step.action, assistant, ctx)
        if file_id is None or file_id in freed:
            continue
        for other in steps:
            # The Retire that hands the id to its Cleanup goes with it.
            if (other.folder, other.path) == (step.folder, step.path) and isinstance(
                other.action, Retire
            ):
                other.phase = _Phase.EARLY
        step.phase = _Phase.EARLY
        freed.add(file_id)
        moved += 1
    return moved


def _detach_old_versions_first(
    steps: list[_Step],
    adds: list[_Step],
    assistant: str,
    freed: set[str],
    need: int,
    limit: int,
    ctx: _Context,
) -> tuple[int, list[_Step]]:
    """Detach old versions from a full assistant ahead of their successors' attachments.

    Returns how many were detached, and the additions whose old version's slot is theirs:
    those are never the ones left unattached.
    """
    pairs: list[tuple[tuple[str, str, str], _Step]] = []  # ((folder, path, old id), successor)
    for step in adds:
        action = step.action
        if isinstance(action, Attach):
            for old, holding in ctx.holding.items():
                if holding.replacement == action.file_id and assistant in holding.assistants:
                    pairs.append(((step.folder, step.path, old), step))
        elif (
            isinstance(action, Upload | Adopt)
            and action.replaces is not None
            and ctx.listed(action.replaces, assistant)
        ):
            pairs.append(((step.folder, step.path, action.replaces), step))
    detached = 0
    successors = []
    reason = f"{assistant} is at its {limit}-file limit: making room for the new version"
    for (folder, path, old), step in sorted(pairs, key=lambda pair: pair[0]):
        if old not in freed:
            if detached == need:
                continue
            steps.append(_Step(_Phase.EARLY, folder, path, Detach(old, assistant, reason)))
            freed.add(old)
            detached += 1
        successors.append(step)
    return detached, successors


def _skip_attachments(
    steps: list[_Step], skipped: list[_Step], assistant: str, limit: int
) -> list[FolderProblem]:
    """Leave ``assistant`` out of the additions that do not fit, and say so."""
    problems = []
    for step in skipped:
        action = step.action
        if isinstance(action, Attach):
            steps.remove(step)
            what = "is not attached to it"
        else:
            assert isinstance(action, Upload | Adopt)
            step.action = replace(
                action, attach_to=tuple(a for a in action.attach_to if a != assistant)
            )
            what = (
                "is uploaded but not attached to it"
                if isinstance(action, Upload)
                else ("is not attached to it")
            )
        problems.append(
            FolderProblem(
                step.folder,
                "assistant_full",
                f"assistant {assistant} is at its {limit}-file limit; "
                f"{where(step.folder, step.path)} {what}",
                assistant=assistant,
                path=step.path,
            )
        )
    return problems
