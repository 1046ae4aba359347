"""Identifiers in the service's formats — UNIT tests of syncd.emulator.ids."""

from __future__ import annotations

import os
import re
import string
from collections import Counter

from syncd.emulator import ids


def test_ids_have_the_service_prefixes_and_lengths() -> None:
    assert re.fullmatch(r"file-[A-Za-z0-9]{24}", ids.file_id())
    assert re.fullmatch(r"vs_[A-Za-z0-9]{24}", ids.vector_store_id())
    assert re.fullmatch(r"req_[0-9a-f]{32}", ids.request_id())


def test_every_letter_and_digit_is_drawn_about_equally_often() -> None:
    drawn = Counter("".join(ids.file_id()[5:] for _ in range(5000)))
    assert set(drawn) == set(string.ascii_letters + string.digits)
    # 120,000 characters, ~1,935 each: a character favoured or starved by a fifth is seen.
    expected = 5000 * 24 / 62
    assert all(0.8 * expected < n < 1.2 * expected for n in drawn.values())


def test_ids_drawn_across_many_pools_never_repeat() -> None:
    drawn = [ids.file_id() for _ in range(20_000)] + [ids.request_id() for _ in range(20_000)]
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    ids.file_id()  # the pool holds bytes the child would otherwise reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next id and leave at once
        os.write(write, ids.file_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    assert re.fullmatch(r"file-[A-Za-z0-9]{24}", child)
    assert child != ids.file_id()
