"""``syncd repair``: bring back a damaged manifest without duplicating or orphaning anything.

It sets the damaged file aside, restores the verified copy kept after the last pass that
changed something, and records, for every local file the copy does not know in its current
content, an upload intent dated when the copy was made. The next pass then treats those files
as uploads whose answers were lost: one that syncd uploaded since the copy is found on the
service by the lost-upload rule (same name as sent, size and purpose, made after the copy,
owned by nothing) and adopted; only the others are uploaded. Files that are someone else's
are never matched by anything but that rule, as in any pass.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import click

from syncd.cli.output import config_option, fail, load
from syncd.config import Config
from syncd.engine.manifest import (
    BACKUP_FILENAME,
    FILENAME,
    ManifestDB,
    ManifestError,
    integrity_problem,
)
from syncd.engine.model import Attempt, Entry, State
from syncd.engine.planner import upload_name
from syncd.engine.report import ExitStatus
from syncd.engine.scan import scan_folder
from syncd.service.lock import LockHeld, StateLock

__all__ = ["repair_command", "restore", "take_back_since"]


def restore(state_dir: Path) -> tuple[Path, float]:
    """Set the damaged manifest aside and put the verified copy in its place. Returns where
    the damaged one went and when the copy was made (unix seconds)."""
    import sqlite3

    backup = state_dir / BACKUP_FILENAME
    if not backup.exists():
        raise ManifestError(
            f"there is no verified copy at {backup} to restore (one is kept after each pass "
            "that changed something, by this version of syncd onwards)"
        )
    with sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True) as conn:
        problem = integrity_problem(conn)
    if problem is not None:
        raise ManifestError(f"the copy at {backup} is damaged too ({problem})")
    made_at = backup.stat().st_mtime
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = state_dir / f"manifest.damaged-{stamp}.sqlite"
    current = state_dir / FILENAME
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{current}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    shutil.copyfile(backup, current)
    current.chmod(0o600)
    return aside, made_at


def take_back_since(config: Config, manifest: ManifestDB, since: float) -> int:
    """Record an upload intent, dated ``since``, for each valid local file the manifest does
    not know in its current content — one per name, size and purpose, since two intents
    with one key could not be told apart. Returns how many."""
    taken: set[tuple[str, int, str]] = set()
    count = 0
    for folder in config.folders:
        known = manifest.entries(folder.name)
        scan = scan_folder(folder, known)
        if scan.local.error is not None:
            continue
        for path, local in sorted(scan.local.files.items()):
            entry = known.get(path)
            if local.problem is not None or (entry is not None and entry.sha256 == local.sha256):
                continue
            if entry is not None and entry.state is State.UPLOADING:
                continue
            key = (upload_name(path), local.size, folder.purpose)
            if key in taken:
                continue
            taken.add(key)
            stat = (local.size, local.mtime_ns, local.inode)
            row = entry or Entry(folder.name, path, *stat, local.sha256, State.UPLOADING)
            intent = Entry(
                folder.name,
                path,
                row.size,
                row.mtime_ns,
                row.inode,
                row.sha256,
                State.UPLOADING,
                row.file_id,
                intent_sha256=local.sha256,
                intent_size=local.size,
                intent_at=since,
                ctime_ns=row.ctime_ns,
            )
            attempt = Attempt(
                folder.name, path, key[0], local.size, folder.purpose, local.sha256, since
            )
            manifest.put_intent(intent, attempt)
            count += 1
    return count


@click.command("repair")
@config_option
def repair_command(config_path: Path | None) -> None:
    """Restore a damaged manifest from the verified copy kept after the last pass that
    changed something, and take back what syncd uploaded since (the next pass finds those
    uploads on the service and adopts them instead of uploading again). Then run
    `syncd reconcile`.

    \b
    Exit status: 0 restored; 2 no usable copy, or a configuration error;
    3 another syncd holds the state directory (stop it first).
    """
    config = load(config_path)
    state_dir = config.sync.state_dir
    try:
        with StateLock(state_dir, command="syncd repair"):
            aside, made_at = restore(state_dir)
            with ManifestDB.open(state_dir) as manifest:
                count = take_back_since(config, manifest, made_at)
    except LockHeld as e:
        fail(f"{e}; stop it before repairing", ExitStatus.STOPPED)
    except ManifestError as e:
        fail(str(e), ExitStatus.CONFIG)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(made_at))
    click.echo(f"the damaged manifest is kept at {aside}")
    click.echo(f"restored the copy made {when}")
    click.echo(
        f"{count} file(s) changed or added since are looked for on the service by the next "
        "pass before anything is uploaded: run `syncd reconcile` now"
    )
    sys.exit(ExitStatus.OK)
