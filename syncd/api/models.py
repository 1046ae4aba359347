"""Typed models of the service's objects (``spec/openai-files.yaml`` and
``spec/openai-vector-stores.yaml``).

The models accept fields the spec does not list (the live service adds some over time) and keep
them in ``model_extra``, so a new field never breaks a sync. Enumerations the service may extend
(``purpose``, ``status``) are plain strings for the same reason; only ``object`` is checked,
because a wrong ``object`` means we parsed the wrong response.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field

#: A vector-store file's attribute value (``VectorStoreFileAttributes``).
AttributeValue: TypeAlias = str | int | float | bool
Attributes: TypeAlias = dict[str, AttributeValue]


class _Object(BaseModel):
    # defer_build: a model's validator is made when it first validates, not at import — most
    # commands use a few of these models, and building them all cost every command ~30 ms.
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


class FileObject(_Object):
    """A document uploaded to the service (``OpenAIFile``)."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    #: When the service deletes it (``expires_after`` on upload); ``None``: never.
    expires_at: int | None = None
    # Deprecated by the service but still sent; absent on some newer responses.
    status: str | None = None
    status_details: str | None = None


class DeletedFile(_Object):
    """The answer to ``deleteFile``."""

    id: str
    object: Literal["file"] = "file"
    deleted: bool


class AssistantFile(_Object):
    """A file attached to an assistant (``AssistantFileObject``); ``id`` is the file's id."""

    id: str
    object: Literal["assistant.file"] = "assistant.file"
    created_at: int
    assistant_id: str


class DeletedAssistantFile(_Object):
    """The answer to ``deleteAssistantFile``."""

    id: str
    object: Literal["assistant.file.deleted"] = "assistant.file.deleted"
    deleted: bool


class MessageFile(_Object):
    """A file attached to a message (``MessageFileObject``); ``id`` is the file's id."""

    id: str
    object: Literal["thread.message.file"] = "thread.message.file"
    created_at: int
    message_id: str


class Assistant(_Object):
    """The parts of an assistant syncd reads: its id, name and attached file ids."""

    id: str
    object: Literal["assistant"] = "assistant"
    created_at: int
    name: str | None = None
    model: str
    file_ids: list[str] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)


class Thread(_Object):
    """A conversation thread; only used to make message files in tests and demos."""

    id: str
    object: Literal["thread"] = "thread"
    created_at: int


class Message(_Object):
    """A message in a thread; only used to make message files in tests and demos."""

    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    role: str
    file_ids: list[str] = Field(default_factory=list)


# --- uploads (``/uploads``) -------------------------------------------------------------------


class Upload(_Object):
    """A multipart upload (``Upload``); ``file`` is set once it is ``completed``."""

    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: str  # pending | completed | cancelled | expired
    file: FileObject | None = None


class UploadPart(_Object):
    """One acknowledged part of an upload (``UploadPart``)."""

    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str


# --- vector stores ----------------------------------------------------------------------------


class StaticChunking(_Object):
    """Fixed-size chunks: ``max_chunk_size_tokens`` 100–4096, overlap at most half of it."""

    max_chunk_size_tokens: int = 800
    chunk_overlap_tokens: int = 400


class ChunkingStrategy(_Object):
    """How a file is cut into chunks: ``auto``, ``static`` (with :attr:`static`), or ``other``
    (the service's answer for files indexed before strategies existed)."""

    type: str
    static: StaticChunking | None = None

    @classmethod
    def auto(cls) -> ChunkingStrategy:
        """The service's default strategy."""
        return cls(type="auto")

    @classmethod
    def fixed(
        cls, max_chunk_size_tokens: int = 800, chunk_overlap_tokens: int = 400
    ) -> ChunkingStrategy:
        """A ``static`` strategy; the sizes are checked here so a bad setting is named before
        any request (``ValueError``)."""
        if not 100 <= max_chunk_size_tokens <= 4096:
            raise ValueError(
                f"max_chunk_size_tokens must be between 100 and 4096, not {max_chunk_size_tokens}"
            )
        if not 0 <= chunk_overlap_tokens <= max_chunk_size_tokens // 2:
            raise ValueError(
                f"chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens "
                f"({max_chunk_size_tokens // 2}), not {chunk_overlap_tokens}"
            )
        return cls(
            type="static",
            static=StaticChunking(
                max_chunk_size_tokens=max_chunk_size_tokens,
                chunk_overlap_tokens=chunk_overlap_tokens,
            ),
        )


class FileCounts(_Object):
    """How many files of a store or batch are in each state."""

    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class StoreExpiry(_Object):
    """A store's ``expires_after``: ``days`` (1–365) after its ``last_active_at``."""

    anchor: Literal["last_active_at"] = "last_active_at"
    days: int


class VectorStore(_Object):
    """A vector store (``VectorStoreObject``): what the ``file_search`` tool reads."""

    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str | None = None
    usage_bytes: int = 0
    file_counts: FileCounts = Field(default_factory=FileCounts)
    status: str  # expired | in_progress | completed
    expires_after: StoreExpiry | None = None
    expires_at: int | None = None
    last_active_at: int | None = None
    metadata: dict[str, str] | None = None


class DeletedVectorStore(_Object):
    """The answer to ``deleteVectorStore``."""

    id: str
    object: Literal["vector_store.deleted"] = "vector_store.deleted"
    deleted: bool


class FileError(_Object):
    """Why ingesting a file failed: ``code`` ``server_error | unsupported_file | invalid_file``."""

    code: str
    message: str


class VectorStoreFile(_Object):
    """A file attached to a store (``VectorStoreFileObject``); ``id`` is the File's id.

    ``status`` is ``in_progress`` until ingestion ends ``completed``, ``failed`` (see
    ``last_error``) or ``cancelled``.
    """

    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int = 0
    created_at: int
    vector_store_id: str
    status: str
    last_error: FileError | None = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class DeletedVectorStoreFile(_Object):
    """The answer to ``deleteVectorStoreFile`` (the File itself stays)."""

    id: str
    object: Literal["vector_store.file.deleted"] = "vector_store.file.deleted"
    deleted: bool


class FileBatch(_Object):
    """A batch of files attached together (``VectorStoreFileBatchObject``)."""

    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: str  # in_progress | completed | cancelled | failed
    file_counts: FileCounts = Field(default_factory=FileCounts)


class BatchFile(BaseModel):
    """One item of a batch sent with ``files``: a File id with its own attributes and chunking."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class TextContent(_Object):
    """A piece of text: of a file's parsed content, or of a search hit."""

    type: str = "text"
    text: str


class FileContentPage(_Object):
    """The parsed text of a vector-store file (``VectorStoreFileContentResponse``)."""

    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[TextContent]
    has_more: bool = False
    next_page: str | None = None


class ComparisonFilter(BaseModel):
    """``key`` compared with ``value`` by ``type``: eq, ne, gt, gte, lt, lte, in, nin."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"] = "eq"
    key: str
    value: AttributeValue | list[str | int | float]


class CompoundFilter(BaseModel):
    """Filters combined with ``and`` or ``or``."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    type: Literal["and", "or"]
    filters: list[Annotated[ComparisonFilter | CompoundFilter, Field(union_mode="left_to_right")]]


class SearchResult(_Object):
    """One file found by a search, with its matching chunks."""

    file_id: str
    filename: str
    score: float
    attributes: Attributes | None = None
    content: list[TextContent] = Field(default_factory=list)


class SearchResults(_Object):
    """The answer to ``searchVectorStore`` (``VectorStoreSearchResultsPage``)."""

    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str] = Field(default_factory=list)
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


ItemT = TypeVar("ItemT", bound=_Object)


class Page(BaseModel, Generic[ItemT]):
    """One page of a cursor-paginated list (``List*Response``).

    ``first_id``/``last_id``/``has_more`` are optional here because the Assistants v1 contract's
    ``listFiles`` answers without them (today's service sends them on every list).
    """

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    object: Literal["list"] = "list"
    data: list[ItemT]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


__all__ = [
    "Assistant",
    "AssistantFile",
    "AttributeValue",
    "Attributes",
    "BatchFile",
    "ChunkingStrategy",
    "ComparisonFilter",
    "CompoundFilter",
    "DeletedAssistantFile",
    "DeletedFile",
    "DeletedVectorStore",
    "DeletedVectorStoreFile",
    "FileBatch",
    "FileContentPage",
    "FileCounts",
    "FileError",
    "FileObject",
    "Message",
    "MessageFile",
    "Page",
    "SearchResult",
    "SearchResults",
    "StaticChunking",
    "StoreExpiry",
    "TextContent",
    "Thread",
    "Upload",
    "UploadPart",
    "VectorStore",
    "VectorStoreFile",
]
