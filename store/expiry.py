"""The double opt-in expiry sweep: pending numbers that never confirmed stop being pending.

A pending (`p`) number whose double opt-in was not confirmed within the days of the credential
its opt-in came through goes back to the consent it had before (none, or `n`), with an `expired`
ledger entry timed at the moment it expired: the decider's ExpiryCheck, the same change a message
from such a number makes on arrival. The row stays (consent '' since the expiry), so a late
confirmation sent inside the window still counts. `serve` runs it through its writer every few
minutes; `smsdesk consent expire` runs it at once.
"""

from __future__ import annotations

import sqlite3

from smsdesk.domain.consent_decider import ExpiryCheck, decide
from smsdesk.store.consent_store import ConsentWrite, pending_states, write_consent
from smsdesk.store.db import utcnow


def expire_pending(conn: sqlite3.Connection, now: str | None = None) -> int:
    """Expire every pending double opt-in past its time (a writer job). Returns how many."""
    moment = now or utcnow()
    writes = []
    for (sandbox, number), state in pending_states(conn).items():
        outcome = decide(state, ExpiryCheck(moment), moment)
        if outcome.entries:
            writes.append(ConsentWrite(sandbox, number, outcome))
    write_consent(conn, writes, moment)
    return len(writes)
