"""The plan a real pass makes of a :class:`~.sim.World`: its manifest in a ManifestDB, its
scan checked against it, its listing streamed into :class:`~syncd.engine.rest.RoundTables`,
the files at rest left out — to compare with the plan made from everything (``World.plan``)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from syncd.api import FilePage
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import LocalFolder, Plan
from syncd.engine.planner import plan
from syncd.engine.rest import RoundTables

from .sim import INSTANCE, World

if TYPE_CHECKING:
    import os


def manifest_db(world: World) -> ManifestDB:
    """The world's manifest, written into a fresh in-memory ManifestDB."""
    db = ManifestDB.memory()
    records = world.records
    db.put_entries(list(records.entries.values()))
    for retired in records.retired.values():
        db.put_retired(retired)
    for file_id, target in records.attachments:
        db.add_attachment(file_id, target)
    with db.connection() as conn:
        conn.executemany(
            "INSERT INTO attempts (folder, path, filename, size, purpose, sha256, sent_at,"
            " file_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (a.folder, a.path, a.filename, a.size, a.purpose, a.sha256, a.sent_at, a.file_id)
                for a in records.attempts
            ],
        )
    return db


def plan_left_out(world: World, *, force: bool = False) -> tuple[Plan, int]:
    """The world's plan as a pass makes it, and how many files it left at rest."""
    db = manifest_db(world)
    with RoundTables(db) as tables:
        scanned = []
        for folder in world.scan():
            if folder.error is not None:
                scanned.append(folder)
                continue
            sink = tables.folder(folder.spec.name, whole=True)
            hashed = {}
            for f in folder.files.values():
                st = SimpleNamespace(
                    st_size=f.size, st_mtime_ns=f.mtime_ns, st_ino=f.inode, st_ctime_ns=f.ctime_ns
                )
                if not sink.unchanged(f.path, cast("os.stat_result", st)):
                    hashed[f.path] = f
            sink.settle(hashed, None)
            scanned.append(LocalFolder(folder.spec, hashed))
        remote = world.service.snapshot()
        # The listing as the service sends it, one page.
        listed = [dataclasses.asdict(f) | {"object": "file"} for f in remote.files.values()]
        tables.add_file_page(FilePage(json.dumps({"object": "list", "data": listed})))
        for target, ids in remote.attachments.items():
            found = remote.store_files.get(target)
            tables.add_attached(
                target, [(i, found[i] if found is not None else None) for i in sorted(ids)]
            )
        selection = tables.select(scanned, unavailable=remote.unavailable, instance=INSTANCE)
    decided = plan(
        selection.folders,
        selection.manifest,
        selection.remote,
        now=world.clock,
        force=force,
        assistant_file_limit=world.service.limit,
        instance=INSTANCE,
    )
    db.close()
    return decided, sum(selection.manifest.resting.values()) + selection.rejected
