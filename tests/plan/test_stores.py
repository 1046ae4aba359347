"""The planner's rows for vector stores: the same table as for assistants (``test_table``), and
what only stores have — ingestion, attributes, renames kept as the same file, ownership by
instance id, and the Assistants API switched off."""

from __future__ import annotations

from syncd.engine.model import (
    Adopt,
    Attach,
    Cleanup,
    Detach,
    Entry,
    FolderProblem,
    FolderSpec,
    Move,
    Plan,
    Reject,
    Retag,
    Retire,
    Retired,
    State,
    StoreFile,
    Upload,
    store_attributes,
)

from .builders import NOW, A, entry, folder, local, remote_file, run
from .sim import INSTANCE, sha

V1, V2 = sha("v1"), sha("v2")
S = "vs_1"
KB = FolderSpec("kb", "assistants", vector_stores=(S,), ingestion_timeout=600)
BOTH = FolderSpec("kb", "assistants", (A,), vector_stores=(S,))


def kb_entry(
    path: str = "a.md", content: str = "v1", file_id: str | None = "file-1", **kw: object
) -> Entry:
    return entry(path, content, file_id, folder="kb", **kw)  # type: ignore[arg-type]


def attrs(path: str = "a.md", content: str = "v1", spec: FolderSpec = KB) -> dict:
    return store_attributes(spec, INSTANCE, path, sha(content), 1)


def ingested(status: str = "completed", created_at: float = NOW - 10, **kw: object) -> StoreFile:
    values: dict = {"attributes": attrs(), **kw}
    return StoreFile(status, int(created_at), **values)  # type: ignore[arg-type]


def synced(found: StoreFile | None = None, **changes: object) -> Plan:
    """kb/a.md "v1" synced as file-1 and in S as ``found`` (completed by default)."""
    inputs: dict[str, object] = {
        "folders": folder(KB, local("a.md")),
        "entries": [kb_entry()],
        "files": ["file-1"],
        "recorded": [("file-1", S)],
        "stores": {S: {"file-1": found or ingested()}},
    }
    inputs.update(changes)
    return run(**inputs)  # type: ignore[arg-type]


def test_a_new_file_is_uploaded_for_every_target() -> None:
    plan = run(folder(BOTH, local("a.md")), stores={S: {}})
    assert plan == Plan((Upload("kb", "a.md", V1, 2, (A, S)),))


def test_a_completed_store_file_with_its_attributes_needs_nothing() -> None:
    assert synced() == Plan(())


def test_a_store_file_missing_or_cancelled_is_attached_again() -> None:
    again = Plan((Attach("kb", "a.md", "file-1", S),))
    assert synced(stores={S: {}}) == again
    assert synced(ingested("cancelled")) == again


def test_a_file_listed_but_not_recorded_is_claimed() -> None:
    assert synced(recorded=[]) == Plan((Attach("kb", "a.md", "file-1", S),))


def test_attributes_that_differ_are_written_again_without_ingesting() -> None:
    changed = ingested(attributes={**attrs(), "syncd_path": "elsewhere.md"})
    wanted = tuple(sorted(attrs().items()))
    assert synced(changed) == Plan((Retag("kb", "a.md", "file-1", S, wanted),))


def test_failed_ingestion_rejects_the_file_and_deletes_its_upload() -> None:
    failed = ingested("failed", last_error="The file could not be parsed.")
    assert synced(failed).actions == (
        Retire("kb", "a.md", "file-1", "delete"),
        Cleanup("file-1", (S,), True),
        Reject("kb", "a.md", V1, f"{S} could not ingest it: The file could not be parsed."),
    )


def test_a_rejected_file_is_not_uploaded_again_until_it_changes() -> None:
    rejected = kb_entry(file_id=None, state=State.REJECTED, last_error="could not ingest")
    touched = local("a.md", stat=2)  # rehashed after a touch: the same content
    plan = run(folder(KB, touched), [rejected], stores={S: {}})
    assert not [a for a in plan.actions if isinstance(a, Upload)]
    edited = run(folder(KB, local("a.md", "v2", stat=2)), [rejected], stores={S: {}})
    assert edited.actions == (Upload("kb", "a.md", V2, 2, (S,)),)


def test_a_file_still_ingesting_is_waited_for_then_reported_never_uploaded_again() -> None:
    assert synced(ingested("in_progress")) == Plan(())
    slow = synced(ingested("in_progress", created_at=NOW - 601))
    assert slow.actions == ()
    assert [p.kind for p in slow.problems] == ["ingestion_slow"]
    assert "does not upload it again" in slow.problems[0].message


def test_a_rename_moves_the_row_and_keeps_the_file() -> None:
    plan = synced(folders=folder(KB, local("b.md", stat=2)))
    assert plan == Plan((Move("kb", "a.md", "b.md", "file-1", 2, 2, 2, 0),))


def test_a_rename_where_only_assistants_are_is_uploaded_again() -> None:
    docs = FolderSpec("docs", "assistants", (A,))
    plan = run(
        folder(docs, local("b.md")),
        [entry("a.md")],
        ["file-1"],
        {A: ["file-1"]},
        recorded=[("file-1", A)],
    )
    assert [type(a) for a in plan.actions] == [Upload, Retire, Cleanup]


def test_an_old_version_stays_in_the_store_until_its_replacement_completed() -> None:
    retired = Retired("file-0", "kb", True, replaced_by="file-1")
    old = ingested(attributes=attrs())
    waiting = synced(
        ingested("in_progress"),
        files=["file-0", "file-1"],
        retired=[retired],
        recorded=[("file-1", S), ("file-0", S)],
        stores={S: {"file-0": old, "file-1": ingested("in_progress")}},
    )
    assert waiting == Plan(())
    done = synced(
        files=["file-0", "file-1"],
        retired=[retired],
        recorded=[("file-1", S), ("file-0", S)],
        stores={S: {"file-0": old, "file-1": ingested()}},
    )
    assert done == Plan((Cleanup("file-0", (S,), True),))


def test_another_instances_store_file_is_never_adopted_for_a_lost_upload() -> None:
    intent = kb_entry(
        file_id=None,
        state=State.UPLOADING,
        intent_sha256=V1,
        intent_size=2,
        intent_at=NOW - 5,
    )
    theirs = remote_file("file-9", created_at=int(NOW))
    foreign = ingested(attributes={"syncd_instance": "syncd-other"})
    plan = run(folder(KB, local("a.md")), [intent], [theirs], stores={S: {"file-9": foreign}})
    assert plan.actions == (Upload("kb", "a.md", V1, 2, (S,)),)
    mine = run(folder(KB, local("a.md")), [intent], [theirs], stores={S: {}})
    adopt = mine.actions[0]
    assert isinstance(adopt, Adopt) and adopt.file_id == "file-9"


def test_a_store_no_longer_configured_is_detached_and_counted_by_the_guard() -> None:
    docs = FolderSpec("kb", "assistants")
    one = synced(folders=folder(docs, local("a.md")))
    assert one.actions == (Detach("file-1", S, f"{S} is no longer configured for kb"),)
    paths = ["a.md", "b.md", "c.md"]
    many = run(
        folder(docs, *(local(p) for p in paths)),
        [kb_entry(p, file_id=f"file-{p}") for p in paths],
        [f"file-{p}" for p in paths],
        recorded=[(f"file-{p}", S) for p in paths],
        stores={S: {f"file-{p}": ingested() for p in paths}},
    )
    assert many.actions == ()
    assert [p.kind for p in many.problems] == ["delete_guard"]


def test_retired_assistants_are_skipped_and_the_stores_go_on() -> None:
    why = "the service no longer offers the Assistants API"
    plan = run(folder(BOTH, local("a.md")), stores={S: {}}, unavailable={A: why})
    assert plan.actions == (Upload("kb", "a.md", V1, 2, (S,)),)
    assert plan.problems == (
        FolderProblem("kb", "target_unavailable", f"kb: {A} is skipped: {why}"),
    )
    # What syncd attached there before is not detached either.
    kept = run(
        folder(BOTH, local("a.md")),
        [kb_entry()],
        ["file-1"],
        recorded=[("file-1", A), ("file-1", S)],
        stores={S: {"file-1": ingested(attributes=attrs(spec=BOTH))}},
        unavailable={A: why},
    )
    assert kept.actions == ()
