"""Checks a file must pass before it is uploaded, each failing with a reason a person can act on.

The service would refuse these files anyway — after the upload, with a terser message, and
for fine-tune data often only when a job starts. Checking here keeps the bytes at home and
puts the reason next to the file in ``syncd status``.

Every check streams: memory stays flat whatever the file size (at most one line of a
fine-tune file, capped at :data:`MAX_JSONL_LINE_BYTES`, is held at a time). Text files are
checked for their encoding from start to end, because a single bad byte deep in a file is
enough for the service to reject it; that costs one extra sequential read, only for files
that changed.
"""

from __future__ import annotations

import codecs
import io
import json
import posixpath
from pathlib import Path
from typing import Any, BinaryIO

from syncd.engine.names import quoted
from syncd.engine.report import human_size

__all__ = [
    "ASSISTANTS_EXTENSIONS",
    "FINE_TUNE_EXTENSIONS",
    "FINE_TUNE_ROLES",
    "MAX_FILE_BYTES",
    "MAX_JSONL_LINE_BYTES",
    "TEXT_EXTENSIONS",
    "validate_file",
]

#: The largest file the service accepts: "512 MB" as it counts (1 MB = 1,024² bytes; see
#: ``report.human_size``).
MAX_FILE_BYTES = 512 * 1024**2

#: Extensions (lower case, no dot) the service accepts for ``purpose="assistants"``.
ASSISTANTS_EXTENSIONS: frozenset[str] = frozenset(
    {
        *("c", "cpp", "csv", "docx", "html", "java", "json", "md", "pdf", "php", "pptx", "py"),
        *("rb", "tex", "txt", "css", "jpeg", "jpg", "js", "gif", "png", "tar", "ts", "xlsx"),
        *("xml", "zip"),
    }
)

#: Extensions accepted for ``purpose="fine-tune"``.
FINE_TUNE_EXTENSIONS: frozenset[str] = frozenset({"jsonl"})

#: Extensions whose content must be UTF-8 or UTF-16 text.
TEXT_EXTENSIONS: frozenset[str] = frozenset(
    {
        *("txt", "md", "csv", "json", "html", "xml", "py", "js", "ts", "css", "c", "cpp"),
        *("java", "php", "rb", "tex", "jsonl"),
    }
)

#: The roles a fine-tune chat message may have.
FINE_TUNE_ROLES = ("system", "user", "assistant")

#: One JSONL line longer than this is refused rather than read into memory; real training
#: examples are bounded by the model's context, far below it.
MAX_JSONL_LINE_BYTES = 32 * 1024**2

_CHUNK = 1024**2


def validate_file(
    path: Path, purpose: str, size: int, *, name: str | None = None, content: bytes | None = None
) -> str | None:
    """Why ``path`` cannot be uploaded for ``purpose``, or None when it can.

    ``size`` is the size the caller stat'ed (and hashed). ``name`` is the file name it will be
    uploaded as, when that differs from ``path`` (a symlink's own name); the extension is
    judged on it. ``content``: the file's bytes, when the caller holds them (a small file
    about to be sent from memory) — those are judged, and the file is not read again.
    Raises OSError when the file cannot be read: that is a passing condition, not a verdict on
    the file.
    """
    if size == 0:
        return "file is empty"
    if size > MAX_FILE_BYTES:
        return (
            f"file is {human_size(size)} ({size:,} bytes); the service accepts at most "
            f"{human_size(MAX_FILE_BYTES)} ({MAX_FILE_BYTES:,} bytes)"
        )
    extension = posixpath.splitext(name or path.name)[1][1:].lower()
    if purpose == "fine-tune":
        if extension not in FINE_TUNE_EXTENSIONS:
            got = quoted(f".{extension}") if extension else "no extension"
            return f"fine-tune files must be .jsonl (JSON Lines), got {got}"
        return _check_jsonl(_opened(path, content))
    if extension not in ASSISTANTS_EXTENSIONS:
        accepted = ", ".join(sorted(ASSISTANTS_EXTENSIONS))
        what = (
            f"extension {quoted('.' + extension)} is"
            if extension
            else "a file without an extension is"
        )
        return f"{what} not accepted for purpose {purpose} (accepted: {accepted})"
    if extension in TEXT_EXTENSIONS:
        return _check_text(_opened(path, content))
    return None


def _opened(path: Path, content: bytes | None) -> BinaryIO:
    """The bytes to judge: ``content`` when given, else the file at ``path``."""
    return io.BytesIO(content) if content is not None else path.open("rb")


def _check_text(file: BinaryIO) -> str | None:
    """UTF-8 (with or without a BOM), or UTF-16 with a BOM; the whole file."""
    with file as f:
        head = f.read(_CHUNK)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            encoding = "utf-8"
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        chunk = head
        while True:
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as e:
                # The decoder prepends bytes held over from the previous chunk (and drops a
                # BOM): e.object is not ``chunk``, so count back from its end.
                where = offset + len(chunk) - len(e.object) + e.start
                return _encoding_problem(encoding, where, e)
            if final:
                return None
            offset += len(chunk)
            chunk = f.read(_CHUNK)


def _encoding_problem(encoding: str, where: int, error: UnicodeDecodeError) -> str:
    """The reason for a decoding ``error`` at byte ``where`` of the file."""
    if encoding == "utf-16":
        return f"starts with a UTF-16 byte-order mark but is not valid UTF-16 (near byte {where:,})"
    bad = error.object[error.start : error.start + 1].hex()
    return (
        f"not UTF-8 or UTF-16 text: byte 0x{bad} at offset {where:,} is not valid UTF-8; "
        "save the file as UTF-8"
    )


def _check_jsonl(file: BinaryIO) -> str | None:
    """Each line one JSON object with a ``messages`` list of ``{role, content}``."""
    with file as f:
        number = 0
        while True:
            raw = f.readline(MAX_JSONL_LINE_BYTES + 1)
            if not raw:
                return None if number else "file has no lines"
            number += 1
            if len(raw) > MAX_JSONL_LINE_BYTES:
                return f"line {number} is longer than {human_size(MAX_JSONL_LINE_BYTES)}"
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                return "line 1 starts with a byte-order mark; save the file as UTF-8 without BOM"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"line {number} is not UTF-8 (at byte {e.start + 1}); save the file as UTF-8"
            problem = _check_example(text.rstrip("\r\n"))
            if problem:
                return f"line {number}: {problem}"


def _check_example(line: str) -> str | None:
    if not line.strip():
        return "blank line; every line must hold one JSON object"
    try:
        example: Any = json.loads(line)
    except json.JSONDecodeError as e:
        return f"not valid JSON ({e.msg} at column {e.colno})"
    if not isinstance(example, dict):
        return f"must be a JSON object, got {_json_kind(example)}"
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return 'needs a non-empty "messages" list'
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return (
                f"messages[{i}] must be an object with role and content, got {_json_kind(message)}"
            )
        role = message.get("role")
        if role not in FINE_TUNE_ROLES:
            shown = json.dumps(role) if role is not None else "nothing"
            return f"messages[{i}].role must be system, user or assistant, got {shown}"
        if not isinstance(message.get("content"), str):
            return f"messages[{i}] ({role}) needs a string content"
    return None


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", dict: "an object"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
