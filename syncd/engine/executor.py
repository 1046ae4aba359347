"""The executor: carries out a plan's actions against the service and records every result.

Its semantics are specified action by action by the reference model in ``tests/plan/sim.py``;
in short:

* **Order.** ``planner.stages()`` run one after another. Inside a stage, actions run on a pool of
  ``concurrency`` threads, except that actions on the same (folder, path), the same remote file
  id, or uploads with the same (filename, size, purpose) run one after another in plan order —
  so lost uploads are found in the order of their intents.
* **Staleness.** Each action first checks that the manifest still looks as planned (the row's
  file id is the one the action names, a retired id is still retired) and is skipped if not.
* **Recording.** Each answer is committed as it arrives, one short transaction each. An upload's
  intent is committed *before* its request (invariant 2). A request whose answer never came
  leaves the manifest as it was, so the next plan looks again.
* **Batches.** When a stage has many chains, a worker takes up to :data:`BATCH` at a time
  (:func:`batch_size`), and those that are one small upload each go together: their intents
  in one commit before the first of their requests, the requests one after another, their
  answers in one commit after the last. Each one's failure is handled as it would be alone;
  dying in between leaves intents, which the next pass resolves as after any crash.
* **Invariant 5.** An upload re-hashes and re-validates the file first and is skipped if it
  changed since the scan. A small file (up to ``IN_MEMORY_BYTES``) is sent from the very bytes
  that were hashed; a larger one that changes while it is streamed is not attached, and its
  row is marked to be hashed again.
* **Failures.** A refused upload makes the row ``failed`` with exponential backoff; after
  ``max_attempts`` it waits for the next full pass or a change. A 401/403 stops the whole pass
  (:class:`PassStopped`); other failures stop only their own action.

Two things go beyond the model, which has no such answers: a ``createFile`` refused with a 4xx
(the service will not take this content) and a file whose processing ends in ``error`` make
the row ``rejected`` with the service's words, like a file the local validator rejects.

Vector stores: attachments to stores go through a :class:`~syncd.engine.stores.StoreAttacher`
(file batches sent while the stage's uploads still run); at the end of each stage their
ingestion is followed to its end. ``completed`` counts as attached, and only then is a replaced
version cleaned up (invariant 4: a search never stops finding the document); ``failed`` makes
the row ``rejected`` with the service's ``last_error``; one still ``in_progress`` when its time
runs out is reported and left to the planner.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from syncd.api import (
    APIError,
    AuthenticationError,
    BadRequestError,
    Client,
    FileObject,
    NotFoundError,
    TimeoutError,
    UploadOutcomeUnknown,
)
from syncd.config import FolderConfig
from syncd.engine.files import FileChanged, identity, read_small, sha256_file
from syncd.engine.manifest import Answer, ManifestDB, StateFull
from syncd.engine.model import (
    Action,
    Adopt,
    Attach,
    Attempt,
    Cleanup,
    Detach,
    Duplicate,
    Entry,
    Forget,
    LocalFile,
    Move,
    OnDelete,
    Reject,
    Restat,
    Retag,
    Retire,
    Retired,
    State,
    Upload,
    store_attributes,
    target_kind,
)
from syncd.engine.names import where
from syncd.engine.planner import chains, stages, upload_name
from syncd.engine.report import Done, human_size, what_became_of
from syncd.engine.stores import FOLLOW_LIMIT, Attachment, Ingestion, StoreAttacher
from syncd.engine.validate import validate_file

__all__ = [
    "BACKOFF",
    "BATCH",
    "IN_MEMORY_BYTES",
    "MAX_BACKOFF",
    "PROCESSING_POLL",
    "PROCESSING_TIMEOUT",
    "Executor",
    "PassStopped",
    "batch_size",
    "retry_delay",
]

log = logging.getLogger("syncd.executor")

#: Seconds before a failed upload is tried again: BACKOFF * 2 ** (attempts - 1), capped.
BACKOFF = 30.0
MAX_BACKOFF = 3600.0
#: How long to wait for the service to process an upload before attaching it; after that the
#: file stays unattached and the next pass attaches it.
PROCESSING_TIMEOUT = 300.0
PROCESSING_POLL = 0.1
#: Files up to this size are read into memory once, hashed and sent from there (invariant 5
#: by construction, and one read instead of two); larger ones stream from disk.
IN_MEMORY_BYTES = 1024 * 1024
#: At most this many uploads of small files are made ready, recorded and answered together
#: (:meth:`Executor._run_uploads`): a commit, a lookup and the hand-offs between threads cost
#: more than the writes of one small upload.
BATCH = 32


#: What is logged at DEBUG (quiet) and at WARNING; everything else at INFO.
_QUIET = frozenset({"forgotten", "restat", "skipped", "waiting"})
_WARNINGS = frozenset({"failed", "unresolved", "rejected"})


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed upload of a file."""
    return min(BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)


class PassStopped(Exception):
    """The pass stopped before it was done; ``reason`` is ``auth`` (the key was refused) or
    ``service`` (the service could not be listed)."""

    def __init__(self, reason: Literal["auth", "service"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Skip(Exception):
    """The action no longer fits the world (see "Staleness"); the next plan looks again."""


class _FileChanged(_Skip):
    """The file is not the one the plan was made from, or changed while it was read."""


class _Unresolved(Exception):
    """An upload's outcome is unknown: until a listing resolves it, no other upload that
    could be mistaken for it is sent (invariant 2)."""


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """An upload made ready to send (:meth:`Executor._ready`): the file as read, hashed and
    checked — ``content`` its bytes when small enough to send from memory — the row before
    (``None``: none), and the intent's row and attempt."""

    action: Upload
    path: Path
    name: str
    content: bytes | None
    st: os.stat_result
    sha256: str
    before: Entry | None
    intent: Entry
    attempt: Attempt


@dataclass(frozen=True, slots=True)
class _Sent:
    """What came of an upload the service took: the new file, the seconds it took, and
    whether the file changed while it was streamed from disk."""

    file: FileObject
    elapsed: float
    changed: bool


def _stat(st: os.stat_result) -> tuple[int, int, int]:
    """The size, mtime and inode an entry records."""
    return st.st_size, st.st_mtime_ns, st.st_ino


def _small_upload(group: list[Action]) -> Upload | None:
    """The upload of a small file that is all of a chain, which may go in a batch."""
    match group:
        case [Upload(size=size) as upload] if size <= IN_MEMORY_BYTES:
            return upload
    return None


def batch_size(chains: int, workers: int) -> int:
    """How many chains a worker takes at a time, of ``chains`` shared by ``workers``: up to
    :data:`BATCH`, but few enough that every worker gets several turns — a handful of changes
    is spread over the workers as before, so that their requests still overlap."""
    return max(1, min(BATCH, chains // (4 * max(1, workers))))


class Executor:
    """Runs actions against ``client``, recording results in ``manifest``.

    ``folders`` are the configured folders by name; ``local`` the scan the plan was made
    from, by (folder, path). ``on_done`` is called with every :class:`Done` as it happens and
    ``on_action`` after every action (for progress), from worker threads.
    """

    def __init__(
        self,
        client: Client,
        manifest: ManifestDB,
        folders: Mapping[str, FolderConfig],
        *,
        local: Mapping[tuple[str, str], LocalFile],
        max_attempts: int,
        grace: float = 10.0,
        concurrency: int = 4,
        stop: threading.Event | None = None,
        on_done: Callable[[Done], None] | None = None,
        on_action: Callable[[Action], None] | None = None,
        clock: Callable[[], float] = time.time,
        instance: str = "",
    ) -> None:
        self.client = client
        self.instance = instance
        self.manifest = manifest
        self.folders = folders
        self.local = local
        self.max_attempts = max_attempts
        self.grace = grace
        self.concurrency = max(1, concurrency)
        self.stop = stop or threading.Event()
        self.on_done = on_done
        self.on_action = on_action
        self.clock = clock
        self._purposes = {name: folder.purpose for name, folder in folders.items()}
        self._auth: AuthenticationError | None = None
        self._full: StateFull | None = None  # nothing can be recorded: stop starting work
        self._lock = threading.Lock()
        self._done: list[Done] = []
        # Why a file id is going away, for the line that says it went.
        self._why: dict[str, str] = {}
        self._stores = StoreAttacher(
            client, on_sent=self._store_sent, on_result=self._store_result, stop=self.stop
        )
        # New files whose ingestion in these stores must complete before the version they
        # replace is cleaned up (None: the planner cleans it up later).
        self._replacing: dict[str, tuple[str | None, set[str]]] = {}

    def run(self, actions: Sequence[Action]) -> list[Done]:
        """Run ``actions`` stage by stage; return what happened.

        Raises :class:`StateFull` if the manifest could not be written, and
        :class:`PassStopped` (reason ``auth``) once in-flight actions have finished
        if the service refused the credentials.
        """
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="syncd-exec") as pool:
            try:
                for stage in stages(tuple(actions)):
                    if self._halted():
                        break
                    groups = chains(stage, self._purposes)
                    workers = min(self.concurrency, len(groups))
                    take = batch_size(len(groups), workers)
                    if workers <= 1:
                        self._run_chains(iter(groups), threading.Lock(), take)
                    else:
                        # Each worker takes the next chains when done with some, in plan
                        # order: a future per worker, not per chain (100,000 futures, each
                        # waking this thread, cost more than the small uploads they stand for).
                        todo, lock = iter(groups), threading.Lock()
                        for future in [
                            pool.submit(self._run_chains, todo, lock, take) for _ in range(workers)
                        ]:
                            future.result()
                    self._finish_stores()
            finally:
                # Stopping: the attacher sends nothing new, but its thread must be done
                # before the pass returns.
                self._finish_stores()
        if self._full is not None:
            raise self._full
        if self._auth is not None:
            raise PassStopped(
                "auth", f"the service refused the API key, stopping: {self._auth}"
            ) from self._auth
        return list(self._done)

    # --- plumbing --------------------------------------------------------------------------------

    def _halted(self) -> bool:
        return self.stop.is_set() or self._auth is not None or self._full is not None

    def _finish_stores(self) -> None:
        """The stage's store attachments: send the rest, follow their ingestion."""
        try:
            self._stores.finish()
        except AuthenticationError as e:
            self._stop(e)

    def _upload_key(self, action: Upload) -> tuple[str, int, str]:
        """What the service's copy of ``action``'s file would be recognised by."""
        return (upload_name(action.path), action.size, self._purposes[action.folder])

    def _run_chains(self, todo: Iterator[list[Action]], lock: threading.Lock, take: int) -> None:
        """Run the chains of ``todo`` (shared with other workers, hence ``lock``), ``take`` at a
        time, until none is left: the small uploads among them as one batch
        (:meth:`_run_uploads`), the other chains one by one. Chains share no path, file id or
        upload key, so the order among those taken together does not matter."""
        while True:
            with lock:
                groups = list(itertools.islice(todo, take))
            if not groups:
                return
            small = [_small_upload(g) for g in groups]
            batch = [upload for upload in small if upload is not None]
            if len(batch) > 1:
                self._run_uploads(batch)
            for group, upload in zip(groups, small, strict=True):
                if len(batch) <= 1 or upload is None:
                    self._run_chain(group)

    def _run_chain(self, group: list[Action]) -> None:
        unresolved: set[tuple[str, int, str]] = set()  # keys of this chain's unanswered uploads
        for action in group:
            if self._halted():
                return
            if isinstance(action, Upload) and self._upload_key(action) in unresolved:
                detail = (
                    "waits until an upload with the same name and size, whose answer was lost, "
                    "is found on the service"
                )
                self._emit(Done("waiting", action.folder, action.path, detail=detail))
                self._acted(action)
                continue
            try:
                self._apply(action)
            except _Unresolved:
                assert isinstance(action, Upload)
                unresolved.add(self._upload_key(action))
            except Exception as e:
                if not self._handle(action, e):
                    return
            finally:
                self._acted(action)

    def _handle(self, action: Action, error: Exception) -> bool:
        """Report how ``action`` failed with ``error`` (re-raised if it is none of the failures
        an action may meet); ``False`` when no more work may be started: the key was refused,
        or nothing can be recorded."""
        if isinstance(error, _Unresolved):
            pass  # reported where it was found out
        elif isinstance(error, _Skip):
            self._skip(action, str(error))
        elif isinstance(error, AuthenticationError | StateFull):
            self._stop(error)
            return False
        elif isinstance(error, APIError):
            self._emit(self._failure(action, str(error)))
        elif isinstance(error, OSError):
            self._emit(self._failure(action, f"cannot read the local file: {error}"))
        else:
            raise error
        return True

    def _stop(self, error: AuthenticationError | StateFull) -> None:
        """No more work may start: the key was refused, or nothing can be recorded."""
        with self._lock:
            if isinstance(error, StateFull):
                self._full = self._full or error
            else:
                self._auth = self._auth or error

    def _acted(self, action: Action) -> None:
        """``action`` is over (for progress)."""
        if self.on_action is not None:
            self.on_action(action)

    def _failure(self, action: Action, error: str) -> Done:
        folder = getattr(action, "folder", None)
        path = getattr(action, "path", None)
        verb = type(action).__name__.lower()
        return Done(
            "failed",
            folder,
            path,
            getattr(action, "file_id", None),
            getattr(action, "target", None),
            detail=f"could not {verb}: {error}",
        )

    def _emit(self, done: Done) -> None:
        with self._lock:
            self._done.append(done)
        if done.what in _WARNINGS:
            level = logging.WARNING
        else:
            level = logging.DEBUG if done.what in _QUIET else logging.INFO
        if log.isEnabledFor(level):  # the words are made only for a line that is written
            log.log(level, "%s", done.message())
        if self.on_done is not None:
            self.on_done(done)

    def _apply(self, action: Action) -> None:
        match action:
            case Upload():
                self._upload(action)
            case Adopt():
                self._adopt(action)
            case Attach():
                self._attach(action)
            case Detach():
                self._detach(action)
            case Retire():
                self._retire(action)
            case Duplicate():
                self._duplicate(action)
            case Cleanup():
                self._cleanup(action)
            case Forget():
                self._forget(action)
            case Reject():
                self._reject(action)
            case Restat():
                self._restat(action)
            case Move():
                self._move(action)
            case Retag():
                self._retag(action)

    def _skip(self, action: Action, why: str) -> None:
        folder = getattr(action, "folder", None)
        path = getattr(action, "path", None)
        file_id = getattr(action, "file_id", None)
        verb = type(action).__name__.lower()
        self._emit(Done("skipped", folder, path, file_id, detail=f"{verb} skipped: {why}"))

    # --- uploads ---------------------------------------------------------------------------------

    def _upload(self, action: Upload) -> None:
        """One upload: made ready (:meth:`_ready`), its intent recorded, sent, its answer
        recorded, and the new file attached."""
        out = self._ready(action, self.manifest.entry(action.folder, action.path))
        self.manifest.put_intent(out.intent, out.attempt)  # on disk before the request leaves
        sent = self._send(out)
        if sent is None:
            return
        self.manifest.record_answers([self._answer(out, sent)])
        if self._said_uploaded(out, sent):
            self._after_upload(out.action, sent)

    def _run_uploads(self, actions: list[Upload]) -> None:
        """Several uploads of small files, for less work per file than one by one: their rows
        looked up in one query, their intents recorded in one commit (all on disk before the
        first request leaves: invariant 2), the requests sent one after another, then their
        answers recorded in one commit. Each one's failure is its own, handled as
        :meth:`_run_chain` handles it; the others go on — unless no more work may be started
        (the key was refused, the manifest is full, or the pass is stopping): the intents of
        those not sent yet are then taken back, and the answers that came are recorded.

        Dying between a request and the answers' commit leaves intents, as dying during a
        single upload does: the next pass looks for their files and adopts them."""
        rows = self.manifest.entries_at([(a.folder, a.path) for a in actions])
        ready: list[_Outgoing] = []
        for action in actions:
            if self._halted():
                return
            try:
                ready.append(self._ready(action, rows.get((action.folder, action.path))))
            except Exception as e:
                go_on = self._handle(action, e)
                self._acted(action)
                if not go_on:
                    return
        if not ready:
            return
        try:
            self.manifest.put_intents([(out.intent, out.attempt) for out in ready])
        except StateFull as e:
            self._stop(e)
            for out in ready:
                self._acted(out.action)
            return
        answered: list[tuple[_Outgoing, _Sent]] = []
        unsent: list[_Outgoing] = []
        for i, out in enumerate(ready):
            if self._halted():
                unsent = ready[i:]
                break
            try:
                sent = self._send(out)
            except Exception as e:
                go_on = self._handle(out.action, e)
                self._acted(out.action)
                if not go_on:
                    unsent = ready[i + 1 :]
                    break
                continue
            if sent is None:
                self._acted(out.action)
            else:
                answered.append((out, sent))
        try:
            if answered:
                self.manifest.record_answers([self._answer(out, sent) for out, sent in answered])
        except StateFull as e:
            # Not recorded: the intents stay, and the next pass adopts what was stored.
            self._stop(e)
            for out, _ in answered:
                self._acted(out.action)
            answered = []
        try:
            if unsent:
                self._take_back(unsent)
        except StateFull as e:
            self._stop(e)  # the intents stay; the next pass resolves them
        for out in unsent:
            self._acted(out.action)
        for out, sent in answered:
            try:
                # After a refused key, nothing more is asked of the service.
                if self._said_uploaded(out, sent) and self._auth is None:
                    self._after_upload(out.action, sent)
            except Exception as e:
                self._handle(out.action, e)
            finally:
                self._acted(out.action)

    def _ready(self, action: Upload, row: Entry | None) -> _Outgoing:
        """Make ``action`` ready to send, with ``row`` its entry as the manifest has it now:
        read, hash and validate the file again (invariant 5), check the row is still the one
        planned, and make the intent's row and attempt. Raises :class:`_Skip` if the action no
        longer fits."""
        folder = self.folders[action.folder]
        path = folder.path / action.path
        name = posixpath.basename(action.path)
        try:
            # Invariant 5: what goes out must be what was hashed. A small file is read once, and
            # those very bytes are hashed here and handed to the client to send: nothing that
            # happens to the file afterwards can reach the request. A larger one is hashed, then
            # streamed from disk, and checked after the upload for a change meanwhile (_answer).
            read = read_small(path, IN_MEMORY_BYTES, follow_symlinks=True)
            if read is None:
                content = None
                sha256, st = sha256_file(path, follow_symlinks=True)
            else:
                content, st = read
                sha256 = hashlib.sha256(content).hexdigest()
        except FileNotFoundError:
            raise _Skip("the file is gone") from None
        except FileChanged:
            raise _FileChanged("it changed while it was hashed") from None
        if sha256 != action.sha256:
            raise _Skip("the file changed since the scan")
        if validate_file(path, folder.purpose, st.st_size, name=name, content=content) is not None:
            raise _Skip("the file is no longer valid")
        if (row.file_id if row else None) != action.replaces:
            raise _Skip("the manifest changed since the plan")

        sent_at = self.clock()
        if row is None:  # a new file (most of a first sync: made directly, not copied)
            intent = Entry(
                action.folder,
                action.path,
                *_stat(st),
                sha256,
                State.UPLOADING,
                intent_sha256=sha256,
                intent_size=st.st_size,
                intent_at=sent_at,
            )
        else:
            again = row.state is State.UPLOADING and row.intent_sha256 == sha256
            intent = replace(
                row,
                state=State.UPLOADING,
                next_attempt_at=None,
                intent_sha256=sha256,
                intent_size=st.st_size,
                # Sent again after an unknown outcome: still the same intent.
                intent_at=row.intent_at if again and row.intent_at else sent_at,
            )
        attempt = Attempt(
            action.folder,
            action.path,
            upload_name(action.path),
            st.st_size,
            folder.purpose,
            sha256,
            sent_at,
        )
        return _Outgoing(action, path, name, content, st, sha256, row, intent, attempt)

    def _send(self, out: _Outgoing) -> _Sent | None:
        """Send ``out``, whose intent is recorded; what came of it, or ``None`` if the service
        refused it (recorded: rejected or failed). Raises
        :class:`_Unresolved` when the outcome is unknown (recorded: the intent stays, with a
        grace period), and a refused key or an unreadable file once its intent is taken
        back."""
        action = out.action
        started = time.monotonic()
        try:
            new = self.client.create_file(
                out.path,
                self.folders[action.folder].purpose,
                filename=out.name,
                content=out.content,
            )
        except (AuthenticationError, OSError):
            # Refused, or the file could not be opened: nothing went out, so the intent is
            # taken back and no attempt is counted.
            self._take_back([out])
            raise
        except UploadOutcomeUnknown as e:
            # The service may still store it: give it a grace period, and look again, before
            # this content is sent again.
            self.manifest.put_entry(replace(out.intent, next_attempt_at=self.clock() + self.grace))
            self._emit(
                Done(
                    "unresolved",
                    action.folder,
                    action.path,
                    detail=f"the upload may or may not have been stored ({e.cause}); "
                    "syncd looks for it before uploading again",
                )
            )
            raise _Unresolved from e
        except BadRequestError as e:
            self.manifest.close_attempt(action.folder, action.path, out.attempt.sent_at)
            self._refused_content(out.intent, out.sha256, _stat(out.st), e.message)
            return None
        except APIError as e:
            self.manifest.close_attempt(action.folder, action.path, out.attempt.sent_at)
            self._upload_failed(out.intent, str(e))
            return None
        elapsed = time.monotonic() - started
        # Sent from memory, the upload is the hashed version whatever became of the file
        # since. Streamed from disk, what went out may be half old, half new if the file
        # changed meanwhile (see _answer).
        changed = out.content is None and identity(out.path.stat()) != identity(out.st)
        return _Sent(new, elapsed, changed)

    def _take_back(self, outs: Sequence[_Outgoing]) -> None:
        """Undo the intents of uploads that did not go out, in one commit: their attempts are
        closed and their rows are as they were."""
        with self.manifest.transaction():
            for out in outs:
                action = out.action
                self.manifest.close_attempt(action.folder, action.path, out.attempt.sent_at)
                if out.before is None:
                    self.manifest.delete_entry(action.folder, action.path)
                else:
                    self.manifest.put_entry(out.before)

    def _answer(self, out: _Outgoing, sent: _Sent) -> Answer:
        """What the manifest records of ``out``'s answer.

        The row keeps the stat of the version that was hashed and sent, so the next scan sees
        any change since. A streamed file that changed while it was sent keeps the new id (it
        is ours), with its stat zeroed so that the next scan hashes the file again (and
        :meth:`_said_uploaded` has it attached to nothing)."""
        action, st, file_id = out.action, out.st, sent.file.id
        stat, ctime_ns = (
            (_stat(st), st.st_ctime_ns) if not sent.changed else ((st.st_size, 0, 0), 0)
        )
        replaced = (
            None
            if action.replaces is None
            else Retired(action.replaces, action.folder, True, replaced_by=file_id)
        )
        entry = Entry(
            action.folder, action.path, *stat, out.sha256, State.SYNCED, file_id, ctime_ns=ctime_ns
        )
        return Answer(entry, out.attempt.sent_at, file_id, replaced)

    def _said_uploaded(self, out: _Outgoing, sent: _Sent) -> bool:
        """Report ``out``'s upload, whose answer is recorded; whether the new file may be
        attached (not if it changed while it was streamed)."""
        action, file_id = out.action, sent.file.id
        if action.replaces is not None:
            self._emit(
                Done("replaced", action.folder, action.path, file_id, previous=action.replaces)
            )
        else:
            size = f"{human_size(out.st.st_size)}, {sent.elapsed:.1f} s"
            self._emit(Done("uploaded", action.folder, action.path, file_id, detail=size))
        if sent.changed:
            self._skip(action, "the file changed while it was uploaded; sent again next pass")
            return False
        return True

    def _after_upload(self, action: Upload, sent: _Sent) -> None:
        """Attach the file an upload made, and clean up the version it replaces."""
        self._after_new_file(
            action.folder, action.path, sent.file.id, action.attach_to, action.replaces, sent.file
        )

    def _upload_failed(self, row: Entry, error: str) -> None:
        attempts = row.attempts + 1
        exhausted = attempts >= self.max_attempts
        retry_at = None if exhausted else self.clock() + retry_delay(attempts)
        self.manifest.put_entry(
            replace(
                row,
                state=State.FAILED,
                attempts=attempts,
                next_attempt_at=retry_at,
                last_error=error,
                intent_sha256=None,
                intent_size=None,
                intent_at=None,
            )
        )
        if exhausted:
            when = (
                f"gave up after {attempts} attempts; tried again on the next full pass "
                "or when the file changes"
            )
        else:
            at = time.strftime("%H:%M:%S", time.localtime(retry_at))
            when = f"attempt {attempts} of {self.max_attempts}; next try after {at}"
        self._emit(Done("failed", row.folder, row.path, detail=f"upload failed: {error} ({when})"))

    def _refused_content(
        self, row: Entry, sha256: str, stat: tuple[int, int, int], reason: str
    ) -> None:
        """The service will not take this content: the row becomes rejected (holding no file
        id), and the version it held, if any, goes as the folder's ``on_delete`` says."""
        with self.manifest.transaction():
            if row.file_id is not None:
                self._let_go(row.folder, row.file_id, self.folders[row.folder].on_delete)
                self._why[row.file_id] = (
                    f"{where(row.folder, row.path)} was replaced by rejected content"
                )
            self.manifest.put_entry(
                Entry(row.folder, row.path, *stat, sha256, State.REJECTED, last_error=reason)
            )
        self._emit(Done("rejected", row.folder, row.path, detail=reason))

    def _let_go(self, folder: str, file_id: str, mode: OnDelete) -> None:
        """Hand ``file_id`` to clean-up as ``mode`` (an ``on_delete``) says, inside a
        transaction: retired for ``delete`` and ``detach``; forgotten for ``keep``."""
        if mode == "keep":
            self.manifest.forget_file(file_id)
        else:
            self.manifest.put_retired(Retired(file_id, folder, delete=mode == "delete"))

    def _processed(self, folder: str, path: str, file: FileObject) -> bool:
        """Wait until ``file`` is processed. ``False`` if it is not (yet): an ``error`` status
        makes the row rejected and the file retired; a timeout leaves it for the next pass."""
        if file.status in (None, "processed"):
            return True
        if file.status != "error":
            try:
                file = self.client.wait_processed(
                    file.id, timeout=PROCESSING_TIMEOUT, poll=PROCESSING_POLL
                )
            except TimeoutError as e:
                self._emit(Done("skipped", folder, path, file.id, detail=f"not attached yet: {e}"))
                return False
            if file.status != "error":
                return True
        reason = file.status_details or "the service could not process the file"
        self._reject_remote(folder, path, file.id, reason)
        return False

    def _reject_remote(self, folder: str, path: str, file_id: str, reason: str) -> None:
        """The service cannot use the uploaded file (processing or ingestion failed, a store
        refused it): the row becomes rejected — not uploaded again until the file changes —
        and the file is retired to be deleted."""
        with self.manifest.transaction():
            row = self.manifest.entry(folder, path)
            if row is None or row.file_id != file_id:
                return
            # The versions it was to replace no longer wait for it: they go as if the local
            # file had been rejected before upload.
            on_delete = self.folders[folder].on_delete
            for old in self.manifest.replaced_by(file_id):
                self._let_go(folder, old, on_delete)
            self.manifest.put_retired(Retired(file_id, folder, delete=True))
            self.manifest.put_entry(
                replace(row, state=State.REJECTED, file_id=None, last_error=reason)
            )
        self._why[file_id] = "the service could not use it"
        self._emit(Done("rejected", folder, path, file_id, detail=reason))

    def _after_new_file(
        self,
        folder: str,
        path: str,
        file_id: str,
        attach_to: tuple[str, ...],
        replaces: str | None,
        file: FileObject | None = None,
    ) -> None:
        """Steps 4 and 5 of an upload: attach the new file once processed, then clean the old
        one up as soon as nothing can go missing by that (invariant 4) — at once, or once its
        ingestion in every store completed; otherwise it stays retired and the planner waits
        for the new file to serve wherever the old one is."""
        assistants = tuple(t for t in attach_to if target_kind(t) == "assistant")
        stores = tuple(t for t in attach_to if target_kind(t) == "store")
        if assistants:
            file = file or self.client.retrieve_file(file_id)
            if not self._processed(folder, path, file):
                return
        attached = True
        for assistant in assistants:
            try:
                self._attach_one(folder, path, file_id, assistant)
            except AuthenticationError:
                raise
            except APIError as e:
                attached = False
                detail = f"could not attach to {assistant}: {e}"
                self._emit(Done("failed", folder, path, file_id, assistant, detail=detail))
        cleanup = (
            replaces is not None
            and replaces != file_id
            and attached
            and self.manifest.assistants_of(replaces) <= set(attach_to)
        )
        if stores:
            with self._lock:
                self._replacing[file_id] = (replaces if cleanup else None, set(stores))
            for store in stores:
                self._queue_store(folder, path, file_id, store)
        elif cleanup:
            assert replaces is not None
            self._cleanup_replaced(replaces)

    def _cleanup_replaced(self, replaces: str) -> None:
        recorded = self.manifest.assistants_of(replaces)
        self._cleanup(Cleanup(replaces, tuple(sorted(recorded)), True))

    # --- vector stores ---------------------------------------------------------------------------

    def _queue_store(self, folder: str, path: str, file_id: str, store: str) -> None:
        """Hand an attachment to the store attacher, with the file's attributes as the
        manifest row says them now."""
        row = self.manifest.entry(folder, path)
        if row is None or row.file_id != file_id:
            return
        config = self.folders[folder]
        attributes = store_attributes(config.spec(), self.instance, path, row.sha256, row.mtime_ns)
        self._stores.add(
            Attachment(
                folder,
                path,
                file_id,
                store,
                attributes,
                config.chunking(),
                min(config.ingestion_timeout_seconds, FOLLOW_LIMIT),
            )
        )

    def _store_sent(self, item: Attachment) -> None:
        """The store holds the attachment: it is syncd's from now on (ingesting)."""
        self.manifest.add_attachment(item.file_id, item.store, status="in_progress")

    def _store_result(self, item: Attachment, outcome: Ingestion) -> None:
        """Record how an attachment's ingestion ended."""
        where = (item.folder, item.path, item.file_id, item.store)
        with self._lock:
            replacing = self._replacing.get(item.file_id)
        if outcome.status == "completed":
            self.manifest.set_ingestion(item.file_id, item.store, "completed")
            self._emit(Done("attached", *where))
            if replacing is not None:
                replaces, waiting = replacing
                waiting.discard(item.store)
                if replaces is not None and not waiting:
                    with self._lock:
                        self._replacing.pop(item.file_id, None)
                    try:
                        self._cleanup_replaced(replaces)
                    except AuthenticationError:
                        raise
                    except (APIError, _Skip) as e:
                        self._emit(self._failure(Cleanup(replaces, (), True), str(e)))
            return
        with self._lock:
            self._replacing.pop(item.file_id, None)  # the planner decides for the old one
        if outcome.status in ("failed", "refused"):
            if outcome.status == "failed":
                self.manifest.set_ingestion(item.file_id, item.store, "failed", outcome.detail)
                reason = f"{item.store} could not ingest it: {outcome.detail or 'no reason given'}"
            else:
                reason = f"{item.store} refused it: {outcome.detail}"
            self._reject_remote(item.folder, item.path, item.file_id, reason)
        elif outcome.status == "in_progress":
            self._emit(
                Done(
                    "ingesting",
                    *where,
                    detail=f"still ingesting after {item.timeout:g} s; syncd waits for it "
                    "and does not upload it again",
                )
            )
        elif outcome.status == "cancelled":
            self.manifest.set_ingestion(item.file_id, item.store, "cancelled")
            detail = f"its ingestion in {item.store} was cancelled; it is attached again"
            self._emit(Done("skipped", *where, detail=detail))
        else:
            self._emit(Done("failed", *where, detail=outcome.detail))

    def _attach_one(self, folder: str, path: str, file_id: str, assistant: str) -> None:
        self.client.create_assistant_file(assistant, file_id)
        self.manifest.add_attachment(file_id, assistant)
        self._emit(Done("attached", folder, path, file_id, assistant))

    # --- the other actions -----------------------------------------------------------------------

    def _adopt(self, action: Adopt) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is None or row.file_id != action.replaces:
            raise _Skip("the manifest changed since the plan")
        if row.sha256 == action.sha256:
            stat = (row.size, row.mtime_ns, row.inode, row.ctime_ns)
        else:
            stat = (row.size, 0, 0, 0)  # the next scan hashes the file again
        with self.manifest.transaction():
            if action.sent_at is not None:
                # Answered, not closed: its file stays known for syncd's own upload, so that
                # another attempt of this key never takes it for its late copy once it is let
                # go of — the re-sent copy may be the one adopted here.
                self.manifest.answer_attempt(
                    action.folder, action.path, action.sent_at, action.file_id
                )
            self.manifest.put_entry(
                Entry(
                    action.folder,
                    action.path,
                    *stat[:3],
                    action.sha256,
                    State.SYNCED,
                    action.file_id,
                    ctime_ns=stat[3],
                )
            )
            if action.replaces is not None and action.replaces != action.file_id:
                self.manifest.put_retired(
                    Retired(action.replaces, action.folder, True, replaced_by=action.file_id)
                )
        if row.state is State.UPLOADING and row.file_id != action.file_id:
            self._emit(
                Done(
                    "adopted",
                    action.folder,
                    action.path,
                    action.file_id,
                    detail="its upload's response was lost",
                )
            )
        else:
            self._emit(
                Done(
                    "resynced",
                    action.folder,
                    action.path,
                    action.file_id,
                    detail="the remote file already holds this content",
                )
            )
        self._after_new_file(
            action.folder, action.path, action.file_id, action.attach_to, action.replaces
        )

    def _attach(self, action: Attach) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            raise _Skip("the manifest changed since the plan")
        if target_kind(action.target) == "store":
            self._queue_store(action.folder, action.path, action.file_id, action.target)
            return
        file = self.client.retrieve_file(action.file_id)
        if self._processed(action.folder, action.path, file):
            self._attach_one(action.folder, action.path, action.file_id, action.target)

    def _detach(self, action: Detach) -> None:
        if not self.manifest.owns(action.file_id):
            raise _Skip(f"{action.file_id} is not syncd's")
        self._detach_one(action.file_id, action.target, action.reason)

    def _detach_one(self, file_id: str, target: str, reason: str | None = None) -> None:
        if target_kind(target) == "store":
            self.client.delete_vector_store_file(target, file_id, missing_ok=True)
        else:
            self.client.delete_assistant_file(target, file_id, missing_ok=True)
        self.manifest.remove_attachment(file_id, target)
        self._emit(Done("detached", file_id=file_id, target=target, detail=reason))

    def _retire(self, action: Retire) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            raise _Skip("the manifest changed since the plan")
        went = what_became_of(action, self.local.get((action.folder, action.path)))
        with self.manifest.transaction():
            self.manifest.delete_entry(action.folder, action.path)
            self._let_go(action.folder, action.file_id, action.mode)
        if action.mode == "keep":
            detail = f"{went}; on_delete = keep"
            self._emit(Done("released", file_id=action.file_id, detail=detail))
        else:
            self._why[action.file_id] = went

    def _duplicate(self, action: Duplicate) -> None:
        if self.manifest.owns(action.file_id):
            raise _Skip(f"{action.file_id} is already one of syncd's files")
        with self.manifest.transaction():
            self.manifest.put_retired(Retired(action.file_id, action.folder, delete=True))
            self.manifest.close_attempt(action.folder, action.path, action.sent_at)
        at = time.strftime("%H:%M:%S", time.localtime(action.sent_at))
        self._why[action.file_id] = (
            f"a second copy of {where(action.folder, action.path)}: syncd's upload sent at {at} "
            "was stored after syncd had given up on its answer; one copy is kept"
        )

    def _cleanup(self, action: Cleanup) -> None:
        retired = self.manifest.retired(action.file_id)
        if retired is None:
            raise _Skip(f"{action.file_id} is no longer retired")
        why = self._why.pop(action.file_id, None)
        if why is None:
            why = (
                f"replaced by {retired.replaced_by}" if retired.replaced_by else "no longer needed"
            )
        for target in action.detach_from:
            if action.delete and target_kind(target) == "store":
                continue  # deleting the file takes it out of every store: one request saved
            self._detach_one(action.file_id, target, why)
        # False: someone else deleted it first (the count stays: the file is gone either way).
        deleted_here = action.delete and self.client.delete_file(action.file_id, missing_ok=True)
        self.manifest.forget_file(action.file_id)
        if action.delete or retired.delete:
            # A deletion the planner left out found the file already gone from the listing.
            done = Done(
                "deleted",
                retired.folder,
                file_id=action.file_id,
                detail=why,
                replaced_by=retired.replaced_by,
                already_gone=not deleted_here or None,
            )
        else:
            detail = f"{why}; on_delete = detach"
            done = Done("released", retired.folder, file_id=action.file_id, detail=detail)
        self._emit(done)

    def _forget(self, action: Forget) -> None:
        if action.file_id is not None:
            if self.manifest.retired(action.file_id) is not None:
                self.manifest.forget_file(action.file_id)
                self._emit(
                    Done("forgotten", file_id=action.file_id, detail="it is gone from the service")
                )
            return
        assert action.path is not None
        row = self.manifest.entry(action.folder, action.path)
        if row is not None and row.file_id is None:
            self.manifest.delete_entry(action.folder, action.path)
            self._emit(Done("forgotten", action.folder, action.path, detail="it is gone"))

    def _reject(self, action: Reject) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is not None and row.file_id is not None:
            raise _Skip("the manifest changed since the plan")
        local = self.local.get((action.folder, action.path))
        if local is not None and local.sha256 == action.sha256:
            stat = (local.size, local.mtime_ns, local.inode, local.ctime_ns)
        else:
            stat = (0, 0, 0, 0)
        self.manifest.put_entry(
            Entry(
                action.folder,
                action.path,
                *stat[:3],
                action.sha256,
                State.REJECTED,
                last_error=action.reason,
                ctime_ns=stat[3],
            )
        )
        self._emit(Done("rejected", action.folder, action.path, detail=action.reason))

    def _move(self, action: Move) -> None:
        with self.manifest.transaction():
            row = self.manifest.entry(action.folder, action.src)
            if row is None or row.file_id != action.file_id:
                raise _Skip("the manifest changed since the plan")
            if self.manifest.entry(action.folder, action.dst) is not None:
                raise _Skip(f"{action.dst} has a row of its own now")
            self.manifest.delete_entry(action.folder, action.src)
            self.manifest.put_entry(
                replace(
                    row,
                    path=action.dst,
                    size=action.size,
                    mtime_ns=action.mtime_ns,
                    inode=action.inode,
                    ctime_ns=action.ctime_ns,
                )
            )
        detail = f"renamed from {action.src}; nothing uploaded"
        self._emit(Done("moved", action.folder, action.dst, action.file_id, detail=detail))

    def _retag(self, action: Retag) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is None or row.file_id != action.file_id:
            raise _Skip("the manifest changed since the plan")
        try:
            self.client.update_vector_store_file(
                action.target, action.file_id, dict(action.attributes)
            )
        except NotFoundError:
            raise _Skip(f"it is no longer in {action.target}") from None
        where = (action.folder, action.path, action.file_id, action.target)
        self._emit(Done("retagged", *where))

    def _restat(self, action: Restat) -> None:
        row = self.manifest.entry(action.folder, action.path)
        if row is None:
            return
        self.manifest.put_entry(
            replace(
                row,
                size=action.size,
                mtime_ns=action.mtime_ns,
                inode=action.inode,
                ctime_ns=action.ctime_ns,
            )
        )
        self._emit(Done("restat", action.folder, action.path, row.file_id))
