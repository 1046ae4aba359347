"""Logging set-up for the daemon: one line per event, shaped for whoever reads it.

* ``human`` — a terminal or a file: ``2024-05-01 12:00:03  uploaded notes.md → file-… (12 KB)``;
  warnings and errors say so.
* ``journal`` — stderr connected to journald (``$JOURNAL_STREAM`` names it): no timestamp
  (the journal adds one) and a ``<N>`` syslog priority prefix, so ``journalctl -p warning``
  filters properly (sd-daemon(3)).
* ``json`` — one object per line for log shippers, with any structured ``extra=`` fields.

``auto`` picks ``journal`` when stderr really is the journal stream, else ``human``.
Every format passes the final text through a redaction of bearer tokens and API keys, as a
last line of defence behind the rule that the key never reaches a log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Mapping
from typing import IO, Literal

from syncd.engine.names import escape

__all__ = [
    "HumanFormatter",
    "JournalFormatter",
    "JsonFormatter",
    "LogFormat",
    "make_formatter",
    "redact",
    "setup_logging",
    "stderr_is_journal",
]

LogFormat = Literal["auto", "human", "json"]

# Standard LogRecord attributes; anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# syslog priorities (sd-daemon(3)) for Python's levels.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

_SECRET = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{8,}", re.IGNORECASE)

# Libraries that are chatty at INFO; their details appear with -vv.
_QUIET_LIBRARIES = ("httpx2", "httpcore2", "watchdog", "uvicorn", "uvicorn.access", "asyncio")


def redact(text: str) -> str:
    """Hide bearer tokens and ``sk-…`` keys in ``text``."""
    # Most lines hold neither word: looking for them in the folded text is a tenth of running
    # the expression (and folds as it does, ``ſ`` and ``K`` included).
    folded = text.casefold()
    if "bearer" not in folded and "sk-" not in folded:
        return text
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


def _priority(levelno: int) -> int:
    for level, priority in _PRIORITY.items():
        if levelno >= level:
            return priority
    return 7


class HumanFormatter(logging.Formatter):
    """``2024-05-01 12:00:03  message``, with ``warning:``/``error:`` where it matters."""

    def __init__(self, *, timestamps: bool = True) -> None:
        super().__init__()
        self._timestamps = timestamps
        self._stamped: tuple[int, str] = (-1, "")  # the last second written, and its text

    def format(self, record: logging.LogRecord) -> str:
        # One event, one line: a control character in a file name (or anything else a message
        # carries) is escaped, so it can neither forge a line nor repaint the terminal.
        text = escape(record.getMessage())
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if self._timestamps:
            text = f"{self._stamp(record.created)}  {text}"
        return redact(text)

    def _stamp(self, created: float) -> str:
        """The local time of ``created``, to the second: made once a second (a first sync
        writes hundreds of lines in one). One tuple, read once: two threads cannot mix the
        second of one with the text of another."""
        second = int(created)
        last, text = self._stamped
        if second != last:
            text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._stamped = (second, text)
        return text


class JournalFormatter(HumanFormatter):
    """``<6>message``: journald reads the priority and stamps the time itself."""

    def __init__(self) -> None:
        super().__init__(timestamps=False)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_priority(record.levelno)}>"
        # Each line of a traceback is its own journal entry; keep them at the same priority.
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and structured extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def stderr_is_journal(
    environ: Mapping[str, str] | None = None, stream: IO[str] | None = None
) -> bool:
    """True when ``stream`` (stderr) is the journal stream systemd connected.

    ``$JOURNAL_STREAM`` is ``device:inode`` of that stream; comparing it with the stream's
    own ``fstat`` tells a service's stderr from a child that merely inherited the variable
    and was redirected elsewhere (systemd.exec(5)).
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    stream = sys.stderr if stream is None else stream
    try:
        device, inode = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def make_formatter(log_format: LogFormat, stream: IO[str] | None = None) -> logging.Formatter:
    """The formatter ``log_format`` stands for when logging to ``stream`` (stderr)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "auto" and stderr_is_journal(stream=stream):
        return JournalFormatter()
    return HumanFormatter()


def setup_logging(
    log_format: LogFormat = "auto",
    verbose: int = 0,
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send all logging to ``stream`` (stderr) in ``log_format``. Safe to call again.

    ``verbose``: 0 shows syncd's info lines; 1 adds syncd's debug lines; 2 and more also
    shows the libraries' (httpx2, watchdog, uvicorn) own chatter.
    """
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(log_format, stream=stream))
    handler.set_name("syncd")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "syncd"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.getLogger("syncd").setLevel(logging.DEBUG if verbose >= 1 else logging.INFO)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose >= 2 else logging.WARNING)
    warnings.showwarning = _warning_at_debug
    return handler


def _warning_at_debug(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """Python warnings (watchdog's "Callback with id … already exists" when ``mkdir -p``
    races its watches, deprecations) are notes for whoever debugs a library, not events an
    operator can act on: one line at debug (``-vv``) on the ``py.warnings`` logger."""
    text = str(message).splitlines()[0] if str(message) else ""
    logging.getLogger("py.warnings").debug(
        "%s: %s (%s:%d)", category.__name__, text, filename, lineno
    )
