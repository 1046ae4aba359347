"""Identifiers in the service's formats, so clients that check prefixes or lengths see real ones."""

from __future__ import annotations

import os
import secrets
import string
import threading

_ALPHANUMERIC = string.ascii_letters + string.digits
#: Byte values below this are spelled as a character (each one by four values), the others
#: are dropped: every character equally likely.
_USABLE = 4 * len(_ALPHANUMERIC)
_SPELLING = (_ALPHANUMERIC * 4).encode("ascii") + bytes(256 - _USABLE)
_UNUSABLE = bytes(range(_USABLE, 256))


#: Random bytes are drawn from the OS this many at a time: a small upload takes two ids, and a
#: system call for each was a cost of its own.
_POOL_BYTES = 4096
_pool = b""
_used = 0
_pool_lock = threading.Lock()


def _random_bytes(count: int) -> bytes:
    """``count`` (at most ``_POOL_BYTES``) random bytes from the OS, handed out of a pool."""
    global _pool, _used
    with _pool_lock:
        if _used + count > len(_pool):
            _pool, _used = secrets.token_bytes(_POOL_BYTES), 0
        drawn = _pool[_used : _used + count]
        _used += count
    return drawn


def _forget_pool() -> None:
    """A forked child draws its own bytes: the parent's would spell the same ids twice."""
    global _pool, _used
    _pool, _used = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random_alphanumeric(length: int) -> str:
    """``length`` letters and digits, every string equally likely.

    Random bytes from the OS (``_random_bytes``), each spelled as a character by a table in C;
    the few that would favour some characters are dropped and made up by another draw. A draw
    per character, or base-62 digits of one big number, cost more than the rest of a small
    upload's bookkeeping.
    """
    spelled = b""
    while len(spelled) < length:
        spelled += _random_bytes(length + 4).translate(_SPELLING, _UNUSABLE)
    return spelled[:length].decode("ascii")


def file_id() -> str:
    """``file-`` followed by 24 letters and digits, like ``file-Ab3…``."""
    return "file-" + _random_alphanumeric(24)


def assistant_id() -> str:
    """``asst_`` followed by 24 letters and digits."""
    return "asst_" + _random_alphanumeric(24)


def thread_id() -> str:
    """``thread_`` followed by 24 letters and digits."""
    return "thread_" + _random_alphanumeric(24)


def message_id() -> str:
    """``msg_`` followed by 24 letters and digits."""
    return "msg_" + _random_alphanumeric(24)


def request_id() -> str:
    """The value of an ``x-request-id`` header: ``req_`` and 32 hex digits."""
    return "req_" + _random_bytes(16).hex()


def vector_store_id() -> str:
    """``vs_`` followed by 24 letters and digits."""
    return "vs_" + _random_alphanumeric(24)


def file_batch_id() -> str:
    """``vsfb_`` followed by 24 letters and digits."""
    return "vsfb_" + _random_alphanumeric(24)


def upload_id() -> str:
    """``upload_`` followed by 24 letters and digits."""
    return "upload_" + _random_alphanumeric(24)


def part_id() -> str:
    """``part_`` followed by 24 letters and digits."""
    return "part_" + _random_alphanumeric(24)
