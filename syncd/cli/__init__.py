"""The ``syncd`` command line.

Each subcommand lives in its own module under ``syncd.cli`` and is imported only when it
is invoked, so ``syncd status`` does not pay for starting the emulator's web stack and
``syncd --help`` stays instant.

Every command exits with a :class:`syncd.engine.report.ExitStatus`: 0 done, everything in sync
or healthy; 1 finished, but some files failed, were rejected or differ; 2 usage or configuration
error; 3 stopped before acting (authentication failure, lock held, delete guard, service down).
"""

from __future__ import annotations

import importlib

import click

from syncd import __version__

__all__ = ["COMMANDS", "LazyGroup", "main"]

# name -> "module:attribute"; the module is imported on first use.
COMMANDS: dict[str, str] = {
    "emulator": "syncd.cli.emulator:emulator_command",
    "reconcile": "syncd.cli.reconcile:reconcile_command",
    "status": "syncd.cli.status:status_command",
    "verify": "syncd.cli.verify:verify_command",
    "check": "syncd.cli.check:check_command",
    "repair": "syncd.cli.repair:repair_command",
    "remote": "syncd.cli.remote:remote_command",
    "search": "syncd.cli.search:search_command",
    "run": "syncd.cli.run:run_command",
    "demo": "syncd.cli.demo:demo_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on demand."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncd")
def main() -> None:
    """Keep local drop folders in sync with the OpenAI Files API."""
