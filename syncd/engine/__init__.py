"""The engine: from the drop folders and the service to a synced state.

``model`` (the snapshot and action types), ``planner`` (``plan()``, the pure decision function;
``stages()`` and ``chains()``), ``filters``, ``files``, ``names`` (file names as people read
them), ``scan``, ``validate``, ``manifest`` (the SQLite status database), ``executor`` with
``stores`` (attaching to vector stores in batches, following ingestion), a pass: ``rest`` (the
files at rest, left out of the plan), ``inputs`` (a round's inputs), ``reconcile``
(``Engine``: the rounds) and ``report`` (what a pass did, in words), and ``rebuild`` (a lost
manifest taken back from the stores' attributes). Every public name of these modules is
importable from here; see ARCHITECTURE.md for the layout.
"""

from __future__ import annotations

from syncd import public_name

_MODULES = (
    "model",
    "planner",
    "filters",
    "files",
    "names",
    "scan",
    "validate",
    "manifest",
    "executor",
    "stores",
    "rest",
    "inputs",
    "reconcile",
    "report",
    "rebuild",
)


def __getattr__(name: str) -> object:
    return public_name(__name__, _MODULES, name)
