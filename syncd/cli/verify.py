"""``syncd verify``: does the service hold what the manifest says syncd put there?

For every synced entry: the remote file exists, has the recorded size and the expected
filename (in a folder with vector stores the path lives in the store file's attributes instead,
so a renamed file keeps its first name), is attached to each assistant its folder is configured
with, and is in each of its vector stores, ingested (``completed``), with the attributes syncd
writes (path, content hash, instance id, the folder's own); for fine-tune files
(the only purpose the service lets anyone download) the content is streamed through SHA-256,
never kept, and compared with the recorded hash. Retired files must not still be attached.
Files and attachments syncd does not own are listed for information and never count as errors.

It only reads: nothing is uploaded, attached, detached or deleted.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Literal, cast

import click

from syncd.api import APIError, Client, FileObject, NotFoundError, VectorStoreFile
from syncd.cli.output import (
    config_option,
    json_option,
    load,
    open_client,
    print_json,
    print_table,
    service_failure,
)
from syncd.cli.status import open_manifest
from syncd.config import Config
from syncd.engine.manifest import instance_id
from syncd.engine.model import (
    AttributeValue,
    Entry,
    FolderSpec,
    Manifest,
    State,
    store_attributes,
)
from syncd.engine.planner import upload_name
from syncd.engine.report import ExitStatus, human_size

__all__ = [
    "EPILOG",
    "Discrepancy",
    "Foreign",
    "HashingSink",
    "Kind",
    "Report",
    "compare",
    "expected_filename",
    "verify_command",
]

EPILOG = """\b
Exit status: 0 everything matches; 1 at least one discrepancy; 2 configuration
or manifest error; 3 service unreachable or key refused.

\b
--json prints:
{"ok": bool, "checked": int (synced files compared),
 "discrepancies": [{"kind": "missing" | "bytes" | "filename" | "content" | "not_attached"
                            | "retired_attached" | "assistant_missing" | "store_missing"
                            | "not_in_store" | "not_ingested" | "attributes",
                    "folder": str | null, "path": str | null, "file_id": str | null,
                    "assistant_id": str | null, "detail": str, "store_id": str | null}],
 "foreign": [{"kind": "file" | "attachment", "file_id": str,
              "assistant_id": str | null, "detail": str}]}
"""

Kind = Literal[
    "missing",
    "bytes",
    "filename",
    "content",
    "not_attached",
    "retired_attached",
    "assistant_missing",
    "store_missing",
    "not_in_store",
    "not_ingested",
    "attributes",
]


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One way the service differs from what syncd recorded or is configured to keep."""

    kind: Kind
    folder: str | None
    path: str | None
    file_id: str | None
    assistant_id: str | None
    detail: str
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class Foreign:
    """A file or attachment syncd does not own: reported, never an error."""

    kind: Literal["file", "attachment"]
    file_id: str
    assistant_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    checked: int
    discrepancies: list[Discrepancy]
    foreign: list[Foreign]

    def to_json(self) -> dict[str, object]:
        return {
            "ok": not self.discrepancies,
            "checked": self.checked,
            "discrepancies": [asdict(d) for d in self.discrepancies],
            "foreign": [asdict(f) for f in self.foreign],
        }


class HashingSink(io.RawIOBase):
    """A write-only stream that keeps the SHA-256 and length of what was written, not the
    bytes. It can be rewound to the start, which is what a retried download does."""

    def __init__(self) -> None:
        super().__init__()
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("a hashing sink can only be rewound to the start")
        self._hash = hashlib.sha256()
        self.size = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        # Only ever called right after a rewind, when there is nothing left to cut.
        return self.size

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def expected_filename(entry: Entry) -> str:
    """The filename the service lists an entry's upload under: the last part of its
    relative path, as sent."""
    return upload_name(entry.path)


def compare(client: Client, config: Config, manifest: Manifest, *, content: bool) -> Report:
    """Compare the service with the manifest and the configuration. Reads only."""
    remote = {f.id: f for f in client.list_files()}
    synced = sorted(
        (e for e in manifest.entries.values() if e.state is State.SYNCED and e.file_id),
        key=lambda e: (e.folder, e.path),
    )
    found: list[Discrepancy] = []
    named = {f.name for f in config.folders if not f.vector_stores}
    for entry in synced:
        file = remote.get(entry.file_id or "")
        found.extend(_check_file(client, entry, file, content=content, named=entry.folder in named))

    attached = _attachments(client, config)
    found.extend(
        Discrepancy(
            "assistant_missing",
            folder.name,
            None,
            None,
            assistant_id,
            "the assistant does not exist: no file of this folder can be attached to it",
        )
        for folder in config.folders
        for assistant_id in folder.assistants
        if attached[assistant_id] is None
    )
    present = [e for e in synced if e.file_id in remote]
    found.extend(_check_attachments(config, present, attached))
    found.extend(_check_retired(manifest, attached))
    instance = instance_id(config.sync.state_dir, config.sync.instance_id, create=False)
    found.extend(_check_stores(client, config, manifest, present, instance))
    return Report(len(synced), found, _foreign(config, manifest, remote, attached))


def _check_file(
    client: Client, entry: Entry, file: FileObject | None, *, content: bool, named: bool = True
) -> Iterator[Discrepancy]:
    def differs(kind: Kind, detail: str) -> Discrepancy:
        return Discrepancy(kind, entry.folder, entry.path, entry.file_id, None, detail)

    if file is None:
        yield differs("missing", "the file is no longer on the service")
        return
    if file.bytes != entry.size:
        yield differs("bytes", f"{file.bytes} bytes on the service, {entry.size} recorded")
    if named and file.filename != expected_filename(entry):
        yield differs(
            "filename", f"named {file.filename!r} on the service, {expected_filename(entry)!r} here"
        )
    if content and file.purpose == "fine-tune":
        sink = HashingSink()
        try:
            # The sink does what the client asks of a stream (write, seek to 0, truncate), but
            # a RawIOBase is not typed as an IO[bytes].
            client.download_file(file.id, cast(IO[bytes], sink))
        except NotFoundError:
            yield differs("missing", "the file disappeared while being verified")
            return
        if sink.hexdigest() != entry.sha256:
            yield differs(
                "content",
                f"sha256 {sink.hexdigest()[:12]}… on the service, {entry.sha256[:12]}… recorded",
            )


def _check_stores(
    client: Client, config: Config, manifest: Manifest, present: list[Entry], instance: str
) -> Iterator[Discrepancy]:
    """Each synced file is in each of its folder's vector stores, ingested, with the attributes
    syncd writes; no retired file is still in one."""
    for folder in config.folders:
        spec = folder.spec()

        def wanted_for(entry: Entry, spec: FolderSpec = spec) -> dict[str, AttributeValue]:
            return store_attributes(spec, instance, entry.path, entry.sha256, entry.mtime_ns)

        for store in folder.vector_stores:
            try:
                listed = {f.id: f for f in client.iter_vector_store_files(store)}
            except NotFoundError:
                yield Discrepancy(
                    "store_missing",
                    folder.name,
                    None,
                    None,
                    None,
                    "the vector store does not exist: no file of this folder can be searched",
                    store,
                )
                continue
            for entry in present:
                if entry.folder == folder.name:
                    found = listed.get(entry.file_id or "")
                    yield from _check_store_file(entry, store, found, wanted_for(entry))
            for file_id, retired in sorted(manifest.retired.items()):
                if retired.folder == folder.name and file_id in listed:
                    yield Discrepancy(
                        "retired_attached",
                        retired.folder,
                        None,
                        file_id,
                        None,
                        "replaced or removed locally, still in the store (the next pass "
                        "takes it out)",
                        store,
                    )


def _check_store_file(
    entry: Entry,
    store: str,
    found: VectorStoreFile | None,
    wanted: Mapping[str, AttributeValue],
) -> Iterator[Discrepancy]:
    def differs(kind: Kind, detail: str) -> Discrepancy:
        return Discrepancy(kind, entry.folder, entry.path, entry.file_id, None, detail, store)

    if found is None:
        yield differs("not_in_store", "configured for this store but not in it")
        return
    if found.status != "completed":
        why = f": {found.last_error.message}" if found.last_error else ""
        yield differs("not_ingested", f"ingestion {found.status}{why}")
    actual = found.attributes or {}
    wrong = sorted(k for k in wanted.keys() | actual.keys() if wanted.get(k) != actual.get(k))
    if wrong:
        yield differs("attributes", f"differ from syncd's: {', '.join(wrong)}")


def _attachments(client: Client, config: Config) -> dict[str, set[str] | None]:
    """Configured assistant -> ids of the files attached to it (``None``: no such assistant)."""
    result: dict[str, set[str] | None] = {}
    for folder in config.folders:
        for assistant_id in folder.assistants:
            if assistant_id in result:
                continue
            try:
                result[assistant_id] = {a.id for a in client.iter_assistant_files(assistant_id)}
            except NotFoundError:
                result[assistant_id] = None
    return result


def _check_attachments(
    config: Config, present: list[Entry], attached: Mapping[str, set[str] | None]
) -> Iterator[Discrepancy]:
    assistants = {f.name: f.assistants for f in config.folders}
    for entry in present:
        for assistant_id in assistants.get(entry.folder, []):
            ids = attached[assistant_id]
            if ids is not None and entry.file_id not in ids:
                yield Discrepancy(
                    "not_attached",
                    entry.folder,
                    entry.path,
                    entry.file_id,
                    assistant_id,
                    "configured for this assistant but not attached to it",
                )


def _check_retired(
    manifest: Manifest, attached: Mapping[str, set[str] | None]
) -> Iterator[Discrepancy]:
    for file_id, retired in sorted(manifest.retired.items()):
        for assistant_id, ids in attached.items():
            if ids and file_id in ids:
                yield Discrepancy(
                    "retired_attached",
                    retired.folder,
                    None,
                    file_id,
                    assistant_id,
                    "replaced or removed locally, still attached (the next pass detaches it)",
                )


def _foreign(
    config: Config,
    manifest: Manifest,
    remote: Mapping[str, FileObject],
    attached: Mapping[str, set[str] | None],
) -> list[Foreign]:
    owned = manifest.owned_ids()
    purposes = {f.purpose for f in config.folders}
    files = [
        Foreign("file", f.id, None, f"{f.filename} ({human_size(f.bytes)}, {f.purpose})")
        for f in sorted(remote.values(), key=lambda f: (f.created_at, f.id))
        if f.purpose in purposes and f.id not in owned
    ]
    attachments = [
        Foreign("attachment", file_id, assistant_id, "attached by someone else")
        for assistant_id, ids in attached.items()
        for file_id in sorted(ids or ())
        if file_id not in owned
    ]
    return files + attachments


@click.command("verify", epilog=EPILOG)
@click.option(
    "--no-content",
    is_flag=True,
    help="Skip downloading fine-tune files to compare their SHA-256.",
)
@config_option
@json_option
def verify_command(no_content: bool, config_path: Path | None, as_json: bool) -> None:
    """Check every synced file against the service: exists, same size and name, attached
    where configured, and (fine-tune files) same content. Changes nothing."""
    config = load(config_path)
    db = open_manifest(config.sync.state_dir)
    if db is None:
        manifest = Manifest(entries={})
    else:
        with db:
            manifest = db.snapshot()
    with open_client(config) as client:
        try:
            report = compare(client, config, manifest, content=not no_content)
        except APIError as e:
            service_failure(e, "verifying")
    if as_json:
        print_json(report.to_json())
    else:
        _print_human(report, manifest_exists=db is not None)
    if report.discrepancies:
        raise SystemExit(ExitStatus.DIFFERS)


def _print_human(report: Report, *, manifest_exists: bool) -> None:
    if not manifest_exists:
        click.echo("no pass has run yet: syncd has synced nothing to verify")
    if report.discrepancies:
        print_table(
            ["problem", "folder", "path", "file", "assistant", "detail"],
            [
                [
                    d.kind,
                    d.folder or "",
                    d.path or "",
                    d.file_id or "",
                    d.assistant_id or "",
                    f"{d.store_id}: {d.detail}" if d.store_id else d.detail,
                ]
                for d in report.discrepancies
            ],
        )
    if report.foreign:
        click.echo()
        print_table(
            ["not syncd's", "file", "assistant", "detail"],
            [[f.kind, f.file_id, f.assistant_id or "", f.detail] for f in report.foreign],
            title="Not owned by syncd (left alone; for information):",
        )
    n = len(report.discrepancies)
    summary = f"checked {report.checked} synced file(s): "
    click.echo(summary + (f"{n} discrepanc{'y' if n == 1 else 'ies'}" if n else "all match"))
