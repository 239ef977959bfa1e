"""An opt-out that reached the operator by phone, email or letter, as `smsdesk consent opt-out`
and the TUI's profiles record it: in the ledger with the OS user."""

from __future__ import annotations

import sqlite_utils

from smsdesk.store.operator_opt_out import OperatorDecision, opt_out_number
from smsdesk.usecases.operator import os_user


def opt_out_by_operator(db: sqlite_utils.Database, sandbox: str, number: str, reason: str) -> OperatorDecision:
    """Opt `number` out of `sandbox` for `reason` (ValueError with a user-facing reason for bad input)."""
    return opt_out_number(db, sandbox, number, reason, by=os_user())
