"""Who is at the keyboard: the OS user a use case names in the consent ledger and the audit table.

Not storage: the store writes whatever name it is given (its `by`), so only the use cases, which
act for the person at the keyboard, ask the operating system."""

from __future__ import annotations

import getpass


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers: the ledger still records something
        return "unknown"
