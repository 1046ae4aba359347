"""The whole loop — scan, plan, execute — against the in-memory world of ``sim``.

Hypothesis drives a user (creates, edits, deletes, renames, touches files), someone else
(deletes and detaches syncd's files on the service, uploads and attaches their own files),
the operator (reconfigures a folder's assistants, unmounts a folder) and the machinery
(passes that suffer refused requests, lost answers and crashes, or stop half way).

After every step nothing that is not syncd's has been touched, and every plan stays inside
the rules (ownership, unavailable folders, the delete guard). Whenever the machine settles —
fault-free passes until the plan is empty — the service holds exactly the eligible local
files, once each, attached exactly to their folder's assistants.
"""

from __future__ import annotations

import contextlib
import posixpath
import re

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from syncd.engine.model import (
    Adopt,
    Attach,
    Cleanup,
    Detach,
    FolderSpec,
    Forget,
    Plan,
    Reject,
    Restat,
    Retire,
    Upload,
)

from .sim import Executor, Fault, Refused, World, problem_of, sha

ASSISTANTS = ("asst_a", "asst_b", "asst_x")  # asst_x is someone else's
LIMIT = 7  # asst_a: 3 docs + 3 kb files + 1 foreign attachment fit exactly; 3 do not
FOREIGN_PER_ASSISTANT = 3
FOLDERS = ("docs", "kb", "ft")
PATHS = ("a.md", "b.md", "sub/a.md")  # two share a basename
CONTENTS = ("x", "yy", "zz", "www", "")  # "yy" and "zz" share a size; "" is rejected
KB_ASSISTANTS = (("asst_b",), ("asst_a", "asst_b"), ())
SETTLE_ROUNDS = 8

changes = st.one_of(
    st.tuples(
        st.just("write"),
        st.sampled_from(FOLDERS),
        st.sampled_from(PATHS),
        st.sampled_from(CONTENTS),
    ),
    st.tuples(
        st.sampled_from(["delete", "touch", "rename"]),
        st.sampled_from(FOLDERS),
        st.sampled_from(PATHS),
        st.sampled_from(PATHS),
    ),
)
faults = st.lists(
    st.sampled_from([Fault.OK, Fault.OK, Fault.OK, Fault.FAIL, Fault.LOST, Fault.CRASH]),
    max_size=8,
)


def specs(kb_assistants: tuple[str, ...] = ("asst_b",)) -> list[FolderSpec]:
    return [
        FolderSpec("docs", "assistants", ("asst_a",), on_delete="delete"),
        FolderSpec("kb", "assistants", kb_assistants, on_delete="detach"),
        FolderSpec("ft", "fine-tune", (), on_delete="keep"),
    ]


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(specs(), ASSISTANTS, LIMIT)
        self.foreign_attachments: set[tuple[str, str]] = set()
        self.foreign_files = 0

    @initialize(full=st.booleans())
    def start_synced(self, full: bool) -> None:
        """Start from settled folders; ``full`` leaves asst_a at its limit."""
        for folder in FOLDERS:
            for i, path in enumerate(PATHS):
                self.world.write(folder, path, CONTENTS[i])
        if full:
            self.reconfigure(("asst_a", "asst_b"))
            self.someone_uploads("www", "assistants")
            self.someone_attaches_their_file("asst_a", 0)
        self.settle()

    # --- the user ---------------------------------------------------------------------------

    @rule(changes=st.lists(changes, min_size=1, max_size=4))
    def change_files(self, changes: list[tuple[str, str, str, str]]) -> None:
        self._apply(changes)

    def _apply(self, changes: list[tuple[str, str, str, str]]) -> None:
        world = self.world
        for op, folder, path, arg in changes:
            exists = world.read(folder, path) is not None
            if op == "write":
                world.write(folder, path, arg)
            elif op == "delete" and exists:
                world.delete(folder, path)
            elif op == "rename" and exists and world.read(folder, arg) is None:
                world.rename(folder, path, arg)
            elif op == "touch" and exists:
                world.touch(folder, path)

    # --- someone else -----------------------------------------------------------------------

    def _syncd_files(self) -> list[str]:
        return sorted(f.id for f in self.world.service.files.values() if f.by_syncd)

    @rule(pick=st.integers(0, 20))
    def someone_deletes_a_syncd_file(self, pick: int) -> None:
        ids = self._syncd_files()
        if ids:
            self.world.service.delete_file(ids[pick % len(ids)], syncd=False)

    @rule(pick=st.integers(0, 40))
    def someone_detaches_a_syncd_attachment(self, pick: int) -> None:
        made = sorted(
            (a, f)
            for a, attached in self.world.service.attachments.items()
            for f, by_syncd in attached.items()
            if by_syncd
        )
        if made:
            assistant, file_id = made[pick % len(made)]
            self.world.service.detach(assistant, file_id, syncd=False)

    @rule(
        content=st.sampled_from(CONTENTS[:4]), purpose=st.sampled_from(["assistants", "fine-tune"])
    )
    def someone_uploads(self, content: str, purpose: str) -> None:
        # Their names never match syncd's: a same-named file uploaded within seconds of a
        # lost upload would be taken for it (the documented limit of invariant 2).
        self.foreign_files += 1
        name = f"theirs-{self.foreign_files}.md"
        self.world.service.create_file(name, content, purpose, syncd=False)

    @rule(assistant=st.sampled_from(ASSISTANTS), pick=st.integers(0, 20))
    def someone_attaches_their_file(self, assistant: str, pick: int) -> None:
        theirs = sorted(
            f.id
            for f in self.world.service.files.values()
            if not f.by_syncd and f.purpose == "assistants"
        )
        already = sum(1 for a, _ in self.foreign_attachments if a == assistant)
        if theirs and already < FOREIGN_PER_ASSISTANT:
            file_id = theirs[pick % len(theirs)]
            with contextlib.suppress(Refused):  # the assistant is full
                self.world.service.attach(assistant, file_id, syncd=False)
                self.foreign_attachments.add((assistant, file_id))

    # --- the operator -----------------------------------------------------------------------

    # An attachment whose answer was lost is claimed by the next pass only while its
    # assistant is still configured for the folder; a reconfiguration inside that window
    # leaves it to whoever made it (invariant 1 cannot tell). Not exercised here.
    @precondition(lambda self: not self._unclaimed())
    @rule(kb=st.sampled_from(KB_ASSISTANTS))
    def reconfigure(self, kb: tuple[str, ...]) -> None:
        self.world.specs = {spec.name: spec for spec in specs(kb)}

    def _unclaimed(self) -> bool:
        return any(
            (f, a) not in self.world.records.attachments
            for a, f in self.world.service.unanswered
            if f in self.world.service.attachments[a]
        )

    @rule(folder=st.sampled_from(FOLDERS))
    def toggle_mount(self, folder: str) -> None:
        self.world.unavailable ^= {folder}

    @rule(seconds=st.sampled_from([1, 5, 60, 600, 4000]))
    def time_passes(self, seconds: int) -> None:
        self.world.clock += seconds

    # --- passes -----------------------------------------------------------------------------

    @rule(
        faults=faults,
        stop_after=st.none() | st.integers(0, 10),
        force=st.booleans(),
        meanwhile=st.lists(changes, max_size=2),
    )
    def sync(
        self,
        faults: list[Fault],
        stop_after: int | None,
        force: bool,
        meanwhile: list[tuple[str, str, str, str]],
    ) -> None:
        """One pass; ``meanwhile`` the user changes files between the plan and its execution."""
        plan = self.world.plan(force=force)
        self.check_plan(plan, force=force)
        self._apply(meanwhile)
        self.world.service.faults = list(faults)
        Executor(self.world).run(plan.actions, stop_after=stop_after)
        self.world.service.faults = []
        self.world.clock += 1

    @rule()
    def sync_clean(self) -> None:
        self.sync([], None, False, [])

    @rule()
    def settle(self) -> None:
        """Mount everything, wait out every backoff, and pass until there is nothing to do."""
        world = self.world
        world.unavailable = set()
        for _ in range(SETTLE_ROUNDS):
            world.clock += 10_000
            plan = world.plan(force=True)
            self.check_plan(plan, force=True)
            if not plan.actions:
                break
            Executor(world).run(plan.actions)
        assert plan.actions == () and plan.waiting == 0, f"not settled in {SETTLE_ROUNDS}: {plan}"
        self.check_settled(_unattached(plan))

    def teardown(self) -> None:
        self.settle()

    # --- checks -----------------------------------------------------------------------------

    @invariant()
    def nothing_of_theirs_touched(self) -> None:
        service = self.world.service
        assert service.violations == []
        for assistant, file_id in self.foreign_attachments:
            assert file_id in service.attachments[assistant], (assistant, file_id)

    def check_plan(self, plan: Plan, *, force: bool) -> None:
        world = self.world
        manifest = world.records.snapshot()
        owned = manifest.owned_ids()
        folders = {f.spec.name: f for f in world.scan()}
        unavailable = {name for name, f in folders.items() if f.error}
        folder_of = {e.file_id: e.folder for e in manifest.entries.values() if e.file_id}
        folder_of |= {r.file_id: r.folder for r in manifest.retired.values()}
        listed = world.service.snapshot().attachments
        retires: dict[str, int] = {}
        for action in plan.actions:
            ids = {getattr(action, "file_id", None), getattr(action, "replaces", None)} - {None}
            if isinstance(action, Adopt) and action.file_id not in owned:
                assert world.service.files[action.file_id].by_syncd, action
                ids.discard(action.file_id)
            assert ids <= owned, action
            folder = (
                folder_of.get(action.file_id)
                if isinstance(action, Detach | Cleanup)
                else action.folder
            )
            assert folder not in unavailable, action
            if isinstance(action, Detach | Cleanup):
                pairs = [action.target] if isinstance(action, Detach) else list(action.detach_from)
                targets = world.specs[folder].assistants if folder else ()
                for assistant in pairs:
                    ours = (action.file_id, assistant) in manifest.attachments
                    claimed = assistant in targets and action.file_id in listed[assistant]
                    assert ours or claimed, action
            if isinstance(action, Retire) and action.mode != "keep":
                entry = manifest.entries[(action.folder, action.path)]
                kept = {
                    f.sha256 for f in folders[action.folder].files.values() if f.problem is None
                }
                if entry.sha256 not in kept:
                    retires[action.folder] = retires.get(action.folder, 0) + 1
        if not force:
            for folder, n in retires.items():
                managed = sum(
                    1 for e in manifest.entries.values() if e.folder == folder and e.file_id
                )
                assert n <= max(1, 0.5 * managed), (folder, n, managed, plan)
        kinds = (Upload, Adopt, Attach, Detach, Retire, Cleanup, Forget, Reject, Restat)
        assert all(isinstance(a, kinds) for a in plan.actions)

    def check_settled(self, unattached: set[tuple[str, str, str]]) -> None:
        """``unattached``: (folder, path, assistant) reported as not fitting the assistant."""
        world = self.world
        records = world.records
        service = world.service
        assert records.retired == {}
        expected_attachments = set()
        maybe_recorded = set()
        owned = set()
        for name, spec in world.specs.items():
            targets = set(spec.assistants) if spec.purpose == "assistants" else set()
            local = world.local[name]
            rows = {path for (folder, path) in records.entries if folder == name}
            assert rows == set(local), (name, rows, set(local))
            for path, state in local.items():
                entry = records.entries[(name, path)]
                assert entry.sha256 == sha(state.content), entry
                if problem_of(state.content):
                    assert entry.state == "rejected" and entry.file_id is None, entry
                    continue
                assert entry.state == "synced" and entry.file_id is not None, entry
                stored = service.files[entry.file_id]
                assert stored.by_syncd and stored.content == state.content, entry
                assert stored.filename == posixpath.basename(path)
                assert entry.file_id not in owned, "two entries share a remote file"
                owned.add(entry.file_id)
                on = {a for a, attached in service.attachments.items() if entry.file_id in attached}
                full = {a for f, p, a in unattached if (f, p) == (name, path)}
                assert on == targets - full, (entry, on, targets, full)
                expected_attachments |= {(entry.file_id, a) for a in targets - full}
                # A record of an attachment someone else undid may outlive it while it
                # cannot be made again; it is harmless (a detach of it answers 404).
                maybe_recorded |= {(entry.file_id, a) for a in full}
        assert expected_attachments <= records.attachments
        assert records.attachments <= expected_attachments | maybe_recorded
        for assistant in {a for _, _, a in unattached}:
            assert len(service.attachments[assistant]) == service.limit, assistant
        for stored in service.files.values():
            if stored.by_syncd and stored.id not in owned:
                # Let go of on purpose (on_delete keep or detach); never a stray duplicate.
                assert stored.id in world.released, f"stray upload {stored}"
                on = {a for a, attached in service.attachments.items() if stored.id in attached}
                assert on == set(), (stored, on)


def _unattached(plan: Plan) -> set[tuple[str, str, str]]:
    found = set()
    for problem in plan.problems:
        assert problem.kind == "assistant_full", problem
        match = re.fullmatch(r"assistant (\S+) is at its \d+-file limit; (\S+) .*", problem.message)
        assert match, problem.message
        found.add((problem.folder, match[2], match[1]))
    return found


TestSync = SyncMachine.TestCase
TestSync.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
