"""The double opt-in expiry sweep: pending numbers that never confirmed stop being pending.

A pending (`p`) number whose double opt-in was not confirmed within its credential's
`double_opt_in_expiry_days` goes back to the consent it had before (never expressed, or `n`),
with an `expired` ledger entry timed at the moment it expired: the same change store/inbound.py
makes when such a number texts again, made here for numbers that never do. `serve` runs it
through its writer every few minutes; `smsdesk consent expire` runs it at once.
"""

from __future__ import annotations

import sqlite3

from smsdesk.store.db import utcnow
from smsdesk.store.inbound import consent_before_pending
from smsdesk.store.rules import pending_expires_at

DEFAULT_EXPIRY_DAYS = 30  # when the credential that made the number pending is gone

# Each pending number with the expiry of the credential whose message made it pending.
_PENDING = """SELECT c.sandbox, c.number, c.received_at,
    (SELECT k.double_opt_in_expiry_days FROM consent_ledger l
        JOIN messages m ON m.id = l.message_row_id JOIN credentials k ON k.id = m.credential_id
        WHERE l.sandbox = c.sandbox AND l.number = c.number AND l.new = 'p' AND l.effect = 'changed'
        ORDER BY l.id DESC LIMIT 1)
    FROM consent c WHERE c.consent = 'p'"""


def expire_pending(conn: sqlite3.Connection, now: str | None = None) -> int:
    """Expire every pending double opt-in past its time (a writer job). Returns how many."""
    moment = now or utcnow()
    at = utcnow()
    expired = 0
    for sandbox, number, since, days in conn.execute(_PENDING).fetchall():
        days = DEFAULT_EXPIRY_DAYS if days is None else int(days)
        expires_at = pending_expires_at(since, days)
        if not expires_at or expires_at > moment:
            continue
        prior = consent_before_pending(conn, sandbox, number, [])
        conn.execute(
            "INSERT INTO consent_ledger (at, sandbox, number, old, new, message_row_id, reason, received_at, effect) "
            "VALUES (?, ?, ?, 'p', ?, NULL, ?, ?, 'expired')",
            (at, sandbox, number, prior,
             f"double opt-in pending since {since} not confirmed within {days} days: expired", expires_at))
        if prior:
            conn.execute("UPDATE consent SET consent = ?, changed_at = ?, received_at = ? "
                         "WHERE sandbox = ? AND number = ?", (prior, at, expires_at, sandbox, number))
        else:  # back to "never expressed": the consent table holds y, n and p only
            conn.execute("DELETE FROM consent WHERE sandbox = ? AND number = ?", (sandbox, number))
        expired += 1
    return expired
