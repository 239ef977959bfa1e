"""Typed errors for everything that can go wrong talking to Infobip.

Every failure is an ``InfobipError`` (callers catch one type and read ``retryable``); transport
failures are subclasses with ``status=None`` so a user message can say *why* nothing answered.
No error ever carries the API key: messages are built from status, Infobip's own error text and
the host name only.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    HTTP = "http"  # Infobip answered with a 4xx/5xx
    BAD_RESPONSE = "bad_response"  # a 2xx whose body is not what the API documents
    UNREACHABLE = "unreachable"  # DNS failure, connection refused, network down
    TIMEOUT = "timeout"
    TLS = "tls"  # certificate or handshake failure
    DROPPED = "dropped"  # connection closed mid-request: the request may have been processed
    CONFIG = "config"  # a URL httpx refuses (bad scheme, bad host)


_MAX_TEXT = 300


class InfobipError(Exception):
    """An Infobip failure; ``violations`` lists (property, violation) pairs from a 400.

    ``outcome_unknown``: the request may have reached Infobip and taken effect, but its answer
    did not arrive or cannot be read (a connection dropped after the request was written, a read
    timeout, a 2xx in a shape Infobip does not document). A send that fails so is neither
    accepted nor refused: it is never retried as it is (that can send it twice); whoever sent it
    asks Infobip (the message logs) what became of it.
    """

    kind: ErrorKind = ErrorKind.HTTP
    outcome_unknown: bool = False

    def __init__(self, status: int | None, code: str, text: str, *,
                 violations: list[tuple[str, str]] | None = None, retryable: bool | None = None,
                 action: str = "", retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.text = text
        self.action = action
        self.violations = list(violations or [])
        self.retryable = is_retryable_status(status) if retryable is None else retryable
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else self.kind.value
        parts = [head]
        if self.code:
            parts.append(self.code)
        message = " ".join(parts) + (f": {self.text}" if self.text else "")
        if self.violations:
            message += " (" + "; ".join(f"{p}: {v}" if p else v for p, v in self.violations) + ")"
        return message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, text={self.text!r})"


class InfobipBadResponse(InfobipError):
    """A 2xx whose body is not what the API documents: Infobip did something, what is unknown."""

    kind = ErrorKind.BAD_RESPONSE

    @property
    def outcome_unknown(self) -> bool:  # type: ignore[override]
        return self.status is not None and 200 <= self.status < 300


class InfobipTransportError(InfobipError):
    """Nothing usable came back from the host."""

    def __init__(self, text: str, *, retryable: bool = True) -> None:
        super().__init__(None, "", text, retryable=retryable)


class InfobipUnreachable(InfobipTransportError):
    kind = ErrorKind.UNREACHABLE


class InfobipTimeout(InfobipTransportError):
    """No answer in time. `sent`: the request was (perhaps partly) written before the time ran
    out (a read or write timeout), so it may have taken effect; a connect or pool timeout sent
    nothing."""

    kind = ErrorKind.TIMEOUT

    def __init__(self, text: str, *, sent: bool = True) -> None:
        super().__init__(text)
        self.outcome_unknown = sent


class InfobipTlsError(InfobipTransportError):
    kind = ErrorKind.TLS

    def __init__(self, text: str) -> None:
        # A bad certificate does not heal by retrying within seconds.
        super().__init__(text, retryable=False)


class InfobipConnectionDropped(InfobipTransportError):
    kind = ErrorKind.DROPPED
    outcome_unknown = True  # closed after (part of) the request was written


class InfobipConfigError(InfobipTransportError):
    kind = ErrorKind.CONFIG

    def __init__(self, text: str) -> None:
        super().__init__(text, retryable=False)


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def parse_error_body(status: int, body: bytes | str | Any, *, retry_after: float | None = None) -> InfobipError:
    """Build the error for an HTTP error answer, from either documented body shape.

    Legacy (/sms/1, /sms/2, /account/1):
        {"requestError": {"serviceException": {"messageId", "text", "validationErrors": {prop: [msg]}}}}
    Current (/sms/3):
        {"errorCode", "description", "action", "violations": [{"property", "violation"}], "resources"}
    Anything else (an HTML page from a proxy, empty body) keeps the status and a clipped text.
    """
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body) if body else None
        except ValueError:
            raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return InfobipError(status, "", _clip(raw) or _default_text(status), retry_after=retry_after)
    if isinstance(data, dict):
        service = data.get("requestError")
        if isinstance(service, dict) and isinstance(service.get("serviceException"), dict):
            exc = service["serviceException"]
            violations: list[tuple[str, str]] = []
            errors = exc.get("validationErrors")
            if isinstance(errors, dict):
                for prop, messages in errors.items():
                    items = messages if isinstance(messages, list) else [messages]
                    violations.extend((_clip(prop), _clip(m)) for m in items)
            return InfobipError(status, _clip(exc.get("messageId")), _clip(exc.get("text")) or _default_text(status),
                                violations=violations, retry_after=retry_after)
        if "errorCode" in data or "description" in data:
            violations = []
            for item in data.get("violations") or []:
                if isinstance(item, dict):
                    violations.append((_clip(item.get("property")), _clip(item.get("violation"))))
            return InfobipError(status, _clip(data.get("errorCode")),
                                _clip(data.get("description")) or _default_text(status),
                                violations=violations, action=_clip(data.get("action")), retry_after=retry_after)
    return InfobipError(status, "", _default_text(status), retry_after=retry_after)


def _default_text(status: int) -> str:
    return {
        400: "bad request",
        401: "invalid API key",
        403: "the API key lacks the permission for this request",
        404: "not found (check the base URL)",
        429: "too many requests",
    }.get(status, "server error" if status >= 500 else "request failed")
