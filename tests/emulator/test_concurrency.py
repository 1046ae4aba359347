"""Requests served at the same time see each other's changes whole."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2


def test_concurrent_uploads_and_downloads(http: httpx2.Client) -> None:
    contents = [(f'{{"n": {i}, "pad": "' + "x" * 200_000 + '"}\n').encode() for i in range(16)]

    def upload(i: int) -> str:
        response = http.post(
            "files", files={"file": (f"{i}.jsonl", contents[i])}, data={"purpose": "fine-tune"}
        )
        assert response.status_code == 200, response.text
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(upload, range(16)))
        assert len(set(ids)) == 16
        downloads = list(
            pool.map(lambda file_id: http.get(f"files/{file_id}/content").content, ids)
        )
    assert downloads == contents
    assert sorted(f["id"] for f in http.get("files").json()["data"]) == sorted(ids)


def test_concurrent_deletes_and_listings(http: httpx2.Client, upload) -> None:
    ids = [upload(content=f"{i}".encode())["id"] for i in range(20)]

    def delete(file_id: str) -> int:
        http.get("files")
        return http.delete(f"files/{file_id}").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(delete, ids + ids[:5])).count(200) == 20
    assert http.get("files").json()["data"] == []
