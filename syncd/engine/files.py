"""Local files outside a scan's walk: whether a folder root is usable, and a file's SHA-256.

The scan, the executor (re-hashing right before an upload) and the daemon (watching roots) all
ask these questions; the answers are decided here once. A leaf module: it imports nothing of
syncd.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "FileChanged",
    "RootFault",
    "RootProblem",
    "check_root",
    "hashed_stat",
    "identity",
    "read_small",
    "sha256_file",
    "stat_key",
]

_CHUNK = 1024**2

#: What can be wrong with a folder root.
RootFault = Literal["missing", "unreachable", "not_directory", "unreadable"]


@dataclass(frozen=True, slots=True)
class RootProblem:
    """Why a folder root cannot be used; the caller words it for its reader."""

    fault: RootFault
    path: Path
    strerror: str = ""  # the system's words, for "unreachable"


def check_root(path: Path) -> tuple[os.stat_result | None, RootProblem | None]:
    """Stat a folder root: its stat (when it has one) and what keeps it from being walked —
    missing, unreachable (another stat error), not a directory, or not readable by us."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, RootProblem("missing", path)
    except OSError as e:
        return None, RootProblem("unreachable", path, e.strerror or str(e))
    if not stat.S_ISDIR(st.st_mode):
        return st, RootProblem("not_directory", path)
    if not os.access(path, os.R_OK | os.X_OK):
        return st, RootProblem("unreadable", path)
    return st, None


class FileChanged(Exception):
    """The file was not the one expected, or changed (or was replaced) while it was read."""


def identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must stay the same for two stats to be of the same, unchanged file. ctime too: a
    writer that restores mtime (rsync -t, touch -r) still moves ctime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


#: A stat's four numbers packed, a zero byte first: never the first byte of the text form a
#: number too large for it is written as (see :func:`stat_key`).
_PACKED = struct.Struct("<xqqQq")


def stat_key(size: int, mtime_ns: int, inode: int, ctime_ns: int) -> bytes:
    """A file's stat as one short key: equal keys, an unchanged file (its hash is reused).
    ctime too: every write moves it, where ``cp -p`` and ``touch -r`` keep mtime.

    The numbers are packed, not written out: writing four large numbers as text was a fifth of
    a no-change scan, packing them is a third of that; and 33 bytes a path weigh less than the
    text did in a scan that holds one per known file. A time 64 bits do not hold (before 1678
    or after 2262) is written out instead, so that no two stats share a key."""
    try:
        return _PACKED.pack(size, mtime_ns, inode, ctime_ns)
    except struct.error:
        return f"{size}:{mtime_ns}:{inode}:{ctime_ns}".encode()


def hashed_stat(sha256: str, size: int, mtime_ns: int, inode: int, ctime_ns: int) -> bytes:
    """The stat a manifest entry's hash was taken at, as the manifest keeps it beside the
    entry (``entries.hashed_stat``): its :func:`stat_key`, or empty for an entry without a
    hash, which no stat's key equals, so that its file is read."""
    return stat_key(size, mtime_ns, inode, ctime_ns) if sha256 else b""


def sha256_file(
    path: str | Path, expected: os.stat_result | None = None, *, follow_symlinks: bool = False
) -> tuple[str, os.stat_result]:
    """SHA-256 of the file at ``path`` and its stat, read start to end without it changing.

    ``expected``: the stat the caller already has (a scan's directory listing); the opened file
    must be that one. Raises :class:`FileChanged` when it is not, when it changed while it was
    read, or when the path names another file by the end. Without ``follow_symlinks`` the file
    is opened with ``O_NOFOLLOW``, so a link swapped in after a listing is never read through.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    digest = hashlib.sha256()
    fd = os.open(path, flags)
    try:
        before = os.fstat(fd)
        if expected is not None and identity(before) != identity(expected):
            raise FileChanged
        # A buffer the file's size (and a byte), up to a chunk: making a whole chunk cost a
        # small file twice what reading and hashing it does.
        buffer = bytearray(min(_CHUNK, before.st_size + 1))
        view = memoryview(buffer)
        while n := os.readv(fd, [buffer]):
            digest.update(view[:n])
        after = os.stat(path, follow_symlinks=follow_symlinks)
    finally:
        os.close(fd)
    if identity(after) != identity(before):
        raise FileChanged
    return digest.hexdigest(), before


def read_small(
    path: str | Path, limit: int, *, follow_symlinks: bool = False
) -> tuple[bytes, os.stat_result] | None:
    """The whole content of the file at ``path`` and its stat, read start to end without it
    changing — when it holds at most ``limit`` bytes; ``None`` when it holds more (hash it with
    :func:`sha256_file` instead, which keeps memory flat).

    Raises :class:`FileChanged` as :func:`sha256_file` does: when the file changed while it
    was read, or the path names another file by the end.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        before = os.fstat(fd)
        if before.st_size > limit:
            return None
        # Up to one byte more than the stat promised (a file that grew is seen to have
        # changed), in as many reads as the file system needs (a network or FUSE one may hand
        # over less than asked).
        pieces = []
        left = before.st_size + 1
        while left > 0 and (piece := os.read(fd, left)):
            pieces.append(piece)
            left -= len(piece)
        content = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        after = os.stat(path, follow_symlinks=follow_symlinks)
    finally:
        os.close(fd)
    if identity(after) != identity(before) or len(content) != before.st_size:
        raise FileChanged
    return content, before
