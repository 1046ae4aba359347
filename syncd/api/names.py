"""The name a file reaches the service under.

An upload's name travels in the multipart ``Content-Disposition`` header, and httpx2 encodes
it there as HTML5 forms do: ``"`` and the control characters U+0000–U+001F (but ESC) become
``%XX``. The service stores that form, so a file named ``a"b.md`` is listed as ``a%22b.md``.
(httpx2 also doubles ``\\``, but a multipart parser reads the pair back as one.) Whatever
compares a local name with a listed one — the lost-upload lookup, ``syncd verify`` — compares
:func:`sent_filename` of it.
"""

from __future__ import annotations

import re

__all__ = ["sent_filename"]

_REPLACEMENTS = {'"': "%22"} | {chr(c): f"%{c:02X}" for c in range(0x20) if c != 0x1B}
# One character class: an alternation of 32 characters cost every upload's name a search
# several times as slow.
_PATTERN = re.compile("[" + "".join(re.escape(c) for c in _REPLACEMENTS) + "]")


def sent_filename(name: str) -> str:
    """``name`` as the multipart body carries it, and so as the service lists it."""
    if _PATTERN.search(name) is None:  # (nearly every name: a third of the cost of sub)
        return name
    return _PATTERN.sub(lambda m: _REPLACEMENTS[m.group(0)], name)
