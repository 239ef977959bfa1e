"""Store calls the TUI hands to its data service (tui/data.py), each with its connection first.

Reads take a `sqlite3.Connection` (the pool thread's reader), writes a `sqlite_utils.Database`
(its writer). No SQL here: these only adapt `store/` functions to that calling convention.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from smsdesk.domain.credential import Credential, StoredCredential
from smsdesk.store.credentials import (
    create_credential,
    delete_credential,
    find_credential_by_id_conn,
    update_credential,
)
from smsdesk.store.errors import NotFoundError
from smsdesk.store.send_guard import OptedOut, audit_override, opted_out


def load_credential(conn: sqlite3.Connection, credential_id: int) -> StoredCredential:
    """The full credential behind a list row.

    Raises store.errors.NotFoundError when someone deleted it since the list was read.
    """
    found = find_credential_by_id_conn(conn, credential_id)
    if found is None:
        raise NotFoundError("it was deleted meanwhile (another session or the command line)")
    return found


def save_credential(db: sqlite_utils.Database, cred: Credential, original: StoredCredential | None,
                    *, force: bool = False) -> StoredCredential:
    """Create, or update `original` if nobody changed it since it was read (`force`: over theirs)."""
    if original is None:
        return create_credential(db, cred)
    if force:
        current = find_credential_by_id_conn(db.conn, original.id)
        if current is None:
            raise NotFoundError("it was deleted meanwhile (another session or the command line)")
        return update_credential(db, original.id, cred, current.version)
    return update_credential(db, original.id, cred, original.version)


def remove_credential(db: sqlite_utils.Database, credential_id: int, version: int) -> int:
    return delete_credential(db, credential_id, version)


def check_opt_out(conn: sqlite3.Connection, sandbox: str, to: str) -> OptedOut | None:
    return opted_out(conn, sandbox, to)


def record_override(db: sqlite_utils.Database, cred: StoredCredential, opted: OptedOut, our_message_id: str) -> None:
    from smsdesk.store.db import transaction

    with transaction(db) as conn:
        audit_override(conn, cred, opted, our_message_id, via="tui")
