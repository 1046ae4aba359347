"""The service's error bodies, ``{"error": {"message", "type", "param", "code"}}``, and their texts.

Where the real service's wording is known it is reproduced exactly, because clients (and people
reading logs) match on it; the others follow the same style.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse

INVALID_REQUEST = "invalid_request_error"


class ApiError(Exception):
    """An error answered to the client as a JSON error body with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body the service sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        """This error as a Starlette response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def server_error(status: int = 500) -> ApiError:
    """The service's own 5xx answer (the 502 of the proxy in front of it is HTML, not this)."""
    message = (
        "The server is overloaded or not ready yet."
        if status == 503
        else "The server had an error while processing your request. Sorry about that!"
    )
    return ApiError(status, message, type="server_error")


def rate_limited(retry_after_ms: int) -> ApiError:
    """A 429 asking the client to wait ``retry_after_ms``, in both the service's headers."""
    return ApiError(
        429,
        f"Rate limit reached for requests. Please try again in {retry_after_ms}ms.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(math.ceil(retry_after_ms / 1000)),
            "retry-after-ms": str(retry_after_ms),
            "x-ratelimit-remaining-requests": "0",
        },
    )


def file_not_found(file_id: str, *, param: str = "id") -> ApiError:
    return ApiError(404, f"No such File object: {file_id}", param=param)


def assistant_not_found(assistant_id: str) -> ApiError:
    return ApiError(404, f"No assistant found with id '{assistant_id}'.")


def thread_not_found(thread_id: str) -> ApiError:
    return ApiError(404, f"No thread found with id '{thread_id}'.")


def message_not_found(message_id: str) -> ApiError:
    return ApiError(404, f"No message found with id '{message_id}'.")


def assistant_file_not_found(assistant_id: str, file_id: str) -> ApiError:
    return ApiError(404, f"No file found with id '{file_id}' on assistant '{assistant_id}'.")


def message_file_not_found(message_id: str, file_id: str) -> ApiError:
    return ApiError(404, f"No file found with id '{file_id}' on message '{message_id}'.")


def invalid_purpose(purpose: str, allowed: tuple[str, ...]) -> ApiError:
    """The service's own wording, a Python list repr included."""
    return ApiError(
        400, f"'{purpose}' is not one of {list(allowed)!r} - 'purpose'", param="purpose"
    )


def past_limit(name: str, problem: str, expected: str, got: str, code: str) -> ApiError:
    """The service's one shape for a value past a limit (the builders below fill it in)."""
    return ApiError(
        400,
        f"Invalid '{name}': {problem}. Expected {expected}, but got {got} instead.",
        param=name,
        code=code,
    )


def integer_below_min(name: str, minimum: int, got: int) -> ApiError:
    return past_limit(
        name,
        "integer below minimum value",
        f"a value >= {minimum}",
        str(got),
        "integer_below_min_value",
    )


def integer_above_max(name: str, maximum: int, got: int) -> ApiError:
    return past_limit(
        name,
        "integer above maximum value",
        f"a value <= {maximum}",
        str(got),
        "integer_above_max_value",
    )


def invalid_value(name: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid '{name}': {message}", param=name, code="invalid_value")


def vector_store_not_found(vector_store_id: str) -> ApiError:
    return ApiError(404, f"No vector store found with id '{vector_store_id}'.")


def vector_store_file_not_found(vector_store_id: str, file_id: str) -> ApiError:
    return ApiError(404, f"No file found with id '{file_id}' in vector store '{vector_store_id}'.")


def file_batch_not_found(batch_id: str) -> ApiError:
    return ApiError(404, f"No file batch found with id '{batch_id}'.")


def upload_not_found(upload_id: str) -> ApiError:
    return ApiError(404, f"No upload found with id '{upload_id}'.")


def unsupported_extensions(extensions: list[str]) -> ApiError:
    """Text seen in public client code (not confirmed from OpenAI's own sources)."""
    listed = ", ".join(extensions)
    return ApiError(
        400,
        f"Files with extensions [{listed}] are not supported for retrieval. See "
        "https://platform.openai.com/docs/assistants/tools/file-search#supported-files",
        param="file_ids",
        code="unsupported_file",
    )


def missing_parameter(name: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{name}'.", param=name)


def unrecognized_argument(name: str) -> ApiError:
    return ApiError(400, f"Unrecognized request argument supplied: {name}")


def invalid_type(name: str, expected: str, got: object) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{name}': expected {expected}, but got {type(got).__name__} instead.",
        param=name,
        code="invalid_type",
    )


def array_too_long(name: str, maximum: int, length: int) -> ApiError:
    return past_limit(
        name,
        "array too long",
        f"an array with maximum length {maximum}",
        f"an array with length {length}",
        "array_above_max_length",
    )


def too_many_properties(name: str, maximum: int, count: int) -> ApiError:
    return past_limit(
        name,
        "too many properties",
        f"an object with at most {maximum} properties",
        f"an object with {count} properties",
        "object_above_max_properties",
    )


def property_name_too_long(name: str, maximum: int, key: str) -> ApiError:
    return past_limit(
        name,
        "property name too long",
        f"a name with maximum length {maximum}",
        f"'{key}' with length {len(key)}",
        "object_property_name_too_long",
    )


def string_too_long(name: str, maximum: int, length: int) -> ApiError:
    return past_limit(
        name,
        "string too long",
        f"a string with maximum length {maximum}",
        f"a string with length {length}",
        "string_above_max_length",
    )


def wrong_purpose_for_attachment(file_id: str, purpose: str) -> ApiError:
    return ApiError(
        400,
        f"File {file_id} has purpose '{purpose}'; only files with purpose 'assistants' "
        "can be attached to assistants and messages.",
        param="file_id",
    )


def invalid_url(method: str, path: str) -> ApiError:
    return ApiError(404, f"Invalid URL ({method} {path})")


def invalid_json() -> ApiError:
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)",
    )


def missing_api_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="invalid_api_key",
    )


def incorrect_api_key() -> ApiError:
    # The service echoes a masked key; the emulator echoes none of it, so that no log that
    # records error bodies ever holds a fragment of a key.
    return ApiError(
        401,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def v1_retired() -> ApiError:
    """What the service answers Assistants v1 calls since 2024-12-18."""
    return ApiError(
        400,
        "The v1 Assistants API has been deprecated. Please try again by setting the header "
        "'OpenAI-Beta: assistants=v2'.",
        code="invalid_beta",
    )


def invalid_beta() -> ApiError:
    return ApiError(
        400,
        "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again "
        "by setting the header 'OpenAI-Beta: assistants=v1'.",
        code="invalid_beta",
    )
