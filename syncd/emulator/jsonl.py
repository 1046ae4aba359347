"""The check the service makes on fine-tune uploads: every line a JSON object."""

from __future__ import annotations

import json
from pathlib import Path


def first_bad_line(path: Path) -> int | None:
    """The 1-based number of the first line that is not a JSON object, or None if all are.

    Lines are read one at a time, so a large file is never held whole in memory. A blank line is
    a bad line, but the newline that ends the last line does not start another one.
    """
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                value = json.loads(line)
            except ValueError:
                return number
            if not isinstance(value, dict):
                return number
    return None
