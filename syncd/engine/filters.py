"""Which files of a drop folder syncd looks at: the include and exclude patterns.

Hidden files and folders (``.*``: ``.env``, ``.git`` and ``.ssh`` never leave the machine),
editor and download leftovers (``*~``, ``*.swp``, ``*.tmp``, ``*.part``, ``*.crdownload``,
``~$*``) and the folder's own ``exclude`` patterns are left out. A pattern without ``/`` matches
any single file or directory name; one with ``/`` matches the whole path relative to the folder
(``*`` may then cross directories). A user-set ``include`` keeps only the files it matches.
Patterns ignore case, like the service's extension check.

A leaf module: the configuration checks its state directory against these rules, the scan
walks by them and the daemon's watchers drop events with them, so it imports nothing of syncd.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DEFAULT_EXCLUDES", "FilterSettings", "Filters", "folder_filters", "is_excluded"]

DEFAULT_EXCLUDES: tuple[str, ...] = (".*", "*~", "*.swp", "*.tmp", "*.part", "*.crdownload", "~$*")


class FilterSettings(Protocol):
    """What the filters read of a folder's configuration (``config.FolderConfig`` has it)."""

    @property
    def include(self) -> Sequence[str]: ...

    @property
    def exclude(self) -> Sequence[str]: ...

    @property
    def recursive(self) -> bool: ...


@dataclass(frozen=True)
class Filters:
    """A folder's include and exclude patterns, compiled once."""

    excluded_name: Callable[[str], object]
    excluded_path: Callable[[str], object] | None
    included_name: Callable[[str], object] | None
    included_path: Callable[[str], object] | None

    def excludes(self, name: str, relpath: str) -> bool:
        """Whether a file or directory is excluded (then a directory is not entered)."""
        if self.excluded_name(name):
            return True
        return self.excluded_path is not None and bool(self.excluded_path(relpath))

    def includes(self, name: str, relpath: str) -> bool:
        """Whether a file passes the user's include patterns (all do when there are none)."""
        if self.included_name is None and self.included_path is None:
            return True
        return bool(
            (self.included_name and self.included_name(name))
            or (self.included_path and self.included_path(relpath))
        )


def _matcher(patterns: Iterable[str]) -> Callable[[str], object] | None:
    patterns = list(patterns)
    if not patterns:
        return None
    regex = "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)
    return re.compile(regex, re.IGNORECASE).match


@functools.lru_cache(maxsize=256)
def _compile(include: tuple[str, ...], exclude: tuple[str, ...]) -> Filters:
    def split(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
        names: list[str] = []
        paths: list[str] = []
        for pattern in patterns:
            # A leading "/" anchors at the folder root; a trailing "/" (gitignore habit for
            # "a directory") changes nothing, since a name pattern matches directories too.
            pattern = pattern.strip("/")
            (paths if "/" in pattern else names).append(pattern)
        return names, paths

    exclude_names, exclude_paths = split((*DEFAULT_EXCLUDES, *exclude))
    include_names, include_paths = split(include)
    excluded_name = _matcher(exclude_names)
    assert excluded_name is not None  # the defaults are never empty
    return Filters(
        excluded_name=excluded_name,
        excluded_path=_matcher(exclude_paths),
        included_name=_matcher(include_names),
        included_path=_matcher(include_paths),
    )


def folder_filters(folder: FilterSettings) -> Filters:
    """The compiled filters of a folder (cached: many folders share none, a scan asks often)."""
    return _compile(tuple(folder.include), tuple(folder.exclude))


def is_excluded(relpath: str, folder: FilterSettings) -> bool:
    """Whether a scan of ``folder`` would leave the file at ``relpath`` out: excluded itself
    or inside an excluded directory, not matched by the user's include patterns, or below the
    top level of a non-recursive folder."""
    parts = relpath.strip("/").split("/")
    if not folder.recursive and len(parts) > 1:
        return True
    filters = folder_filters(folder)
    for i, name in enumerate(parts):
        if filters.excludes(name, "/".join(parts[: i + 1])):
            return True
    return not filters.includes(parts[-1], "/".join(parts))
