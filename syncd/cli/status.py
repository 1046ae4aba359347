"""``syncd status``: what syncd has recorded, per folder, read from the manifest alone.

It makes no request and takes no lock, so it answers offline and while the daemon runs: the
manifest is opened read-only in WAL mode, where a reader sees the last committed state and
never blocks the writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from syncd import __version__
from syncd.cli.output import (
    config_option,
    fail,
    iso_time,
    json_option,
    load,
    local_time,
    print_json,
    print_table,
)
from syncd.config import Config
from syncd.engine.manifest import FILENAME, ManifestDB, ManifestError, PassInfo, instance_id
from syncd.engine.model import ASSISTANT_FILE_LIMIT, Entry, State
from syncd.engine.names import escape, where
from syncd.engine.report import ExitStatus
from syncd.service.activity import read_activity

__all__ = [
    "EPILOG",
    "INGESTION_STATES",
    "SUMMARY_ORDER",
    "FolderStatus",
    "StoreStatus",
    "open_manifest",
    "read_status",
    "read_stores",
    "status_command",
    "summarize",
]

EPILOG = """\b
Exit status: 0 (whatever the states), 2 when the configuration or the manifest
cannot be read.

\b
--json prints:
{"version": str (this syncd's), "state_dir": str, "manifest": bool (false: no pass has run yet),
 "retired": int (old remote files still to be detached or deleted),
 "daemon": null (no `syncd run` on this state directory) |
           {"pid": int, "started_at": ISO 8601 UTC, "status": str, "activity": str,
            "progress": str | null, "pending_paths": int,
            "folders": {name: {"watch": "inotify" | "polling" | "paused", "problem": str | null}}},
 "instance": str (the id syncd writes on its store files; "" before the first pass),
 "stores": [{"folder": str, "store": str,
             "counts": {"in_progress": n, "completed": n, "failed": n, "cancelled": n},
             "failed": [{"path": str, "error": str | null}],
             "slow": [{"path": str, "since": ISO 8601 UTC}]}],
 "folders": [{"name": str, "path": str | null (null: in the manifest, no longer configured),
              "counts": {"pending": n, "uploading": n, "synced": n,
                         "failed": n, "rejected": n, "deleting": n},
              "last_pass": {"started_at": ISO 8601 UTC, "finished_at": ISO 8601 UTC,
                            "error": str | null} | null,
              "problems": [{"path": str, "state": "failed" | "rejected" | "unreadable",
                            "reason": str | null, "attempts": int}],
                           ("unreadable": found by the last pass, but it could not read it)
              "unattached": {ASSISTANT_ID: [path, ...]}
                            (synced files not attached to a configured assistant,
                             e.g. one at its 20-file limit)}]}
"""


@dataclass(frozen=True, slots=True)
class FolderStatus:
    name: str
    path: str | None
    counts: dict[str, int]
    last_pass: PassInfo | None
    problems: list[Entry]
    #: assistant id -> the synced files of this folder that syncd has not attached to it
    unattached: dict[str, list[str]] = field(default_factory=dict)

    @property
    def unreadable(self) -> dict[str, str]:
        """path -> why: the files the last pass found but could not read."""
        return self.last_pass.unreadable if self.last_pass else {}

    def to_json(self) -> dict[str, object]:
        last = self.last_pass
        return {
            "name": self.name,
            "path": self.path,
            "counts": self.counts,
            "last_pass": None
            if last is None
            else {
                "started_at": iso_time(last.started_at),
                "finished_at": iso_time(last.finished_at),
                "error": last.error,
            },
            "problems": [
                {
                    "path": e.path,
                    "state": e.state.value,
                    "reason": e.last_error,
                    "attempts": e.attempts,
                }
                for e in self.problems
            ]
            + [
                {"path": path, "state": "unreadable", "reason": why, "attempts": 0}
                for path, why in self.unreadable.items()
            ],
            "unattached": self.unattached,
        }


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """One folder's files in one vector store, by ingestion state."""

    folder: str
    store: str
    counts: dict[str, int]
    failed: list[tuple[str, str | None]]  # (path, the service's last_error)
    slow: list[tuple[str, float]]  # (path, ingesting since), past ingestion_timeout_seconds

    def to_json(self) -> dict[str, object]:
        return {
            "folder": self.folder,
            "store": self.store,
            "counts": self.counts,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "slow": [{"path": p, "since": iso_time(t)} for p, t in self.slow],
        }


#: A store file's ingestion states, in the order they are shown.
INGESTION_STATES = ("completed", "in_progress", "failed", "cancelled")


def read_stores(config: Config, db: ManifestDB | None, now: float) -> list[StoreStatus]:
    """Per configured folder and vector store: its files by ingestion state as the last pass
    saw them, the failed ones with the service's reason, and those ingesting for longer than
    the folder's ``ingestion_timeout_seconds``."""
    found: dict[tuple[str, str], StoreStatus] = {
        (folder.name, store): StoreStatus(
            folder.name, store, dict.fromkeys(INGESTION_STATES, 0), [], []
        )
        for folder in config.folders
        for store in folder.vector_stores
    }
    timeouts = {f.name: f.ingestion_timeout_seconds for f in config.folders}
    for folder, store, path, status, error, since in db.ingestion() if db else []:
        entry = found.get((folder, store))
        if entry is None:
            continue
        entry.counts[status] = entry.counts.get(status, 0) + 1
        if status == "failed":
            entry.failed.append((path, error))
        elif status == "in_progress" and since is not None and now - since > timeouts[folder]:
            entry.slow.append((path, since))
    return list(found.values())


def read_status(config: Config, db: ManifestDB | None) -> list[FolderStatus]:
    """Each configured folder, then any folder the manifest still holds that is no longer
    configured; with no manifest (``db`` is ``None``) every count is zero."""
    counts = db.counts() if db else {}
    passes = db.last_pass() if db else {}
    problems: dict[str, list[Entry]] = {}
    for entry in db.problems() if db else []:
        problems.setdefault(entry.folder, []).append(entry)
    paths: dict[str, str | None] = {f.name: str(f.path) for f in config.folders}
    for name in sorted({*counts, *passes} - paths.keys()):
        paths[name] = None
    unattached = _unattached(config, db) if db else {}
    return [
        FolderStatus(
            name=name,
            path=path,
            counts={s.value: counts.get(name, {}).get(s.value, 0) for s in State},
            last_pass=passes.get(name),
            problems=problems.get(name, []),
            unattached=unattached.get(name, {}),
        )
        for name, path in paths.items()
    ]


def _unattached(config: Config, db: ManifestDB) -> dict[str, dict[str, list[str]]]:
    """Per folder, per configured assistant: the synced files syncd has not attached to it
    (an assistant at its file limit leaves the rest uploaded but unattached)."""
    wanted = {f.name: f.assistants for f in config.folders if f.assistants}
    if not wanted:
        return {}
    snapshot = db.snapshot(list(wanted))
    found: dict[str, dict[str, list[str]]] = {}
    for (folder, path), entry in sorted(snapshot.entries.items()):
        if entry.state is not State.SYNCED or entry.file_id is None:
            continue
        for assistant in wanted.get(folder, ()):
            if (entry.file_id, assistant) not in snapshot.attachments:
                found.setdefault(folder, {}).setdefault(assistant, []).append(path)
    return found


def open_manifest(state_dir: Path) -> ManifestDB | None:
    """The manifest opened read-only, or ``None`` when no pass has created it yet.
    Creates nothing: a missing state directory stays missing."""
    try:
        if not (state_dir / FILENAME).exists():
            return None
    except OSError as e:
        fail(f"cannot read the state directory {state_dir}: {e.strerror}", ExitStatus.CONFIG)
    try:
        return ManifestDB.open(state_dir, readonly=True)
    except ManifestError as e:
        fail(str(e), ExitStatus.CONFIG)


@click.command("status", epilog=EPILOG)
@config_option
@json_option
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also list each synced file not attached to a configured assistant.",
)
def status_command(config_path: Path | None, as_json: bool, verbose: bool) -> None:
    """Per folder: files by state, the last pass, every failed or rejected file with its
    reason, and how many synced files are not attached to each configured assistant. Reads
    only the manifest: works offline and while the daemon runs."""
    config = load(config_path)
    state_dir = config.sync.state_dir
    db = open_manifest(state_dir)
    try:
        folders = read_status(config, db)
        stores = read_stores(config, db, time.time())
        retired = db.retired_count() if db else 0
    finally:
        if db:
            db.close()
    instance = instance_id(state_dir, config.sync.instance_id, create=False)

    daemon = read_activity(state_dir)

    if as_json:
        print_json(
            {
                "version": __version__,
                "state_dir": str(state_dir),
                "manifest": db is not None,
                "retired": retired,
                "daemon": _daemon_json(daemon),
                "instance": instance,
                "stores": [s.to_json() for s in stores],
                "folders": [f.to_json() for f in folders],
            }
        )
        return
    click.echo(f"syncd {__version__}")
    if db is None:
        click.echo(f"no pass has run yet (no manifest in {state_dir})")
    _print_daemon(daemon)
    _print_human(folders, retired, verbose=verbose)
    _print_stores(stores, instance)


def _print_stores(stores: list[StoreStatus], instance: str) -> None:
    """The vector stores: files by ingestion state, then the ones that need attention."""
    if not stores:
        return
    click.echo()
    print_table(
        ["folder", "vector store", *(state.replace("_", " ") for state in INGESTION_STATES)],
        [[s.folder, s.store, *(str(s.counts[k]) for k in INGESTION_STATES)] for s in stores],
        title=f"Vector stores (syncd instance {instance or 'not assigned yet'})",
    )
    for s in stores:
        for path, error in s.failed:
            click.echo(
                f"{where(s.folder, path)}: {s.store} could not ingest it: {error or 'no reason'}"
            )
        for path, since in s.slow:
            click.echo(
                f"{where(s.folder, path)}: ingesting in {s.store} since {local_time(since)} "
                "(longer than ingestion_timeout_seconds); syncd waits for it"
            )


def _daemon_json(daemon: dict[str, Any] | None) -> dict[str, Any] | None:
    if daemon is None:
        return None
    keys = ("pid", "status", "activity", "progress", "pending_paths", "folders")
    return {"started_at": iso_time(daemon["started_at"])} | {k: daemon.get(k) for k in keys}


def _print_daemon(daemon: dict[str, Any] | None) -> None:
    """What a running ``syncd run`` says it is doing, in a line or three (nothing when none
    runs: a one-shot ``reconcile`` setup has no daemon to speak of)."""
    if daemon is None:
        return
    click.echo(
        f"daemon: PID {daemon['pid']}, running since {local_time(daemon['started_at'])}"
        f" — {daemon.get('status') or 'starting'}"
    )
    doing = daemon.get("activity") or "idle"
    if daemon.get("progress"):
        doing += f" ({daemon['progress']})"
    if daemon.get("pending_paths"):
        doing += f"; {daemon['pending_paths']} changed path(s) waiting to settle"
    click.echo(f"  now: {doing}")
    for name, folder in (daemon.get("folders") or {}).items():
        if folder.get("problem"):
            click.echo(f"  {where(name, None)} paused — {escape(folder['problem'])}")


def _print_human(folders: list[FolderStatus], retired: int, *, verbose: bool) -> None:
    print_table(
        ["folder", "files", "last pass", "path"],
        [
            [
                f.name,
                summarize(f.counts),
                local_time(f.last_pass.finished_at) if f.last_pass else "never",
                f.path or "(no longer configured)",
            ]
            for f in folders
        ],
    )
    for f in folders:
        if f.last_pass and f.last_pass.error:
            click.echo(f"{where(f.name, None)} last pass stopped: {escape(f.last_pass.error)}")
    if retired:
        click.echo(f"{retired} old remote file(s) still to be detached or deleted")
    for f in folders:
        for assistant, unattached in f.unattached.items():
            # One line per assistant, however many files: the list is for -v and --json.
            click.echo(
                f"{where(f.name, None)} {len(unattached):,} synced file(s) not attached to "
                f"{assistant} (an assistant holds at most {ASSISTANT_FILE_LIMIT} files)"
                + ("" if verbose else "; `syncd status -v` lists them")
            )
    rows = [
        [f.name, where(None, e.path), e.state.value, escape(e.last_error or "")]
        for f in folders
        for e in f.problems
    ]
    rows += [
        [f.name, where(None, path), "unreadable", escape(why.removeprefix("unreadable: "))]
        for f in folders
        for path, why in sorted(f.unreadable.items())
    ]
    if verbose:
        rows += [
            [f.name, where(None, path), "not attached", f"to {assistant}"]
            for f in folders
            for assistant, paths in f.unattached.items()
            for path in paths
        ]
    if rows:
        click.echo()
        print_table(["folder", "path", "state", "reason"], rows, title="Files that need attention")


#: The order states are summed up in: the settled state first, then what needs watching.
SUMMARY_ORDER = (
    State.SYNCED,
    State.PENDING,
    State.UPLOADING,
    State.DELETING,
    State.FAILED,
    State.REJECTED,
)


def summarize(counts: dict[str, int]) -> str:
    """``3 synced, 1 pending, 1 rejected`` (states with no file left out)."""
    parts = [f"{counts[s.value]} {s.value}" for s in SUMMARY_ORDER if counts[s.value]]
    return ", ".join(parts) or "no files"
