"""Reading multipart upload bodies — UNIT tests of syncd.emulator.uploads.

A small body is cut into parts whole, a large one streamed through python-multipart: for every
body both must come to the same upload, or the same error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header

from syncd.emulator import uploads
from syncd.emulator.errors import ApiError

B = b"XyZ123"
CONTENT_TYPE = "multipart/form-data; boundary=XyZ123"


def part(headers: bytes, content: bytes) -> bytes:
    return b"--" + B + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"


PURPOSE = part(b'Content-Disposition: form-data; name="purpose"', b"assistants")
FILE = part(
    b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain',
    b"line 1\r\n--XyZ12 not the boundary\r\n\r\nend",
)
CLOSE = b"--" + B + b"--\r\n"

BODIES = {
    "plain": PURPOSE + FILE + CLOSE,
    "close without CRLF": PURPOSE + FILE + CLOSE[:-2],
    "empty file": PURPOSE
    + part(b'Content-Disposition: form-data; name="file"; filename="e.txt"', b"")
    + CLOSE,
    "lower-case headers, no space": PURPOSE.replace(
        b"Content-Disposition: ", b"content-disposition:"
    )
    + FILE
    + CLOSE,
    "file without a filename is a field": PURPOSE
    + part(b'Content-Disposition: form-data; name="file"', b"text")
    + CLOSE,
    "second file discarded": PURPOSE + FILE + FILE.replace(b"a.txt", b"b.txt") + CLOSE,
    "field repeated": PURPOSE + PURPOSE.replace(b"assistants", b"batch") + FILE + CLOSE,
    "preamble": b"preamble\r\n" + PURPOSE + FILE + CLOSE,
    "epilogue": PURPOSE + FILE + CLOSE + b"epilogue",
    "tab before a value": PURPOSE.replace(b": ", b":\t") + FILE + CLOSE,
    "part without headers": b"--" + B + b"\r\n\r\nbare\r\n" + FILE + CLOSE,
    "no closing delimiter": PURPOSE + FILE,
    "field too long": part(b'Content-Disposition: form-data; name="purpose"', b"x" * 70_000)
    + CLOSE,
}


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


def received(body: bytes, path: Path) -> tuple[object, ...]:
    """What ``receive_upload`` made of ``body``: the upload's parts, or the error's words."""
    try:
        upload = asyncio.run(uploads.receive_upload(CONTENT_TYPE, _chunks(body), path, 1 << 20))
    except ApiError as e:
        return ("error", e.status, e.message)
    content = path.read_bytes() if path.exists() else None
    return (upload.filename, upload.size, upload.too_large, upload.fields, content)


def read(body: bytes) -> tuple[object, ...]:
    """What ``read_upload`` (the server's direct path) made of ``body``, as ``received``."""
    try:
        upload = uploads.read_upload(CONTENT_TYPE, body, 1 << 20)
    except ApiError as e:
        return ("error", e.status, e.message)
    return (upload.filename, upload.size, upload.too_large, upload.fields, upload.content)


@pytest.mark.parametrize("name", BODIES)
def test_a_whole_body_and_a_streamed_one_come_to_the_same(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = BODIES[name]
    whole = received(body, tmp_path / "whole")
    assert read(body) == whole
    monkeypatch.setattr(uploads, "WHOLE_BODY_BYTES", 0)  # every body streamed
    streamed = received(body, tmp_path / "streamed")
    assert whole == streamed


def test_a_plain_body_is_cut_without_the_streaming_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the streaming parser was used")

    monkeypatch.setattr(uploads, "MultipartParser", refuse)
    filename, size, _, fields, content = received(BODIES["plain"], tmp_path / "f")
    assert (filename, fields) == ("a.txt", {"purpose": "assistants"})
    assert content == b"line 1\r\n--XyZ12 not the boundary\r\n\r\nend" and size == len(content)


#: Characters that make a header value plain or not: separators, quotes, escapes, spaces, tabs,
#: a non-ASCII letter (as latin-1 decodes UTF-8), upper case.
HEADER_CHARS = 'aZ9-_./=;" \\\t*%é'
#: Pieces of the values clients send, and of values just beside them.
HEADER_PIECES = [
    *("form-data", "Multipart/Form-Data", "; ", ";", "name=", "filename=", '"', '"a b"'),
    *('"x;y"', '"c:\\\\d"', "bound-ary", "key*", "\\", "=", "\t"),
]


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(HEADER_CHARS, max_size=40),
        st.builds(
            "".join,
            st.lists(
                st.sampled_from(HEADER_PIECES),
                max_size=8,
            ),
        ),
    )
)
def test_options_header_reads_every_value_as_python_multipart_does(value: str) -> None:
    assert uploads.options_header(value) == parse_options_header(value)


@pytest.mark.parametrize(
    "value",
    [
        "multipart/form-data; boundary=0123456789abcdef",
        'form-data; name="purpose"',
        'form-data; name="file"; filename="report 2024 (final).txt"',
        'form-data; name="file"; filename=""',
    ],
)
def test_what_clients_send_is_read_without_the_general_parser(value: str) -> None:
    assert uploads._PLAIN_OPTIONS.fullmatch(value)
    assert uploads.options_header(value) == parse_options_header(value)


def test_a_file_over_the_limit_is_counted_and_not_kept_on_either_path(tmp_path: Path) -> None:
    path = tmp_path / "f"
    streamed = asyncio.run(uploads.receive_upload(CONTENT_TYPE, _chunks(BODIES["plain"]), path, 3))
    whole = uploads.read_upload(CONTENT_TYPE, BODIES["plain"], 3)
    for upload in (streamed, whole):
        assert (upload.filename, upload.too_large, upload.size) == ("a.txt", True, 39)
    assert not path.exists() and whole.content is None
