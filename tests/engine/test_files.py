"""Reading a file whole without it changing — UNIT tests of syncd.engine.files.read_small."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.engine import files
from syncd.engine.files import FileChanged, read_small


def test_a_small_file_is_read_whole_with_its_stat(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello\n")
    content, st = read_small(path, 100) or (b"", None)
    assert content == b"hello\n" and st is not None and st.st_ino == path.stat().st_ino
    (tmp_path / "empty.txt").touch()
    assert (read_small(tmp_path / "empty.txt", 100) or (None,))[0] == b""


def test_a_file_above_the_limit_is_left_to_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 101)
    assert read_small(path, 100) is None


def test_short_reads_are_carried_on_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A network or FUSE file system may hand over less than asked for at a time.
    path = tmp_path / "a.txt"
    path.write_bytes(b"0123456789" * 10)
    read = os.read
    monkeypatch.setattr(files.os, "read", lambda fd, n: read(fd, min(n, 7)))
    assert (read_small(path, 1000) or (b"",))[0] == b"0123456789" * 10


def test_a_file_that_grew_since_its_stat_has_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"short")
    fstat = os.fstat

    def then_grow(fd: int) -> os.stat_result:
        st = fstat(fd)
        with path.open("ab") as f:
            f.write(b" and longer")
        return st

    monkeypatch.setattr(files.os, "fstat", then_grow)
    with pytest.raises(FileChanged):
        read_small(path, 1000)


def test_a_stat_key_tells_every_stat_apart_even_past_64_bits(tmp_path: Path) -> None:
    """Keys are packed; a time 64 bits of nanoseconds do not hold (after 2262) is written out
    instead, and is still compared exactly (the file changed: its key changed)."""
    far = 2**63 + 5  # nanoseconds: the year 2262 and a little
    keys = {
        files.stat_key(3, 1_700_000_000_000_000_000, 7, 1_700_000_000_000_000_001),
        files.stat_key(3, 1_700_000_000_000_000_001, 7, 1_700_000_000_000_000_001),
        files.stat_key(3, -1, 7, 1),  # before 1970: packed as it is
        files.stat_key(3, far, 7, far),
        files.stat_key(3, far, 7, far + 1),
        files.stat_key(3, far, 8, far),
        files.hashed_stat("", 3, 1, 7, 1),  # no hash: no stat's key
    }
    assert len(keys) == 7
    assert files.stat_key(3, far, 7, far) == files.stat_key(3, far, 7, far)
    assert files.hashed_stat("a" * 64, 3, far, 7, far) == files.stat_key(3, far, 7, far)

    path = tmp_path / "future.md"
    path.write_text("from the future")
    try:
        os.utime(path, ns=(far * 4, far * 4))
    except (OSError, OverflowError):
        pytest.skip("this filesystem keeps no time past 2262")
    st = os.stat(path)
    assert st.st_mtime_ns > 2**63
    key = files.stat_key(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    path.write_text("from the future, changed")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back, as cp -p would
    again = os.stat(path)
    assert files.stat_key(again.st_size, again.st_mtime_ns, again.st_ino, again.st_ctime_ns) != key
