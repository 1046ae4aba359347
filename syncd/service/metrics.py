"""Optional Prometheus metrics for the daemon (``[sync] metrics_address = "127.0.0.1:9464"``).

Off unless configured. Everything lives in a registry of its own, so nothing else in the
process (or a second daemon in a test) leaks into the exposition:

* ``syncd_files{folder,state}`` — the manifest's entries by state, after every pass,
* ``syncd_actions_total{result}`` — what passes did (``uploaded``, ``attached``, ``failed``, …),
* ``syncd_errors_total{kind}`` — failed requests (``server``, ``rate_limited``, ``transport``,
  ``auth``, ``client``) and files (``failed``, ``rejected``, ``unresolved``),
* ``syncd_request_duration_seconds{method,operation}`` — API latency, one observation per
  HTTP exchange (retries included), operations with their ids folded (``/files/{id}``),
* ``syncd_passes_total{scope}``, ``syncd_pass_duration_seconds{scope}``, ``syncd_pending_paths``,
  ``syncd_folder_available{folder}``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from syncd import __version__
from syncd.api.client import RequestRecord
from syncd.engine.model import State
from syncd.engine.report import Done, PassScope

__all__ = ["Metrics", "error_kind", "operation", "parse_address"]

# Ids in request paths (file-…, asst_…, thread_…, msg_…) would make one series per file.
_ID_SEGMENT = re.compile(r"/(?:file|asst|thread|msg)[-_][A-Za-z0-9_-]+")

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def operation(path: str) -> str:
    """``/files/file-abc/content`` -> ``/files/{id}/content``."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0])


def error_kind(record: RequestRecord) -> str | None:
    """What kind of failure an exchange was, or None for a success."""
    if record.status is None:
        return "transport"
    if record.status < 400:
        return None
    if record.status == 429:
        return "rate_limited"
    if record.status in (401, 403):
        return "auth"
    if record.status >= 500:
        return "server"
    return "client"


def parse_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class Metrics:
    """The daemon's metrics; call the ``observe``/``set`` methods, :meth:`serve` to expose."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.files = Gauge(
            "syncd_files", "Local entries by state.", ["folder", "state"], registry=r
        )
        self.actions = Counter(
            "syncd_actions",
            "What passes did, by result (uploaded, attached, …).",
            ["result"],
            registry=r,
        )
        self.errors = Counter("syncd_errors", "Failures, by kind.", ["kind"], registry=r)
        self.latency = Histogram(
            "syncd_request_duration_seconds",
            "Duration of each HTTP exchange with the API.",
            ["method", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.passes = Counter(
            "syncd_passes",
            "Reconcile passes run (full or for changed paths).",
            ["scope"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "syncd_pass_duration_seconds", "Duration of passes.", ["scope"], registry=r
        )
        self.pending = Gauge("syncd_pending_paths", "Changed paths not settled yet.", registry=r)
        self.available = Gauge(
            "syncd_folder_available",
            "1 when the folder's root is present and watched, 0 while it is paused.",
            ["folder"],
            registry=r,
        )
        info = Gauge("syncd_info", "syncd's version.", ["version"], registry=r)
        info.labels(__version__).set(1)
        self._server: WSGIServer | None = None

    def observe_request(self, record: RequestRecord) -> None:
        """Record one exchange (a :attr:`syncd.api.Client.request_log` callback)."""
        self.latency.labels(record.method, operation(record.path)).observe(record.duration)
        kind = error_kind(record)
        if kind is not None:
            self.errors.labels(kind).inc()

    def set_file_counts(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        """Replace the per-folder, per-state counts (every state present, zeros included)."""
        self.files.clear()
        for folder, by_state in counts.items():
            for state in State:
                self.files.labels(folder, state.value).set(by_state.get(state.value, 0))

    def observe_pass(self, scope: PassScope, seconds: float) -> None:
        self.passes.labels(scope).inc()
        self.pass_duration.labels(scope).observe(seconds)

    def observe_done(self, done: Done) -> None:
        """Count one thing a pass did (uploaded, attached, …), and a failed or rejected file
        as an error of that kind."""
        self.actions.labels(done.what).inc()
        if done.what in ("failed", "unresolved", "rejected"):
            self.errors.labels(done.what).inc()

    def set_available(self, folder: str, available: bool) -> None:
        self.available.labels(folder).set(1 if available else 0)

    def forget_folder(self, folder: str) -> None:
        """Drop a folder's series (it was removed from the configuration)."""
        for state in State:
            with contextlib.suppress(KeyError):
                self.files.remove(folder, state.value)
        with contextlib.suppress(KeyError):
            self.available.remove(folder)

    def serve(self, address: str) -> tuple[str, int]:
        """Serve ``/metrics`` on ``address`` in a background thread; returns (host, port)."""
        host, port = parse_address(address)
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        return host, self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
