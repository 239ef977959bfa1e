"""Credential records for store and CLI tests: distinct names, numbers and secret-looking keys."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any


def record(n: int, **changes: Any) -> dict[str, Any]:
    """A valid import record; each n gets its own name, inbound number and API key."""
    return {
        "name": f"Programme {n}",
        "sandbox": f"sandbox-{n}",
        "base_url": f"xyz{n}.api.infobip.com",
        "api_key": secret_key(n),
        "inbound_number": f"+4474911634{n:02d}",
        "opt_out_message": f"Unsubscribed from programme {n}. Reply START to rejoin.",
    } | changes


def secret_key(n: int) -> str:
    """Long and unusual enough that finding it anywhere means a leak."""
    return f"SeCrEt{n:04d}ApiKey9f8e7d6c5b4a"


def full_record(n: int) -> dict[str, Any]:
    """Every field set away from its default, for round trips."""
    return record(
        n,
        sender=f"Brand{n}",
        opt_in_keywords=["JOIN", "START"],
        opt_in_message="Welcome!",
        opt_out_keywords=["STOP", "ARRET"],
        help_keywords=["HELP", "INFO"],
        help_message="Help: call us",
        double_opt_in_keywords=["CONFIRM"],
        double_opt_in_message="Confirmed",
        principal_entity_id="1234567890123",
        content_template_id="98765432109876",
        validity_period_hours=12,
        callback_data=f'{{"programme": {n}}}',
        inbound_keywords=["PIZZA", "SUSHI"],
        default_reply_message="Sorry, we did not understand.",
        inbound_mode="pull",
    )


def give_legacy_name(db_path: Any, name: str, legacy: str) -> None:
    """Rename credential `name` to `legacy` straight in SQLite, as an smsdesk from before the
    name rules (printable characters only) could have stored it: such rows must still load and
    print inert."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        with conn:
            changed = conn.execute("UPDATE credentials SET name = ?, name_key = ? WHERE name_key = ?",
                                   (legacy, legacy.casefold(), name.casefold())).rowcount
        assert changed == 1, name
    finally:
        conn.close()


def create_old_credential(db: Any, cred: Any) -> int:
    """Write `cred` into a database left at an older schema version, as the smsdesk of that
    version did: only the credential columns that version had (later fields take their column
    defaults when the database is upgraded). Returns the new id."""
    from smsdesk.store import credentials as repo

    columns = {row[1] for row in db.conn.execute("PRAGMA table_info(credentials)")}
    row = {k: v for k, v in repo._to_row(cred).items() if k in columns}
    cursor = db.conn.execute(
        f"INSERT INTO credentials (name_key, version, created_at, updated_at, {', '.join(row)}) "
        f"VALUES (?, 1, 'then', 'then', {', '.join('?' * len(row))})", (cred.name.casefold(), *row.values()))
    db.conn.commit()
    return int(cursor.lastrowid or 0)


def rows(db_path: Path, sql: str, *params: object) -> list[tuple]:
    """All rows of one query, on a connection of its own (what another process would see)."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def copy_db(template: Path, path: Path) -> Path:
    """`path` becomes a copy of the SQLite database `template` (closed; its WAL, if any, is folded
    in first): for tests that each change their own copy of a database that is costly to build."""
    conn = sqlite3.connect(template)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    shutil.copy2(template, path)  # its mode too (0600)
    return path


def store_directly(db_path: Path, messages: list[Any], arrived_at: str | None = None) -> None:
    """Run the rules on `messages` (InboundMessage) and store them in one transaction of this
    process, without serve: for tests of what the store decides, with the receivedAt they choose
    (and the arrival time, `arrived_at`, when the receiver's clock matters: now by default)."""
    from smsdesk.store.db import connect, transaction
    from smsdesk.store.inbound import RouteTable, store_messages

    db = connect(db_path)
    try:
        with transaction(db) as conn:
            store_messages(conn, RouteTable(), messages, arrived_at)
    finally:
        db.close()
