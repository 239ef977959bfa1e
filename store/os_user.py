"""Who is at the keyboard: the OS user named in the ledger and the audit table."""

from __future__ import annotations

import getpass


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers: the ledger still records something
        return "unknown"
