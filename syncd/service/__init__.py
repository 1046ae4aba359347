"""The service around the engine: ``daemon`` (signals, reload, the loop), ``watchers`` (the
folder watchers), ``schedule`` (when the daemon passes of its own accord), ``reporter`` (systemd
STATUS, ``daemon.json``, metrics), ``watch`` (observers and the Debouncer), ``notify``,
``logs``, ``metrics``, ``activity`` and ``lock``. Every public name of these modules is
importable from here; see ARCHITECTURE.md for the layout.
"""

from __future__ import annotations

from syncd import public_name

_MODULES = (
    "daemon",
    "watchers",
    "schedule",
    "reporter",
    "watch",
    "notify",
    "logs",
    "metrics",
    "activity",
    "lock",
)


def __getattr__(name: str) -> object:
    return public_name(__name__, _MODULES, name)
