"""An in-memory model of syncd's world, and the reference model of its executor.

The world is three things the planner reads — local folders, the manifest, the service — and
a clock. :class:`Executor` applies a plan's actions to them. It is the specification of
``syncd/executor.py``: the real executor must change the manifest and the service exactly as
this one does, action by action, fault by fault.

Order
    Run ``plan.stages(actions)`` one stage after another. Inside a stage actions may run
    concurrently, but actions on the same remote file id or the same (folder, path) run in
    plan order, and uploads with the same (filename, bytes, purpose) run one after another
    (so that lost uploads are found in the order of their intents). This model runs
    everything in plan order, which is one such schedule.

Staleness
    Each action first checks that the manifest still looks as planned — the row's file id is
    the one the action names, the retired id is still retired — and is skipped if not. The
    next plan sees the new state. An action never forces its way.

Faults
    A request either happens or not, and its answer either arrives or not. A refusal that
    reaches the executor is final for this pass (the API client has already retried what it
    retries). A 404 from a detach or a delete means the job is done. An answer that never
    arrives (a timeout, a dropped connection, a crash of the process) leaves the manifest as
    it was before the request: every commit below is made only on an answer.

Upload(folder, path, sha256, size, attach_to, replaces)
    1. Skip unless the local file exists, is still valid and hashes to ``sha256``
       (invariant 5), and the row's file id (None without a row) is ``replaces``.
    2. Commit the intent before the request (invariant 2): state UPLOADING, intent_sha256,
       intent_size, intent_at = now. An existing row keeps its sha256, stat and file id (they
       still describe its last synced content); a new row takes the uploaded content's
       sha256 and stat, and no file id. A row's stat and sha256 are always written together.
    3. createFile(basename(path), purpose of the folder).
       Answered with id N: commit row SYNCED, file_id N, sha256 and stat of what was sent,
       intent and retry fields cleared; and if ``replaces``, retired[replaces] =
       Retired(replaces, folder, delete=True, replaced_by=N) in the same commit.
       Refused: commit row FAILED, attempts + 1, next_attempt_at = now + backoff, last_error,
       intent cleared; sha256, stat and file id unchanged. Stop.
       Every request is recorded as an attempt (folder, path, filename, size, purpose,
       sha256, sent_at = now) before it is sent; a refusal closes it; an answer with id N
       keeps it, answered (file_id = N), so that N is never taken for another attempt's copy.
       No answer: keep the attempt, set next_attempt_at = now + GRACE (the service may still
       store it), and leave the intent for the next plan to resolve; never send createFile
       again before a plan has looked for the lost file. Stop. Until then no other Upload of this
       run with the same (filename, bytes, purpose) is sent either: it is skipped, and the
       plan after the listing decides again (two unresolved uploads with one key could not be
       told apart when their files turn up).
    4. Attach N to each of ``attach_to`` (as Attach does).
    5. If ``replaces``, every attach succeeded and ``attach_to`` covers every assistant
       recorded for ``replaces``: clean ``replaces`` up now (as Cleanup, detaching it from
       its recorded assistants, deleting it). Otherwise it stays retired for the planner,
       which waits until N is attached where the old file is (invariant 4).

Adopt(folder, path, file_id, sha256, attach_to, replaces)
    Skip unless the row exists and its file id is ``replaces``. Commit row SYNCED, file_id,
    sha256, intent and retry fields cleared; stat kept when sha256 is the row's, otherwise
    mtime_ns and inode set to 0 so that the next scan hashes the file again. If ``replaces``
    is another id: retired[replaces] = Retired(replaces, folder, delete=True,
    replaced_by=file_id) in the same commit. Then steps 4 and 5 of Upload.

Adopt answers the attempt it names (``sent_at``) with ``file_id``, as an answered upload
does: another unanswered attempt with its key is then never matched to that file, even once it
is let go of (``on_delete`` keep or detach) — which attempt's request made it is unknown when
a re-sent copy landed first.

Duplicate(folder, path, file_id, sent_at)
    Skip if ``file_id`` is already syncd's. One commit, no request: retired[file_id] =
    Retired(file_id, folder, delete=True), and the attempt closed. The Cleanup after it
    deletes the file.

Attach(folder, path, file_id, target)
    Skip unless the row's file id is ``file_id``. createAssistantFile; attaching an attached
    file answers the attachment, so this also claims an attachment whose answer was lost.
    Answered: record (file_id, target). Refused (the assistant is full, say): nothing
    is recorded; the next plan decides again.

Detach(file_id, target, reason)
    Skip unless ``file_id`` is syncd's (an entry's file id or retired). deleteAssistantFile
    (404 = done), then drop the record (file_id, target).

Retire(folder, path, file_id, mode)
    Skip unless the row's file id is ``file_id``. One commit, no request: drop the row; for
    ``keep`` drop the records of ``file_id`` too (it is no longer syncd's, nor are its
    attachments); otherwise retired[file_id] = Retired(file_id, folder, delete=mode ==
    "delete"). The Cleanup the plan puts after it does the detaching and deleting.

Cleanup(file_id, detach_from, delete)
    Skip unless ``file_id`` is retired. For each assistant: deleteAssistantFile (404 =
    done), drop that record. Then, if ``delete``, deleteFile (404 = done). Then one commit:
    drop the retired row and every record of ``file_id``. A failure stops the action and
    leaves the retired row for the next plan.

Forget(folder, path=...)
    Skip unless the row exists and has no file id; drop it.
Forget(folder, file_id=...)
    Skip unless ``file_id`` is retired; drop the retired row and every record of it.

Reject(folder, path, sha256, reason)
    Skip if the row holds a file id (its Retire did not happen). Commit row REJECTED, sha256,
    last_error = reason, stat of the local file if it still hashes to sha256 (else 0s),
    no file id, intent and retry fields cleared.

Restat(folder, path, size, mtime_ns, inode)
    Skip unless the row exists; set its stat.

Move(folder, src, dst, file_id, size, mtime_ns, inode, ctime_ns)
    Skip unless the src row's file id is ``file_id`` and dst has no row. One commit, no request:
    the row moves to dst with the given stat.

Retag(folder, path, file_id, target, attributes)
    Skip unless the row's file id is ``file_id``. updateVectorStoreFile with ``attributes``
    (404: skip).

Vector stores (targets ``vs_…``)
    Attaching to a store (in Upload, Adopt or Attach) sends the file's attributes —
    ``store_attributes`` of the row as it is then — and, answered, records (file_id, store) at
    once. An attachment answered ``cancelled`` is detached and attached again. Ingestion is then
    followed to its end; this model's service ends it at once unless it hangs. ``completed``:
    for Upload and Adopt, once every store of ``attach_to`` completed (and every assistant is
    attached), ``replaces`` is cleaned up as in step 5. ``failed``: the row becomes REJECTED
    with the reason, its file id retired (delete) and the versions it replaced let go as its
    folder's ``on_delete`` says. Still ``in_progress``: nothing more; the planner waits.
    Detaching from a store is deleteVectorStoreFile (404 = done); a Cleanup that deletes the
    file sends no store detach (deleting a file takes it out of every store).
"""

from __future__ import annotations

import enum
import hashlib
import posixpath
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from syncd.engine.model import (
    Action,
    Adopt,
    Attach,
    Attempt,
    AttributeValue,
    Cleanup,
    Detach,
    Duplicate,
    Entry,
    FolderSpec,
    Forget,
    LocalFile,
    LocalFolder,
    Manifest,
    Move,
    OnDelete,
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
from syncd.engine.planner import ATTEMPT_HORIZON, plan, stages
from syncd.engine.scan import known_file

#: Seconds an unanswered upload waits before it is sent again (the service may still store it).
GRACE = 10.0
#: Seconds before a failed upload is tried again: BACKOFF * 2 ** (attempts - 1), capped.
BACKOFF = 30.0
MAX_BACKOFF = 3600.0


def sha(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


#: This syncd's instance id in the model; store files carrying another are someone else's.
INSTANCE = "syncd-sim"
#: Content that uploads fine but that a store cannot ingest.
UNREADABLE = "!!"


def problem_of(content: str) -> str | None:
    """The model's validator: the service refuses empty files."""
    return "the file is empty" if not content else None


@dataclass
class StoredAttachment:
    """A file in a vector store."""

    status: str
    created_at: int
    attributes: dict[str, AttributeValue]
    by_syncd: bool


class Fault(enum.Enum):
    """What happens to one request."""

    OK = "ok"
    FAIL = "fail"  # refused before it had any effect
    LOST = "lost"  # it had its effect, but the answer never arrived
    LATE = "late"  # no answer, and its effect comes later (an upload stored after a timeout)
    CRASH = "crash"  # the process dies before sending it


class Crash(Exception):
    """The process died: the executor stops where it is."""


class Refused(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "unavailable", "not_found" or "limit"


class NoAnswer(Exception):
    """The request had its effect; its answer was lost."""


# --- the service --------------------------------------------------------------------------------


@dataclass
class StoredFile:
    id: str
    filename: str
    content: str
    purpose: str
    created_at: int
    by_syncd: bool


class Service:
    """The Files and Assistant-files operations, in memory, with injectable faults.

    Calls made by syncd (``syncd=True``) take the next fault from ``faults``; calls made by
    someone else never fail. Deleting a file detaches it everywhere, and attaching an
    attached file answers the attachment, as the real service (and the emulator) do.
    """

    def __init__(
        self,
        world: World,
        assistants: tuple[str, ...],
        limit: int,
        stores: tuple[str, ...] = (),
    ) -> None:
        self._world = world
        self.limit = limit
        self.files: dict[str, StoredFile] = {}
        # assistant -> file id -> True when syncd made the attachment
        self.attachments: dict[str, dict[str, bool]] = {a: {} for a in assistants}
        # store -> file id -> the store's file
        self.stores: dict[str, dict[str, StoredAttachment]] = {v: {} for v in stores}
        self.hanging = False  # new ingestions stay in_progress until this is cleared
        self.faults: list[Fault] = []
        self.unanswered: set[tuple[str, str]] = set()  # (assistant, file id) attached unanswered
        self._next_id = 0
        self.violations: list[str] = []  # things syncd did to what is not its own
        self.late: list[
            tuple[str, str, str]
        ] = []  # uploads to be stored later: name, content, purpose

    def _request(self, syncd: bool) -> Fault:
        if not syncd or not self.faults:
            return Fault.OK
        fault = self.faults.pop(0)
        if fault is Fault.CRASH:
            raise Crash
        if fault is Fault.FAIL:
            raise Refused("unavailable")
        return fault

    @staticmethod
    def _answer(fault: Fault) -> None:
        if fault in (Fault.LOST, Fault.LATE):
            raise NoAnswer

    def land_late(self) -> None:
        """The uploads the service was still storing are stored now."""
        late, self.late = self.late, []
        for filename, content, purpose in late:
            self.create_file(filename, content, purpose, syncd=False)
            self.files[f"file-{self._next_id:04d}"].by_syncd = True

    def create_file(self, filename: str, content: str, purpose: str, *, syncd: bool) -> str:
        fault = self._request(syncd)
        if fault is Fault.LATE:
            self.late.append((filename, content, purpose))
            raise NoAnswer
        self._next_id += 1
        file_id = f"file-{self._next_id:04d}"
        created_at = int(self._world.clock)
        self.files[file_id] = StoredFile(file_id, filename, content, purpose, created_at, syncd)
        self._answer(fault)
        return file_id

    def delete_file(self, file_id: str, *, syncd: bool) -> None:
        fault = self._request(syncd)
        stored = self.files.get(file_id)
        if stored is None:
            raise Refused("not_found")
        if syncd and not stored.by_syncd:
            self.violations.append(f"deleted someone else's file {file_id}")
        del self.files[file_id]
        for attached in self.attachments.values():
            attached.pop(file_id, None)
        for store in self.stores.values():
            store.pop(file_id, None)
        self._answer(fault)

    def attach(self, assistant: str, file_id: str, *, syncd: bool) -> None:
        fault = self._request(syncd)
        if file_id not in self.files:
            raise Refused("not_found")
        attached = self.attachments[assistant]
        if file_id not in attached:
            if len(attached) >= self.limit:
                raise Refused("limit")
            attached[file_id] = syncd
            # LATE is an upload's fault; for any other request it is a lost answer.
            if fault in (Fault.LOST, Fault.LATE):
                self.unanswered.add((assistant, file_id))
        self._answer(fault)

    def detach(self, assistant: str, file_id: str, *, syncd: bool) -> None:
        fault = self._request(syncd)
        attached = self.attachments[assistant]
        if file_id not in attached:
            raise Refused("not_found")
        if syncd and not attached[file_id]:
            self.violations.append(f"detached someone else's attachment {file_id} @ {assistant}")
        del attached[file_id]
        self._answer(fault)

    # vector stores
    def attach_store(
        self, store: str, file_id: str, attributes: dict[str, AttributeValue], *, syncd: bool
    ) -> str:
        """Attach; answers the store file's status once its ingestion ended (at once here,
        unless ingestion hangs). An attached file is answered as it is."""
        fault = self._request(syncd)
        files = self.stores.get(store)
        if files is None or file_id not in self.files:
            raise Refused("not_found")
        if file_id not in files:
            content = self.files[file_id].content
            status = "failed" if content == UNREADABLE else "completed"
            if self.hanging:
                status = "in_progress"
            created = int(self._world.clock)
            files[file_id] = StoredAttachment(status, created, dict(attributes), syncd)
            if fault in (Fault.LOST, Fault.LATE):
                self.unanswered.add((store, file_id))
        self._answer(fault)
        return files[file_id].status

    def detach_store(self, store: str, file_id: str, *, syncd: bool) -> None:
        fault = self._request(syncd)
        files = self.stores.get(store)
        if files is None or file_id not in files:
            raise Refused("not_found")
        if syncd and files[file_id].attributes.get("syncd_instance") != INSTANCE:
            self.violations.append(f"detached someone else's store file {file_id} @ {store}")
        del files[file_id]
        self._answer(fault)

    def update_attributes(
        self, store: str, file_id: str, attributes: dict[str, AttributeValue], *, syncd: bool
    ) -> None:
        fault = self._request(syncd)
        files = self.stores.get(store)
        if files is None or file_id not in files:
            raise Refused("not_found")
        if syncd and not files[file_id].by_syncd:
            self.violations.append(f"changed someone else's store file {file_id} @ {store}")
        files[file_id].attributes = dict(attributes)
        self._answer(fault)

    def snapshot(self) -> Remote:
        files = {
            f.id: RemoteFile(f.id, f.filename, len(f.content), f.purpose, f.created_at)
            for f in self.files.values()
        }
        attachments = {a: frozenset(ids) for a, ids in self.attachments.items()}
        store_files = {
            store: {
                file_id: StoreFile(
                    a.status,  # type: ignore[arg-type]
                    a.created_at,
                    dict(a.attributes),
                    "The file could not be parsed." if a.status == "failed" else None,
                )
                for file_id, a in found.items()
            }
            for store, found in self.stores.items()
        }
        attachments |= {store: frozenset(found) for store, found in self.stores.items()}
        return Remote(files, attachments, store_files)


# --- the manifest and the local folders ---------------------------------------------------------


@dataclass
class Records:
    """The manifest, mutable."""

    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    attachments: set[tuple[str, str]] = field(default_factory=set)
    retired: dict[str, Retired] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    def snapshot(self) -> Manifest:
        return Manifest(
            dict(self.entries),
            frozenset(self.attachments),
            dict(self.retired),
            tuple(sorted(self.attempts, key=lambda a: (a.sent_at, a.folder, a.path))),
        )

    def close_attempt(self, folder: str, path: str, sent_at: float) -> None:
        self.attempts = [
            a for a in self.attempts if (a.folder, a.path, a.sent_at) != (folder, path, sent_at)
        ]

    def answer_attempt(self, folder: str, path: str, sent_at: float, file_id: str) -> None:
        self.attempts = [
            replace(a, file_id=file_id)
            if (a.folder, a.path, a.sent_at) == (folder, path, sent_at)
            else a
            for a in self.attempts
        ]

    def prune_attempts(self, before: float, configured: Collection[str]) -> None:
        """Forget the attempts sent before ``before`` that no plan reads again: unanswered
        ones of folders not ``configured``, answered ones once no unanswered attempt has their
        filename and size (as ``ManifestDB.prune_attempts``)."""
        kept = [
            a
            for a in self.attempts
            if a.sent_at >= before or a.file_id is not None or a.folder in configured
        ]
        unanswered = {(a.filename, a.size) for a in kept if a.file_id is None}
        self.attempts = [
            a
            for a in kept
            if a.sent_at >= before or a.file_id is None or (a.filename, a.size) in unanswered
        ]

    def close_attempts(self, attempts: Collection[tuple[str, str, float]]) -> None:
        """Close the attempts a plan found no copy can turn up for (``Plan.expired``)."""
        self.attempts = [a for a in self.attempts if (a.folder, a.path, a.sent_at) not in attempts]

    def owns(self, file_id: str) -> bool:
        return file_id in self.retired or any(e.file_id == file_id for e in self.entries.values())

    def forget(self, file_id: str) -> None:
        self.retired.pop(file_id, None)
        self.attachments = {(f, a) for f, a in self.attachments if f != file_id}

    def assistants_of(self, file_id: str) -> set[str]:
        return {a for f, a in self.attachments if f == file_id}


@dataclass
class LocalState:
    content: str
    mtime_ns: int
    inode: int


class World:
    """Folders on a fake disk, the manifest, the service and a clock, wired to the planner."""

    def __init__(
        self,
        specs: list[FolderSpec],
        assistants: tuple[str, ...],
        limit: int,
        stores: tuple[str, ...] = (),
    ) -> None:
        self.clock = 1_000_000.0
        self.specs = {spec.name: spec for spec in specs}
        self.local: dict[str, dict[str, LocalState]] = {spec.name: {} for spec in specs}
        self.unavailable: set[str] = set()
        self.records = Records()
        self.service = Service(self, assistants, limit, stores)
        self.released: set[str] = set()  # ids syncd let go of on purpose (keep, detach)
        self._stamp = 0

    # local changes
    def _next_stamp(self) -> int:
        self._stamp += 1
        return self._stamp

    def write(self, folder: str, path: str, content: str) -> None:
        files = self.local[folder]
        inode = files[path].inode if path in files else self._next_stamp()
        files[path] = LocalState(content, self._next_stamp(), inode)

    def delete(self, folder: str, path: str) -> None:
        del self.local[folder][path]

    def rename(self, folder: str, src: str, dst: str) -> None:
        files = self.local[folder]
        files[dst] = files.pop(src)

    def touch(self, folder: str, path: str) -> None:
        state = self.local[folder][path]
        state.mtime_ns = self._next_stamp()

    def read(self, folder: str, path: str) -> LocalState | None:
        return self.local[folder].get(path)

    # the planner's inputs
    def scan(self) -> list[LocalFolder]:
        folders = []
        for name, spec in sorted(self.specs.items()):
            if name in self.unavailable:
                folders.append(LocalFolder(spec, {}, error="the folder's disk is not mounted"))
                continue
            if any(v not in self.service.stores for v in spec.vector_stores):
                # As the real pass: a configured store that is gone skips its folder.
                folders.append(LocalFolder(spec, {}, error="a vector store does not exist"))
                continue
            files = {path: self._scan_file(name, path, s) for path, s in self.local[name].items()}
            folders.append(LocalFolder(spec, files))
        return folders

    def _scan_file(self, folder: str, path: str, state: LocalState) -> LocalFile:
        """Hash only when the stat differs from the manifest's, as the real scan does: a row
        whose stat and sha256 disagree shows up as wrong content on the service."""
        stat = (len(state.content), state.mtime_ns, state.inode)
        entry = self.records.entries.get((folder, path))
        if entry is not None and (entry.size, entry.mtime_ns, entry.inode) == stat:
            return known_file(entry)
        return LocalFile(path, *stat, sha(state.content), problem_of(state.content))

    def begin_pass(self) -> None:
        """What a pass does before it plans (``Engine._settle_attempts``): forget the attempts
        no plan reads again."""
        self.records.prune_attempts(self.clock - ATTEMPT_HORIZON, set(self.specs))

    def plan(self, *, force: bool = False) -> Plan:
        return plan(
            self.scan(),
            self.records.snapshot(),
            self.service.snapshot(),
            now=self.clock,
            force=force,
            assistant_file_limit=self.service.limit,
            instance=INSTANCE,
        )


# --- the executor -------------------------------------------------------------------------------


class Executor:
    """Applies actions to a :class:`World` with the semantics in the module docstring."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.records = world.records
        self.service = world.service

    def run(self, actions: tuple[Action, ...], *, stop_after: int | None = None) -> None:
        """Run ``actions`` stage by stage; stop after ``stop_after`` of them, or at a crash."""
        done = 0
        unresolved: set[tuple[str, int, str]] = set()
        for stage in stages(actions):
            for action in stage:
                if stop_after is not None and done >= stop_after:
                    return
                done += 1
                key = self._key(action) if isinstance(action, Upload) else None
                if key in unresolved:
                    continue
                try:
                    self.apply(action)
                except Crash:
                    return
                except NoAnswer:
                    if key is not None:
                        unresolved.add(key)
                except Refused:
                    pass  # this action stops; the next plan looks again

    def _key(self, action: Upload) -> tuple[str, int, str]:
        purpose = self.world.specs[action.folder].purpose
        return (posixpath.basename(action.path), action.size, purpose)

    def apply(self, action: Action) -> None:
        handler = getattr(self, f"_{type(action).__name__.lower()}")
        handler(action)

    # helpers
    def _row(self, folder: str, path: str) -> Entry | None:
        return self.records.entries.get((folder, path))

    def _put(self, entry: Entry) -> None:
        self.records.entries[(entry.folder, entry.path)] = entry

    def _attach_all(self, folder: str, path: str, file_id: str, targets: tuple[str, ...]) -> bool:
        """Attach to every target; whether each ended attached (completed in a store)."""
        ok = True
        for target in targets:
            try:
                if target_kind(target) == "store":
                    ok = self._attach_store(folder, path, file_id, target) and ok
                    row = self._row(folder, path)
                    if row is None or row.file_id != file_id:
                        return False  # rejected: its ingestion failed
                    continue
                self.service.attach(target, file_id, syncd=True)
            except (Refused, NoAnswer):
                ok = False
                continue
            self.records.attachments.add((file_id, target))
        return ok

    def _attach_store(self, folder: str, path: str, file_id: str, store: str) -> bool:
        row = self._row(folder, path)
        assert row is not None
        spec = self.world.specs[folder]
        attributes = store_attributes(spec, INSTANCE, path, row.sha256, row.mtime_ns)
        status = self.service.attach_store(store, file_id, attributes, syncd=True)
        if status == "cancelled":
            self.service.detach_store(store, file_id, syncd=True)
            status = self.service.attach_store(store, file_id, attributes, syncd=True)
        self.records.attachments.add((file_id, store))
        if status == "failed":
            self._reject_remote(folder, path, file_id, f"{store} could not ingest it")
        return status == "completed"

    def _reject_remote(self, folder: str, path: str, file_id: str, reason: str) -> None:
        row = self._row(folder, path)
        if row is None or row.file_id != file_id:
            return
        on_delete: OnDelete = self.world.specs[folder].on_delete
        for old in [r.file_id for r in self.records.retired.values() if r.replaced_by == file_id]:
            self._let_go(folder, old, on_delete)
        self.records.retired[file_id] = Retired(file_id, folder, True)
        self._put(replace(row, state=State.REJECTED, file_id=None, last_error=reason))

    def _let_go(self, folder: str, file_id: str, mode: OnDelete) -> None:
        if mode == "keep":
            self.records.forget(file_id)
            self.world.released.add(file_id)
        else:
            self.records.retired[file_id] = Retired(file_id, folder, mode == "delete")

    def _after_new_file(
        self, folder: str, path: str, new: str, attach_to: tuple[str, ...], replaces: str | None
    ) -> None:
        attached = self._attach_all(folder, path, new, attach_to)
        if replaces is None or replaces == new:
            return
        if attached and self.records.assistants_of(replaces) <= set(attach_to):
            self._cleanup(
                Cleanup(replaces, tuple(sorted(self.records.assistants_of(replaces))), True)
            )

    # actions
    def _upload(self, action: Upload) -> None:
        world = self.world
        local = world.read(action.folder, action.path)
        if local is None or sha(local.content) != action.sha256 or problem_of(local.content):
            return
        row = self._row(action.folder, action.path)
        if (row.file_id if row else None) != action.replaces:
            return
        stat = (len(local.content), local.mtime_ns, local.inode)
        again = (
            row is not None and row.state is State.UPLOADING and row.intent_sha256 == action.sha256
        )
        row = replace(
            row or Entry(action.folder, action.path, *stat, action.sha256, State.UPLOADING),
            state=State.UPLOADING,
            next_attempt_at=None,
            intent_sha256=action.sha256,
            intent_size=len(local.content),
            intent_at=row.intent_at if again and row and row.intent_at else world.clock,
        )
        self._put(row)
        purpose = world.specs[action.folder].purpose
        name = posixpath.basename(action.path)
        sent = Attempt(
            action.folder,
            action.path,
            name,
            len(local.content),
            purpose,
            action.sha256,
            world.clock,
        )
        self.records.attempts.append(sent)
        try:
            new = self.service.create_file(name, local.content, purpose, syncd=True)
        except NoAnswer:
            self._put(replace(row, next_attempt_at=world.clock + GRACE))
            raise
        except Refused as refused:
            self.records.close_attempt(action.folder, action.path, sent.sent_at)
            attempts = row.attempts + 1
            delay = min(BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
            self._put(
                replace(
                    row,
                    state=State.FAILED,
                    attempts=attempts,
                    next_attempt_at=world.clock + delay,
                    last_error=refused.kind,
                    intent_sha256=None,
                    intent_size=None,
                    intent_at=None,
                )
            )
            return
        self.records.answer_attempt(action.folder, action.path, sent.sent_at, new)
        self._put(Entry(action.folder, action.path, *stat, action.sha256, State.SYNCED, new))
        if action.replaces is not None:
            self.records.retired[action.replaces] = Retired(
                action.replaces, action.folder, True, replaced_by=new
            )
        self._after_new_file(action.folder, action.path, new, action.attach_to, action.replaces)

    def _adopt(self, action: Adopt) -> None:
        row = self._row(action.folder, action.path)
        if row is None or row.file_id != action.replaces:
            return
        stat = (
            (row.size, row.mtime_ns, row.inode) if row.sha256 == action.sha256 else (row.size, 0, 0)
        )
        if action.sent_at is not None:
            self.records.answer_attempt(action.folder, action.path, action.sent_at, action.file_id)
        self._put(
            Entry(action.folder, action.path, *stat, action.sha256, State.SYNCED, action.file_id)
        )
        if action.replaces is not None and action.replaces != action.file_id:
            self.records.retired[action.replaces] = Retired(
                action.replaces, action.folder, True, replaced_by=action.file_id
            )
        self._after_new_file(
            action.folder, action.path, action.file_id, action.attach_to, action.replaces
        )

    def _attach(self, action: Attach) -> None:
        row = self._row(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            return
        if target_kind(action.target) == "store":
            self._attach_store(action.folder, action.path, action.file_id, action.target)
            return
        self.service.attach(action.target, action.file_id, syncd=True)
        self.records.attachments.add((action.file_id, action.target))

    def _detach(self, action: Detach) -> None:
        if not self.records.owns(action.file_id):
            return
        self._detach_one(action.file_id, action.target)

    def _detach_one(self, file_id: str, target: str) -> None:
        try:
            if target_kind(target) == "store":
                self.service.detach_store(target, file_id, syncd=True)
            else:
                self.service.detach(target, file_id, syncd=True)
        except Refused as refused:
            if refused.kind != "not_found":
                raise
        self.records.attachments.discard((file_id, target))

    def _retire(self, action: Retire) -> None:
        row = self._row(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            return
        del self.records.entries[(action.folder, action.path)]
        if action.mode == "keep":
            self.records.forget(action.file_id)
            self.world.released.add(action.file_id)
        else:
            self.records.retired[action.file_id] = Retired(
                action.file_id, action.folder, action.mode == "delete"
            )

    def _duplicate(self, action: Duplicate) -> None:
        if self.records.owns(action.file_id):
            return
        self.records.retired[action.file_id] = Retired(action.file_id, action.folder, True)
        self.records.close_attempt(action.folder, action.path, action.sent_at)

    def _cleanup(self, action: Cleanup) -> None:
        if action.file_id not in self.records.retired:
            return
        for target in action.detach_from:
            if action.delete and target_kind(target) == "store":
                continue
            self._detach_one(action.file_id, target)
        if action.delete:
            try:
                self.service.delete_file(action.file_id, syncd=True)
            except Refused as refused:
                if refused.kind != "not_found":
                    raise
        else:
            self.world.released.add(action.file_id)
        self.records.forget(action.file_id)

    def _forget(self, action: Forget) -> None:
        if action.file_id is not None:
            if action.file_id in self.records.retired:
                self.records.forget(action.file_id)
            return
        assert action.path is not None
        row = self._row(action.folder, action.path)
        if row is not None and row.file_id is None:
            del self.records.entries[(action.folder, action.path)]

    def _reject(self, action: Reject) -> None:
        row = self._row(action.folder, action.path)
        if row is not None and row.file_id is not None:
            return
        local = self.world.read(action.folder, action.path)
        if local is not None and sha(local.content) == action.sha256:
            stat = (len(local.content), local.mtime_ns, local.inode)
        else:
            stat = (0, 0, 0)
        self._put(
            Entry(
                action.folder,
                action.path,
                *stat,
                action.sha256,
                State.REJECTED,
                last_error=action.reason,
            )
        )

    def _move(self, action: Move) -> None:
        row = self._row(action.folder, action.src)
        if row is None or row.file_id != action.file_id or self._row(action.folder, action.dst):
            return
        del self.records.entries[(action.folder, action.src)]
        self._put(
            replace(
                row,
                path=action.dst,
                size=action.size,
                mtime_ns=action.mtime_ns,
                inode=action.inode,
                ctime_ns=action.ctime_ns,
            )
        )

    def _retag(self, action: Retag) -> None:
        row = self._row(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            return
        try:
            self.service.update_attributes(
                action.target, action.file_id, dict(action.attributes), syncd=True
            )
        except Refused as refused:
            if refused.kind != "not_found":
                raise

    def _restat(self, action: Restat) -> None:
        row = self._row(action.folder, action.path)
        if row is not None:
            self._put(replace(row, size=action.size, mtime_ns=action.mtime_ns, inode=action.inode))
