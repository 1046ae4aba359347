"""The planner's decision table, one row (or special rule) per test.

Inputs are written with ``builders``: ``local("a.md", "v2")`` is a scanned file whose content
is "v2", ``entry("a.md", "v1", "file-1")`` the manifest's row for it, and so on. Every test
states the whole plan it expects, so an extra action fails it as surely as a missing one.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncd.engine.model import (
    ASSISTANT_FILE_LIMIT,
    Adopt,
    Attach,
    Attempt,
    Cleanup,
    Detach,
    Duplicate,
    Entry,
    FolderProblem,
    FolderSpec,
    Forget,
    Plan,
    Reject,
    Restat,
    Retire,
    Retired,
    State,
    Upload,
)
from syncd.engine.planner import ATTEMPT_HORIZON, stages

from .builders import DOCS, NOW, A, B, X, entry, folder, local, remote_file, run, where
from .sim import sha

V1, V2 = sha("v1"), sha("v2")
FT = FolderSpec("ft", "fine-tune", (), on_delete="delete")
SYNCED_A = {"attached": {A: ["file-1"]}, "recorded": [("file-1", A)]}


def synced(**changes: object) -> Plan:
    """docs/a.md "v1" synced as file-1 and attached to A — with ``changes`` to any input."""
    inputs: dict[str, object] = {
        "folders": folder(DOCS, local("a.md")),
        "entries": [entry("a.md")],
        "files": ["file-1"],
        **SYNCED_A,
    }
    inputs.update(changes)
    return run(**inputs)  # type: ignore[arg-type]


# --- present locally, nothing recorded ----------------------------------------------------------


def test_new_file_is_uploaded_and_attached_to_the_folders_assistants() -> None:
    spec = FolderSpec("docs", "assistants", (B, A))
    assert run(folder(spec, local("a.md"))) == Plan((Upload("docs", "a.md", V1, 2, (A, B)),))


def test_new_fine_tune_file_is_uploaded_without_attachments() -> None:
    assert run(folder(FT, local("train.jsonl"))) == Plan((Upload("ft", "train.jsonl", V1, 2),))


def test_new_invalid_file_is_rejected() -> None:
    plan = run(folder(DOCS, local("a.md", problem="the file is empty")))
    assert plan == Plan((Reject("docs", "a.md", V1, "the file is empty"),))


@pytest.mark.parametrize(
    ("scanned", "expected"),
    [
        pytest.param(local("a.md", problem="bad"), (), id="same content: said once, nothing"),
        pytest.param(
            local("a.md", problem="bad", stat=2),
            (Restat("docs", "a.md", 2, 2, 2),),
            id="same content, touched: restat only",
        ),
        pytest.param(
            local("a.md", "v2"), (Upload("docs", "a.md", V2, 2, (A,)),), id="fixed: uploaded"
        ),
        pytest.param(
            local("a.md", stat=2),
            (Restat("docs", "a.md", 2, 2, 2),),
            id="same content, valid now (the service refused it): not uploaded again",
        ),
        pytest.param(
            local("a.md", "v2", problem="worse"),
            (Reject("docs", "a.md", V2, "worse"),),
            id="new bad content: rejected again",
        ),
    ],
)
def test_rejected_file(scanned, expected) -> None:
    rejected = entry("a.md", file_id=None, state=State.REJECTED, last_error="bad")
    assert run(folder(DOCS, scanned), [rejected]).actions == expected


# --- same content, synced -----------------------------------------------------------------------


def test_synced_and_attached_needs_nothing() -> None:
    assert synced() == Plan(())


def test_touched_file_is_restatted() -> None:
    assert synced(folders=folder(DOCS, local("a.md", stat=7))) == Plan(
        (Restat("docs", "a.md", 2, 7, 7),)
    )


def test_missing_attachment_is_made() -> None:
    assert synced(attached={}, recorded=[]).actions == (Attach("docs", "a.md", "file-1", A),)


def test_attachment_undone_outside_is_made_again() -> None:
    assert synced(attached={}).actions == (Attach("docs", "a.md", "file-1", A),)


def test_attachment_with_lost_answer_is_claimed_by_attaching_again() -> None:
    # Listed but never recorded: attaching an attached file answers it, and records it.
    assert synced(recorded=[]).actions == (Attach("docs", "a.md", "file-1", A),)


def test_attachment_syncd_made_to_an_assistant_no_longer_configured_is_undone() -> None:
    plan = synced(attached={A: ["file-1"], B: ["file-1"]}, recorded=[("file-1", A), ("file-1", B)])
    assert plan.actions == (Detach("file-1", B, "asst_b is no longer configured for docs"),)


def test_attachment_someone_else_made_is_left_alone() -> None:
    assert synced(attached={A: ["file-1"], X: ["file-1"]}) == Plan(())


def test_remote_file_deleted_outside_is_uploaded_again() -> None:
    # The vanished id is handed on as ``replaces``: retired, then forgotten, never dropped.
    plan = synced(files=[], attached={})
    assert plan.actions == (Upload("docs", "a.md", V1, 2, (A,), replaces="file-1"),)


def test_file_of_a_folder_given_another_purpose_is_uploaded_for_it() -> None:
    ft = FolderSpec("docs", "fine-tune", (), on_delete="delete")
    plan = synced(folders=folder(ft, local("a.md")))
    assert plan.actions == (Upload("docs", "a.md", V1, 2, (), replaces="file-1"),)


# --- new content --------------------------------------------------------------------------------


def test_changed_file_is_replaced() -> None:
    plan = synced(folders=folder(DOCS, local("a.md", "v2", stat=2)))
    assert plan.actions == (Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),)


def test_changed_file_turned_invalid_retires_its_old_version_then_rejects() -> None:
    plan = synced(folders=folder(DOCS, local("a.md", "v2", problem="bad", stat=2)))
    assert plan.actions == (
        Retire("docs", "a.md", "file-1", "delete"),
        Cleanup("file-1", (A,), delete=True),
        Reject("docs", "a.md", V2, "bad"),
    )


# --- absent locally -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("delete", (Retire("docs", "a.md", "file-1", "delete"), Cleanup("file-1", (A,), True))),
        ("detach", (Retire("docs", "a.md", "file-1", "detach"), Cleanup("file-1", (A,), False))),
        ("keep", (Retire("docs", "a.md", "file-1", "keep"),)),
    ],
)
def test_deleted_file_is_retired_as_on_delete_says(mode, expected) -> None:
    spec = FolderSpec("docs", "assistants", (A,), on_delete=mode)
    assert synced(folders=folder(spec)).actions == expected


def test_deleted_file_whose_remote_file_is_gone_too_is_retired_without_a_delete() -> None:
    plan = synced(folders=folder(DOCS), files=[], attached={})
    assert plan.actions == (
        Retire("docs", "a.md", "file-1", "delete"),
        Cleanup("file-1", (), delete=False),
    )


@pytest.mark.parametrize("state", [State.FAILED, State.PENDING, State.REJECTED])
def test_deleted_file_that_never_reached_the_service_is_forgotten(state) -> None:
    plan = run(folder(DOCS), [entry("a.md", file_id=None, state=state, next_attempt_at=NOW + 60)])
    assert plan == Plan((Forget("docs", path="a.md"),))


def test_deleted_file_with_a_failed_update_is_retired_despite_its_backoff() -> None:
    failed = entry("a.md", state=State.FAILED, attempts=2, next_attempt_at=NOW + 60)
    plan = synced(folders=folder(DOCS), entries=[failed])
    assert plan.actions == (
        Retire("docs", "a.md", "file-1", "delete"),
        Cleanup("file-1", (A,), True),
    )


# --- failed uploads -----------------------------------------------------------------------------


def test_failed_upload_waits_for_its_backoff() -> None:
    failed = entry("a.md", file_id=None, state=State.FAILED, next_attempt_at=NOW + 1)
    assert run(folder(DOCS, local("a.md")), [failed]) == Plan((), waiting=1)


def test_failed_upload_is_tried_again_after_its_backoff() -> None:
    failed = entry("a.md", "v1", "file-1", State.FAILED, next_attempt_at=NOW)
    plan = synced(folders=folder(DOCS, local("a.md", "v2", stat=2)), entries=[failed])
    assert plan == Plan((Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),))


def test_failed_update_of_a_file_changed_back_needs_no_upload() -> None:
    # The remote file already holds the content: the row becomes synced again at once.
    failed = entry("a.md", "v1", "file-1", State.FAILED, next_attempt_at=NOW + 60)
    plan = synced(entries=[failed])
    assert plan.actions == (Adopt("docs", "a.md", "file-1", V1, (), replaces="file-1"),)


# --- upload intents (invariant 2) ---------------------------------------------------------------


def uploading(
    path: str = "a.md", content: str = "v2", at: float = NOW - 10, **fields: Any
) -> Entry:
    """A row whose upload of ``content`` was sent at ``at`` and never answered."""
    intent: dict[str, Any] = {
        "intent_sha256": sha(content),
        "intent_size": len(content),
        "intent_at": at,
    }
    return entry(path, state=State.UPLOADING, **(intent | fields))


def test_lost_upload_is_adopted() -> None:
    lost = remote_file("file-2", created_at=int(NOW) - 9)
    plan = synced(
        folders=folder(DOCS, local("a.md", "v2", stat=2)),
        entries=[uploading()],
        files=["file-1", lost],
    )
    assert plan.actions == (
        Adopt("docs", "a.md", "file-2", V2, (A,), replaces="file-1", sent_at=NOW - 10),
    )


@pytest.mark.parametrize(
    "scanned",
    [
        pytest.param(local("a.md", "v3", stat=3), id="changed again"),
        pytest.param(local("a.md", "v2", problem="bad", stat=2), id="now invalid"),
        pytest.param(None, id="deleted"),
    ],
)
def test_lost_upload_of_outdated_content_is_adopted_unattached(scanned) -> None:
    # The next pass replaces or retires it; until then file-1 stays attached.
    lost = remote_file("file-2", created_at=int(NOW) - 9)
    files = [scanned] if scanned else []
    plan = synced(folders=folder(DOCS, *files), entries=[uploading()], files=["file-1", lost])
    assert plan.actions == (
        Adopt("docs", "a.md", "file-2", V2, (), replaces="file-1", sent_at=NOW - 10),
    )


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(remote_file("file-2", "b.md", created_at=int(NOW) - 9), id="other name"),
        pytest.param(remote_file("file-2", size=3, created_at=int(NOW) - 9), id="other size"),
        pytest.param(
            remote_file("file-2", purpose="fine-tune", created_at=int(NOW) - 9),
            id="other purpose",
        ),
        pytest.param(remote_file("file-2", created_at=int(NOW) - 13), id="made before the intent"),
    ],
)
def test_intent_without_its_lost_upload_uploads_again(other) -> None:
    plan = synced(
        folders=folder(DOCS, local("a.md", "v2", stat=2)),
        entries=[uploading()],
        files=["file-1", other],
    )
    assert plan.actions == (Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),)


def test_lost_upload_may_be_stamped_up_to_the_clock_slack_before_the_intent() -> None:
    lost = remote_file("file-2", created_at=int(NOW) - 12)  # intent at NOW - 10
    plan = synced(
        folders=folder(DOCS, local("a.md", "v2", stat=2)),
        entries=[uploading()],
        files=["file-1", lost],
    )
    assert plan.actions == (
        Adopt("docs", "a.md", "file-2", V2, (A,), replaces="file-1", sent_at=NOW - 10),
    )


def test_a_file_owned_by_another_row_is_never_adopted() -> None:
    theirs = remote_file("file-2", created_at=int(NOW) - 9)
    other_row = entry("b/a.md", "v2", "file-2")
    plan = run(
        folder(DOCS, local("a.md", "v2"), local("b/a.md", "v2")),
        [uploading(file_id=None), other_row],
        [theirs],
        {A: ["file-2"]},
        recorded=[("file-2", A)],
    )
    assert plan.actions == (Upload("docs", "a.md", V2, 2, (A,)),)


def test_of_several_matches_the_oldest_is_adopted_and_the_others_left_alone() -> None:
    files = [remote_file(f"file-{n}", created_at=int(NOW) - 10 + n) for n in (3, 2, 4)]
    plan = run(folder(DOCS, local("a.md", "v2")), [uploading(file_id=None)], files)
    assert plan.actions == (Adopt("docs", "a.md", "file-2", V2, (A,), sent_at=NOW - 10),)


def test_intents_sharing_a_name_and_size_take_lost_uploads_in_order() -> None:
    older = uploading("x/a.md", "v2", NOW - 20, file_id=None)
    newer = uploading("y/a.md", "v3", NOW - 10, file_id=None)
    files = [
        remote_file("file-8", created_at=int(NOW) - 9),
        remote_file("file-9", created_at=int(NOW) - 19),
    ]
    plan = run(folder(DOCS, local("x/a.md", "v2"), local("y/a.md", "v3")), [older, newer], files)
    assert plan.actions == (
        Adopt("docs", "x/a.md", "file-9", V2, (A,), sent_at=NOW - 20),
        Adopt("docs", "y/a.md", "file-8", sha("v3"), (A,), sent_at=NOW - 10),
    )


def test_an_unresolved_upload_holds_back_others_with_its_name_and_size() -> None:
    # x/a.md's upload was never answered and nothing matches it yet: y/a.md (same name as
    # sent, same size, same purpose) waits, or the two files could not be told apart.
    held = uploading("x/a.md", "v2", NOW - 10, file_id=None)
    plan = run(folder(DOCS, local("x/a.md", "v2"), local("y/a.md", "v3")), [held])
    assert plan.actions == (Upload("docs", "x/a.md", V2, 2, (A,)),)
    assert plan.waiting == 1
    # Nothing in the manifest says y/a.md waits: the plan names it, for the daemon.
    assert plan.held == {("docs", "y/a.md")}


def test_an_unresolved_upload_holds_back_its_key_across_folders_planned_or_not() -> None:
    other = FolderSpec("other", "assistants", (A,))
    held = uploading("a.md", "v2", NOW - 10, file_id=None, folder="other")
    sent = [Attempt("other", "a.md", "a.md", 2, "assistants", V2, NOW - 10)]
    plan = run(folder(DOCS, local("a.md", "v3")), [held], attempts=sent)  # "other" not planned
    assert plan == Plan((), waiting=1, held=frozenset({("docs", "a.md")}))
    planned = [folder(DOCS, local("a.md", "v3")), folder(other, local("a.md", "v2"))]
    both = run(planned, [held], attempts=sent)
    assert both.actions == (Upload("other", "a.md", V2, 2, (A,)),)
    assert both.waiting == 1


def test_a_resolved_upload_no_longer_holds_its_key() -> None:
    held = uploading("x/a.md", "v2", NOW - 10, file_id=None)
    found = remote_file("file-2", created_at=int(NOW) - 9)
    plan = run(folder(DOCS, local("x/a.md", "v2"), local("y/a.md", "v3")), [held], [found])
    assert plan.actions == (
        Adopt("docs", "x/a.md", "file-2", V2, (A,), sent_at=NOW - 10),
        Upload("docs", "y/a.md", sha("v3"), 2, (A,)),
    )
    other_size = run(folder(DOCS, local("x/a.md", "v2"), local("y/a.md", "v33")), [held])
    assert Upload("docs", "y/a.md", sha("v33"), 3, (A,)) in other_size.actions


def test_an_unanswered_upload_in_its_grace_period_waits_then_is_sent_again() -> None:
    row = uploading(next_attempt_at=NOW + 5)
    inputs = {"folders": folder(DOCS, local("a.md", "v2", stat=2)), "entries": [row]}
    assert synced(**inputs) == Plan((), waiting=1)
    later = synced(**inputs, now=NOW + 6)
    assert later.actions == (Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),)


def test_late_copies_matching_syncds_attempts_are_claimed_and_deleted() -> None:
    # Sent twice (the first answer lost, the second answered): both landed. The row already
    # holds the answered one; the other copy matches the first attempt and is syncd's own.
    first = Attempt("docs", "a.md", "a.md", 2, "assistants", V1, NOW - 30)
    late = remote_file("file-2", created_at=int(NOW) - 29)
    plan = synced(files=["file-1", late], attempts=[first])
    assert plan.actions == (
        Duplicate("docs", "a.md", "file-2", NOW - 30),
        Cleanup("file-2", (), delete=True),
    )
    # Past the horizon, a same-named file is not taken for syncd's any more.
    stale = remote_file("file-2", created_at=int(NOW) - 30 + 700)
    assert synced(files=["file-1", stale], attempts=[first], now=NOW + 700).actions == ()


def test_an_attempt_is_let_go_only_by_a_listing_no_copy_of_it_can_be_missing_from() -> None:
    # Sent and answered with file-1, sent once more without an answer: the row no longer
    # waits for it. Its late copy may land up to the horizon after it; a listing taken
    # a horizon later still would show it.
    first = Attempt("docs", "a.md", "a.md", 2, "assistants", V1, NOW - 30)
    horizon = ATTEMPT_HORIZON
    assert synced(attempts=[first], now=NOW - 30 + 2 * horizon).expired == frozenset()
    late = NOW - 30 + 2 * horizon + 1
    assert synced(attempts=[first], now=late).expired == {("docs", "a.md", NOW - 30)}
    # A copy first listed long after it landed (no pass ran in between) is still syncd's.
    copy = remote_file("file-2", created_at=int(NOW) + 100)
    plan = synced(files=["file-1", copy], attempts=[first], now=NOW + 100_000)
    assert Duplicate("docs", "a.md", "file-2", NOW - 30) in plan.actions
    assert plan.expired == frozenset()
    # An attempt its row still waits for never expires: its copy is adopted whenever it lands.
    waiting = Attempt("docs", "a.md", "a.md", 2, "assistants", V2, NOW - 30)
    plan = synced(
        folders=folder(DOCS, local("a.md", "v2", stat=2)),
        entries=[uploading(at=NOW - 30, next_attempt_at=NOW + 100_000)],
        attempts=[waiting],
        now=NOW + 100_000,
    )
    assert plan.expired == frozenset()


def test_of_two_copies_of_one_intent_the_first_is_adopted_the_other_deleted() -> None:
    attempts = [
        Attempt("docs", "a.md", "a.md", 2, "assistants", V2, NOW - 20),
        Attempt("docs", "a.md", "a.md", 2, "assistants", V2, NOW - 10),
    ]
    copies = [
        remote_file("file-2", created_at=int(NOW) - 19),
        remote_file("file-3", created_at=int(NOW) - 9),
    ]
    plan = synced(
        folders=folder(DOCS, local("a.md", "v2", stat=2)),
        entries=[uploading(at=NOW - 20)],
        files=["file-1", *copies],
        attempts=attempts,
    )
    assert Adopt("docs", "a.md", "file-2", V2, (A,), "file-1", NOW - 20) in plan.actions
    assert Duplicate("docs", "a.md", "file-3", NOW - 10) in plan.actions
    assert Cleanup("file-3", (), delete=True) in plan.actions


def test_intent_for_content_the_remote_file_already_holds_just_syncs_the_row() -> None:
    row = uploading(content="v1")  # e.g. a re-upload after someone deleted the remote file
    plan = synced(entries=[row])
    assert plan.actions == (Adopt("docs", "a.md", "file-1", V1, (), replaces="file-1"),)


# --- retired ids --------------------------------------------------------------------------------


def test_retired_file_is_detached_from_what_syncd_attached_and_deleted() -> None:
    plan = run(
        folder(DOCS),
        files=["file-9"],
        attached={A: ["file-9"], X: ["file-9"]},
        recorded=[("file-9", A)],
        retired=[Retired("file-9", "docs", delete=True)],
    )
    assert plan == Plan((Cleanup("file-9", (A,), delete=True),))


def test_retired_file_gone_from_the_service_is_forgotten() -> None:
    plan = run(folder(DOCS), retired=[Retired("file-9", "docs", delete=True)])
    assert plan == Plan((Forget("docs", file_id="file-9"),))


def test_old_version_stays_until_its_replacement_is_attached() -> None:
    old = Retired("file-1", "docs", delete=True, replaced_by="file-2")
    inputs: dict[str, Any] = {
        "folders": folder(DOCS, local("a.md", "v2")),
        "entries": [entry("a.md", "v2", "file-2")],
        "files": ["file-1", "file-2"],
        "recorded": [("file-1", A)],
        "retired": [old],
    }
    waiting = run(attached={A: ["file-1"]}, **inputs)
    assert waiting.actions == (Attach("docs", "a.md", "file-2", A),)
    done = run(attached={A: ["file-1", "file-2"]}, **inputs)
    assert done.actions == (
        Attach("docs", "a.md", "file-2", A),  # listed but unrecorded: claimed
        Cleanup("file-1", (A,), delete=True),
    )


def test_old_version_whose_replacement_was_itself_replaced_is_cleaned_up() -> None:
    old = Retired("file-1", "docs", delete=True, replaced_by="file-2")
    plan = run(
        folder(DOCS, local("a.md", "v3")),
        [entry("a.md", "v3", "file-3")],
        ["file-1", "file-3"],
        {A: ["file-1", "file-3"]},
        recorded=[("file-1", A), ("file-3", A)],
        retired=[old],
    )
    assert plan == Plan((Cleanup("file-1", (A,), delete=True),))


# --- unavailable folders, folders not planned ---------------------------------------------------


def test_unavailable_folder_is_left_entirely_alone() -> None:
    plan = run(
        folder(DOCS, error="root /srv/docs is missing"),
        [entry("a.md"), entry("b.md", file_id="file-2"), uploading("c.md", file_id=None)],
        ["file-1", "file-9", remote_file("file-3", "c.md", created_at=int(NOW))],
        retired=[Retired("file-9", "docs", delete=True)],
    )
    assert plan == Plan(
        (),
        (
            FolderProblem(
                "docs",
                "unavailable",
                "docs is unavailable (root /srv/docs is missing); nothing in it is changed "
                "until it is back",
            ),
        ),
    )


def test_folders_not_planned_are_left_alone_but_keep_their_files() -> None:
    other = entry("a.md", "v2", "file-2", folder="kb")
    lost_lookalike = remote_file("file-2", created_at=int(NOW) - 9)
    plan = run(
        folder(DOCS, local("a.md", "v2")),
        [uploading(file_id=None), other],
        [lost_lookalike],
        retired=[Retired("file-9", "kb", delete=True)],
    )
    assert plan == Plan((Upload("docs", "a.md", V2, 2, (A,)),))


# --- the delete guard (invariant 3) -------------------------------------------------------------


def managed(n: int) -> list:
    return [entry(f"{i}.md", f"v{i}", f"file-{i}") for i in range(n)]


def test_guard_holds_back_a_mass_removal_and_lets_the_rest_go_on() -> None:
    plan = run(
        folder(DOCS, local("0.md", "v0"), local("new.md", "new")),
        managed(4),
        [f"file-{i}" for i in range(4)],
    )
    assert plan.problems == (
        FolderProblem(
            "docs",
            "delete_guard",
            "would remove 3 of 4 files from docs (limit 50%); run with --force if that is intended",
        ),
    )
    assert plan.actions == (
        Attach("docs", "0.md", "file-0", A),
        Upload("docs", "new.md", sha("new"), 3, (A,)),
    )


def test_guard_lets_force_through() -> None:
    plan = run(
        folder(DOCS, local("0.md", "v0")),
        managed(4),
        ["file-0"],
        {A: ["file-0"]},
        recorded=[("file-0", A)],
        force=True,
    )
    assert plan.problems == ()
    assert [type(a) for a in plan.actions] == [Retire, Cleanup] * 3


@pytest.mark.parametrize(
    ("kept", "removed", "trips"),
    [
        (0, 1, False),  # deleting the only file is an ordinary thing to do
        (2, 2, False),  # half of four: at the limit, not over it
        (1, 2, True),  # two of three
        (0, 2, True),  # both of two
    ],
)
def test_guard_threshold(kept, removed, trips) -> None:
    rows = managed(kept + removed)
    present = [local(f"{i}.md", f"v{i}") for i in range(kept)]
    plan = run(
        folder(DOCS, *present), rows, [r.file_id for r in rows], {A: [r.file_id for r in rows]}
    )
    assert bool(plan.problems) is trips
    assert sum(isinstance(a, Retire) for a in plan.actions) == (0 if trips else removed)


def test_guard_does_not_count_renames_or_kept_files() -> None:
    moved = [local(f"moved/{i}.md", f"v{i}") for i in range(3)]
    plan = run(folder(DOCS, *moved), managed(4), [f"file-{i}" for i in range(4)])
    assert plan.problems == ()
    keep = FolderSpec("docs", "assistants", (A,), on_delete="keep")
    assert run(folder(keep), managed(4), [f"file-{i}" for i in range(4)]).problems == ()


def test_guard_counts_files_rejected_after_a_change() -> None:
    bad = [local(f"{i}.md", f"bad{i}", problem="bad", stat=2) for i in range(3)]
    plan = run(folder(DOCS, *bad), managed(3), [f"file-{i}" for i in range(3)])
    assert [p.kind for p in plan.problems] == ["delete_guard"]
    assert plan.actions == ()  # the Rejects wait with the Retires that must precede them


# --- the assistant file limit -------------------------------------------------------------------


def full_assistant(extra: list[str]) -> dict[str, list[str]]:
    theirs = [f"theirs-{i}" for i in range(ASSISTANT_FILE_LIMIT - 1 - len(extra))]
    return {A: ["file-1", *extra, *theirs]}


def test_replacement_at_a_full_assistant_detaches_the_old_version_first() -> None:
    plan = synced(folders=folder(DOCS, local("a.md", "v2", stat=2)), attached=full_assistant([]))
    reason = "asst_a is at its 20-file limit: making room for the new version"
    assert plan.actions == (
        Detach("file-1", A, reason),
        Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),
    )
    assert [type(a) for stage in stages(plan.actions) for a in stage[:1]] == [Detach, Upload]


def test_replacement_with_room_keeps_the_old_version_until_the_new_one_is_attached() -> None:
    plan = synced(folders=folder(DOCS, local("a.md", "v2", stat=2)))
    assert plan.actions == (Upload("docs", "a.md", V2, 2, (A,), replaces="file-1"),)


def test_new_file_at_a_full_assistant_is_uploaded_but_not_attached() -> None:
    plan = synced(
        folders=folder(DOCS, local("a.md"), local("new.md", "new")),
        attached={A: ["file-1", *(f"theirs-{i}" for i in range(19))]},
    )
    assert plan == Plan(
        (Upload("docs", "new.md", sha("new"), 3, ()),),
        (
            FolderProblem(
                "docs",
                "assistant_full",
                "assistant asst_a is at its 20-file limit; [docs] new.md is uploaded but not "
                "attached to it",
                assistant=A,
                path="new.md",
            ),
        ),
    )


def test_at_a_full_assistant_a_new_version_takes_its_old_slot_before_a_new_file() -> None:
    plan = run(
        folder(DOCS, local("z.md", "v2", stat=2), local("new.md", "new")),
        [entry("z.md")],
        ["file-1"],
        full_assistant([]),
        recorded=[("file-1", A)],
    )
    reason = "asst_a is at its 20-file limit: making room for the new version"
    assert plan.actions == (
        Detach("file-1", A, reason),
        Upload("docs", "new.md", sha("new"), 3, ()),
        Upload("docs", "z.md", V2, 2, (A,), replaces="file-1"),
    )
    assert [p.kind for p in plan.problems] == ["assistant_full"]


def test_removal_that_makes_room_runs_before_the_additions() -> None:
    spec = FolderSpec("docs", "assistants", (A,), on_delete="delete")
    plan = run(
        folder(spec, local("new.md", "new")),
        [entry("a.md")],
        ["file-1"],
        {A: ["file-1", *(f"theirs-{i}" for i in range(19))]},
        recorded=[("file-1", A)],
    )
    assert plan == Plan(
        (
            Retire("docs", "a.md", "file-1", "delete"),
            Cleanup("file-1", (A,), True),
            Upload("docs", "new.md", sha("new"), 3, (A,)),
        )
    )


def test_removals_wait_for_the_additions_when_there_is_room() -> None:
    plan = run(
        folder(DOCS, local("new.md", "new")),
        [entry("a.md")],
        ["file-1"],
        {A: ["file-1"]},
        recorded=[("file-1", A)],
    )
    assert plan.actions == (
        Upload("docs", "new.md", sha("new"), 3, (A,)),
        Retire("docs", "a.md", "file-1", "delete"),
        Cleanup("file-1", (A,), True),
    )
    assert [len(s) for s in stages(plan.actions)] == [1, 2]


def test_old_version_waiting_at_a_full_assistant_is_detached_to_make_room() -> None:
    old = Retired("file-1", "docs", delete=True, replaced_by="file-2")
    plan = run(
        folder(DOCS, local("a.md", "v2")),
        [entry("a.md", "v2", "file-2")],
        ["file-1", "file-2"],
        full_assistant([]),
        recorded=[("file-1", A)],
        retired=[old],
    )
    reason = "asst_a is at its 20-file limit: making room for the new version"
    assert plan == Plan((Detach("file-1", A, reason), Attach("docs", "a.md", "file-2", A)))


# --- order --------------------------------------------------------------------------------------


def test_actions_are_ordered_by_stage_then_folder_then_path() -> None:
    kb = FolderSpec("kb", "assistants", (B,))
    plan = run(
        [folder(kb, local("z.md"), local("b.md")), folder(DOCS, local("y.md"), local("c.md"))],
    )
    assert [where(a) for a in plan.actions] == [
        ("docs", "c.md"),
        ("docs", "y.md"),
        ("kb", "b.md"),
        ("kb", "z.md"),
    ]


def test_stages_split_runs_of_removals_additions_and_records() -> None:
    actions = (
        Forget("docs", path="x"),
        Detach("f", A, "r"),
        Cleanup("g", (), True),
        Upload("docs", "a", "s", 1),
        Attach("docs", "b", "f", A),
        Retire("docs", "c", "h", "delete"),
        Reject("docs", "d", "s", "bad"),
    )
    assert stages(actions) == [
        actions[:1],
        actions[1:3],
        actions[3:5],
        actions[5:6],
        actions[6:],
    ]
