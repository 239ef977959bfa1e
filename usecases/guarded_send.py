"""The consent guard of a message sent by hand (`smsdesk send`, the TUI's test SMS).

A number that opted out (consent n) in the credential's sandbox is refused unless the operator
overrides; an override is recorded in the audit, with the OS user, before the request leaves
(store/send_override.py), so a send to an opted-out number never happens unrecorded. The front
ends send the message themselves (their own client, timeout and tries) once both steps passed.
Both functions take the connection first, so the TUI runs them on its data service's threads.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

import sqlite_utils

from smsdesk.domain.credential import StoredCredential
from smsdesk.store.db import transaction
from smsdesk.store.send_override import OptedOut, audit_override, opted_out
from smsdesk.usecases.operator import os_user


class SendRefused(Exception):
    """The number opted out and no override was given: nothing may leave the machine."""

    def __init__(self, opted: OptedOut) -> None:
        super().__init__(opted.refusal())
        self.opted = opted


def check_consent(conn: sqlite3.Connection, sandbox: str, to: str, override: bool) -> OptedOut | None:
    """None when consent allows sending to `to` (E.164) in `sandbox`; the opt-out when `override`
    sends anyway (audit it with `record_override` before sending); SendRefused otherwise."""
    opted = opted_out(conn, sandbox, to)
    if opted is not None and not override:
        raise SendRefused(opted)
    return opted


def record_override(db: sqlite_utils.Database, cred: StoredCredential, opted: OptedOut, our_message_id: str,
                    via: Literal["cli", "tui"]) -> None:
    """The audit row of an override, committed before the message is sent."""
    with transaction(db) as conn:
        audit_override(conn, cred, opted, our_message_id, via=via, by=os_user())
