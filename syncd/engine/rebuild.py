"""Rebuilding a lost or damaged manifest from the vector stores, without uploading anything.

Every store file syncd attaches carries its instance id, folder, path and content hash as
attributes (:func:`~syncd.engine.model.store_attributes`). :func:`rebuild_from_stores` reads
the configured stores and adopts, for each path with no manifest row, the store file that is
this instance's, still exists as a File, and holds exactly the content the local file holds
now (its SHA-256 is computed). The row comes back ``synced`` with that file and its store
attachments recorded, so the next pass uploads nothing and re-ingests nothing.

Store files of this instance that match no local file (an older version, a file removed
meanwhile) are recorded as retired: they are provably syncd's, and the next pass deletes
them. Files of other instances, or with no instance id, are never touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from syncd.api import Client, VectorStoreFile
from syncd.config import Config, FolderConfig
from syncd.engine.files import FileChanged, sha256_file
from syncd.engine.filters import is_excluded
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry, Retired, State

__all__ = ["Rebuilt", "rebuild_from_stores"]


@dataclass
class Rebuilt:
    """What a rebuild did: (folder, path, file id) adopted; ids retired; why others were not."""

    adopted: list[tuple[str, str, str]] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in words, one per store file


def rebuild_from_stores(
    config: Config, client: Client, manifest: ManifestDB, instance: str
) -> Rebuilt:
    """Adopt this instance's store files into ``manifest`` (see the module docstring)."""
    result = Rebuilt()
    existing = {f.id for f in client.iter_files()}
    claims: dict[str, list[tuple[FolderConfig, str, VectorStoreFile]]] = {}
    for folder, store, found in _ours(config, client, instance):
        if found.id not in existing:
            result.skipped.append(f"{found.id} in {store}: the File itself is gone")
            continue
        claims.setdefault(found.id, []).append((folder, store, found))
    taken: set[tuple[str, str]] = set()
    for file_id, places in sorted(claims.items()):
        folder, _, first = places[0]
        attributes = first.attributes or {}
        path = str(attributes.get("syncd_path", ""))
        wanted = str(attributes.get("syncd_sha256", ""))
        if manifest.owns(file_id):
            continue  # the manifest knows it already
        local = _local_file(folder, path)
        key = (folder.name, path)
        if (
            local is not None
            and local[0] == wanted
            and key not in taken
            and manifest.entry(folder.name, path) is None
        ):
            sha, st = local
            entry = Entry(
                folder.name, path, st.st_size, st.st_mtime_ns, st.st_ino, sha, State.SYNCED, file_id
            )
            with manifest.transaction():
                manifest.put_entry(entry)
                for _, store, found in places:
                    manifest.add_attachment(file_id, store, status=found.status)
            taken.add(key)
            result.adopted.append((folder.name, path, file_id))
            continue
        with manifest.transaction():
            manifest.put_retired(Retired(file_id, folder.name, delete=True))
            for _, store, found in places:
                manifest.add_attachment(file_id, store, status=found.status)
        result.retired.append(file_id)
    return result


def _ours(
    config: Config, client: Client, instance: str
) -> Iterator[tuple[FolderConfig, str, VectorStoreFile]]:
    """This instance's files in each folder's stores (by their attributes)."""
    for folder in config.folders:
        for store in folder.vector_stores:
            for found in client.iter_vector_store_files(store):
                attributes = found.attributes or {}
                if (
                    attributes.get("syncd_instance") == instance
                    and attributes.get("syncd_folder") == folder.name
                    and isinstance(attributes.get("syncd_path"), str)
                ):
                    yield folder, store, found


def _local_file(folder: FolderConfig, path: str) -> tuple[str, os.stat_result] | None:
    """The SHA-256 and stat of the folder's ``path``, if it is an eligible file there."""
    parts = path.split("/")
    if not path or ".." in parts or path.startswith("/") or is_excluded(path, folder):
        return None
    try:
        return sha256_file(folder.path / path)
    except (OSError, FileChanged):
        return None
