"""Parsing what Infobip posts: MO_JSON_2 inbound batches and delivery report batches.

Parsing is all-or-nothing: one bad result rejects the batch (Infobip retries it), so a batch is
never half stored. Unknown extra fields are accepted, as Infobip adds fields over time.

One exception: text that cannot be stored as UTF-8 because it holds a lone surrogate (half of an
emoji, as a message cut at a bad place arrives as JSON `\\ud83d`) is no fault of the sender and
must not hold its batch-mates (a STOP among them) hostage: each lone surrogate becomes U+FFFD, the
result is stored with it, and the repair is logged and reported (`Repair`).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, NamedTuple, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from smsdesk.store.db import utcnow
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.phone import stored_number

log = logging.getLogger("smsdesk.receiver")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InputProblem(ValueError):
    """A 4xx-worthy problem, naming where in the body it is."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


# Checked by pydantic-core in Rust: a Python validator per field would cost more than the
# whole database write of a message on the batched path.
# C0, DEL and C1 (U+0080..U+009F: a lone U+009B is a terminal's CSI) have no place in an id or a number.
_NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                              pattern=_NO_CONTROL)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=_NO_CONTROL)]


@lru_cache(maxsize=4096)
def _utc_timestamp(value: str) -> str:
    """Infobip's `+0000` offsets to our UTC form; cached, as a batch shares few distinct times."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO-8601 time such as 2019-11-09T16:00:00.000+0000") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds")
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 has no UTC time in datetime's range
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from exc


class _MoResult(TypedDict):
    """One MO_JSON_2 result, validated into a plain dict.

    A TypedDict, not a model: pydantic-core then builds dicts instead of model instances, which
    is much cheaper per message (bench/ingest.py), and unknown fields are ignored without being
    copied. `receivedAt` is converted afterwards,
    not by a Python validator called back from Rust for every result.
    """

    messageId: Identifier
    # "from" is a keyword: see _MoResultFrom below for how the key is declared.
    to: Address
    text: NotRequired[Annotated[str | None, Field(max_length=20_000)]]
    receivedAt: NotRequired[str | None]


# The functional form is the only way to name a TypedDict key "from".
_MoResultFrom = TypedDict("_MoResultFrom", {"from": Address})


class _MoResultFull(_MoResult, _MoResultFrom):
    pass


class _MoBatch(TypedDict):
    results: list[_MoResultFull]


_MO_BATCH = TypeAdapter(_MoBatch)


class _DlrStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    groupName: str = Field(min_length=1, max_length=64)
    name: str = ""
    description: str = ""


class _DlrResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    messageId: str = Field(min_length=1, max_length=200)
    status: _DlrStatus


class _DlrBatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    results: list[_DlrResult]


_Batch = TypeVar("_Batch")


def _first_problem(exc: ValidationError) -> InputProblem:
    error = exc.errors(include_input=False, include_url=False)[0]
    where = ""
    for part in error.get("loc", ()):
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if error.get("type") == "string_pattern_mismatch":  # the regex itself means nothing to a reader
        return InputProblem(where, "must be non-blank text without control characters")
    return InputProblem(where, str(error.get("msg", "invalid")).removeprefix("Value error, "))


# Inbound numbers as consent and profiles key them; `smsdesk send` looks consent up the same way.
_number = stored_number


class Repair(NamedTuple):
    """A value stored with its lone surrogates replaced by U+FFFD."""

    where: str  # results[1].text
    message_id: str
    surrogates: int


def _where(loc: tuple[Any, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where


def _repaired(payload: dict[str, Any], exc: ValidationError) -> tuple[dict[str, Any], list[tuple[str, int]]] | None:
    """A copy of `payload` with the strings pydantic could not read as Unicode (lone surrogates)
    repaired, and where; None if any error is of another kind (then the first of those is the answer)."""
    errors = exc.errors(include_input=False, include_url=False)
    if any(error.get("type") != "string_unicode" for error in errors):
        return None
    fixed = copy.copy(payload)
    fixed["results"] = list(payload["results"])
    repairs = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if len(loc) != 3 or loc[0] != "results" or not isinstance(loc[1], int):
            return None
        index, key = loc[1], loc[2]
        result = fixed["results"][index] = dict(fixed["results"][index])
        value = result.get(key)
        if not isinstance(value, str):
            return None
        result[key], count = _LONE_SURROGATE.subn("\ufffd", value)
        repairs.append((_where(loc), count))
    return fixed, repairs


def _validated(validate: Callable[[Any], _Batch], payload: Any) -> _Batch:
    """Both webhook bodies are an object with a `results` array; problems name their place."""
    if not isinstance(payload, dict):
        raise InputProblem("", "body must be a JSON object with a 'results' array")
    try:
        return validate(payload)
    except ValidationError as exc:
        raise _first_problem(exc) from None


def parse_inbound(payload: Any, source: str = "forward") -> list[InboundMessage]:
    return parse_inbound_repairing(payload, source)[0]


def parse_inbound_repairing(payload: Any, source: str = "forward") -> tuple[list[InboundMessage], list[Repair]]:
    """`parse_inbound`, and the values stored with U+FFFD for lone surrogates (each logged)."""
    if not isinstance(payload, dict):
        raise InputProblem("", "body must be a JSON object with a 'results' array")
    fixes: list[tuple[str, int]] = []
    try:
        batch = _MO_BATCH.validate_python(payload)
    except ValidationError as exc:
        # Only on failure: the common body pays nothing for this.
        repaired = _repaired(payload, exc)
        if repaired is None:
            raise _first_problem(exc) from None
        payload, fixes = repaired
        batch = _validated(_MO_BATCH.validate_python, payload)
    messages = []
    for index, result in enumerate(batch["results"]):
        received = result.get("receivedAt")
        if received is None:
            received_at = utcnow()
        else:
            try:
                received_at = _utc_timestamp(received)
            except ValueError as exc:
                raise InputProblem(f"results[{index}].receivedAt", str(exc)) from None
        messages.append(InboundMessage(
            message_id=result["messageId"],
            from_number=_number(result["from"]),
            to_number=_number(result["to"]),
            text=result.get("text") or "",
            received_at=received_at,
            source=source,
        ))
    repairs = []
    for where, count in fixes:
        index = int(where[len("results["):where.index("]")])
        repairs.append(Repair(where, messages[index].message_id, count))
        # The id is repaired too if it needed it, and printable: the log line stays one line.
        log.warning("%s of messageId %r: %d lone surrogate(s) stored as U+FFFD", where,
                    messages[index].message_id[:80], count)
    return messages, repairs


def parse_delivery_reports(payload: Any) -> list[tuple[str, str, str, str]]:
    """-> [(messageId, status groupName, 'NAME: description', doneAt in UTC or '')]

    Plain tuples: they travel to the writer process as they are. A `doneAt` that is missing or
    no time is kept as '' (the report still counts: it is the status that matters).
    """
    batch = _validated(_DlrBatch.model_validate, payload)
    return [
        (r.messageId, r.status.groupName, f"{r.status.name}: {r.status.description}".strip(": "), _done_at(r))
        for r in batch.results
    ]


def _done_at(result: _DlrResult) -> str:
    value = (result.model_extra or {}).get("doneAt")
    if not isinstance(value, str):
        return ""
    try:
        return _utc_timestamp(value)
    except ValueError:
        return ""

