"""A credential as records outside the database: the fields of an export or import file, every
problem of a file found at once, and the API key as the TUI and exports show it (masked)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from smsdesk.domain.credential import MASK, Credential, field_errors
from smsdesk.domain.inert import make_inert

FIELDS: tuple[str, ...] = tuple(Credential.model_fields)


@dataclass(frozen=True)
class RecordProblem:
    index: int
    field: str
    message: str

    def __str__(self) -> str:
        # the field may be an unknown key of the file itself: printed on a terminal, keep it inert
        return make_inert(f"record {self.index}: {self.field}: {self.message}")


def validate_records(records: Sequence[Any]) -> tuple[list[Credential], list[RecordProblem]]:
    """Validate every record, collecting all problems (also duplicates within the file)."""
    creds: list[Credential] = []
    problems: list[RecordProblem] = []
    names: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(RecordProblem(index, "record", "must be a JSON object"))
            continue
        try:
            cred = Credential.model_validate(record)
        except ValidationError as exc:
            problems.extend(RecordProblem(index, f, m) for f, m in field_errors(exc).items())
            continue
        key = cred.name.casefold()
        if key in names:
            problems.append(RecordProblem(index, "name", f"repeats record {names[key]}"))
        names.setdefault(key, index)
        if cred.inbound_number:
            if cred.inbound_number in numbers:
                problems.append(RecordProblem(
                    index, "inbound_number", f"repeats record {numbers[cred.inbound_number]}"))
            numbers.setdefault(cred.inbound_number, index)
        creds.append(cred)
    return creds, problems


def masked_key(api_key: str) -> str:
    """Show only the last four characters, as the TUI and exports do."""
    return MASK + api_key[-4:] if len(api_key) > 8 else MASK


def public_dict(cred: Credential, *, with_secrets: bool = False) -> dict[str, Any]:
    data = cred.model_dump(mode="json", include=set(FIELDS))
    if not with_secrets:
        data["api_key"] = masked_key(cred.api_key)
    return {f: data[f] for f in FIELDS}
