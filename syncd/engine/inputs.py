"""What a round of a pass plans from: the folders' scans, the manifest with its retry schedule
applied, and the service's listing.

:class:`Inputs` gathers them for :class:`~syncd.engine.reconcile.Engine`, one round at a time;
the planner then decides from them alone.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace

from syncd.api import APIError, AuthenticationError, BadRequestError, Client, NotFoundError
from syncd.config import Config, FolderConfig
from syncd.engine.executor import PassStopped
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import (
    LocalFile,
    LocalFolder,
    Manifest,
    State,
    StoreFile,
    target_kind,
)
from syncd.engine.names import where
from syncd.engine.rest import FolderTable, RoundTables
from syncd.engine.scan import FolderScan, scan_folder, scan_paths

__all__ = ["RETIRED_ASSISTANTS", "Inputs", "Round", "assistants_retired"]

log = logging.getLogger("syncd.reconcile")

#: What syncd says, once a pass and in ``syncd check``, when the service answers the
#: Assistants calls as retired.
RETIRED_ASSISTANTS = (
    "the service no longer offers the Assistants API (v1 was switched off in December 2024, "
    "the whole API in August 2026), so files are not attached to assistants any more; "
    "vector stores are the way now: list the folder's stores in vector_stores (see the "
    'README, "Moving from assistants to vector_stores")'
)


def assistants_retired(error: APIError) -> bool:
    """Whether ``error``, the answer to an Assistants call, says the API is switched off: 400
    ``invalid_beta`` (v1), or 404 for the path itself (the whole API) rather than for an
    assistant that does not exist."""
    if isinstance(error, BadRequestError) and error.code == "invalid_beta":
        return True
    return isinstance(error, NotFoundError) and error.message.startswith("Invalid URL")


@dataclass
class Round:
    """The inputs one round planned from."""

    local: list[LocalFolder]
    files: dict[tuple[str, str], LocalFile]
    devices: dict[str, int]
    #: (folder, path) -> why: paths that exist but could not be read (they need attention)
    unreadable: dict[tuple[str, str], str] = field(default_factory=dict)
    bad_names: list[tuple[str, str]] = field(default_factory=list)  # (folder, escaped path)
    #: Files left out of the plan (see :mod:`syncd.engine.rest`): valid ones, rejected ones.
    at_rest: int = 0
    at_rest_rejected: int = 0


class Inputs:
    """Gathers each round's inputs for one configuration, client and manifest."""

    def __init__(self, config: Config, client: Client, manifest: ManifestDB) -> None:
        self.config = config
        self.client = client
        self.manifest = manifest
        self.folders = {f.name: f for f in config.folders}
        self._warned_links: set[str] = set()

    def select(
        self, names: Collection[str] | None, paths: Mapping[str, Collection[str]] | None
    ) -> list[FolderConfig]:
        if names is None:
            names = list(paths) if paths is not None else list(self.folders)
        unknown = sorted(set(names) - set(self.folders))
        if unknown:
            raise ValueError(f"no folder named {', '.join(unknown)} in the configuration")
        return [self.folders[name] for name in self.folders if name in set(names)]

    def scan(
        self,
        selected: list[FolderConfig],
        paths: Mapping[str, Collection[str]] | None,
        tables: RoundTables,
        *,
        force: bool,
    ) -> Round:
        """Scan the selected folders (only the dirty ``paths`` where given) against the
        manifest: the round holds the files hashed or kept; ``tables`` knows which are gone."""
        local: list[LocalFolder] = []
        files: dict[tuple[str, str], LocalFile] = {}
        devices: dict[str, int] = {}
        unreadable: dict[tuple[str, str], str] = {}
        bad_names: list[tuple[str, str]] = []
        for folder in selected:
            sink = tables.folder(folder.name, whole=paths is None)
            expected_dev = self.manifest.folder_dev(folder.name)
            if force and expected_dev is not None and _root_dev(folder) not in (None, expected_dev):
                log.warning(
                    "%s accepting its root on a different filesystem (--force)",
                    where(folder.name, None),
                )
                expected_dev = None
            if paths is None:
                scan = scan_folder(
                    folder,
                    sink.known(),
                    expected_dev=expected_dev,
                    warned_links=self._warned_links,
                    sink=sink,
                )
            else:
                scan = self._scan_dirty(folder, paths.get(folder.name, ()), sink, expected_dev)
            folder_scan = scan.local
            local.append(folder_scan)
            bad_names += [(folder.name, name) for name in scan.bad_names]
            if folder_scan.error is None:
                if scan.root_dev is not None:
                    devices[folder.name] = scan.root_dev
                for path, file in folder_scan.files.items():
                    files[(folder.name, path)] = file
                for path, why in scan.unreadable:
                    unreadable[(folder.name, path)] = why
        return Round(local, files, devices, unreadable, bad_names)

    def _scan_dirty(
        self,
        folder: FolderConfig,
        dirty: Collection[str],
        sink: FolderTable,
        expected_dev: int | None,
    ) -> FolderScan:
        """Scan the dirty paths, and every entry not at rest (they may hold news the manifest
        does not); take the rest as the manifest last saw it. The planner needs a complete
        folder: a path missing from it is taken for deleted."""
        scan = scan_paths(
            folder,
            set(dirty) | set(sink.unsettled()),
            sink.known(),
            expected_dev=expected_dev,
            warned_links=self._warned_links,
            sink=sink,
        )
        return scan

    def remote(
        self, selected: list[FolderConfig], tables: RoundTables
    ) -> tuple[dict[str, str], dict[str, str]]:
        """List the service into ``tables``: every file, and what is attached to each
        configured target of a folder being planned (a store's files with their ingestion and
        attributes). Returns the targets the service no longer serves, and those that do not
        exist or whose store expired, each with why (their folders are to be skipped)."""
        try:
            for page in self.client.iter_file_pages():
                tables.add_file_page(page)
            missing: dict[str, str] = {}
            unavailable: dict[str, str] = {}
            for target in sorted({t for f in selected for t in f.spec().targets}):
                try:
                    if target_kind(target) == "store":
                        tables.add_attached(target, self._store_files(target))
                    else:
                        listed = self.client.iter_assistant_files(target)
                        tables.add_attached(target, ((a.id, None) for a in listed))
                except _StoreExpired:
                    missing[target] = f"vector store {target} has expired; create a new one"
                except APIError as e:
                    if target_kind(target) == "assistant" and assistants_retired(e):
                        unavailable[target] = "the service no longer offers the Assistants API"
                    elif isinstance(e, NotFoundError):
                        kind = "vector store" if target_kind(target) == "store" else "assistant"
                        missing[target] = (
                            f"{kind} {target} does not exist, or this API key cannot see it"
                        )
                    else:
                        raise
            tables.listing_done()
        except AuthenticationError as e:
            raise PassStopped("auth", f"the service refused the API key: {e}") from e
        except APIError as e:
            raise PassStopped("service", f"cannot list the service's files: {e}") from e
        return unavailable, missing

    def _store_files(self, store: str) -> Iterator[tuple[str, StoreFile]]:
        """The store's files with their ingestion and attributes; :class:`_StoreExpired` for
        an expired store (the service no longer serves it)."""
        if self.client.retrieve_vector_store(store).status == "expired":
            raise _StoreExpired(store)
        for f in self.client.iter_vector_store_files(store):
            status = f.status if f.status in _STATUSES else "in_progress"
            error = f.last_error.message if f.last_error is not None else None
            yield f.id, StoreFile(status, f.created_at, f.attributes or {}, error)  # type: ignore[arg-type]

    def skip_folders_of(
        self, missing: Mapping[str, str], selected: list[FolderConfig], current: Round
    ) -> list[str]:
        """Make the folders configured with a target that does not exist (or a store that
        expired) unavailable for the round; return why, one message per folder (naming the
        targets)."""
        messages = []
        for folder in selected:
            gone = sorted(set(missing) & set(folder.spec().targets))
            if not gone:
                continue
            message = "; ".join(missing[t] for t in gone) + (
                "; fix the folder's assistants or vector_stores list"
            )
            messages.append(f"{folder.name}: {message}")
            for i, scanned in enumerate(current.local):
                if scanned.spec.name == folder.name:
                    current.local[i] = LocalFolder(scanned.spec, error=message)
            for key in [k for k in current.files if k[0] == folder.name]:
                del current.files[key]
        return messages

    def retry_schedule(
        self,
        snapshot: Manifest,
        paths: Mapping[str, Collection[str]] | None,
        *,
        first_round: bool,
    ) -> Manifest:
        """The whole manifest (the planner must know every file syncd owns), with the retry
        schedule applied: a full pass tries every failed file again at once; a pass over
        dirty paths tries a changed one at once and leaves one that ran out of attempts to the
        next full pass. Later rounds of a pass keep the backoff the first round set."""
        if not first_round:
            return snapshot
        limit = self.config.api.max_attempts
        dirty = {(name, path) for name, names in (paths or {}).items() for path in names}
        entries = dict(snapshot.entries)
        for key, entry in snapshot.entries.items():
            if entry.state is not State.FAILED:
                continue
            if paths is None or key in dirty:
                entries[key] = replace(entry, next_attempt_at=None)
            elif entry.attempts >= limit:
                entries[key] = replace(entry, next_attempt_at=math.inf)
        return replace(snapshot, entries=entries)


class _StoreExpired(Exception):
    """A configured vector store has expired."""


_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def _root_dev(folder: FolderConfig) -> int | None:
    try:
        return os.stat(folder.path).st_dev
    except OSError:
        return None
