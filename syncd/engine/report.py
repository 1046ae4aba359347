"""What a pass did, in a person's words: the wording shared by the logs, the CLI and metrics."""

from __future__ import annotations

__all__ = ["human_size"]


def human_size(n: int) -> str:
    """``12 KB``, ``3.4 MB``: decimal units, as file managers show them."""
    if n < 1000:
        return f"{n} B"
    units = ("KB", "MB", "GB", "TB")
    value, step = n / 1000, 0
    while value >= 999.5 and step < len(units) - 1:
        value, step = value / 1000, step + 1
    return f"{value:.1f} {units[step]}" if value < 10 else f"{value:.0f} {units[step]}"
