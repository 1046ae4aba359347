"""A local, faithful OpenAI Files server (``syncd emulator``) for tests, demos and trying syncd.

It serves the eleven operations of the contract (Files, Assistant files, Message files; Assistants
v1) plus the assistant, thread and message operations that make attachments possible, with the
real service's error bodies, limits, pagination and id formats, and can inject faults.

In Python::

    from syncd.emulator import EmulatorServer, Faults

    with EmulatorServer(faults=Faults(fail_rate=0.1, seed=7)) as server:
        server.base_url                    # http://127.0.0.1:<free port>/v1
        server.set_faults(drop_rate=0.5)   # partial update; clear_faults(), reset()

Admin endpoints (paths the real API does not use; never faulted; they need the API key only when
the server was started with one):

``GET /_emulator/faults``
    ``{"faults": {...}, "injected": {"fail", "rate_limit", "drop_before", "drop_after"}}``.
``PUT /_emulator/faults``
    A JSON object with any of the ``Faults`` fields — ``fail_rate``, ``rate_limit_rate``,
    ``drop_rate`` (shares of requests, together at most 1), ``drop_phase`` (``random``,
    ``before``, ``after``), ``latency_ms``, ``retry_after_ms``, ``seed``, ``match`` (a regular
    expression searched in ``"METHOD /v1/path"``), ``max_faults``; the others keep their values.
    Answers the new state; a bad value is a 400 and changes nothing.
``POST /_emulator/reset``
    Forgets every file, assistant, thread and message, and restores the faults the server was
    started with.
"""

from syncd.emulator.faults import Faults
from syncd.emulator.knobs import Knobs
from syncd.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "Faults", "Knobs"]
