"""``sent_filename``: the name the service stores, checked against what it really lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.api import Client, sent_filename


@pytest.mark.parametrize(
    "name",
    ['quote".md', "cr\r.md", "lf\n.md", "tab\t.md", "back\\slash.md", "plain é.md", "esc\x1b.md"],
)
def test_the_service_lists_an_upload_under_its_sent_filename(
    name: str, tmp_path: Path, emulator, api_key: str
) -> None:
    source = tmp_path / "upload.md"
    source.write_text("content")
    with Client(emulator.base_url, api_key) as client:
        uploaded = client.create_file(source, "assistants", filename=name)
        [listed] = client.list_files()
    assert uploaded.filename == listed.filename == sent_filename(name)


def test_sent_filename_leaves_ordinary_names_alone() -> None:
    assert sent_filename("guides/setup.md".rpartition("/")[2]) == "setup.md"
    assert sent_filename('a"b\r\n\t.md') == "a%22b%0D%0A%09.md"
