"""Credential changes an operator makes, from `smsdesk creds ...` or the TUI's credential screens:
create (a copy is a new credential), edit, delete and import, each audited with the OS user.

Each takes the database (a writer) or a connection (a read) first, so the TUI hands them to its
data service as they are and the CLI calls them with the database it opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from smsdesk.domain.credential import Credential, StoredCredential
from smsdesk.store.credentials import (
    create_credential,
    delete_credential,
    find_credential_by_id,
    import_credentials,
    update_credential,
)
from smsdesk.store.errors import NotFoundError
from smsdesk.usecases.operator import os_user

DELETED_MEANWHILE = "it was deleted meanwhile (another session or the command line)"


def load_credential(conn: sqlite3.Connection, credential_id: int) -> StoredCredential:
    """The full credential behind a list row; NotFoundError when someone deleted it since."""
    found = find_credential_by_id(conn, credential_id)
    if found is None:
        raise NotFoundError(DELETED_MEANWHILE)
    return found


def save_credential(db: sqlite_utils.Database, cred: Credential, original: StoredCredential | None = None,
                    *, force: bool = False) -> StoredCredential:
    """Create `cred` (no `original`: a new one, or a copy), or save it over `original` if nobody
    changed that since it was read (ConflictError otherwise; `force`: over theirs)."""
    if original is None:
        return create_credential(db, cred, by=os_user())
    version = load_credential(db.conn, original.id).version if force else original.version
    return update_credential(db, original.id, cred, version, by=os_user())


def remove_credential(db: sqlite_utils.Database, credential_id: int, version: int) -> int:
    """Delete the credential read at `version` and cancel its queued replies; how many were cancelled."""
    return delete_credential(db, credential_id, version, by=os_user())


def import_credential_records(db: sqlite_utils.Database, records: Sequence[Any], *,
                              replace: bool = False) -> list[str]:
    """All or nothing (store.credentials.ImportRejected lists every problem); the names written."""
    return import_credentials(db, records, replace=replace, by=os_user())
