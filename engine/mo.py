"""Parsing what Infobip posts: MO_JSON_2 inbound batches and delivery report batches.

Inbound, one result that cannot be read never holds its neighbours (a STOP among them): the
results that can be read are stored, and each one that cannot is kept raw with the reason
(`Unreadable`, table unreadable_inbound), in the same transaction. A result whose only fault is
its `receivedAt` is stored with its arrival time, and kept as unreadable too. Only a body that
is no batch at all (not an object with a `results` array) is refused whole. Unknown extra fields
are accepted, as Infobip adds fields over time.

Text that cannot be stored as UTF-8 because it holds a lone surrogate (half of an emoji, as a
message cut at a bad place arrives as JSON `\\ud83d`) is no fault of the sender: each lone
surrogate becomes U+FFFD, the result is stored with it, and the repair is logged and reported
(`Repair`).

Delivery report batches are still all-or-nothing: one bad report refuses the batch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, NamedTuple, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from smsdesk.domain.phone import stored_number
from smsdesk.store.db import utcnow
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.unreadable import UnreadableRow, raw_json

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


_ISO_8601 = "must be an ISO-8601 time such as 2019-11-09T16:00:00.000+0000"


@lru_cache(maxsize=4096)
def _utc_timestamp(value: str) -> str:
    """Infobip's `+0000` offsets to our UTC form; cached, as a batch shares few distinct times."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(_ISO_8601) from exc
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
_MO_RESULT = TypeAdapter(_MoResultFull)
_MO_RESULTS = TypeAdapter(list[_MoResultFull])


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
    return InputProblem(_where(tuple(error.get("loc", ()))), _problem_message(error))


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


def _validated(validate: Callable[[Any], _Batch], payload: Any) -> _Batch:
    """A delivery report body: an object with a `results` array, all valid; problems name their place."""
    if not isinstance(payload, dict):
        raise InputProblem("", "body must be a JSON object with a 'results' array")
    try:
        return validate(payload)
    except ValidationError as exc:
        raise _first_problem(exc) from None


# At most this many unreadable results of one body are kept one by one (a full pull is 1,000);
# the rest of a body that is nothing but junk (a 1 MB body of `0,` is 500,000 results) are
# counted in one more, so that the rows written stay bounded whatever was posted.
MAX_UNREADABLE_KEPT = 1000
_RECEIVED_AT = "receivedAt"


class Unreadable(NamedTuple):
    """A result that could not be read, or only without its `receivedAt` (then it is stored
    with its arrival time, as `stored_as`): kept raw for the operator (store/unreadable.py)."""

    index: int  # in `results`
    where: str  # results[2].receivedAt
    message: str  # must be an ISO-8601 time such as ...
    raw: str  # its JSON, bounded (store/unreadable.py: raw_json)
    stored_as: str = ""  # the messageId it was stored as, with its arrival time; '': not stored

    @property
    def reason(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.stored_as:
            text += f"; stored as messageId {self.stored_as[:80]!r} with its arrival time"
        return text


class InboundBatch(NamedTuple):
    """What one MO_JSON_2 body holds: the messages that could be read, and what could not."""

    messages: list[InboundMessage]
    repairs: list[Repair]
    unreadable: list[Unreadable]  # by index; at most MAX_UNREADABLE_KEPT + 1
    positions: list[int] | None  # the index in `results` of each message; None: messages[i] is results[i]
    source: str = "forward"

    def position(self, k: int) -> int:
        return k if self.positions is None else self.positions[k]

    def unreadable_rows(self, at: str | None = None) -> list[UnreadableRow]:
        """Rows for `unreadable_inbound`, as `store_inbound` takes them (plain tuples)."""
        at = at or utcnow()
        return [(at, self.source, u.reason, u.raw) for u in self.unreadable]


class _Collected:
    """Unreadable results as they are found; past MAX_UNREADABLE_KEPT only counted."""

    def __init__(self) -> None:
        self.kept: list[Unreadable] = []
        self.more = 0
        self.first_more: Unreadable | None = None

    def add(self, index: int, where: str, message: str, result: Any, stored_as: str = "") -> None:
        if len(self.kept) < MAX_UNREADABLE_KEPT:
            self.kept.append(Unreadable(index, where, message, raw_json(result), stored_as))
            return
        self.more += 1
        if self.first_more is None:
            self.first_more = Unreadable(index, where, message, raw_json(result), stored_as)

    def done(self) -> list[Unreadable]:
        kept = sorted(self.kept, key=lambda u: u.index)
        first = self.first_more
        if first is not None:
            others = f" (and {self.more - 1} more unreadable results of this body, not kept one by one)"
            kept.append(first._replace(message=first.message + (others if self.more > 1 else "")))
        return kept


def _problem_message(error: Any) -> str:
    kind = error.get("type")
    if kind == "string_pattern_mismatch":  # the regex itself means nothing to a reader
        return "must be non-blank text without control characters"
    if kind == "dict_type":
        return "must be a JSON object"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def parse_inbound(payload: Any, source: str = "forward") -> list[InboundMessage]:
    """All the messages of a body, or InputProblem naming the first result that cannot be read
    (its receivedAt included): for callers that want all or nothing (tests, tools)."""
    batch = parse_inbound_batch(payload, source)
    if batch.unreadable:
        first = batch.unreadable[0]
        raise InputProblem(first.where, first.message)
    return batch.messages


def parse_inbound_batch(payload: Any, source: str = "forward") -> InboundBatch:
    """The messages of an MO_JSON_2 body that can be read, and the results that cannot.

    InputProblem only when the body itself is no batch (not an object with a `results` array):
    then nothing can be stored. Otherwise one result that cannot be read never holds its
    neighbours: it is returned in `unreadable` (to be kept raw) and the others are messages.
    A result whose only fault is its `receivedAt` is a message with its arrival time, and is in
    `unreadable` too (`stored_as`). Lone surrogates are repaired (`Repair`, logged).

    The whole batch is validated at once (pydantic-core); only when that fails are its results
    looked at one by one, so the common body pays nothing for this.
    """
    if not isinstance(payload, dict):
        raise InputProblem("", "body must be a JSON object with a 'results' array")
    try:
        batch = _MO_BATCH.validate_python(payload)
    except ValidationError as exc:
        return _one_by_one(payload, exc, source)
    messages, collected = _messages(enumerate(batch["results"]), payload["results"], source, None, _NO_DROPS)
    return InboundBatch(messages, [], [] if collected is None else collected.done(), None, source)


_NO_DROPS: dict[int, str] = {}


def _messages(validated: Any, originals: list[Any], source: str, collected: _Collected | None,
              dropped: dict[int, str]) -> tuple[list[InboundMessage], _Collected | None]:
    """`validated`: (index, result) pairs; `dropped`: the indexes whose receivedAt was removed as
    unreadable, with why. `collected`: where unreadable times go (made when one is found)."""
    messages = []
    for index, result in validated:
        received = result.get(_RECEIVED_AT)
        if received is None:
            received_at = utcnow()
            if dropped and index in dropped:
                collected = collected or _Collected()
                collected.add(index, f"results[{index}].receivedAt", dropped[index], originals[index],
                              stored_as=result["messageId"])
        else:
            try:
                received_at = _utc_timestamp(received)
            except ValueError as exc:  # a STOP must not be lost for its time: stored with the arrival time
                received_at = utcnow()
                collected = collected or _Collected()
                collected.add(index, f"results[{index}].receivedAt", str(exc), originals[index],
                              stored_as=result["messageId"])
        messages.append(InboundMessage(
            message_id=result["messageId"],
            from_number=_number(result["from"]),
            to_number=_number(result["to"]),
            text=result.get("text") or "",
            received_at=received_at,
            source=source,
        ))
    return messages, collected


def _one_by_one(payload: dict[str, Any], exc: ValidationError, source: str) -> InboundBatch:
    """The slow path: a batch that failed validation, result by result."""
    originals = payload.get("results")
    if not isinstance(originals, list):
        raise _first_problem(exc) from None
    errors: dict[int, list[Any]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(error.get("loc", ()))
        if len(loc) < 2 or loc[0] != "results" or not isinstance(loc[1], int):
            raise _first_problem(exc) from None  # a problem of the body, not of one result
        errors.setdefault(loc[1], []).append(error)
    collected = _Collected()
    fixes: list[tuple[int, str, int]] = []  # (index, where, lone surrogates)
    dropped: dict[int, str] = {}
    fine: list[int] = []
    fixed: dict[int, dict[str, Any]] = {}
    for index in range(len(originals)):
        found = errors.get(index)
        if found is None:
            fine.append(index)
            continue
        repaired, problem = _repaired_result(index, originals[index], found, fixes, dropped)
        if problem is None:
            fixed[index] = repaired
        else:
            collected.add(index, _where(tuple(problem.get("loc", ()))), _problem_message(problem), originals[index])
    validated: list[tuple[int, Any]] = []
    if fine:
        try:
            validated.extend(zip(fine, _MO_RESULTS.validate_python([originals[i] for i in fine]), strict=True))
        except ValidationError:  # they passed within the batch; should they not alone, each on its own
            fixed.update((i, originals[i]) for i in fine)
    for index, result in fixed.items():
        try:
            validated.append((index, _MO_RESULT.validate_python(result)))
        except ValidationError as again:
            error = again.errors(include_input=False, include_url=False)[0]
            loc = ("results", index, *error.get("loc", ()))
            collected.add(index, _where(loc), _problem_message(error), originals[index])
            dropped.pop(index, None)
    validated.sort(key=lambda pair: pair[0])
    messages, _ = _messages(validated, originals, source, collected, dropped)
    positions = [index for index, _ in validated]
    ids = dict(zip(positions, (m.message_id for m in messages), strict=True))
    repairs = []
    for index, where, count in fixes:
        if index in ids:
            repairs.append(Repair(where, ids[index], count))
            # The id is repaired too if it needed it, and printable: the log line stays one line.
            log.warning("%s of messageId %r: %d lone surrogate(s) stored as U+FFFD", where, ids[index][:80], count)
    return InboundBatch(messages, repairs, collected.done(), positions, source)


def _repaired_result(index: int, result: Any, errors: list[Any], fixes: list[tuple[int, str, int]],
                     dropped: dict[int, str]) -> tuple[dict[str, Any], None] | tuple[None, Any]:
    """(a copy of the result with its lone surrogates replaced and an unreadable receivedAt
    removed, None), or (None, the first error that makes it unreadable)."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        key = loc[2] if len(loc) == 3 else None
        if key == _RECEIVED_AT:
            continue
        repairable = error.get("type") == "string_unicode" and isinstance(result, dict)
        if not repairable or not isinstance(result.get(key), str):
            return None, error
    repaired = dict(result)
    for error in errors:
        key = error["loc"][2]
        if key == _RECEIVED_AT:
            repaired.pop(_RECEIVED_AT, None)
            message = _problem_message(error)
            if error.get("type") == "string_type":
                message = _ISO_8601
            dropped[index] = message
            continue
        repaired[key], count = _LONE_SURROGATE.subn("\ufffd", repaired[key])
        fixes.append((index, _where(tuple(error["loc"])), count))
    return repaired, None


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

