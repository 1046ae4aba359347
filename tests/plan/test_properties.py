"""Properties of ``plan()`` over arbitrary, possibly odd, snapshots.

The snapshots are drawn from small pools of folders, paths, contents, ids and assistants, so
that they collide often: rows in every state, lost uploads next to look-alikes, retired ids
waiting for replacements, attachments made by syncd, lost or made by someone else,
assistants close to their limit, folders that are unavailable.
"""

from __future__ import annotations

import posixpath
import random
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine.model import (
    Adopt,
    Attach,
    Cleanup,
    Detach,
    Entry,
    FolderSpec,
    LocalFile,
    LocalFolder,
    Manifest,
    Plan,
    Purpose,
    Reject,
    Remote,
    RemoteFile,
    Retire,
    Retired,
    State,
    Upload,
)
from syncd.engine.planner import CLOCK_SLACK, plan, stages

from .sim import sha

NOW = 1_000_000.0
NAMES = ("docs", "kb", "ft")
PATHS = ("a.md", "b.md", "sub/a.md", "c.txt")
CONTENTS = ("v1", "v2", "xx", "long", "")
ASSISTANTS = ("asst_a", "asst_b", "asst_x")
IDS = tuple(f"file-{i}" for i in range(12))
PROPERTY = settings(max_examples=150, deadline=None)


@dataclass(frozen=True)
class Inputs:
    folders: list[LocalFolder]
    manifest: Manifest
    remote: Remote
    fraction: float
    force: bool
    limit: int

    def plan(self) -> Plan:
        return plan(
            self.folders,
            self.manifest,
            self.remote,
            now=NOW,
            max_delete_fraction=self.fraction,
            force=self.force,
            assistant_file_limit=self.limit,
        )

    def targets(self, folder: str) -> set[str]:
        spec = next((f.spec for f in self.folders if f.spec.name == folder), None)
        return set(spec.assistants) if spec and spec.purpose == "assistants" else set()

    def folder_of(self, file_id: str) -> str | None:
        for entry in self.manifest.entries.values():
            if entry.file_id == file_id:
                return entry.folder
        retired = self.manifest.retired.get(file_id)
        return retired.folder if retired else None


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    ids = list(draw(st.permutations(IDS)))  # each id has at most one owner
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    folders: list[LocalFolder] = []
    entries: dict[tuple[str, str], Entry] = {}
    remote_files: dict[str, RemoteFile] = {}
    for name in NAMES:
        purpose: Purpose = "fine-tune" if name == "ft" else "assistants"
        spec = FolderSpec(
            name,
            purpose,
            tuple(draw(st.lists(st.sampled_from(ASSISTANTS[:2]), max_size=2, unique=True))),
            draw(st.sampled_from(["delete", "detach", "keep"])),
        )
        files = {}
        for path in draw(st.lists(st.sampled_from(PATHS), unique=True)):
            content = draw(st.sampled_from(CONTENTS))
            stat = draw(st.integers(1, 2))
            problem = "the file is empty" if not content else None
            files[path] = LocalFile(path, len(content), stat, stat, sha(content), problem)
        for path in draw(st.lists(st.sampled_from(PATHS), unique=True)):
            entries[(name, path)] = draw(rows(name, path, ids, remote_files, purpose))
        if name in names:
            error = draw(st.sampled_from([None, None, None, "root is missing"]))
            folders.append(LocalFolder(spec, files, error))
    retired = {}
    for _ in range(draw(st.integers(0, 3))):
        if not ids:
            break
        file_id = ids.pop()
        live = [e.file_id for e in entries.values() if e.file_id]
        replaced_by = draw(st.none() | st.sampled_from(live)) if live else None
        retired[file_id] = Retired(
            file_id, draw(st.sampled_from(NAMES)), draw(st.booleans()), replaced_by
        )
    owned = {e.file_id for e in entries.values() if e.file_id} | set(retired)
    for file_id in owned:
        if draw(st.integers(0, 4)):  # most owned files still exist
            remote_files[file_id] = RemoteFile(file_id, "a.md", 2, "assistants", int(NOW) - 500)
    for file_id in ids:  # someone else's files
        if draw(st.booleans()):
            remote_files[file_id] = draw(foreign_file(file_id))
    limit = draw(st.integers(2, 5))
    listed = {
        a: frozenset(
            draw(
                st.lists(
                    st.sampled_from(sorted(remote_files) or ["-"]), max_size=limit, unique=True
                )
            )
        )
        for a in ASSISTANTS
    }
    recorded = frozenset(
        draw(
            st.lists(
                st.tuples(st.sampled_from(sorted(owned) or ["-"]), st.sampled_from(ASSISTANTS))
            )
        )
    )
    manifest = Manifest(entries, recorded, retired)
    return Inputs(
        folders,
        manifest,
        Remote(remote_files, listed),
        draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
        draw(st.booleans()),
        limit,
    )


@st.composite
def rows(
    draw: st.DrawFn,
    folder: str,
    path: str,
    ids: list[str],
    remote_files: dict[str, RemoteFile],
    purpose: str,
) -> Entry:
    content = draw(st.sampled_from(CONTENTS))
    state = draw(st.sampled_from(list(State)))
    file_id = (
        ids.pop() if bool(ids) and draw(st.booleans()) and state is not State.REJECTED else None
    )
    stat = draw(st.integers(1, 2))
    row = Entry(folder, path, len(content), stat, stat, sha(content), state, file_id)
    if state is State.FAILED:
        return replace(row, next_attempt_at=NOW + draw(st.sampled_from([-10, 0, 10])))
    if state is State.UPLOADING:
        sent = draw(st.sampled_from(CONTENTS[:4]))
        at = NOW - draw(st.integers(0, 50))
        if bool(ids) and draw(st.booleans()):  # the lost upload, or a look-alike
            lost = ids.pop()
            created = int(at) + draw(st.integers(-4, 3))
            remote_files[lost] = RemoteFile(
                lost, posixpath.basename(path), len(sent), purpose, created
            )
        return replace(
            row,
            intent_sha256=sha(sent),
            intent_size=len(sent),
            intent_at=at,
        )
    return row


@st.composite
def foreign_file(draw: st.DrawFn, file_id: str) -> RemoteFile:
    return RemoteFile(
        file_id,
        draw(st.sampled_from(["a.md", "b.md", "theirs.md"])),
        draw(st.integers(0, 4)),
        draw(st.sampled_from(["assistants", "fine-tune"])),
        int(NOW) + draw(st.integers(-60, 5)),
    )


# --- properties ---------------------------------------------------------------------------------


@PROPERTY
@given(inputs(), st.randoms(use_true_random=False))
def test_same_inputs_same_plan_whatever_their_order(given: Inputs, rnd: random.Random) -> None:
    def shuffled(mapping: dict) -> dict:
        items = list(mapping.items())
        rnd.shuffle(items)
        return dict(items)

    folders = [LocalFolder(f.spec, shuffled(dict(f.files)), f.error) for f in given.folders]
    rnd.shuffle(folders)
    manifest = Manifest(
        shuffled(dict(given.manifest.entries)),
        given.manifest.attachments,
        shuffled(dict(given.manifest.retired)),
    )
    remote = Remote(shuffled(dict(given.remote.files)), shuffled(dict(given.remote.attachments)))
    reordered = Inputs(folders, manifest, remote, given.fraction, given.force, given.limit)
    assert reordered.plan() == given.plan()


@PROPERTY
@given(inputs())
def test_only_syncd_files_and_attachments_are_touched(given: Inputs) -> None:
    result = given.plan()
    owned = given.manifest.owned_ids()
    adopted: set[str] = set()
    for action in result.actions:
        if isinstance(action, Adopt) and action.file_id not in owned:
            _assert_matches_intent(given, action)
            assert action.file_id not in adopted, "one lost upload adopted twice"
            adopted.add(action.file_id)
        else:
            file_id = getattr(action, "file_id", None)
            assert file_id is None or file_id in owned, action
        replaces = getattr(action, "replaces", None)
        assert replaces is None or replaces in owned, action
        if isinstance(action, Detach | Cleanup):
            assistants = [action.target] if isinstance(action, Detach) else action.detach_from
            folder = given.folder_of(action.file_id)
            for assistant in assistants:
                made_by_syncd = (action.file_id, assistant) in given.manifest.attachments
                claimed = assistant in given.targets(folder or "") and action.file_id in (
                    given.remote.attachments.get(assistant, frozenset())
                )
                assert made_by_syncd or claimed, (action, assistant)


def _assert_matches_intent(given: Inputs, action: Adopt) -> None:
    entry = given.manifest.entries[(action.folder, action.path)]
    file = given.remote.files[action.file_id]
    spec = next(f.spec for f in given.folders if f.spec.name == action.folder)
    assert entry.state is State.UPLOADING and entry.intent_at is not None
    assert file.filename == posixpath.basename(action.path)
    assert file.bytes == entry.intent_size
    assert file.purpose == spec.purpose
    assert file.created_at >= entry.intent_at - CLOCK_SLACK
    assert action.sha256 == entry.intent_sha256


@PROPERTY
@given(inputs())
def test_unavailable_folders_get_no_actions(given: Inputs) -> None:
    unavailable = {f.spec.name for f in given.folders if f.error}
    result = given.plan()
    for action in result.actions:
        folder = (
            given.folder_of(action.file_id)
            if isinstance(action, Detach | Cleanup)
            else action.folder
        )
        assert folder not in unavailable, action
    assert {p.folder for p in result.problems if p.kind == "unavailable"} == unavailable


@PROPERTY
@given(inputs())
def test_delete_guard_holds_unless_forced(given: Inputs) -> None:
    result = given.plan()
    removals: dict[str, int] = {}
    for action in result.actions:
        if isinstance(action, Retire) and action.mode != "keep":
            entry = given.manifest.entries[(action.folder, action.path)]
            scanned = next(f for f in given.folders if f.spec.name == action.folder)
            if entry.sha256 not in {f.sha256 for f in scanned.files.values() if f.problem is None}:
                removals[action.folder] = removals.get(action.folder, 0) + 1
    guarded = {p.folder for p in result.problems if p.kind == "delete_guard"}
    for folder, n in removals.items():
        managed = sum(
            1 for e in given.manifest.entries.values() if e.folder == folder and e.file_id
        )
        assert given.force or n <= max(1, given.fraction * managed), (folder, n, managed)
        assert folder not in guarded
    if given.force:
        assert not guarded


@PROPERTY
@given(inputs())
def test_no_assistant_goes_over_its_limit_while_the_additions_run(given: Inputs) -> None:
    result = given.plan()
    runs = stages(result.actions)
    first_add = next(
        (i for i, s in enumerate(runs) if isinstance(s[0], Upload | Adopt | Attach)), len(runs)
    )
    before = [a for s in runs[:first_add] for a in s]
    additions = runs[first_add] if first_add < len(runs) else ()
    for assistant, listed in given.remote.attachments.items():
        freed = {
            a.file_id
            for a in before
            if (isinstance(a, Detach) and a.target == assistant)
            or (isinstance(a, Cleanup) and assistant in a.detach_from)
        } & listed
        added = [
            a
            for a in additions
            if (isinstance(a, Upload | Adopt) and assistant in a.attach_to)
            or (isinstance(a, Attach) and a.target == assistant)
        ]
        new = [a for a in added if isinstance(a, Upload) or a.file_id not in listed]
        assert len(listed) - len(freed) + len(new) <= given.limit, (assistant, result)
        # An old version detached for room always makes way for its own successor.
        successors = {a.replaces for a in added if isinstance(a, Upload | Adopt)}
        successors |= {
            old
            for old, r in given.manifest.retired.items()
            if any(isinstance(a, Attach) and a.file_id == r.replaced_by for a in added)
        }
        for action in before:
            if isinstance(action, Detach) and "limit" in action.reason:
                assert action.target != assistant or action.file_id in successors, action


@PROPERTY
@given(inputs())
def test_each_path_gets_a_coherent_sequence(given: Inputs) -> None:
    result = given.plan()
    assert [a for s in stages(result.actions) for a in s] == list(result.actions)
    by_path: dict[tuple[str, str], list[type]] = {}
    for action in result.actions:
        path = getattr(action, "path", None)
        if path:
            by_path.setdefault((action.folder, path), []).append(type(action))  # type: ignore[union-attr]
    for path, kinds in by_path.items():
        assert kinds.count(Upload) + kinds.count(Adopt) <= 1, (path, kinds)
        assert not (Upload in kinds and Retire in kinds), (path, kinds)
        if Retire in kinds and Reject in kinds:
            assert kinds.index(Retire) < kinds.index(Reject), (path, kinds)
        if Adopt in kinds and Attach in kinds:
            assert kinds.index(Adopt) < kinds.index(Attach), (path, kinds)
    retired_then_cleaned = [
        (i, a.file_id) for i, a in enumerate(result.actions) if isinstance(a, Retire)
    ]
    for i, file_id in retired_then_cleaned:
        later = [a for a in result.actions[i:] if isinstance(a, Cleanup) and a.file_id == file_id]
        earlier = [a for a in result.actions[:i] if isinstance(a, Cleanup) and a.file_id == file_id]
        assert not earlier, "a Cleanup before the Retire that hands it the id"
        assert len(later) <= 1
