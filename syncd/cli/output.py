"""What the operator commands share: ``--config`` and ``--json``, config loading, the API
client, and how results are printed.

Results go to stdout in one of three forms: a rich table when stdout is a terminal, plain
aligned text otherwise (so ``grep`` and ``awk`` work on it), or JSON with ``--json`` — a
documented shape that scripts can rely on. Problems go to stderr as one line each, prefixed
``syncd:``, and end the command with one of the exit statuses listed in ``syncd.cli``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from syncd.api import (
    APIError,
    AuthenticationError,
    Client,
    ClientConfigError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from syncd.config import Config, ConfigError, load_config, make_client
from syncd.engine.names import escape
from syncd.engine.report import ExitStatus

__all__ = [
    "QUICK_RETRY",
    "config_option",
    "describe",
    "fail",
    "is_terminal",
    "iso_time",
    "json_option",
    "load",
    "local_time",
    "open_client",
    "print_fields",
    "print_json",
    "print_table",
    "service_exit_status",
    "service_failure",
]

#: Inspection commands answer within seconds when the service is down, instead of retrying
#: for minutes as a sync pass does.
QUICK_RETRY = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0, deadline=10.0)

F = TypeVar("F", bound=Callable[..., Any])


def config_option(f: F) -> F:
    """The ``--config PATH`` option every command takes (passed on as ``config_path``)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Configuration file (default: ./syncd.toml, then "
        "$XDG_CONFIG_HOME/syncd/config.toml, then /etc/syncd/config.toml).",
    )(f)


def json_option(f: F) -> F:
    """The ``--json`` flag (passed on as ``as_json``)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (the shape documented below)."
    )(f)


def fail(message: str, status: ExitStatus) -> NoReturn:
    """Print ``syncd: message`` on stderr (each line of it, control characters escaped) and end
    the command with ``status``."""
    for line in message.splitlines():
        click.echo(f"syncd: {escape(line)}", err=True)
    sys.exit(status)


def load(config_path: Path | None) -> Config:
    """Find and load the configuration, or end the command with status 2 saying why."""
    try:
        return load_config(config_path)
    except ConfigError as e:
        fail(str(e), ExitStatus.CONFIG)


def open_client(config: Config, retry: RetryPolicy = QUICK_RETRY) -> Client:
    """:func:`syncd.config.make_client`, or end the command with status 2 saying why it cannot
    be built."""
    try:
        return make_client(config, retry)
    except ClientConfigError as e:
        fail(str(e), ExitStatus.CONFIG)


def service_exit_status(error: APIError) -> ExitStatus:
    """STOPPED when the service could not be used at all (unreachable, down, key refused, rate
    limited); DIFFERS when it answered and refused this one request (unknown id, not allowed)."""
    if isinstance(error, AuthenticationError | TransportError | ServerError | RateLimitError):
        return ExitStatus.STOPPED
    return ExitStatus.DIFFERS


def service_failure(error: APIError, doing: str) -> NoReturn:
    """End the command over a failed call: what we were doing and what the service said
    (status, message, request id — the client's texts never carry the key)."""
    fail(f"{doing}: {describe(error)}", service_exit_status(error))


def describe(error: APIError) -> str:
    """A one-line account of a failed call, in words first."""
    if isinstance(error, AuthenticationError):
        return f"the service did not accept the API key: {error}"
    if isinstance(error, TransportError):
        return f"cannot reach the service: {error}"
    return str(error)


# --- values --------------------------------------------------------------------------------------


def local_time(ts: float | None) -> str:
    """A unix time as local ``YYYY-MM-DD HH:MM:SS`` (empty for ``None``)."""
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def iso_time(ts: float | None) -> str | None:
    """A unix time as ISO 8601 in UTC (``2024-05-01T10:00:00Z``), the form used in JSON."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- printing ------------------------------------------------------------------------------------


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None
) -> None:
    """Rows under a header: a rich table on a terminal, plain aligned columns otherwise. Cells
    are shown as they are: control characters escaped, no rich markup."""
    rows = [[escape(cell) for cell in row] for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_edge=False)
        # Only the last column (a path, a reason, a detail) wraps; the short ones stay whole.
        for i, column in enumerate(columns):
            last = i == len(columns) - 1
            table.add_column(column, no_wrap=not last, overflow="fold" if last else "ellipsis")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        Console().print(table)
        return
    if title:
        click.echo(title)
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for line in (columns, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def print_fields(pairs: Sequence[tuple[str, str]]) -> None:
    """One object as ``name  value`` lines (a two-column table without a header)."""
    pairs = [(name, escape(value)) for name, value in pairs]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(show_header=False, show_edge=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in pairs:
            table.add_row(name, Text(value))
        Console().print(table)
        return
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        click.echo(f"{name.ljust(width)}  {value}".rstrip())
