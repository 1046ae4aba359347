"""scan_folder / scan_paths on real directory trees: filters, hashing, links, unsafe roots."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from syncd.config import FolderConfig
from syncd.engine import scan
from syncd.engine.filters import is_excluded
from syncd.engine.model import Entry, LocalFile, State
from syncd.engine.scan import FolderScan, scan_folder, scan_paths

NOBODY = 65534


def make(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def folder(root: Path, **settings: Any) -> FolderConfig:
    settings.setdefault("purpose", "assistants")
    return FolderConfig(name="docs", path=root, **settings)


def sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def entry(file: LocalFile, state: State = State.SYNCED, **fields: Any) -> Entry:
    return Entry(
        folder="docs",
        path=file.path,
        size=file.size,
        mtime_ns=file.mtime_ns,
        inode=file.inode,
        sha256=fields.pop("sha256", file.sha256),
        state=state,
        ctime_ns=fields.pop("ctime_ns", file.ctime_ns),
        **fields,
    )


def known_from(result: FolderScan) -> dict[str, Entry]:
    return {path: entry(f) for path, f in result.local.files.items()}


def skipped(result: FolderScan) -> dict[str, str]:
    return dict(result.skipped)


# --- what is picked up --------------------------------------------------------------------------


def test_files_are_hashed_and_validated(tmp_path: Path) -> None:
    make(tmp_path, {"guide.md": "# Setup", "sub/deep/faq.txt": "Q? A.", "empty.txt": ""})
    result = scan_folder(folder(tmp_path), {})
    files = result.local.files
    assert set(files) == {"guide.md", "sub/deep/faq.txt", "empty.txt"}
    guide = files["guide.md"]
    st = (tmp_path / "guide.md").stat()
    assert (guide.size, guide.mtime_ns, guide.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert guide.sha256 == sha("# Setup") and guide.problem is None
    assert files["empty.txt"].problem == "file is empty"
    assert result.hashed == 3 and result.bytes_hashed == 12
    assert result.root_dev == tmp_path.stat().st_dev
    assert result.local.error is None and result.local.spec.name == "docs"
    assert result.looked_at is None


DEFAULT_EXCLUDED = [
    ".env", ".git/config", ".ssh/id_ed25519", "sub/.hidden.md", "notes.md~", ".notes.md.swp",
    "x.swp", "upload.tmp", "video.part", "report.pdf.crdownload", "~$budget.xlsx", "TEMP.TMP",
]  # fmt: skip


def test_default_excludes(tmp_path: Path) -> None:
    make(tmp_path, dict.fromkeys(DEFAULT_EXCLUDED, "secret") | {"sub/ok.md": "ok"})
    result = scan_folder(folder(tmp_path), {})
    assert set(result.local.files) == {"sub/ok.md"}
    # Hidden directories are pruned, not walked: one entry for the whole tree.
    assert skipped(result)[".git"] == "excluded"
    assert ".git/config" not in skipped(result)
    for rel in DEFAULT_EXCLUDED:
        assert is_excluded(rel, folder(tmp_path)), rel


def test_user_excludes_by_name_and_by_path(tmp_path: Path) -> None:
    make(
        tmp_path,
        {"a.md": "", "a.BAK": "", "drafts/x.md": "", "sub/drafts/y.md": "", "img/raw/p.png": "",
         "img/p.png": ""},
    )  # fmt: skip
    config = folder(tmp_path, exclude=["*.bak", "drafts/", "/img/raw/*"])
    result = scan_folder(config, {})
    assert set(result.local.files) == {"a.md", "img/p.png"}
    assert {"a.BAK", "drafts", "sub/drafts", "img/raw/p.png"} <= set(skipped(result))


def test_user_include_filters_silently(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "a", "b.txt": "b", "docs/c.MD": "c", "keep/d.txt": "d"})
    config = folder(tmp_path, include=["*.md", "keep/*"])
    result = scan_folder(config, {})
    assert set(result.local.files) == {"a.md", "docs/c.MD", "keep/d.txt"}
    assert skipped(result)["b.txt"] == "excluded"
    assert is_excluded("b.txt", config) and not is_excluded("docs/c.MD", config)


def test_unsupported_types_are_rejected_not_hidden(tmp_path: Path) -> None:
    make(tmp_path, {"tool.exe": "MZ", "README": "hi", "ok.pdf": "%PDF"})
    files = scan_folder(folder(tmp_path), {}).local.files
    assert files["tool.exe"].problem is not None
    assert files["tool.exe"].problem.startswith('extension ".exe" is not accepted for purpose')
    assert files["README"].problem is not None
    assert files["ok.pdf"].problem is None
    # An include that lets them in does not make them acceptable.
    included = scan_folder(folder(tmp_path, include=["*.exe"]), {}).local.files
    assert set(included) == {"tool.exe"} and included["tool.exe"].problem is not None


def test_fine_tune_folder(tmp_path: Path) -> None:
    good = '{"messages": [{"role": "user", "content": "hi"}]}\n'
    make(tmp_path, {"train.jsonl": good, "bad.jsonl": good + "[]\n", "notes.txt": "x"})
    files = scan_folder(folder(tmp_path, purpose="fine-tune"), {}).local.files
    assert files["train.jsonl"].problem is None
    assert files["bad.jsonl"].problem == "line 2: must be a JSON object, got an array"
    assert files["notes.txt"].problem == 'fine-tune files must be .jsonl (JSON Lines), got ".txt"'


def test_non_recursive_folder(tmp_path: Path) -> None:
    make(tmp_path, {"top.md": "t", "sub/inner.md": "i"})
    config = folder(tmp_path, recursive=False)
    result = scan_folder(config, {})
    assert set(result.local.files) == {"top.md"}
    assert is_excluded("sub/inner.md", config)


def test_special_files_are_skipped(tmp_path: Path) -> None:
    make(tmp_path, {"ok.md": "x"})
    os.mkfifo(tmp_path / "pipe.txt")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock.txt"))
        result = scan_folder(folder(tmp_path), {})
    assert set(result.local.files) == {"ok.md"}
    assert skipped(result) == {"pipe.txt": "not a regular file", "sock.txt": "not a regular file"}


# --- hashing only what changed ------------------------------------------------------------------


def test_an_edit_keeping_size_mtime_and_inode_is_hashed_again(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "alpha"})
    known = known_from(scan_folder(folder(tmp_path), {}))
    path = tmp_path / "a.md"
    before = path.stat()
    path.write_text("gamma")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = scan_folder(folder(tmp_path), known)
    assert again.hashed == 1
    assert again.local.files["a.md"].sha256 != known["a.md"].sha256


def test_unchanged_files_reuse_the_manifest_hash(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "alpha", "b.md": "beta"})
    first = scan_folder(folder(tmp_path), {})
    # A made-up hash proves the file was not read again.
    known = known_from(first) | {"a.md": entry(first.local.files["a.md"], sha256="f" * 64)}
    again = scan_folder(folder(tmp_path), known)
    assert again.hashed == 0 and again.bytes_hashed == 0
    assert again.local.files["a.md"].sha256 == "f" * 64
    assert again.local.files["b.md"] == first.local.files["b.md"]


@pytest.mark.parametrize("change", ["content", "mtime", "inode"])
def test_any_stat_change_rehashes(tmp_path: Path, change: str) -> None:
    make(tmp_path, {"a.md": "alpha"})
    path = tmp_path / "a.md"
    known = known_from(scan_folder(folder(tmp_path), {}))
    if change == "content":
        path.write_text("alpha, longer")
    elif change == "mtime":
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    else:  # replaced by a copy: same size and mtime, new inode
        shutil.copy2(path, tmp_path / "copy")
        os.replace(tmp_path / "copy", path)
    result = scan_folder(folder(tmp_path), known)
    assert result.hashed == 1
    assert result.local.files["a.md"].sha256 == sha(path.read_bytes())


def test_rejected_file_keeps_its_reason_until_it_changes(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "now fine"})
    current = scan_folder(folder(tmp_path), {}).local.files["a.md"]
    known = {"a.md": entry(current, State.REJECTED, last_error="file is empty")}
    result = scan_folder(folder(tmp_path), known)
    assert result.hashed == 0
    assert result.local.files["a.md"].problem == "file is empty"

    (tmp_path / "a.md").write_text("now fine, edited")
    assert scan_folder(folder(tmp_path), known).local.files["a.md"].problem is None


@pytest.mark.timeout(10)
def test_file_changing_while_hashed_is_left_for_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path, {"growing.txt": "x" * 4096, "known.txt": "old"})
    known = {"known.txt": entry(scan_folder(folder(tmp_path), {}).local.files["known.txt"])}
    (tmp_path / "known.txt").write_text("being rewritten")

    real_readv = os.readv
    appended: set[str] = set()

    def readv_while_a_writer_appends(fd: int, buffers: list[bytearray]) -> int:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path not in appended:  # once per file, or it would never end
            appended.add(path)
            with open(path, "ab") as writer:
                writer.write(b"more")
        return real_readv(fd, buffers)

    monkeypatch.setattr(scan.os, "readv", readv_while_a_writer_appends)
    result = scan_folder(folder(tmp_path), known)
    assert skipped(result) == {
        "growing.txt": "changed while hashing",
        "known.txt": "changed while hashing",
    }
    assert result.hashed == 0
    # Unknown: not reported yet. Known: reported as last synced, so it is never taken for gone.
    assert set(result.local.files) == {"known.txt"}
    assert result.local.files["known.txt"].sha256 == sha("old")

    monkeypatch.undo()
    settled = scan_folder(folder(tmp_path), known)
    assert settled.local.files["growing.txt"].sha256 == sha((tmp_path / "growing.txt").read_bytes())


def test_a_file_gone_while_it_is_read_is_kept_as_the_manifest_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path, {"a.txt": "old"})
    known = known_from(scan_folder(folder(tmp_path), {}))
    (tmp_path / "a.txt").write_text("edited, then renamed while it was read")
    real_hash = scan.sha256_file

    def renamed_first(path: Any, *args: Any) -> Any:
        os.rename(path, tmp_path / "b.txt")
        return real_hash(path, *args)

    monkeypatch.setattr(scan, "sha256_file", renamed_first)
    result = scan_folder(folder(tmp_path), known)
    assert skipped(result) == {"a.txt": scan.VANISHED}
    # Reported as last synced: the next pass (or the watcher) tells a removal from a rename.
    assert set(result.local.files) == {"a.txt"}
    assert result.local.files["a.txt"].sha256 == sha("old")


def test_a_large_file_streams(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024**2 + 17)
    make(tmp_path, {"blob.zip": data})
    result = scan_folder(folder(tmp_path), {})
    assert result.local.files["blob.zip"].sha256 == sha(data)
    assert result.bytes_hashed == len(data)


# --- symlinks -----------------------------------------------------------------------------------


def test_symlink_inside_is_followed_as_its_target(tmp_path: Path) -> None:
    make(tmp_path, {"real/guide.md": "content", "data.bin": "text"})
    (tmp_path / "alias.md").symlink_to("real/guide.md")
    (tmp_path / "data.txt").symlink_to(tmp_path / "data.bin")
    files = scan_folder(folder(tmp_path), {}).local.files
    target = (tmp_path / "real/guide.md").stat()
    assert files["alias.md"].sha256 == sha("content")
    assert files["alias.md"].inode == target.st_ino
    # Judged by the name it is uploaded as, not by the target's.
    assert files["data.txt"].problem is None
    assert files["data.bin"].problem is not None


def test_symlink_outside_is_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make(tmp_path / "root", {"ok.md": "x"})
    make(tmp_path, {"outside/secret.txt": "secret"})
    (root / "leak.txt").symlink_to(tmp_path / "outside/secret.txt")
    (root / "up").symlink_to("..")
    warned: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="syncd.scan"):
        first = scan_folder(folder(root), {}, warned_links=warned)
        second = scan_folder(folder(root), {}, warned_links=warned)
    assert set(first.local.files) == {"ok.md"}
    assert (
        skipped(first)
        == skipped(second)
        == {
            "leak.txt": "symlink outside folder",
            "up": "symlink outside folder",
        }
    )
    warnings = [r.getMessage() for r in caplog.records if "outside the folder" in r.getMessage()]
    assert len(warnings) == 2  # one per link, not one per pass
    assert any("[docs] leak.txt" in w and "secret.txt" in w for w in warnings)


def test_symlinks_that_are_not_followed(tmp_path: Path) -> None:
    make(tmp_path, {".env": "KEY=1", "sub/a.md": "a", "ok.md": "x"})
    (tmp_path / "env.txt").symlink_to(".env")
    (tmp_path / "subdir").symlink_to("sub")
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "dangling.md").symlink_to("missing.md")
    result = scan_folder(folder(tmp_path), {})
    assert set(result.local.files) == {"sub/a.md", "ok.md"}
    assert skipped(result) == {
        ".env": "excluded",
        "env.txt": "symlink to an excluded file",
        "subdir": "symlink to a directory",
        "loop": "symlink to a directory",
        "dangling.md": "broken symlink",
    }


def test_root_may_be_a_symlink(tmp_path: Path) -> None:
    make(tmp_path / "real", {"a.md": "a"})
    (tmp_path / "root").symlink_to(tmp_path / "real")
    (tmp_path / "real/b.md").symlink_to(tmp_path / "real/a.md")
    assert set(scan_folder(folder(tmp_path / "root"), {}).local.files) == {"a.md", "b.md"}


# --- roots that must not be trusted -------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    result = scan_folder(folder(tmp_path / "gone"), {})
    assert result.local.error == f"folder root {tmp_path / 'gone'} does not exist"
    assert result.local.files == {} and result.root_dev is None


def test_unavailable_folder_is_reported_once_per_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    warned: set[str] = set()

    def scan_and_log(paths: list[str] | None = None) -> list[tuple[int, str]]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="syncd.scan"):
            if paths is None:
                scan_folder(folder(root), {}, warned_links=warned)
            else:
                scan_paths(folder(root), paths, {}, warned_links=warned)
        return [(r.levelno, r.getMessage()) for r in caplog.records]

    first = scan_and_log()
    assert len(first) == 1 and first[0][0] == logging.ERROR and "[docs]" in first[0][1]
    assert scan_and_log() == []
    assert scan_and_log(["a.md"]) == []  # a daemon's scan of dirty paths: still quiet

    root.write_text("not a directory")  # another reason: reported
    other = scan_and_log()
    assert len(other) == 1 and other[0][0] == logging.ERROR and other[0][1] != first[0][1]
    assert scan_and_log() == []

    root.unlink()
    make(root, {"a.md": "a"})
    assert scan_and_log() == [(logging.INFO, "[docs] available again")]
    assert scan_and_log() == []

    shutil.rmtree(root)  # gone again: reported again
    assert scan_and_log() == first


def test_root_that_is_a_file(tmp_path: Path) -> None:
    make(tmp_path, {"file": "x"})
    result = scan_folder(folder(tmp_path / "file"), {})
    assert result.local.error == f"folder root {tmp_path / 'file'} is not a directory"


def test_root_on_another_device(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "a"})
    dev = tmp_path.stat().st_dev
    result = scan_folder(folder(tmp_path), {}, expected_dev=dev + 1)
    assert result.local.error is not None
    assert "is not on the same filesystem as before" in result.local.error
    assert result.local.files == {}
    assert result.root_dev == dev  # so the caller can show it, or accept it
    assert scan_folder(folder(tmp_path), {}, expected_dev=dev).local.error is None


def test_empty_root_with_synced_files(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "a"})
    known = known_from(scan_folder(folder(tmp_path), {}))
    (tmp_path / "a.md").unlink()
    unmounted = scan_folder(folder(tmp_path), known)
    assert unmounted.local.error is not None
    assert "is empty, but 1 files were synced from it" in unmounted.local.error
    # With the device recorded, an emptied folder is just empty (the delete guard still applies).
    emptied = scan_folder(folder(tmp_path), known, expected_dev=tmp_path.stat().st_dev)
    assert emptied.local.error is None and emptied.local.files == {}
    # Nothing was synced: an empty folder is fine.
    assert scan_folder(folder(tmp_path), {}).local.error is None


# --- permissions (run as an unprivileged user when we are root) ---------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory an unprivileged child process can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="syncd-scan-"))
    path.chmod(0o755)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o700)  # rmtree needs to enter it
    shutil.rmtree(path)


def unprivileged(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` where permission bits apply: in a child that drops root, if root."""
    if os.geteuid() != 0:
        return fn(*args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's result is checked by the parent
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = pickle.dumps(("ok", fn(*args)))
        except BaseException as e:
            payload = pickle.dumps(("error", repr(e)))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        status, value = pickle.loads(inp.read())  # noqa: S301 - from our own child
    os.waitpid(pid, 0)
    assert status == "ok", value
    return value


@pytest.mark.timeout(20)
def test_unreadable_file_and_directory_keep_their_last_state(shared_tmp: Path) -> None:
    make(shared_tmp, {"open.md": "o", "locked.md": "l", "private/a.md": "a", "private/b.md": "b"})
    config = folder(shared_tmp)
    known = known_from(scan_folder(config, {}))
    (shared_tmp / "locked.md").write_text("changed, then locked")
    (shared_tmp / "locked.md").chmod(0)
    (shared_tmp / "private").chmod(0)

    result = unprivileged(scan_folder, config, known)
    assert skipped(result) == {
        "locked.md": "unreadable: Permission denied",
        "private": "unreadable: Permission denied",
    }
    # Present on disk, so reported as last known: the planner must not delete them.
    assert set(result.local.files) == {"open.md", "locked.md", "private/a.md", "private/b.md"}
    assert result.local.files["locked.md"] == LocalFile(
        "locked.md", known["locked.md"].size, known["locked.md"].mtime_ns,
        known["locked.md"].inode, known["locked.md"].sha256,
        ctime_ns=known["locked.md"].ctime_ns,
    )  # fmt: skip


@pytest.mark.timeout(20)
def test_a_dirty_path_under_an_unreadable_directory_keeps_everything_below_it(
    shared_tmp: Path,
) -> None:
    # The daemon's dirty paths name a directory whose parent cannot be entered: it cannot
    # even be stat'ed. Every known entry at and below it must be kept, or the planner would
    # take them for deleted (only the delete guard stood in the way).
    make(shared_tmp, {"private/sub/a.md": "a", "private/sub/deeper/b.md": "b", "c.md": "c"})
    config = folder(shared_tmp)
    known = known_from(scan_folder(config, {}))
    (shared_tmp / "private").chmod(0)

    result = unprivileged(scan_paths, config, ["private/sub", "c.md"], known)
    assert set(result.local.files) == {"private/sub/a.md", "private/sub/deeper/b.md", "c.md"}
    assert skipped(result) == {"private/sub": "unreadable: Permission denied"}


@pytest.mark.timeout(20)
def test_unreadable_root(shared_tmp: Path) -> None:
    root = make(shared_tmp / "root", {"a.md": "a"})
    root.chmod(0o700)
    result = unprivileged(scan_folder, folder(root), {})
    assert result.local.error == f"cannot read folder root {root}: permission denied"
    assert result.local.files == {}


# --- scanning only the paths that changed -------------------------------------------------------


def test_scan_paths_returns_only_those_paths(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": "a", "b.md": "b", "dir/c.md": "c", "dir/sub/d.md": "d"})
    known = known_from(scan_folder(folder(tmp_path), {}))
    (tmp_path / "b.md").unlink()
    (tmp_path / "a.md").write_text("a2")

    result = scan_paths(folder(tmp_path), ["a.md", "./b.md", "dir/", "dir/c.md"], known)
    assert set(result.local.files) == {"a.md", "dir/c.md", "dir/sub/d.md"}
    assert result.hashed == 1  # only a.md changed
    assert result.looked_at == frozenset({"a.md", "b.md", "dir", "dir/c.md"})


def test_scan_paths_applies_the_same_rules(tmp_path: Path) -> None:
    make(tmp_path, {".git/HEAD": "ref", "real/x.md": "x", "top.md": "t", "sub/in.md": "i"})
    (tmp_path / "linked").symlink_to("real")
    (tmp_path / "out.md").symlink_to("/etc/hostname")
    result = scan_paths(
        folder(tmp_path), [".git/HEAD", "linked/x.md", "out.md", "top.md", "../etc/passwd"], {}
    )
    assert set(result.local.files) == {"top.md"}
    assert skipped(result) == {".git/HEAD": "excluded", "out.md": "symlink outside folder"}
    # Not through a directory link, as a full scan would not go there either.
    assert "linked/x.md" not in result.local.files
    non_recursive = scan_paths(folder(tmp_path, recursive=False), ["sub/in.md", "top.md"], {})
    assert set(non_recursive.local.files) == {"top.md"}


def test_scan_paths_with_a_bad_root(tmp_path: Path) -> None:
    result = scan_paths(folder(tmp_path / "gone"), ["a.md"], {})
    assert result.local.error is not None and result.local.files == {}
    assert result.looked_at == frozenset({"a.md"})
