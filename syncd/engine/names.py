"""File names as people read them: one way to show a name in every log line, message and table.

A file name may hold any byte but ``/`` and NUL: a newline in one could forge a log line, an
escape sequence could repaint the terminal, and a trailing space is invisible. So every name a
person reads goes through :func:`escape` (control characters as ``\\n``, ``\\x1b``, ``\\u2028``),
and a file is shown as ``[folder] path`` by :func:`where`, quoted when its ends are blank.

A leaf module: it imports nothing of syncd, so the engine, the service and the CLI share it.
"""

from __future__ import annotations

import re

__all__ = ["escape", "quoted", "where"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, which some
# readers break lines at. Bidirectional overrides (category Cf) could make a name read backwards.
# Lone surrogates: bytes of a name that is not UTF-8, as ``os`` decodes them (``surrogateescape``),
# shown as the byte they stand for (``bad\xff.md``); no encoder would take them raw.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape, so it stays on one line and
    cannot repaint a terminal. Idempotent: the result holds no control character."""
    return _UNSAFE.sub(_escaped, text)


def quoted(text: str) -> str:
    """``"text"``, escaped: for a name or an extension whose blanks matter (``".md "``)."""
    return '"' + escape(text).replace('"', '\\"') + '"'


def where(folder: str | None, path: str | None) -> str:
    """A file as people read it in logs, ``status`` and errors: ``[docs] guides/intro.md``.

    The folder is the configured folder's *name* in brackets, so it cannot be mistaken for a
    directory; the path is relative to the folder's root. A path that starts or ends with a
    blank is quoted, so the blank shows."""
    shown = escape(path) if path is not None else ""
    if path is not None and (not path or path != path.strip()):
        shown = quoted(path)
    if folder is None:
        return shown
    return f"[{folder}] {shown}" if path is not None else f"[{folder}]"
