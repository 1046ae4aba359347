"""``syncd search STORE QUERY``: what a vector store finds for a query, with each hit's local
path — so a user can see that a dropped file is findable."""

from __future__ import annotations

import re
from pathlib import Path

import click

from syncd.api import APIError, ComparisonFilter, CompoundFilter, SearchResult
from syncd.cli.output import (
    config_option,
    fail,
    json_option,
    load,
    open_client,
    print_json,
    print_table,
    service_failure,
)
from syncd.engine.model import AttributeValue
from syncd.engine.report import ExitStatus

__all__ = ["SNIPPET", "parse_filter", "search_command", "snippet"]

#: Characters of a chunk shown as its snippet.
SNIPPET = 160

EPILOG = """\b
Exit status: 0 found something; 1 nothing found, or the service refused the search (unknown
store); 2 usage or configuration error; 3 service unreachable or key refused.

\b
--json prints the hits, best first:
[{"file_id": str, "path": "folder/path" | null, "filename": str, "score": float,
  "attributes": {...}, "text": str}, ...]"""


def parse_filter(text: str) -> ComparisonFilter:
    """``key=value`` as an equality filter on an attribute. ``true``/``false`` and numbers are
    compared as such (``syncd_mtime`` is a number); anything else as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--filter")
    value: AttributeValue = raw
    if raw in ("true", "false"):
        value = raw == "true"
    elif re.fullmatch(r"-?\d+", raw):
        value = int(raw)
    elif re.fullmatch(r"-?\d+\.\d*", raw):
        value = float(raw)
    return ComparisonFilter(type="eq", key=key.strip(), value=value)


def snippet(hit: SearchResult, width: int = SNIPPET) -> str:
    """The hit's best chunk on one line, cut at ``width`` characters."""
    text = " ".join((hit.content[0].text if hit.content else "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _local_path(hit: SearchResult) -> str | None:
    attributes = hit.attributes or {}
    path = attributes.get("syncd_path")
    if path is None:
        return None
    folder = attributes.get("syncd_folder")
    return f"{folder}/{path}" if folder else str(path)


@click.command("search", epilog=EPILOG)
@click.argument("store_id")
@click.argument("query")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only files whose attribute KEY equals VALUE (repeat: all must hold), e.g. "
    "syncd_folder=docs.",
)
@click.option(
    "--max",
    "max_results",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="How many files to show.",
)
@config_option
@json_option
def search_command(
    store_id: str,
    query: str,
    filters: tuple[str, ...],
    max_results: int,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Search the vector store STORE_ID for QUERY: the best chunks, with the local path syncd
    wrote on each file, its score and a snippet."""
    parsed = [parse_filter(f) for f in filters]
    condition: ComparisonFilter | CompoundFilter | None = None
    if len(parsed) == 1:
        condition = parsed[0]
    elif parsed:
        condition = CompoundFilter(type="and", filters=list(parsed))
    with open_client(load(config_path)) as client:
        try:
            hits = client.search_vector_store(
                store_id, query, filters=condition, max_num_results=max_results
            ).data
        except APIError as e:
            service_failure(e, f"searching {store_id}")
    if as_json:
        print_json(
            [
                {
                    "file_id": h.file_id,
                    "path": _local_path(h),
                    "filename": h.filename,
                    "score": h.score,
                    "attributes": h.attributes or {},
                    "text": h.content[0].text if h.content else "",
                }
                for h in hits
            ]
        )
    else:
        print_table(
            ["score", "path", "snippet"],
            [[f"{h.score:.2f}", _local_path(h) or h.filename, snippet(h)] for h in hits],
        )
    if not hits:
        fail(f"nothing in {store_id} matches {query!r}", ExitStatus.DIFFERS)
