"""An operator's decision about a queued near miss (opt the number out, or dismiss it), as
`smsdesk review resolve` and the TUI's review queue make it: recorded with the OS user."""

from __future__ import annotations

import sqlite_utils

from smsdesk.store.review import Resolution, ReviewChoice, resolve
from smsdesk.usecases.operator import os_user


def decide_review(db: sqlite_utils.Database, review_id: int, choice: ReviewChoice) -> Resolution:
    """Close review `review_id` with `choice`; the ledger names the operator at the keyboard."""
    return resolve(db, review_id, choice, by=os_user())
