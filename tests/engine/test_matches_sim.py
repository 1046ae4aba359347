"""The real engine against the reference model: the same local changes, applied to the in-memory
world of ``tests/plan/sim.py`` and to real folders synced to the emulator over HTTP, must leave
the same manifest (paths, states, hashes) and the same service (file names and contents, and
which contents each assistant holds) after every pass."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from syncd.engine.model import FolderSpec
from tests.plan.sim import Executor as SimExecutor
from tests.plan.sim import World

from .conftest import Workspace

NAMES = ["a.md", "b.md", "c.md", "sub/a.md", "sub/d.md"]
CONTENTS = ["alpha", "beta", "gamma", "", "delta delta"]  # "" is rejected by both


def sim_pass(world: World) -> None:
    """A pass as the engine runs one: rounds until nothing is left to do."""
    for _ in range(4):
        decided = world.plan()
        if not decided.actions:
            return
        SimExecutor(world).run(decided.actions)


def sim_state(world: World) -> tuple[dict, Counter, dict]:
    contents = {f.id: f.content for f in world.service.files.values()}
    entries = {k: (e.state.value, e.sha256) for k, e in world.records.entries.items()}
    files = Counter((f.filename, f.content) for f in world.service.files.values())
    attached = {
        a: Counter(contents[i] for i in ids) for a, ids in world.service.attachments.items()
    }
    return entries, files, attached


def real_state(ws: Workspace, assistants: list[str]) -> tuple[dict, Counter, dict]:
    store = ws.emulator.store
    assert store is not None  # the emulator is running
    remote = ws.remote()
    contents = {i: store.blob_path(i).read_text() for i in remote}
    entries = {k: (e.state.value, e.sha256) for k, e in ws.manifest.snapshot().entries.items()}
    files = Counter((f.filename, contents[i]) for i, f in remote.items())
    attached = {a: Counter(contents[i] for i in ws.attached(a)) for a in assistants}
    return entries, files, attached


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_changes_end_the_same_way(ws: Workspace, seed: int) -> None:
    rng = random.Random(seed)
    assistants = [ws.assistant(), ws.assistant()]
    specs = [
        FolderSpec("docs", "assistants", (assistants[0],), "delete"),
        FolderSpec("notes", "assistants", tuple(assistants), "detach"),
    ]
    roots = {
        s.name: ws.add_folder(s.name, assistants=list(s.assistants), on_delete=s.on_delete)
        for s in specs
    }
    world = World(specs, tuple(assistants), limit=20)

    for step in range(15):
        for _ in range(rng.randint(1, 4)):
            folder = rng.choice(specs).name
            present = sorted(world.local[folder])
            op = rng.choice(["write", "write", "delete", "rename"]) if present else "write"
            if op == "write":
                path, content = rng.choice(NAMES), rng.choice(CONTENTS)
                world.write(folder, path, content)
                (roots[folder] / path).parent.mkdir(exist_ok=True)
                (roots[folder] / path).write_text(content)
            elif op == "delete":
                path = rng.choice(present)
                world.delete(folder, path)
                (roots[folder] / path).unlink()
            else:
                src = rng.choice(present)
                dst = rng.choice([n for n in NAMES if n not in world.local[folder]] or [src])
                if dst != src:
                    world.rename(folder, src, dst)
                    (roots[folder] / dst).parent.mkdir(exist_ok=True)
                    (roots[folder] / src).rename(roots[folder] / dst)
        sim_pass(world)
        ws.run()
        assert real_state(ws, assistants) == sim_state(world), f"step {step}"
    assert world.service.violations == []


def test_hashes_agree() -> None:
    """The model's content hash is the scan's: SHA-256 of the UTF-8 bytes."""
    from tests.plan.sim import sha

    assert sha("alpha") == hashlib.sha256(b"alpha").hexdigest()
