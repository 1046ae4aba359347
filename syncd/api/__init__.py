"""syncd's client for the OpenAI Files API (Files, Assistant files, Message files; Assistants v1).

>>> from syncd.api import Client
>>> with Client() as client:  # OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID
...     for f in client.list_files(purpose="assistants"):
...         print(f.id, f.filename)
"""

from syncd.api.client import DEFAULT_BASE_URL, Client, RequestRecord, is_loopback
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
    DeletedAssistantFile,
    DeletedFile,
    FileObject,
    Message,
    MessageFile,
    Page,
    Thread,
)
from syncd.api.names import sent_filename
from syncd.api.retry import RetryPolicy, is_retryable

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "Assistant",
    "AssistantFile",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientConfigError",
    "DeletedAssistantFile",
    "DeletedFile",
    "FileObject",
    "Message",
    "MessageFile",
    "NotFoundError",
    "Page",
    "RateLimitError",
    "RequestRecord",
    "RetryPolicy",
    "ServerError",
    "Thread",
    "TimeoutError",
    "TransportError",
    "UploadOutcomeUnknown",
    "is_loopback",
    "is_retryable",
    "sent_filename",
]
