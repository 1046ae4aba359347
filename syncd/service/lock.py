"""One syncd at a time per state directory.

``run`` and ``reconcile`` both hold ``<state_dir>/syncd.lock`` while they work. The lock is an
``flock`` on that file, so the kernel drops it the moment its holder dies — a crashed syncd
never blocks the next one. Inside the file the holder writes who it is (PID, host, command,
start time) and a heartbeat it refreshes, so the second process can say exactly who is in the
way.

The file's content is only a report, with one exception: on filesystems where ``flock`` is
not shared between clients (some network mounts), the lock can be free while a syncd is still
running. So a free lock whose file names a *live* process on this host that heartbeated within
:data:`STALE_AFTER_SECONDS` is still treated as held. A dead PID, another host's entry, or an
old heartbeat (the PID reused by an unrelated process) is taken over.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "LOCK_NAME",
    "STALE_AFTER_SECONDS",
    "Holder",
    "LockHeld",
    "StateLock",
    "ensure_state_dir",
]

log = logging.getLogger("syncd.lock")

LOCK_NAME = "syncd.lock"
#: A heartbeat older than this does not keep a lock that flock says is free.
STALE_AFTER_SECONDS = 120.0


def ensure_state_dir(path: Path) -> Path:
    """Create the state directory (mode 0700) if needed, tighten its mode if it is looser, and
    return it. The manifest in it names every file syncd manages: not for other users."""
    path = path.expanduser()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # FileExistsError if not a directory
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        log.warning(
            "state directory %s was accessible to other users (mode %o); set it to 700",
            path,
            stat.S_IMODE(st.st_mode),
        )
        path.chmod(0o700)
    return path


@dataclass(frozen=True)
class Holder:
    """What the lock file says about the process holding it."""

    pid: int
    since: float
    heartbeat: float
    host: str
    command: str
    #: Set by a holder that had to stop with work in flight (its grace period ran out): why.
    stopped: str | None = None

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                since=float(data["since"]),
                heartbeat=float(data["heartbeat"]),
                host=str(data["host"]),
                command=str(data["command"]),
                stopped=str(data["stopped"]) if data.get("stopped") else None,
            )
        except (ValueError, KeyError, TypeError):
            return None  # empty (released) or half-written

    def to_json(self) -> str:
        record: dict[str, object] = {
            "pid": self.pid,
            "since": self.since,
            "heartbeat": self.heartbeat,
            "host": self.host,
            "command": self.command,
        }
        if self.stopped:
            record["stopped"] = self.stopped
        return json.dumps(record)


class LockHeld(Exception):
    """Another syncd holds the state directory's lock."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        self.path = path
        self.holder = holder
        self.pid = holder.pid if holder else None
        self.since = holder.since if holder else None
        self.host = holder.host if holder else None
        self.command = holder.command if holder else None
        super().__init__(self._describe())

    def _describe(self) -> str:
        holder = self.holder
        if holder is None:
            return f"another syncd holds {self.path}"
        started = time.localtime(holder.since)
        layout = "%H:%M:%S" if started[:3] == time.localtime()[:3] else "%Y-%m-%d %H:%M:%S"
        where = "" if holder.host == socket.gethostname() else f" on {holder.host}"
        return (
            f"another syncd (PID {holder.pid}{where}, running since "
            f"{time.strftime(layout, started)}, command '{holder.command}') holds {self.path}"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _default_command() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "syncd"
    return " ".join(["syncd" if name in ("__main__.py", "-c") else name, *sys.argv[1:]])


class StateLock:
    """``with StateLock(state_dir, command="syncd run"):`` — hold the state directory's lock or
    raise :class:`LockHeld`. Call :meth:`heartbeat` now and then while holding it."""

    def __init__(self, state_dir: Path, command: str | None = None) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self.command = command or _default_command()
        self._fd: int | None = None
        self._since = 0.0

    def acquire(self) -> StateLock:
        """Take the lock; raises LockHeld when another process has it."""
        if self._fd is not None:
            raise RuntimeError("StateLock is not reentrant")
        ensure_state_dir(self.state_dir)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(self.path, Holder.parse(_read(fd))) from None
            previous = Holder.parse(_read(fd))
            if previous is not None and previous.pid != os.getpid():
                self._check_previous(previous)
        except BaseException:
            os.close(fd)  # also releases the flock, if taken
            raise
        self._fd = fd
        self._since = time.time()
        self.heartbeat()
        return self

    def _check_previous(self, previous: Holder) -> None:
        """flock says the lock is free: take it over unless ``previous`` is still running."""
        if previous.host != socket.gethostname():
            # Its PID means nothing here, and flock would have stopped it on a shared lock.
            reason = f"recorded on {previous.host}"
        elif not _alive(previous.pid):
            if previous.stopped:
                log.info(
                    "the previous syncd (PID %d, '%s') stopped with work in flight: %s; "
                    "this pass finishes it",
                    previous.pid,
                    previous.command,
                    previous.stopped,
                )
                return
            reason = "not running"
        elif time.time() - previous.heartbeat >= STALE_AFTER_SECONDS:
            reason = "no recent heartbeat"
        else:
            raise LockHeld(self.path, previous)
        log.info("taking over the stale lock %s from PID %d (%s)", self.path, previous.pid, reason)

    def heartbeat(self, *, stopped: str | None = None) -> None:
        """Refresh the heartbeat in the lock file (cheap: one small write).

        ``stopped``: this process is leaving with work in flight and why, so that the next
        syncd says so instead of calling the lock stale."""
        if self._fd is None:
            raise RuntimeError("StateLock is not held")
        holder = Holder(
            pid=os.getpid(),
            since=self._since,
            heartbeat=time.time(),
            host=socket.gethostname(),
            command=self.command,
            stopped=stopped,
        )
        # Overwrite in place, padded to a steady length, so a reader never finds the file
        # empty or with a tail of the previous record.
        data = holder.to_json().encode().ljust(512)
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def release(self) -> None:
        """Give the lock up. The file stays (deleting it would let two processes lock two
        different files); its content is cleared so nobody reads a departed holder."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
