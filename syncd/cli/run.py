"""``syncd run``: the daemon, in the foreground (systemd's ``Type=notify`` service)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncd.cli.output import config_option
from syncd.service.daemon import Daemon
from syncd.service.logs import LogFormat, setup_logging

__all__ = ["EPILOG", "run_command"]

EPILOG = """\b
Signals: SIGHUP reloads the configuration (a bad one is logged and the
running one kept); SIGTERM or SIGINT stop it: requests in flight get
[sync] shutdown_grace_seconds to finish, then it exits 0.

\b
Exit status: 0 stopped by a signal, 2 configuration error, 3 another
syncd holds the state directory.
"""


@click.command("run", epilog=EPILOG)
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["auto", "human", "json"]),
    default="auto",
    show_default=True,
    help="human: lines with a time; json: one object per line; auto: human, or "
    "journald's priority prefixes without times under systemd.",
)
@click.option("-v", "--verbose", count=True, help="More detail: -v syncd's own, -vv libraries'.")
def run_command(config_path: Path | None, log_format: LogFormat, verbose: int) -> None:
    """Watch the configured folders and keep them in sync until stopped."""
    setup_logging(log_format, verbose)
    sys.exit(Daemon(config_path).run())
