"""The client's exceptions.

Every failure of a call is an :class:`APIError` carrying what the service said (``status``,
``error.type/code/param/message``) and its ``x-request-id``, so a log line or a manifest row can
quote it and a support ticket can cite it. The subclasses are the distinctions callers act on:

* :class:`AuthenticationError` — 401/403: stop all work, the key or organization is wrong.
* :class:`NotFoundError` — 404: the object is gone (or never existed).
* :class:`BadRequestError` — any other 4xx: this request will never succeed as sent.
* :class:`RateLimitError` — 429 after the retries ran out.
* :class:`ServerError` — 5xx after the retries ran out.
* :class:`TransportError` / :class:`TimeoutError` — no HTTP answer at all.
* :class:`UploadOutcomeUnknown` — an upload may or may not have been stored; look before resending.

Texts built here never contain the API key: the service's own texts are passed through
:func:`redact` with the key before they are stored.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from typing import Any

import httpx2

REDACTED = "[redacted]"


def redact(text: str, secret: str | None) -> str:
    """Return ``text`` with every occurrence of ``secret`` replaced by ``[redacted]``."""
    if secret and secret in text:
        return text.replace(secret, REDACTED)
    return text


class APIError(Exception):
    """A call to the service failed.

    ``status`` is the HTTP status, or ``None`` when no response arrived. ``retry_after`` is the
    delay in seconds the service asked for (``retry-after-ms`` / ``Retry-After``), uncapped;
    ``should_retry`` is the service's ``x-should-retry`` verdict when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.should_retry = should_retry
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        head = f"{self.status} {self.message}" if self.status is not None else self.message
        if self.request_id:
            return f"{head} (request {self.request_id})"
        if self.method and self.path:
            return f"{head} ({self.method} {self.path})"
        return head


class AuthenticationError(APIError):
    """401 or 403: the key, organization or project is not accepted. Not retried."""


class NotFoundError(APIError):
    """404: no such object."""


class BadRequestError(APIError):
    """A 4xx other than 401, 403, 404 and 429: the request is wrong as sent."""


class RateLimitError(APIError):
    """429: too many requests or out of quota, still so after the retries."""


class ServerError(APIError):
    """5xx: the service failed, still so after the retries."""


class TransportError(APIError):
    """No HTTP response: the connection could not be made, broke, or the answer was garbled.

    ``request_sent`` is ``False`` only when the failure came before any byte of the request
    left (no connection could be made), i.e. when the service certainly did not act on it.
    """

    def __init__(self, message: str, *, request_sent: bool = True, **kwargs: Any) -> None:
        self.request_sent = request_sent
        super().__init__(message, **kwargs)


class TimeoutError(TransportError):
    """A connect, read, write or pool timeout."""


class UploadOutcomeUnknown(APIError):
    """An upload went out but its outcome is unknown: the service may have stored it.

    Raised instead of retrying when the body was sent and then the connection dropped, timed
    out, or the service answered 5xx — or when an Upload's completion was refused after an
    attempt whose answer was lost. The API has no idempotency key, so re-sending could store
    the file twice; the caller should look for it in the file list (``filename``, ``size``,
    ``purpose``, created since ``sent_at``) and upload again only if it is not there.
    ``cause`` is the error that made the outcome unknown.
    """

    def __init__(
        self, *, filename: str, size: int, purpose: str, sent_at: float, cause: APIError
    ) -> None:
        self.filename = filename
        self.size = size
        self.purpose = purpose
        self.sent_at = sent_at
        self.cause = cause
        when = dt.datetime.fromtimestamp(sent_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"upload of {filename} ({size} bytes, {purpose}) sent at {when} may have been "
            f"stored: {cause}",
            status=cause.status,
            type=cause.type,
            code=cause.code,
            param=cause.param,
            request_id=cause.request_id,
            method=cause.method,
            path=cause.path,
        )

    def _one_line(self) -> str:
        return self.message


class ClientConfigError(ValueError):
    """The client cannot be built as configured (no API key, plain HTTP to a remote host)."""


def _status_class(status: int) -> type[APIError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if status >= 400:
        return BadRequestError
    return APIError


def parse_retry_after(headers: httpx2.Headers) -> float | None:
    """The delay in seconds the service asked for, or ``None``.

    ``retry-after-ms`` (the service's own header, milliseconds) wins over ``Retry-After``
    (seconds or an HTTP date). An HTTP date is measured against the response's ``Date`` header
    when there is one, so clock skew between us and the service does not distort it.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(headers.get("date", "")) or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _http_date(value: str) -> dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" parses as naive: HTTP dates are always GMT.
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _should_retry(headers: httpx2.Headers) -> bool | None:
    value = headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)


def error_from_response(response: httpx2.Response, *, secret: str | None) -> APIError:
    """Build the error for a non-2xx ``response`` (its body must have been read)."""
    error: dict[str, object] = {}
    try:
        body = json.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass

    def text(key: str) -> str | None:
        value = error.get(key)
        return redact(str(value), secret) if value is not None else None

    message = text("message")
    if not message:
        snippet = response.text.strip()[:200] if response.content else ""
        message = redact(snippet, secret) or response.reason_phrase or "error"
    return _status_class(response.status_code)(
        message,
        status=response.status_code,
        type=text("type"),
        code=text("code"),
        param=text("param"),
        request_id=response.headers.get("x-request-id"),
        method=response.request.method,
        path=response.request.url.path,
        retry_after=parse_retry_after(response.headers),
        should_retry=_should_retry(response.headers),
    )


#: Failures raised before a connection existed: nothing of the request reached the service.
NOT_SENT = (
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.PoolTimeout,
    httpx2.UnsupportedProtocol,
)


def error_from_transport(
    exc: httpx2.TransportError, *, method: str, path: str, secret: str | None
) -> TransportError:
    """Wrap an httpx2 transport failure (no response) in our hierarchy."""
    cls = TimeoutError if isinstance(exc, httpx2.TimeoutException) else TransportError
    kind = type(exc).__name__
    detail = redact(str(exc), secret)
    message = f"{kind}: {detail}" if detail else kind
    return cls(message, request_sent=not isinstance(exc, NOT_SENT), method=method, path=path)


__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientConfigError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
    "TransportError",
    "UploadOutcomeUnknown",
]
