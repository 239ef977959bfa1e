"""Credentials repository: CRUD with optimistic concurrency and an audit trail without secrets."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from smsdesk.domain.credential import KEYWORD_LISTS, STORED, Credential, StoredCredential
from smsdesk.domain.credential_records import FIELDS, RecordProblem, validate_records
from smsdesk.store.db import transaction, utcnow
from smsdesk.store.errors import ConflictError, DuplicateError, NotFoundError
from smsdesk.store.outbox import cancel_for_credential, move_to_sandbox

_COLUMNS = ", ".join(FIELDS)
# Who the audit names when no person asked for the change (sample data, benchmarks). A change an
# operator makes goes through usecases/credentials.py, which names the OS user.
UNATTENDED = "smsdesk"

_JSON_COLUMNS = (*KEYWORD_LISTS, "custom_keyword_replies")  # lists and objects, stored as JSON text


def _to_row(cred: Credential) -> dict[str, Any]:
    row = cred.model_dump(mode="json")
    for name in _JSON_COLUMNS:
        row[name] = json.dumps(row[name], ensure_ascii=False)
    return row


def _from_row(row: sqlite3.Row | dict[str, Any]) -> StoredCredential:
    data = dict(row)
    for name in _JSON_COLUMNS:
        data[name] = json.loads(data[name])
    data.pop("name_key", None)
    return StoredCredential.model_validate(data, context=STORED)  # rows from before today's bounds still load


def _select(conn: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()) -> list[StoredCredential]:
    cursor = conn.execute(
        f"SELECT id, version, created_at, updated_at, {_COLUMNS} FROM credentials {where}", params
    )
    names = [d[0] for d in cursor.description]
    return [_from_row(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]


def list_credentials(conn: sqlite3.Connection) -> list[StoredCredential]:
    """Every credential, validated, by name (the inbound writer calls it inside its transaction)."""
    return _select(conn, "ORDER BY name_key")


def find_credential_by_id(conn: sqlite3.Connection, credential_id: int) -> StoredCredential | None:
    found = _select(conn, "WHERE id = ?", (credential_id,))
    return found[0] if found else None


def get_credential(db: sqlite_utils.Database, name: str) -> StoredCredential:
    found = _select(db.conn, "WHERE name_key = ?", (name.casefold(),))
    if not found:
        raise NotFoundError(f"no credential named {name!r}")
    return found[0]


def get_credential_by_id(db: sqlite_utils.Database, credential_id: int) -> StoredCredential:
    found = _select(db.conn, "WHERE id = ?", (credential_id,))
    if not found:
        raise NotFoundError(f"credential #{credential_id} no longer exists")
    return found[0]


def _check_unique(conn: sqlite3.Connection, cred: Credential, exclude_id: int | None) -> None:
    other = conn.execute(
        "SELECT name FROM credentials WHERE name_key = ? AND id IS NOT ?",
        (cred.name.casefold(), exclude_id),
    ).fetchone()
    if other:
        raise DuplicateError("name", f"a credential named {other[0]!r} already exists")
    if cred.inbound_number:
        other = conn.execute(
            "SELECT name FROM credentials WHERE inbound_number = ? AND id IS NOT ?",
            (cred.inbound_number, exclude_id),
        ).fetchone()
        if other:
            raise DuplicateError(
                "inbound_number", f"{cred.inbound_number} is already used by credential {other[0]!r}"
            )


def _audit(conn: sqlite3.Connection, action: str, cred_id: int, name: str, fields: Iterable[str], by: str) -> None:
    # Field names only, never values: the audit must not become a second copy of secrets.
    conn.execute(
        "INSERT INTO audit (at, os_user, action, credential_id, credential_name, fields) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (utcnow(), by, action, cred_id, name, json.dumps(sorted(fields))),
    )


def _insert(conn: sqlite3.Connection, cred: Credential, by: str) -> int:
    _check_unique(conn, cred, None)
    row = _to_row(cred)
    now = utcnow()
    placeholders = ", ".join("?" for _ in FIELDS)
    cursor = conn.execute(
        f"INSERT INTO credentials (name_key, version, created_at, updated_at, {_COLUMNS}) "
        f"VALUES (?, 1, ?, ?, {placeholders})",
        (cred.name.casefold(), now, now, *(row[f] for f in FIELDS)),
    )
    new_id = int(cursor.lastrowid or 0)
    _audit(conn, "create", new_id, cred.name, FIELDS, by)
    return new_id


def create_credential(db: sqlite_utils.Database, cred: Credential, *, by: str = UNATTENDED) -> StoredCredential:
    """`by`: who the audit names (the OS user, for an operator's change)."""
    with transaction(db) as conn:
        new_id = _insert(conn, cred, by)
    return get_credential_by_id(db, new_id)


def changed_fields(before: Credential, after: Credential) -> list[str]:
    return [f for f in FIELDS if getattr(before, f) != getattr(after, f)]


def _update(conn: sqlite3.Connection, db: sqlite_utils.Database, cred_id: int, cred: Credential,
            expected_version: int, by: str) -> None:
    current = _select(db.conn, "WHERE id = ?", (cred_id,))
    if not current:
        raise ConflictError(f"credential {cred.name!r} was deleted by someone else")
    if current[0].version != expected_version:
        raise ConflictError(
            f"credential {current[0].name!r} was changed by someone else "
            f"(version {current[0].version}, you edited {expected_version}); reload and retry"
        )
    _check_unique(conn, cred, cred_id)
    changed = changed_fields(current[0], cred)
    if not changed:
        return
    row = _to_row(cred)
    assignments = ", ".join(f"{f} = ?" for f in FIELDS)
    conn.execute(
        f"UPDATE credentials SET {assignments}, name_key = ?, version = version + 1, updated_at = ? "
        "WHERE id = ? AND version = ?",
        (*(row[f] for f in FIELDS), cred.name.casefold(), utcnow(), cred_id, expected_version),
    )
    if "sandbox" in changed:  # the replies still to send follow it, in this transaction
        move_to_sandbox(conn, cred_id, cred.sandbox)
    _audit(conn, "update", cred_id, cred.name, changed, by)


def update_credential(db: sqlite_utils.Database, cred_id: int, cred: Credential,
                      expected_version: int, *, by: str = UNATTENDED) -> StoredCredential:
    """Save over version `expected_version`; ConflictError if someone saved in between."""
    with transaction(db) as conn:
        _update(conn, db, cred_id, cred, expected_version, by)
    return get_credential_by_id(db, cred_id)


def delete_credential(db: sqlite_utils.Database, cred_id: int, expected_version: int | None = None, *,
                      by: str = UNATTENDED) -> int:
    """Delete a credential and cancel its queued replies in the same transaction.

    Returns how many replies were cancelled. Ids are never reused, so a reply can never be sent
    with an account created later; messages and replies keep the deleted credential's name.
    """
    with transaction(db) as conn:
        row = conn.execute("SELECT name, version FROM credentials WHERE id = ?", (cred_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"credential #{cred_id} no longer exists")
        if expected_version is not None and row[1] != expected_version:
            raise ConflictError(
                f"credential {row[0]!r} was changed by someone else; reload before deleting"
            )
        conn.execute("DELETE FROM credentials WHERE id = ?", (cred_id,))
        cancelled = cancel_for_credential(conn, cred_id, row[0])
        _audit(conn, "delete", cred_id, row[0], (), by)
    return cancelled


class ImportRejected(Exception):
    def __init__(self, problems: list[RecordProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def import_credentials(db: sqlite_utils.Database, records: Sequence[Any], *, replace: bool = False,
                       by: str = UNATTENDED) -> list[str]:
    """All or nothing: every record is validated and checked before any is written.

    With `replace`, a record whose name exists updates that credential; otherwise it is an error.
    Returns the names written.
    """
    creds, problems = validate_records(records)
    if problems:
        raise ImportRejected(problems)
    written: list[str] = []
    with transaction(db) as conn:
        for index, cred in enumerate(creds):
            existing = _select(db.conn, "WHERE name_key = ?", (cred.name.casefold(),))
            try:
                if existing and replace:
                    _update(conn, db, existing[0].id, cred, existing[0].version, by)
                elif existing:
                    raise DuplicateError("name", f"a credential named {existing[0].name!r} already exists "
                                         "(use --replace to update it)")
                else:
                    _insert(conn, cred, by)
            except DuplicateError as exc:
                problems.append(RecordProblem(index, exc.field, exc.message))
            written.append(cred.name)
        if problems:
            raise ImportRejected(problems)  # rolls the whole transaction back
    return written
