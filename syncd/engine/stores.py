"""Attaching files to vector stores: in file batches while uploads still run, then following
each file's ingestion to its end.

The executor hands every (file, store) attachment of a stage to a :class:`StoreAttacher`. A
background thread sends what has gathered as soon as the first item has waited
:data:`LINGER` seconds, or :data:`MAX_BATCH` items are waiting: a cold sync attaches in a few
dozen batches while its uploads go on, instead of one request per file (the service counts
attach requests per store and minute); a lone change goes as one attach. Every item carries
its own attributes and the folder's chunking (a store's strategy is not applied to files added
later).

When the stage's uploads are done, :meth:`StoreAttacher.finish` sends the rest and follows each
attachment until its ingestion ends or its folder's ``ingestion_timeout_seconds`` pass, and
reports each through ``on_result``: the executor records it (``completed`` → attached;
``failed`` → the file is rejected with the service's ``last_error``; still ``in_progress`` →
reported, waited for next time, never uploaded again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from syncd.api import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BatchFile,
    ChunkingStrategy,
    Client,
    VectorStoreFile,
)
from syncd.engine.model import AttributeValue

__all__ = ["FOLLOW_LIMIT", "LINGER", "MAX_BATCH", "Attachment", "Ingestion", "StoreAttacher"]

log = logging.getLogger("syncd.executor")

#: The most files one batch request takes (the service's limit).
MAX_BATCH = 2000
#: How long the first waiting item waits for others before a batch goes out.
LINGER = 0.25
#: The longest a pass follows an ingestion: one still in progress then is left to the next
#: pass (which waits for it too, and reports it once past the folder's timeout), so that a
#: stuck file does not hold up the daemon's other work.
FOLLOW_LIMIT = 120.0
#: How often following checks whether the pass is stopping.
_SLICE = 1.0


@dataclass(slots=True)
class Attachment:
    """One file to attach to one store, and what it is for."""

    folder: str
    path: str
    file_id: str
    store: str
    attributes: dict[str, AttributeValue]
    chunking: ChunkingStrategy
    timeout: float  # how long to follow its ingestion (see FOLLOW_LIMIT)
    sent_at: float = 0.0  # monotonic


@dataclass(frozen=True, slots=True)
class Ingestion:
    """How an attachment ended: ``status`` is the store file's (``completed``, ``failed``,
    ``cancelled`` or ``in_progress`` when its time ran out), or ``refused`` / ``error`` when the
    attach request itself was refused (400: the service will not take this file) or failed."""

    status: str
    detail: str | None = None


@dataclass(slots=True)
class _Sent:
    store: str
    batch_id: str | None  # None: attached with one request
    items: list[Attachment] = field(default_factory=list)


class StoreAttacher:
    """Gathers attachments and sends them to their stores; see the module docstring.

    ``on_sent`` is called once the service holds an attachment (it answered the attach), so
    the caller can record the claim before ingestion ends; ``on_result`` once with each
    attachment's :class:`Ingestion`. Both may be called from the sending thread.
    """

    def __init__(
        self,
        client: Client,
        *,
        on_sent: Callable[[Attachment], None],
        on_result: Callable[[Attachment, Ingestion], None],
        stop: threading.Event,
        linger: float = LINGER,
    ) -> None:
        self.client = client
        self.on_sent = on_sent
        self.on_result = on_result
        self.stop = stop
        self.linger = linger
        self._cond = threading.Condition()
        self._waiting: dict[str, list[Attachment]] = {}
        self._first_at: float | None = None
        self._closing = False
        self._sent: list[_Sent] = []
        self._thread: threading.Thread | None = None
        self._auth: AuthenticationError | None = None

    def add(self, item: Attachment) -> None:
        """Queue ``item``; the sending thread starts with the first one."""
        with self._cond:
            self._waiting.setdefault(item.store, []).append(item)
            if self._first_at is None:
                self._first_at = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_loop, name="syncd-attach", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def finish(self) -> None:
        """Send what is waiting, then follow every attachment sent to its end (or its
        timeout). Raises :class:`AuthenticationError` if the service refused the key."""
        with self._cond:
            thread, self._closing = self._thread, True
            self._cond.notify_all()
        if thread is not None:
            thread.join()
        sent, self._sent = self._sent, []
        with self._cond:
            self._thread, self._closing, self._first_at = None, False, None
        for group in sent:
            if self.stop.is_set() or self._auth is not None:
                break
            self._follow(group)
        if self._auth is not None:
            auth, self._auth = self._auth, None
            raise auth

    # --- sending ---------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    count = sum(len(items) for items in self._waiting.values())
                    if self._closing and not count:
                        return
                    if count and (
                        self._closing
                        or count >= MAX_BATCH
                        or time.monotonic() - (self._first_at or 0) >= self.linger
                    ):
                        break
                    wait = None
                    if count and self._first_at is not None:
                        wait = max(0.0, self.linger - (time.monotonic() - self._first_at))
                    self._cond.wait(wait)
                store = next(s for s, items in self._waiting.items() if items)
                items = self._waiting[store][:MAX_BATCH]
                del self._waiting[store][:MAX_BATCH]
                if not any(self._waiting.values()):
                    self._first_at = None
            if self.stop.is_set() or self._auth is not None:
                continue  # drop: nothing new starts once stopping; the next pass attaches
            self._send(store, items)

    def _send(self, store: str, items: list[Attachment]) -> None:
        """One attach request for ``items`` (a batch, or a single attach for one item)."""
        if len(items) == 1:
            self._send_one(items[0])
            return
        files = [
            BatchFile(file_id=i.file_id, attributes=i.attributes, chunking_strategy=i.chunking)
            for i in items
        ]
        try:
            batch = self.client.create_file_batch(store, files=files)
        except AuthenticationError as e:
            self._auth = self._auth or e
            return
        except BadRequestError:
            # One file the store will not take refuses the whole batch: one by one, each
            # gets its own answer.
            for item in items:
                self._send_one(item)
            return
        except APIError as e:
            for item in items:
                self.on_result(item, Ingestion("error", f"could not attach to {store}: {e}"))
            return
        now = time.monotonic()
        for item in items:
            item.sent_at = now
            self.on_sent(item)
        self._sent.append(_Sent(store, batch.id, items))

    def _send_one(self, item: Attachment) -> None:
        try:
            answer = self._attach(item)
            if answer.status == "cancelled":
                # An attached file whose ingestion was cancelled: attaching answers it as it
                # is, so it is taken off and attached afresh.
                self.client.delete_vector_store_file(item.store, item.file_id, missing_ok=True)
                answer = self._attach(item)
        except AuthenticationError as e:
            self._auth = self._auth or e
            return
        except BadRequestError as e:
            self.on_result(item, Ingestion("refused", e.message))
            return
        except APIError as e:
            self.on_result(item, Ingestion("error", f"could not attach to {item.store}: {e}"))
            return
        item.sent_at = time.monotonic()
        self.on_sent(item)
        self._sent.append(_Sent(item.store, None, [item]))

    def _attach(self, item: Attachment) -> VectorStoreFile:
        return self.client.create_vector_store_file(
            item.store,
            item.file_id,
            attributes=item.attributes,
            chunking_strategy=item.chunking,
        )

    # --- following -------------------------------------------------------------------------------

    def _follow(self, group: _Sent) -> None:
        """Wait for the group's ingestion to end (each item's timeout counted from when it was
        sent), then report every item."""
        deadline = max(i.sent_at + i.timeout for i in group.items)
        statuses: dict[str, VectorStoreFile] = {}
        try:
            # In slices, so that a stopping pass does not wait out a slow ingestion.
            while True:
                remaining = max(0.0, deadline - time.monotonic())
                wait = min(remaining, _SLICE)
                if group.batch_id is None:
                    single = self.client.wait_vector_store_file(
                        group.store, group.items[0].file_id, timeout=wait
                    )
                    statuses = {single.id: single}
                    status = single.status
                else:
                    batch = self.client.wait_file_batch(group.store, group.batch_id, timeout=wait)
                    status = batch.status
                if status != "in_progress" or remaining <= wait or self.stop.is_set():
                    break
            if group.batch_id is not None:
                for found in self.client.iter_file_batch_files(group.store, group.batch_id):
                    statuses[found.id] = found
        except AuthenticationError as e:
            self._auth = self._auth or e
            return
        except APIError as e:
            # The attachments stand; the next pass sees how they ended.
            log.warning("could not follow the ingestion in %s: %s", group.store, e)
            return
        for item in group.items:
            final = statuses.get(item.file_id)
            if final is None:
                # Left the batch (detached or deleted meanwhile): the next plan decides.
                continue
            detail = final.last_error.message if final.last_error is not None else None
            self.on_result(item, Ingestion(final.status, detail))
