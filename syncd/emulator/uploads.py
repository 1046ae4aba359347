"""Reading a ``multipart/form-data`` upload (``POST /files``, or a part of an Upload) straight
into a blob file.

The body is parsed as it arrives with python-multipart's streaming parser: the ``file`` part is
written to disk chunk by chunk and the small text fields are kept in memory, so the emulator's
memory stays flat however large the upload. The size limit is enforced while streaming: once a
file passes it, the rest of the body is read and discarded (so the client, still sending, gets
the error answer rather than a broken pipe) and nothing more is written.

A small body (up to :data:`WHOLE_BODY_BYTES`, what nearly every upload of a first sync is) is
cut into its parts with a few ``bytes.find`` calls instead: python-multipart's state machine
was a quarter of the emulator's work on such an upload. Only a plainly well-formed body is cut
so (no preamble or epilogue, header names of letters, digits and ``-``, lines within the
parser's limits); anything else goes to the streaming parser, which has the last word on what
is malformed. Either way the same callbacks decide what becomes of each part.

``read_upload`` reads a small Files upload whose body the server already holds whole (its
direct path): the same parsing, the file's bytes kept in memory until the upload is stored.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from syncd.emulator.errors import ApiError

#: Text fields (``purpose``) are tiny; anything bigger is not a field the API knows.
MAX_FIELD_BYTES = 64 * 1024
#: A body up to this size is read whole and cut into parts without the streaming parser.
WHOLE_BODY_BYTES = 64 * 1024
#: Header names the whole-body path takes (a strict subset of the tokens HTTP allows).
_NAME_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
#: python-multipart's limits on a part's headers: beyond them the streaming parser decides.
_MAX_HEADERS = 8
_MAX_HEADER_LINE = 4096
#: A header value ``options_header`` reads itself: a type, then ``; name=value`` parameters,
#: each value a token or a quoted string without ``"``, ``\\`` or ``;`` in it — what HTTP
#: clients send for a form's ``Content-Type`` and each part's ``Content-Disposition``.
_TCHARS = r"[\w!#$%&'*+.^`|~-]+"
_PLAIN_OPTIONS = re.compile(
    rf'{_TCHARS}(?:/{_TCHARS})?(?:; ?[\w-]+=(?:"[^"\\;]*"|{_TCHARS}))*', re.ASCII
)


@dataclass(slots=True)
class Upload:
    """The parts of one upload request. When ``file`` was sent its bytes are in the file at
    ``path``, or in ``content`` for a body read whole (``read_upload``: no file until the upload
    is stored)."""

    path: Path | None
    content: bytes | None = None
    filename: str | None = None
    size: int = 0
    too_large: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def has_file(self) -> bool:
        return self.filename is not None


class _Receiver:
    """python-multipart callbacks that route each part to a file or a field buffer."""

    def __init__(self, upload: Upload, max_file_bytes: int, file_field: str) -> None:
        self.upload = upload
        self.max_file_bytes = max_file_bytes
        self.file_field = file_field
        self.headers: dict[str, bytes] = {}
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.target: Literal["file", "field", "discard"] = "discard"
        self.file: BinaryIO | None = None
        self.field_name = ""
        self.field_value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers.clear()
        self.target = "discard"
        self.field_value.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.add_header(self.header_field, bytes(self.header_value))
        self.header_field.clear()
        self.header_value.clear()

    def add_header(self, name: bytes | bytearray, value: bytes) -> None:
        """One header of the part being read (of a repeated one the last counts)."""
        self.headers[name.decode("latin-1").lower()] = value

    def on_headers_finished(self) -> None:
        # Header bytes are read as latin-1 (byte-preserving), then names are decoded as the UTF-8
        # that HTTP clients send.
        _, options = options_header(self.headers.get("content-disposition", b"").decode("latin-1"))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        # An Upload part's ``data`` is bytes whatever its headers say; a Files upload's ``file``
        # must come with a filename (without one it is a text field, and the file is missing).
        is_file = filename is not None or self.file_field != "file"
        if name == self.file_field and is_file and not self.upload.has_file:
            self.target = "file"
            self.upload.filename = (filename or b"").decode("utf-8", "replace")
            path = self.upload.path
            self.file = io.BytesIO() if path is None else path.open("wb")
        elif filename is None:
            self.target = "field"
            self.field_name = name
        # Otherwise a second file, or a file under another name: not part of the API; discarded.

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.target == "file":
            self.upload.size += end - start
            if self.file is None:
                return  # over the limit: counted (to report the real size), not kept
            if self.upload.size > self.max_file_bytes:
                self._give_up_file()
            else:
                self.file.write(data[start:end])
        elif self.target == "field":
            self.field_value += data[start:end]
            if len(self.field_value) > MAX_FIELD_BYTES:
                raise ApiError(400, f"The form field '{self.field_name}' is too long.")

    def on_part_end(self) -> None:
        if self.target == "file":
            self.close()
        elif self.target == "field" and self.field_name not in self.upload.fields:
            self.upload.fields[self.field_name] = self.field_value.decode("utf-8", "replace")

    def _give_up_file(self) -> None:
        assert self.file is not None
        self.file.close()
        self.file = None
        if self.upload.path is not None:
            self.upload.path.unlink(missing_ok=True)
        self.upload.too_large = True

    def close(self) -> None:
        if self.file is not None:
            if isinstance(self.file, io.BytesIO):
                self.upload.content = self.file.getvalue()
            self.file.close()
            self.file = None


async def receive_upload(
    content_type: str | None,
    body: AsyncIterator[bytes],
    path: Path,
    max_file_bytes: int,
    *,
    file_field: str = "file",
) -> Upload:
    """Parse a multipart body, writing its ``file_field`` part to ``path``.

    Raises a 400 for a body that is not ``multipart/form-data`` or cannot be parsed; on any error
    ``path`` is removed. A file over ``max_file_bytes`` is reported with ``too_large`` set and
    nothing left on disk.
    """
    boundary = _boundary(content_type)
    receiver = _Receiver(Upload(path=path), max_file_bytes, file_field)
    with _parsing(receiver):
        chunks = aiter(body)
        head: list[bytes] = []
        size = 0
        async for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size > WHOLE_BODY_BYTES:
                break
        else:
            _parse_whole(b"".join(head), boundary, receiver)
            return receiver.upload
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        for chunk in head:
            parser.write(chunk)
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    return receiver.upload


def read_upload(content_type: str | None, body: bytes, max_file_bytes: int) -> Upload:
    """``receive_upload`` of a Files upload whose body the server has already read whole (at
    most :data:`WHOLE_BODY_BYTES`: see ``server.py``'s direct path). The file's bytes are kept
    in the upload's ``content``: written once, where the stored file's blob goes."""
    boundary = _boundary(content_type)
    receiver = _Receiver(Upload(path=None), max_file_bytes, "file")
    with _parsing(receiver):
        _parse_whole(body, boundary, receiver)
    return receiver.upload


def _boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` ``content_type``, or the service's 400."""
    media_type, options = options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise ApiError(
            400,
            "Invalid Content-Type header "
            f"({json.dumps(content_type) if content_type else 'none'}), "
            "expected multipart/form-data with a boundary.",
        )
    return boundary


@contextmanager
def _parsing(receiver: _Receiver) -> Iterator[None]:
    """Close the receiver's file once its body is parsed; on any error remove it too, and
    answer python-multipart's complaints as a 400."""
    try:
        yield
    except BaseException as exc:
        receiver.close()
        if receiver.upload.path is not None:
            receiver.upload.path.unlink(missing_ok=True)
        if isinstance(exc, MultipartParseError):
            raise ApiError(400, f"Could not parse the multipart form: {exc}") from None
        raise
    receiver.close()


def _parse_whole(body: bytes, boundary: bytes, receiver: _Receiver) -> None:
    """Hand a whole ``body`` to ``receiver``: cut into parts when plainly well formed, else
    through the streaming parser."""
    parts = _plain_parts(body, boundary)
    if parts is not None:
        _replay(body, parts, receiver)
        return
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()


def options_header(value: str | None) -> tuple[bytes, dict[bytes, bytes]]:
    """python-multipart's ``parse_options_header``: ``(value, {parameter: value})``, names
    lower-cased, quotes removed.

    A plain value (``_PLAIN_OPTIONS``) is split here: the library's general parser, quoted
    strings and escapes and all, was a tenth of the emulator's work on a small upload. It has
    the word on anything else.
    """
    if not value or not _PLAIN_OPTIONS.fullmatch(value):
        return parse_options_header(value)
    main, *parameters = value.split(";")
    options = {}
    for parameter in parameters:
        key, _, quoted = parameter.lstrip(" ").partition("=")
        options[key.lower().encode("latin-1")] = quoted.strip('"').encode("latin-1")
    return main.lower().encode("latin-1"), options


#: One part of a whole body: its headers (name, value) and where its content lies in the body.
_Part = tuple[list[tuple[bytes, bytes]], int, int]


def _plain_parts(body: bytes, boundary: bytes) -> list[_Part] | None:
    """The parts of a whole multipart ``body``, or ``None`` unless it is plainly well formed
    (see the module's docstring): then the streaming parser reads it."""
    opening = b"--" + boundary + b"\r\n"
    delimiter = b"\r\n--" + boundary
    if not body.startswith(opening):
        return None
    parts: list[_Part] = []
    start = len(opening)
    while True:
        headers_end = body.find(b"\r\n\r\n", start)
        if headers_end < 0 or body.startswith(b"\r\n", start):
            return None
        lines = body[start:headers_end].split(b"\r\n")
        if len(lines) > _MAX_HEADERS:
            return None
        headers = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if (
                not colon
                or not name
                or name.translate(None, _NAME_BYTES)
                or len(line) > _MAX_HEADER_LINE
                or b"\r" in line
                or b"\n" in line
            ):
                return None
            headers.append((name, value.lstrip(b" ")))
        content = headers_end + 4
        end = body.find(delimiter, content)
        if end < 0:
            return None
        parts.append((headers, content, end))
        after = end + len(delimiter)
        if body.startswith(b"\r\n", after):
            start = after + 2
        elif body[after:] in (b"--", b"--\r\n"):
            return parts
        else:
            return None


def _replay(body: bytes, parts: list[_Part], receiver: _Receiver) -> None:
    """Hand ``parts`` of ``body`` to ``receiver`` as the streaming parser would."""
    for headers, start, end in parts:
        receiver.on_part_begin()
        for name, value in headers:
            receiver.add_header(name, value)
        receiver.on_headers_finished()
        if end > start:
            receiver.on_part_data(body, start, end)
        receiver.on_part_end()
