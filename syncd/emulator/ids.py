"""Identifiers in the service's formats, so clients that check prefixes or lengths see real ones."""

from __future__ import annotations

import secrets
import string

_ALPHANUMERIC = string.ascii_letters + string.digits
#: Byte values below this are spelled as a character (each one by four values), the others
#: are dropped: every character equally likely.
_USABLE = 4 * len(_ALPHANUMERIC)
_SPELLING = (_ALPHANUMERIC * 4).encode("ascii") + bytes(256 - _USABLE)
_UNUSABLE = bytes(range(_USABLE, 256))


def _random_alphanumeric(length: int) -> str:
    """``length`` letters and digits, every string equally likely.

    Random bytes from the OS, each spelled as a character by a table in C; the few that would
    favour some characters are dropped and made up by another draw. A draw per character, or
    base-62 digits of one big number, cost more than the rest of a small upload's
    bookkeeping.
    """
    spelled = b""
    while len(spelled) < length:
        spelled += secrets.token_bytes(length + 4).translate(_SPELLING, _UNUSABLE)
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
    return "req_" + secrets.token_hex(16)


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
