"""The check the service makes on fine-tune uploads: every line a JSON object."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO


def first_bad_line(content: Path | bytes) -> int | None:
    """The 1-based number of the first line that is not a JSON object, or None if all are; of
    the file at a path, or of a small upload's bytes.

    Lines are read one at a time, so a large file is never held whole in memory. A blank line is
    a bad line, but the newline that ends the last line does not start another one.
    """
    lines: BinaryIO = io.BytesIO(content) if isinstance(content, bytes) else content.open("rb")
    with lines:
        for number, line in enumerate(lines, start=1):
            try:
                value = json.loads(line)
            except ValueError:
                return number
            if not isinstance(value, dict):
                return number
    return None
