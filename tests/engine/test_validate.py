"""validate_file: every rejection names something the user can fix."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from syncd.engine import validate
from syncd.engine.validate import ASSISTANTS_EXTENSIONS, MAX_FILE_BYTES, validate_file


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def check(path: Path, purpose: str = "assistants") -> str | None:
    return validate_file(path, purpose, path.stat().st_size)


def example(*messages: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in messages]})


GOOD_LINE = example(("system", "be brief"), ("user", "hi"), ("assistant", "hello"))


# --- size and extension -------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    assert check(write(tmp_path / "a.md", b"")) == "file is empty"


def test_too_large_uses_the_given_size(tmp_path: Path) -> None:
    path = write(tmp_path / "big.pdf", b"%PDF")
    assert validate_file(path, "assistants", MAX_FILE_BYTES) is None
    reason = validate_file(path, "assistants", MAX_FILE_BYTES + 1)
    assert reason == (
        "file is 512 MB (536,870,913 bytes); the service accepts at most 512 MB (536,870,912 bytes)"
    )
    assert validate_file(path, "assistants", 600 * 1024**2) == (
        "file is 600 MB (629,145,600 bytes); the service accepts at most 512 MB (536,870,912 bytes)"
    )


def test_the_issue_list_of_assistants_extensions() -> None:
    expected = (
        "c cpp csv docx html java json md pdf php pptx py rb tex txt css jpeg jpg js gif png "
        "tar ts xlsx xml zip"
    )
    assert set(expected.split()) == ASSISTANTS_EXTENSIONS


def test_unsupported_extension_names_the_accepted_ones(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "notes.foo", "x"))
    assert reason is not None
    assert reason.startswith(
        'extension ".foo" is not accepted for purpose assistants (accepted: c, '
    )
    assert "pdf" in reason and reason.endswith("zip)")


def test_extension_check_ignores_case(tmp_path: Path) -> None:
    assert check(write(tmp_path / "Scan.PDF", b"%PDF-1.7 \xff\xfe")) is None
    assert check(write(tmp_path / "README.MD", "# hi")) is None


def test_file_without_extension(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "Makefile", "all:"))
    assert reason is not None
    assert reason.startswith("a file without an extension is not accepted for purpose assistants")


def test_extension_judged_on_the_upload_name(tmp_path: Path) -> None:
    target = write(tmp_path / "data.bin", "plain text")
    assert validate_file(target, "assistants", 10, name="data.txt") is None
    assert validate_file(target, "assistants", 10) is not None


def test_binary_formats_are_not_decoded(tmp_path: Path) -> None:
    assert check(write(tmp_path / "photo.png", bytes(range(256)))) is None


# --- text encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "naïve café ✓\n".encode(),
        codecs.BOM_UTF8 + "naïve\n".encode(),
        codecs.BOM_UTF16_LE + "naïve ✓\n".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "naïve ✓\n".encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le", "utf16-be"],
)
def test_accepted_text_encodings(tmp_path: Path, data: bytes) -> None:
    assert check(write(tmp_path / "a.txt", data)) is None


def test_latin1_text_is_rejected_with_the_offset(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "a.csv", b"id,name\n1,caf" + b"\xe9\n"))
    assert reason == (
        "not UTF-8 or UTF-16 text: byte 0xe9 at offset 13 is not valid UTF-8; "
        "save the file as UTF-8"
    )


def test_bad_byte_past_the_first_chunk_is_found(tmp_path: Path) -> None:
    data = b"a" * (3 * 1024**2 + 5) + b"\xff" + b"b" * 10
    reason = check(write(tmp_path / "big.md", data))
    assert reason is not None and "offset 3,145,733" in reason


def test_multibyte_character_across_chunk_border_is_fine(tmp_path: Path) -> None:
    data = b"a" * (1024**2 - 1) + "é".encode() + b"z"
    assert check(write(tmp_path / "border.txt", data)) is None


def test_truncated_utf8_at_the_end(tmp_path: Path) -> None:
    assert check(write(tmp_path / "cut.txt", "ok é".encode()[:-1])) == (
        "not UTF-8 or UTF-16 text: byte 0xc3 at offset 3 is not valid UTF-8; save the file as UTF-8"
    )


def test_bad_byte_split_across_a_chunk_border_is_placed_exactly(tmp_path: Path) -> None:
    # "é" cut in two by the 1 MiB read, its second byte replaced: the lead byte is the bad one.
    data = b"a" * (1024**2 - 1) + b"\xc3" + b"z" + b"b" * 10
    reason = check(write(tmp_path / "border.md", data))
    assert reason is not None and f"byte 0xc3 at offset {1024**2 - 1:,}" in reason


def test_offset_counts_the_utf8_byte_order_mark(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "bom.txt", codecs.BOM_UTF8 + b"ab\xff"))
    assert reason is not None and "byte 0xff at offset 5 " in reason


def test_broken_utf16_is_rejected(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "odd.txt", codecs.BOM_UTF16_LE + b"a\x00b"))
    assert reason is not None and "UTF-16" in reason


# --- fine-tune ----------------------------------------------------------------------------------


def ft(tmp_path: Path, *lines: str, name: str = "train.jsonl") -> str | None:
    return check(write(tmp_path / name, "".join(line + "\n" for line in lines)), "fine-tune")


def test_valid_fine_tune_file(tmp_path: Path) -> None:
    assert ft(tmp_path, GOOD_LINE, example(("user", "a"), ("assistant", "b"))) is None


def test_fine_tune_needs_jsonl(tmp_path: Path) -> None:
    assert ft(tmp_path, GOOD_LINE, name="train.json") == (
        'fine-tune files must be .jsonl (JSON Lines), got ".json"'
    )
    assert ft(tmp_path, GOOD_LINE, name="TRAIN.JSONL") is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2]", "line 2: must be a JSON object, got an array"),
        ('{"messages": [', "line 2: not valid JSON (Expecting value at column 15)"),
        ('{"prompt": "x"}', 'line 2: needs a non-empty "messages" list'),
        ('{"messages": []}', 'line 2: needs a non-empty "messages" list'),
        ('{"messages": ["hi"]}', "line 2: messages[0] must be an object with role and content, "
         "got a string"),
        (example(("user", "a"), ("bot", "b")),
         'line 2: messages[1].role must be system, user or assistant, got "bot"'),
        ('{"messages": [{"content": "x"}]}',
         "line 2: messages[0].role must be system, user or assistant, got nothing"),
        ('{"messages": [{"role": "user", "content": 5}]}',
         "line 2: messages[0] (user) needs a string content"),
        ("", "line 2: blank line; every line must hold one JSON object"),
    ],
)  # fmt: skip
def test_bad_fine_tune_line_is_named(tmp_path: Path, line: str, reason: str) -> None:
    assert ft(tmp_path, GOOD_LINE, line, GOOD_LINE) == reason


def test_fine_tune_not_utf8(tmp_path: Path) -> None:
    data = (GOOD_LINE + "\n").encode() + b'{"messages": "\xe9"}\n'
    reason = check(write(tmp_path / "t.jsonl", data), "fine-tune")
    assert reason == "line 2 is not UTF-8 (at byte 15); save the file as UTF-8"


def test_fine_tune_with_bom(tmp_path: Path) -> None:
    reason = check(write(tmp_path / "t.jsonl", codecs.BOM_UTF8 + GOOD_LINE.encode()), "fine-tune")
    assert reason is not None and reason.startswith("line 1 starts with a byte-order mark")


def test_last_line_without_newline_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", GOOD_LINE + "\n" + GOOD_LINE)
    assert check(path, "fine-tune") is None


def test_overlong_line_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "MAX_JSONL_LINE_BYTES", 1000)
    long = example(("user", "x" * 2000))
    assert ft(tmp_path, GOOD_LINE, long) == "line 2 is longer than 1000 B"


@pytest.mark.parametrize(
    ("name", "purpose", "held", "verdict"),
    [
        ("notes.txt", "assistants", b"caf\xc3\xa9\n", None),
        ("notes.txt", "assistants", b"caf\xe9\n", "not UTF-8 or UTF-16 text"),
        ("data.jsonl", "fine-tune", (GOOD_LINE + "\n").encode(), None),
        ("data.jsonl", "fine-tune", b"[]\n", "line 1: must be a JSON object"),
    ],
)
def test_bytes_held_by_the_caller_are_judged_not_the_file_on_disk(
    tmp_path: Path, name: str, purpose: str, held: bytes, verdict: str | None
) -> None:
    # On disk the opposite verdict: only the held bytes (those about to be sent) count.
    on_disk = b"caf\xe9\n" if verdict is None else (GOOD_LINE + "\n").encode()
    path = write(tmp_path / name, on_disk)
    found = validate_file(path, purpose, len(held), content=held)
    assert found is None if verdict is None else verdict in (found or "")
