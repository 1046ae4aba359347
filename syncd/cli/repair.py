"""``syncd repair``: bring back a damaged manifest without duplicating or orphaning anything.

Two ways. By default from the verified copy (below). With ``--from-stores``, from the vector
stores' attributes (:mod:`syncd.engine.rebuild`): for a manifest lost with no copy, every store
file that carries this syncd's instance id and the content hash of the local file at its path is
taken back as that file's remote copy — nothing is uploaded again.

From the verified copy:
It sets the damaged file aside, restores the verified copy kept after the last pass that
changed something, and records, for every local file the copy does not know in its current
content, an upload intent dated when the copy was made. The next pass then treats those files
as uploads whose answers were lost: one that syncd uploaded since the copy is found on the
service by the lost-upload rule (same name as sent, size and purpose, made after the copy,
owned by nothing) and adopted; only the others are uploaded. Files that are someone else's
are never matched by anything but that rule, as in any pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from syncd.api import APIError
from syncd.cli.output import (
    config_option,
    fail,
    json_option,
    load,
    open_client,
    print_json,
    service_failure,
)
from syncd.config import Config
from syncd.engine.manifest import (
    BACKUP_FILENAME,
    FILENAME,
    ManifestDB,
    ManifestError,
    instance_id,
    integrity_problem,
)
from syncd.engine.model import Attempt, Entry, State
from syncd.engine.planner import upload_name
from syncd.engine.rebuild import rebuild_from_stores
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
@click.option(
    "--from-stores",
    "from_stores",
    is_flag=True,
    help="Rebuild the manifest from the vector stores' attributes instead of the verified "
    "copy (a lost manifest with no copy); --json prints what was taken back.",
)
@config_option
@json_option
def repair_command(config_path: Path | None, from_stores: bool, as_json: bool) -> None:
    """Restore a damaged manifest from the verified copy kept after the last pass that
    changed something, and take back what syncd uploaded since (the next pass finds those
    uploads on the service and adopts them instead of uploading again). Then run
    `syncd reconcile`.

    With --from-stores: rebuild it from the vector stores instead — each store file that
    carries this syncd's instance id and the content hash of the local file at its path is
    taken back as that file's remote copy; nothing is uploaded again.

    \b
    Exit status: 0 restored; 2 no usable copy, no instance id (--from-stores), or a
    configuration error; 3 another syncd holds the state directory (stop it first), or
    the service is unreachable or refused the key.

    \b
    --from-stores --json prints:
    {"instance": str, "adopted": [{"folder": str, "path": str, "file_id": str}],
     "retired": [file id], "skipped": [str], "moved_aside": str | null}
    """
    config = load(config_path)
    if from_stores:
        _from_stores(config, as_json)
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


def _from_stores(config: Config, as_json: bool) -> NoReturn:
    """``--from-stores``: see :mod:`syncd.engine.rebuild`."""
    state_dir = config.sync.state_dir
    instance = instance_id(state_dir, config.sync.instance_id, create=False)
    if not instance:
        fail(
            f"no instance id in {state_dir} and none configured: set sync.instance_id to the "
            "id on the store files (`syncd remote store-files STORE --json` shows it)",
            ExitStatus.CONFIG,
        )
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(StateLock(state_dir, command="syncd repair"))
        except LockHeld as e:
            fail(str(e), ExitStatus.STOPPED)
        moved = None
        try:
            manifest = ManifestDB.open(state_dir)
        except ManifestError:
            moved = state_dir / f"manifest.damaged-{time.strftime('%Y%m%d-%H%M%S')}.sqlite"
            shutil.move(state_dir / FILENAME, moved)
            manifest = ManifestDB.open(state_dir)
        stack.callback(manifest.close)
        client = open_client(config, config.api.retry_policy())
        stack.callback(client.close)
        try:
            rebuilt = rebuild_from_stores(config, client, manifest, instance)
        except APIError as e:
            service_failure(e, "reading the vector stores")
    if as_json:
        print_json(
            {
                "instance": instance,
                "adopted": [{"folder": f, "path": p, "file_id": i} for f, p, i in rebuilt.adopted],
                "retired": rebuilt.retired,
                "skipped": rebuilt.skipped,
                "moved_aside": str(moved) if moved else None,
            }
        )
        sys.exit(ExitStatus.OK)
    if moved:
        click.echo(f"the manifest could not be opened; moved it aside to {moved}")
    for folder, path, file_id in rebuilt.adopted:
        click.echo(f"adopted {file_id} for {folder}/{path}")
    for file_id in rebuilt.retired:
        click.echo(f"{file_id} is syncd's but matches no local file: the next pass deletes it")
    for line in rebuilt.skipped:
        click.echo(f"skipped {line}")
    click.echo(
        f"adopted {len(rebuilt.adopted)}, retired {len(rebuilt.retired)}, "
        f"skipped {len(rebuilt.skipped)} (instance {instance})"
    )
    sys.exit(ExitStatus.OK)
