"""Typed models of the service's objects (``spec/openai-files.yaml``).

The models accept fields the spec does not list (the live service adds some over time) and keep
them in ``model_extra``, so a new field never breaks a sync. Enumerations the service may extend
(``purpose``, ``status``) are plain strings for the same reason; only ``object`` is checked,
because a wrong ``object`` means we parsed the wrong response.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class FileObject(_Object):
    """A document uploaded to the service (``OpenAIFile``)."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
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


ItemT = TypeVar("ItemT", bound=_Object)


class Page(BaseModel, Generic[ItemT]):
    """One page of a cursor-paginated list (``List*Response``).

    ``first_id``/``last_id``/``has_more`` are required by the spec for the assistant and
    message lists; they are optional here so that ``listFiles`` (which has no cursor in the
    spec, but may grow one) parses with the same model.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    object: Literal["list"] = "list"
    data: list[ItemT]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
