"""syncd's client for the OpenAI API: Files, Uploads and Vector stores (today's service), and
Assistant files and Message files (the Assistants v1 contract).

>>> from syncd.api import Client
>>> with Client() as client:  # OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID
...     for f in client.list_files(purpose="assistants"):
...         print(f.id, f.filename)
"""

from syncd.api.client import (
    DEFAULT_BASE_URL,
    FILE_ROWS,
    Client,
    FilePage,
    RequestRecord,
    is_loopback,
)
from syncd.api.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientConfigError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
    UploadOutcomeUnknown,
)
from syncd.api.models import (
    Assistant,
    AssistantFile,
    Attributes,
    BatchFile,
    ChunkingStrategy,
    ComparisonFilter,
    CompoundFilter,
    DeletedAssistantFile,
    DeletedFile,
    FileBatch,
    FileContentPage,
    FileCounts,
    FileError,
    FileObject,
    Message,
    MessageFile,
    Page,
    SearchResult,
    SearchResults,
    TextContent,
    Thread,
    Upload,
    UploadPart,
    VectorStore,
    VectorStoreFile,
)
from syncd.api.names import sent_filename
from syncd.api.pacing import Pacer
from syncd.api.retry import RetryPolicy, is_retryable
from syncd.api.uploads import PartSettings

__all__ = [
    "DEFAULT_BASE_URL",
    "FILE_ROWS",
    "APIError",
    "Assistant",
    "AssistantFile",
    "Attributes",
    "AuthenticationError",
    "BadRequestError",
    "BatchFile",
    "ChunkingStrategy",
    "Client",
    "ClientConfigError",
    "ComparisonFilter",
    "CompoundFilter",
    "DeletedAssistantFile",
    "DeletedFile",
    "FileBatch",
    "FileContentPage",
    "FileCounts",
    "FileError",
    "FileObject",
    "FilePage",
    "Message",
    "MessageFile",
    "NotFoundError",
    "Pacer",
    "Page",
    "PartSettings",
    "RateLimitError",
    "RequestRecord",
    "RetryPolicy",
    "SearchResult",
    "SearchResults",
    "ServerError",
    "TextContent",
    "Thread",
    "TimeoutError",
    "TransportError",
    "Upload",
    "UploadOutcomeUnknown",
    "UploadPart",
    "VectorStore",
    "VectorStoreFile",
    "is_loopback",
    "is_retryable",
    "sent_filename",
]
