"""Log formats: human on a terminal, priority-prefixed for journald, JSON for shippers."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.service.logs import LogFormat, make_formatter, redact, setup_logging, stderr_is_journal


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("syncd").setLevel(logging.NOTSET)


def _emit(log_format: str, *, env: dict[str, str] | None = None) -> str:
    """Run a tiny program that logs through setup_logging and return its stderr."""
    program = (
        "import logging; from syncd.service.logs import setup_logging; "
        f"setup_logging({log_format!r}); log = logging.getLogger('syncd.test'); "
        "log.info('uploaded notes.md → file-abc (12 KB)'); "
        "log.warning('skipped big.bin: too large'); "
        "log.error('could not reach the API')"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return result.stderr


def test_human_lines_have_time_and_say_warnings() -> None:
    lines = _emit("auto", env={"JOURNAL_STREAM": ""}).splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("  uploaded notes.md → file-abc (12 KB)")
    assert lines[0][:4].isdigit() and lines[0][4] == "-"
    assert lines[1].endswith("warning: skipped big.bin: too large")
    assert lines[2].endswith("error: could not reach the API")


def test_journal_stream_gets_priorities_and_no_timestamps(tmp_path: Path) -> None:
    # Make stderr a file and advertise that same file as the journal stream, as systemd does.
    err = tmp_path / "stderr"
    program = (
        "import logging, os, sys; from syncd.service.logs import setup_logging; "
        "st = os.fstat(2); os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'; "
        "setup_logging('auto'); log = logging.getLogger('syncd.test'); "
        "log.info('watching 2 folders'); log.warning('folder docs paused: root is missing')"
    )
    with err.open("w") as stderr:
        subprocess.run([sys.executable, "-c", program], stderr=stderr, check=True)
    assert err.read_text().splitlines() == [
        "<6>watching 2 folders",
        "<4>warning: folder docs paused: root is missing",
    ]


def test_inherited_journal_stream_is_not_trusted(tmp_path: Path) -> None:
    # JOURNAL_STREAM set but stderr is something else (a pipe): human format.
    stderr = _emit("auto", env={"JOURNAL_STREAM": "1:2"})
    assert not stderr.startswith("<")
    assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"})


def test_json_lines_carry_extras() -> None:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    logging.getLogger("syncd.test").info(
        "uploaded %s", "notes.md", extra={"folder": "docs", "file_id": "file-abc"}
    )
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "uploaded notes.md"
    assert entry["level"] == "info"
    assert entry["logger"] == "syncd.test"
    assert entry["folder"] == "docs"
    assert entry["file_id"] == "file-abc"
    assert entry["time"].endswith("Z")


def test_json_formats_exceptions_on_one_line() -> None:
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("syncd.test").exception("pass failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "RuntimeError: boom" in json.loads(lines[0])["exception"]


def test_verbosity_levels() -> None:
    stream = io.StringIO()
    setup_logging("human", 0, stream=stream)
    logging.getLogger("syncd.test").debug("hidden")
    logging.getLogger("httpx2").info("hidden too")
    setup_logging("human", 1, stream=stream)
    logging.getLogger("syncd.test").debug("shown")
    logging.getLogger("httpx2").info("still hidden")
    setup_logging("human", 2, stream=stream)
    logging.getLogger("httpx2").info("library detail")
    text = stream.getvalue()
    assert "hidden" not in text
    assert "shown" in text
    assert "library detail" in text
    # Calling again replaced the handler instead of stacking another one.
    assert sum(h.get_name() == "syncd" for h in logging.getLogger().handlers) == 1


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_secrets_are_redacted_in_every_format(log_format: LogFormat) -> None:
    record = logging.makeLogRecord(
        {"msg": "request failed: Authorization: Bearer sk-proj-abcdefghijkl1234", "levelno": 40}
    )
    record.levelname = "ERROR"
    text = make_formatter(log_format).format(record)
    assert "abcdefghijkl1234" not in text
    assert "[redacted]" in text
    assert redact("key sk-abcdefghijklmnop here") == "key [redacted] here"


@pytest.mark.parametrize(
    "text",
    ["BEARER  sk-abcdefghijkl", "token SK-ABCDEFGHIJKL", "\u017fk-abcdefghijkl", "bearer\tx"],
)
def test_a_secret_is_redacted_whatever_its_case(text: str) -> None:
    """The look for the two words that lets most lines through folds case as the expression
    does (``ſ`` is an ``s`` to it), so no secret it would hide gets past."""
    assert "[redacted]" in redact(text)
    assert redact("uploaded [docs] a.md → file-abc (12 KB, 0.2 s)") == (
        "uploaded [docs] a.md → file-abc (12 KB, 0.2 s)"
    )


def test_each_line_is_stamped_with_its_own_second() -> None:
    """The stamp is made once a second and reused: a line of the next second gets its own."""
    formatter = make_formatter("human")
    second = 1_800_000_000
    lines = [
        formatter.format(logging.makeLogRecord({"msg": "m", "levelno": 20, "created": t}))
        for t in (second + 0.1, second + 0.9, second + 1.0, second + 0.5)
    ]
    stamps = [line.split("  ")[0] for line in lines]
    expected = [
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) for t in (second, second, second + 1)
    ]
    assert stamps == [*expected, expected[0]]
