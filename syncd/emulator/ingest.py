"""What a vector store can read: the supported extensions, the parse check, the text it indexes.

The extension list is the one in OpenAI's file_search guide ("Supported files"). A file whose
extension is not on it is refused when attached; a file that is on it but whose bytes cannot be
what the extension says ends ``failed`` (``invalid_file``) once ingestion is over. The emulator
checks just enough to reproduce the failures users meet: a ``.pdf`` that does not start with
``%PDF-``, Office files that are not the container their extension names, and text that is
neither UTF-8 nor UTF-16 (with a byte-order mark). Only text formats yield searchable text:
the emulator does not parse PDF or Office documents (their search text is empty).
"""

from __future__ import annotations

import codecs
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "can_parse",
    "extension",
    "read_text",
]

#: Text formats: indexed as UTF-8 (or UTF-16 with a BOM).
TEXT_EXTENSIONS = frozenset(
    {
        ".c",
        ".cpp",
        ".cs",
        ".css",
        ".go",
        ".html",
        ".java",
        ".js",
        ".json",
        ".md",
        ".php",
        ".py",
        ".rb",
        ".sh",
        ".tex",
        ".ts",
        ".txt",
    }
)
#: Binary formats, recognised by their first bytes.
_SIGNATURES = {
    ".pdf": b"%PDF-",
    ".docx": b"PK\x03\x04",
    ".pptx": b"PK\x03\x04",
    ".doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
}
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | frozenset(_SIGNATURES)

_CHUNK = 1024 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def extension(filename: str) -> str:
    """The lower-case extension of ``filename`` (``""`` for none), as the service reads it."""
    return PurePosixPath(filename).suffix.lower()


def can_parse(path: Path, filename: str) -> bool:
    """Whether ingestion of the blob at ``path`` (named ``filename``) succeeds.

    Reads the blob in chunks, so a large file is never held in memory.
    """
    ext = extension(filename)
    with path.open("rb") as blob:
        head = blob.read(_CHUNK)
        signature = _SIGNATURES.get(ext)
        if signature is not None:
            return head.startswith(signature)
        if head.startswith(_UTF16_BOMS):
            return _decodes(head, blob, "utf-16")
        return _decodes(head, blob, "utf-8-sig")


def _decodes(head: bytes, rest: BinaryIO, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    chunk = head
    try:
        while chunk:
            decoder.decode(chunk)
            chunk = rest.read(_CHUNK)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def read_text(path: Path, filename: str) -> str:
    """The text the store indexes for this blob: its decoded text for a text format, else
    nothing (the emulator does not parse PDF or Office documents)."""
    if extension(filename) not in TEXT_EXTENSIONS:
        return ""
    raw = path.read_bytes()
    encoding = "utf-16" if raw.startswith(_UTF16_BOMS) else "utf-8-sig"
    return raw.decode(encoding, errors="replace")
