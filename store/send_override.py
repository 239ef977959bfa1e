"""The consent check before a message sent by hand (`smsdesk send`, the TUI's test SMS).

Like Infobip and Twilio, which refuse a destination that has opted out, a number whose consent
is `n` in the credential's sandbox is refused. An operator can override it, explicitly; each
override is written to the `audit` table before the request leaves, so a send to an opted-out
number never happens unrecorded (if the send then fails, the row still records the decision).

The audit row names the number in full (E.164), unlike the masked API keys elsewhere: it exists
to answer "who sent this to me after I said STOP", which a masked number cannot, and the same
database already holds the full number in its consent ledger. It carries no message text.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.phone import consent_number
from smsdesk.store.db import utcnow

OVERRIDE_ACTION = "send-override-opt-out"
OVERRIDE_FLAG = "--override-opt-out"


@dataclass(frozen=True)
class OptedOut:
    sandbox: str
    number: str  # E.164, as consent stores it
    since: str  # Infobip's receivedAt of the opt-out when known, else when it was stored (UTC ISO)

    @property
    def when(self) -> str:
        return self.since[:16].replace("T", " ") + " UTC" if self.since else "an unknown date"

    def refusal(self, how_to_override: str = f"pass {OVERRIDE_FLAG} to send anyway") -> str:
        return f"refused: {self.number} opted out of sandbox {self.sandbox!r} on {self.when}; {how_to_override}"


def opted_out(conn: sqlite3.Connection, sandbox: str, e164: str) -> OptedOut | None:
    """The opt-out that forbids sending to `e164` in `sandbox`, or None (consent y, p or none)."""
    number = consent_number(e164)
    row = conn.execute(
        "SELECT consent, COALESCE(NULLIF(received_at, ''), changed_at) FROM consent WHERE sandbox = ? AND number = ?",
        (sandbox, number)).fetchone()
    if row is None or row[0] != "n":
        return None
    return OptedOut(sandbox, number, row[1] or "")


def audit_override(conn: sqlite3.Connection, cred: StoredCredential, opted: OptedOut, our_message_id: str,
                   *, via: str, by: str) -> None:
    """Record an override (call inside a transaction, before sending). `via`: 'cli' or 'tui';
    `by`: the operator (usecases/guarded_send.py names the OS user)."""
    details = {"to": opted.number, "sandbox": opted.sandbox, "opted_out_at": opted.since,
               "our_message_id": our_message_id, "via": via}
    conn.execute(
        "INSERT INTO audit (at, os_user, action, credential_id, credential_name, fields) VALUES (?, ?, ?, ?, ?, ?)",
        (utcnow(), by, OVERRIDE_ACTION, cred.id, cred.name, json.dumps(details, sort_keys=True)))
