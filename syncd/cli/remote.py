"""``syncd remote …``: look at what the service holds, through syncd's own client.

Nothing here changes anything remotely; ``download`` writes one local file. Every subcommand
answers within seconds when the service is down (a short retry policy), and shows a failure
with the service's message and request id.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from syncd.api import (
    APIError,
    AssistantFile,
    BadRequestError,
    FileObject,
    MessageFile,
    VectorStoreFile,
)
from syncd.cli.output import (
    config_option,
    fail,
    json_option,
    load,
    local_time,
    open_client,
    print_fields,
    print_json,
    print_table,
    service_failure,
)
from syncd.engine.report import ExitStatus, human_size

__all__ = [
    "EXIT_STATUSES",
    "FILE_SHAPE",
    "assistant_files",
    "download",
    "files",
    "message_files",
    "remote_command",
    "show",
    "store_files",
    "vector_stores",
]

EXIT_STATUSES = """\b
Exit status: 0 done; 1 the service refused the request (unknown id, download not
allowed); 2 usage or configuration error; 3 service unreachable or key refused."""

FILE_SHAPE = (
    '{"id": str, "object": "file", "bytes": int, "created_at": unix seconds, "filename": str,\n'
    ' "purpose": str, "status": str | null, "status_details": str | null}'
)


def _epilog(shape: str, what: str = "the service's objects as they came") -> str:
    return f"{EXIT_STATUSES}\n\n\b\n--json prints {what}:\n{shape}"


@click.group("remote")
def remote_command() -> None:
    """Inspect files, vector stores, assistant files and message files on the service
    (read-only)."""


@remote_command.command("files", epilog=_epilog(f"[{FILE_SHAPE}, ...]"))
@click.option("--purpose", help="Only files with this purpose (assistants, fine-tune, ...).")
@config_option
@json_option
def files(purpose: str | None, config_path: Path | None, as_json: bool) -> None:
    """List the organization's files, oldest first."""
    with open_client(load(config_path)) as client:
        try:
            found = client.list_files(purpose)
        except APIError as e:
            service_failure(e, "listing files")
    found.sort(key=lambda f: f.created_at)  # stable: same-second files keep the service's order
    if as_json:
        print_json([f.model_dump(mode="json") for f in found])
        return
    print_table(
        ["id", "filename", "size", "purpose", "status", "created"],
        [
            [
                f.id,
                f.filename,
                human_size(f.bytes),
                f.purpose,
                f.status or "",
                local_time(f.created_at),
            ]
            for f in found
        ],
    )
    click.echo(f"{len(found)} file(s)")


@remote_command.command("show", epilog=_epilog(FILE_SHAPE))
@click.argument("file_id")
@config_option
@json_option
def show(file_id: str, config_path: Path | None, as_json: bool) -> None:
    """Show one file's details."""
    with open_client(load(config_path)) as client:
        try:
            file = client.retrieve_file(file_id)
        except APIError as e:
            service_failure(e, f"showing {file_id}")
    if as_json:
        print_json(file.model_dump(mode="json"))
        return
    print_fields(_file_fields(file))


@remote_command.command(
    "download",
    epilog=_epilog('{"file_id": str, "path": str, "bytes": int}', "what was written"),
)
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the content.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@config_option
@json_option
def download(
    file_id: str, output: Path, force: bool, config_path: Path | None, as_json: bool
) -> None:
    """Download a file's content to OUTPUT, streamed to disk.

    The content goes to OUTPUT.part first and is renamed into place only when complete, so an
    interrupted download never leaves a truncated OUTPUT. The service allows downloads of
    fine-tune files but refuses them for assistants files.
    """
    if output.exists() and not force:
        fail(f"{output} exists; pass --force to replace it", ExitStatus.CONFIG)
    if not output.parent.is_dir():
        fail(f"{output.parent} is not a directory", ExitStatus.CONFIG)
    with open_client(load(config_path)) as client:
        started = time.monotonic()
        try:
            written = client.download_file(file_id, output)
        except BadRequestError as e:
            service_failure(e, f"the service refused to let {file_id} be downloaded")
        except APIError as e:
            service_failure(e, f"downloading {file_id}")
    if as_json:
        print_json({"file_id": file_id, "path": str(output), "bytes": written})
        return
    elapsed = time.monotonic() - started
    click.echo(f"downloaded {file_id} → {output} ({human_size(written)}, {elapsed:.1f} s)")


@remote_command.command(
    "assistant-files",
    epilog=_epilog(
        '[{"id": file id, "object": "assistant.file", "created_at": unix seconds,\n'
        '  "assistant_id": str}, ...]'
    ),
)
@click.argument("assistant_id")
@config_option
@json_option
def assistant_files(assistant_id: str, config_path: Path | None, as_json: bool) -> None:
    """List the files attached to an assistant, oldest first."""
    with open_client(load(config_path)) as client:
        try:
            found = list(client.iter_assistant_files(assistant_id))
        except APIError as e:
            service_failure(e, f"listing the files of {assistant_id}")
    _print_attachments(found, as_json)


@remote_command.command(
    "message-files",
    epilog=_epilog(
        '[{"id": file id, "object": "thread.message.file", "created_at": unix seconds,\n'
        '  "message_id": str}, ...]  (one object, not a list, when FILE_ID is given)'
    ),
)
@click.argument("thread_id")
@click.argument("message_id")
@click.argument("file_id", required=False)
@config_option
@json_option
def message_files(
    thread_id: str,
    message_id: str,
    file_id: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """List the files attached to a message, or show one of them (FILE_ID)."""
    with open_client(load(config_path)) as client:
        try:
            if file_id is None:
                found = list(client.iter_message_files(thread_id, message_id))
            else:
                one = client.get_message_file(thread_id, message_id, file_id)
        except APIError as e:
            service_failure(e, f"reading the files of message {message_id}")
    if file_id is None:
        _print_attachments(found, as_json)
        return
    if as_json:
        print_json(one.model_dump(mode="json"))
        return
    print_fields(
        [("file", one.id), ("message", one.message_id), ("attached", local_time(one.created_at))]
    )


@remote_command.command(
    "vector-stores",
    epilog=_epilog(
        '[{"id": str, "object": "vector_store", "name": str | null, "status": str,\n'
        '  "file_counts": {"in_progress": int, "completed": int, "failed": int,\n'
        '  "cancelled": int, "total": int}, "usage_bytes": int, "expires_at": int | null,\n'
        '  "created_at": unix seconds, ...}, ...]'
    ),
)
@config_option
@json_option
def vector_stores(config_path: Path | None, as_json: bool) -> None:
    """List the organization's vector stores, newest first, with their files by ingestion
    state."""
    with open_client(load(config_path)) as client:
        try:
            found = list(client.iter_vector_stores())
        except APIError as e:
            service_failure(e, "listing vector stores")
    if as_json:
        print_json([v.model_dump(mode="json") for v in found])
        return
    print_table(
        ["id", "name", "status", "completed", "in progress", "failed", "size", "expires"],
        [
            [
                v.id,
                v.name or "",
                v.status,
                str(v.file_counts.completed),
                str(v.file_counts.in_progress),
                str(v.file_counts.failed),
                human_size(v.usage_bytes),
                local_time(v.expires_at) or "never",
            ]
            for v in found
        ],
    )
    click.echo(f"{len(found)} vector store(s)")


@remote_command.command(
    "store-files",
    epilog=_epilog(
        '[{"id": file id, "object": "vector_store.file", "status": str,\n'
        '  "last_error": {"code": str, "message": str} | null, "attributes": {...} | null,\n'
        '  "usage_bytes": int, "created_at": unix seconds, ...}, ...]'
    ),
)
@click.argument("store_id")
@click.option(
    "--filter",
    "status",
    type=click.Choice(["in_progress", "completed", "failed", "cancelled"]),
    help="Only files in this ingestion state.",
)
@config_option
@json_option
def store_files(store_id: str, status: str | None, config_path: Path | None, as_json: bool) -> None:
    """List the files of a vector store: ingestion state, the local path syncd wrote in their
    attributes, and why a failed one failed."""
    with open_client(load(config_path)) as client:
        try:
            found = list(client.iter_vector_store_files(store_id, status=status))  # type: ignore[arg-type]
        except APIError as e:
            service_failure(e, f"listing the files of {store_id}")
    if as_json:
        print_json([f.model_dump(mode="json") for f in found])
        return
    print_table(
        ["file", "status", "attached", "path", "error"],
        [
            [f.id, f.status, local_time(f.created_at), _store_path(f), _store_error(f)]
            for f in found
        ],
    )
    click.echo(f"{len(found)} file(s)")


def _store_path(found: VectorStoreFile) -> str:
    """The local path syncd wrote on a store file (folder/path), or "" for another's file."""
    attributes = found.attributes or {}
    path = attributes.get("syncd_path")
    folder = attributes.get("syncd_folder")
    if path is None:
        return ""
    return f"{folder}/{path}" if folder else str(path)


def _store_error(found: VectorStoreFile) -> str:
    error = found.last_error
    return f"{error.code}: {error.message}" if error is not None else ""


def _print_attachments(found: list[AssistantFile] | list[MessageFile], as_json: bool) -> None:
    if as_json:
        print_json([a.model_dump(mode="json") for a in found])
        return
    print_table(["file", "attached"], [[a.id, local_time(a.created_at)] for a in found])
    click.echo(f"{len(found)} file(s)")


def _file_fields(file: FileObject) -> list[tuple[str, str]]:
    fields = [
        ("id", file.id),
        ("filename", file.filename),
        ("size", f"{human_size(file.bytes)} ({file.bytes} bytes)"),
        ("purpose", file.purpose),
        ("status", file.status or ""),
        ("created", local_time(file.created_at)),
    ]
    if file.status_details:
        fields.append(("status details", file.status_details))
    return fields
