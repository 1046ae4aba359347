"""``syncd check``: is everything a pass needs in place?

The checks run in the order a pass would need them and stop where the rest could not be
judged: no valid configuration, nothing else; no API key or no answer from the service, no
authentication, assistant or vector store checks. Every problem is one line. It changes
nothing, locally or remotely: a missing state directory is only checked to be creatable.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click

from syncd.api import APIError, AuthenticationError, Client, ClientConfigError, NotFoundError
from syncd.cli.output import (
    QUICK_RETRY,
    config_option,
    describe,
    is_terminal,
    json_option,
    print_json,
    print_table,
)
from syncd.config import Config, ConfigError, FolderConfig, load_config, make_client
from syncd.engine.inputs import RETIRED_ASSISTANTS, assistants_retired
from syncd.engine.model import ASSISTANT_FILE_LIMIT
from syncd.engine.report import ExitStatus

__all__ = [
    "EPILOG",
    "SHARED_ORGANISATION",
    "Check",
    "check_command",
    "check_folder",
    "check_service",
    "check_state_dir",
    "run_checks",
]

EPILOG = """\b
Exit status: 0 everything is in place; 2 a configuration problem (invalid file,
no API key, state directory not writable, folder missing); 3 a service problem
(unreachable, key refused, assistant or vector store not found, store expired, the
Assistants API no longer offered).

\b
--json prints:
{"ok": bool, "checks": [{"name": str, "ok": bool, "detail": str}, ...],
 "warnings": [str, ...]}
names: "config", "state dir", "folder NAME", "api key", "service",
"authentication", "assistant ASSISTANT_ID", "assistants API" (when the service no longer
offers it), "vector store STORE_ID" (only those that could be run)
"""


#: What ``syncd check`` warns about until files carry an instance attribute (issue #13): no
#: check can see another syncd, so it is said every time.
SHARED_ORGANISATION = (
    "two syncd instances (two state directories) on one OpenAI organisation can take each "
    "other's lost uploads for their own and then delete them: give each instance its own "
    "organisation or project, or make sure no two of them upload files with the same name "
    "and size"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One thing a pass needs. ``status`` is the exit status a failure implies."""

    name: str
    ok: bool
    detail: str
    status: ExitStatus = ExitStatus.OK

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _config_problem(name: str, detail: str) -> Check:
    return Check(name, False, detail, ExitStatus.CONFIG)


def _service_problem(name: str, detail: str) -> Check:
    return Check(name, False, detail, ExitStatus.STOPPED)


def run_checks(config_path: Path | None) -> Iterator[Check]:
    """Every check that can be judged, in order."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        for problem in e.problems:
            yield _config_problem("config", problem)
        return
    yield _passed("config", f"{config.source}: {len(config.folders)} folder(s)")
    yield check_state_dir(config.sync.state_dir)
    for folder in config.folders:
        yield check_folder(folder)
    try:
        client = make_client(config, QUICK_RETRY)
    except ClientConfigError as e:
        yield _config_problem("api key", str(e))
        return
    yield _passed("api key", "set")
    with client:
        yield from check_service(client, config)


def check_state_dir(path: Path) -> Check:
    """The state directory is writable, or — when it does not exist yet — a pass could create
    it: its nearest existing parent is a directory where a file can be written. Creates
    nothing (a check that made the directory would hide the very problem it looks for)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = path if existing == path else existing
    try:
        if not existing.is_dir():
            return _config_problem("state dir", f"{path}: {existing} is not a directory")
        # An unnamed temporary file: proves writing works and leaves nothing behind.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        return _config_problem("state dir", f"{path}: cannot write in {where}: {reason}")
    if existing != path:
        return _passed("state dir", f"{path} does not exist yet; the first pass creates it")
    return _passed("state dir", f"{path} is writable")


def check_folder(folder: FolderConfig) -> Check:
    """The folder's root is a directory syncd can list (a pass skips it otherwise)."""
    name = f"folder {folder.name}"
    try:
        with os.scandir(folder.path) as listing:
            next(listing, None)
    except FileNotFoundError:
        return _config_problem(name, f"{folder.path} does not exist")
    except NotADirectoryError:
        return _config_problem(name, f"{folder.path} is not a directory")
    except OSError as e:
        return _config_problem(name, f"{folder.path}: cannot list it: {e.strerror}")
    return _passed(name, f"{folder.path} ({folder.purpose})")


def check_service(client: Client, config: Config) -> Iterator[Check]:
    """Reach the service, authenticate, and find each configured assistant."""
    started = time.monotonic()
    try:
        # The call every pass starts with; it also proves the key is accepted.
        client.list_files(config.folders[0].purpose)
    except AuthenticationError as e:
        yield _passed("service", f"{client.base_url} answered")
        yield _service_problem("authentication", f"the API key was not accepted: {e}")
        return
    except APIError as e:
        yield _service_problem("service", f"{client.base_url}: {describe(e)}")
        return
    elapsed_ms = (time.monotonic() - started) * 1000
    yield _passed("service", f"{client.base_url} answered in {elapsed_ms:.0f} ms")
    org = f" for organization {client.organization}" if client.organization else ""
    yield _passed("authentication", f"the API key was accepted{org}")

    for assistant_id, folders in _users(config, "assistants").items():
        name = f"assistant {assistant_id}"
        try:
            assistant = client.retrieve_assistant(assistant_id)
        except APIError as e:
            if assistants_retired(e):
                # Said once, whatever the number of assistants configured.
                yield _service_problem("assistants API", RETIRED_ASSISTANTS)
                break
            if not isinstance(e, NotFoundError):
                yield _service_problem(name, describe(e))
                continue
            used_by = ", ".join(folders)
            yield _service_problem(name, f"not found (used by {used_by}): {e}")
            continue
        label = f'"{assistant.name}"' if assistant.name else "(unnamed)"
        attached = len(assistant.file_ids)
        yield _passed(name, f"{label}, {attached} of {ASSISTANT_FILE_LIMIT} files attached")
    yield from _check_stores(client, config)


def _users(config: Config, kind: Literal["assistants", "vector_stores"]) -> dict[str, list[str]]:
    """Each configured target of ``kind``, with the folders that use it, in config order."""
    users: dict[str, list[str]] = {}
    for folder in config.folders:
        for target_id in getattr(folder, kind):
            users.setdefault(target_id, []).append(folder.name)
    return users


def _check_stores(client: Client, config: Config) -> Iterator[Check]:
    """Each configured vector store exists and has not expired."""
    for store_id, folders in _users(config, "vector_stores").items():
        name = f"vector store {store_id}"
        try:
            store = client.retrieve_vector_store(store_id)
        except NotFoundError as e:
            yield _service_problem(name, f"not found (used by {', '.join(folders)}): {e}")
            continue
        except APIError as e:
            yield _service_problem(name, describe(e))
            continue
        label = f'"{store.name}"' if store.name else "(unnamed)"
        if store.status == "expired":
            yield _service_problem(
                name,
                f"{label} has expired (used by {', '.join(folders)}): create a new store "
                "and put its id in vector_stores",
            )
            continue
        counts = store.file_counts
        expiry = ""
        if store.expires_at is not None:
            expiry = (
                f"; expires {time.strftime('%Y-%m-%d %H:%M', time.localtime(store.expires_at))}"
            )
        yield _passed(
            name,
            f"{label}, {counts.completed} file(s) ready, {counts.in_progress} ingesting, "
            f"{counts.failed} failed{expiry}",
        )


@click.command("check", epilog=EPILOG)
@config_option
@json_option
def check_command(config_path: Path | None, as_json: bool) -> None:
    """Check that a pass can run: configuration valid, state directory writable, folders
    readable, service reachable, API key accepted, each configured assistant found and each
    vector store there and not expired."""
    checks = list(run_checks(config_path))
    failed = [c for c in checks if not c.ok]
    if as_json:
        checked = [c.to_json() for c in checks]
        print_json({"ok": not failed, "checks": checked, "warnings": [SHARED_ORGANISATION]})
    else:
        _print_human(checks, failed)
        click.echo(f"warning: {SHARED_ORGANISATION}", err=True)
    statuses = {c.status for c in failed}
    sys.exit(min(statuses) if statuses else ExitStatus.OK)


def _print_human(checks: list[Check], failed: list[Check]) -> None:
    mark = ("✓", "✗") if is_terminal() else ("ok", "FAIL")
    print_table(
        ["result", "check", "detail"],
        [[mark[0] if c.ok else mark[1], c.name, c.detail] for c in checks],
    )
    if failed:
        click.echo(f"{len(failed)} problem(s): a pass would not run as configured")
    else:
        click.echo("everything a pass needs is in place")
