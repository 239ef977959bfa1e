"""The TUI's store and Infobip calls, each shaped for how the TUI runs I/O: never on the UI thread.

Store calls take their connection first, a `sqlite3.Connection` for a read (the pool thread's
reader) or a `sqlite_utils.Database` for a write, so a screen hands them to the data service
(tui/data.py) as `data.read(call, ...)` or `data.write(call, ...)`. No SQL here: these only adapt
store/ functions to what a screen shows. Infobip calls are awaited by async workers (network I/O
the event loop waits on, unlike SQLite, which blocks); the client and httpx are imported on the
first call, so they cost the TUI's startup nothing.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from smsdesk.domain.inert import make_inert
from smsdesk.store.consent_history import consent_changes, count_consent_changes, evidence
from smsdesk.store.message_search import COUNT_CAP
from smsdesk.store.queries import (
    MessageFilter,
    MessageRow,
    Profile,
    consent_ledger,
    count_profiles,
    count_profiles_up_to,
    iter_message_export,
    list_profiles,
    messages_by_id,
    messages_of,
    page_messages,
)
from smsdesk.tui.profile_filter import NO_FILTER
from smsdesk.usecases.exports import inert_json, write_jsonl

if TYPE_CHECKING:
    from rich.text import Text

    from smsdesk.domain.credential import Credential, StoredCredential
    from smsdesk.infobip.client import InfobipClient
    from smsdesk.infobip.errors import InfobipError
    from smsdesk.tui.data import DataService

PROFILE_PAGE = 500  # the profiles listed at once; the count covers every match

# Someone is watching a spinner: give up sooner than the server-side defaults (15 s, 4 tries).
TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0

# ---- the inbound log -----------------------------------------------------------------------------


def page_before(conn: sqlite3.Connection, filters: MessageFilter, before_id: int | None,
                limit: int) -> list[MessageRow]:
    return page_messages(conn, before_id=before_id, limit=limit, filters=filters)


def page_after(conn: sqlite3.Connection, filters: MessageFilter, after_id: int, top: int,
               limit: int) -> list[MessageRow]:
    return page_messages(conn, after_id=after_id, before_id=top + 1, limit=limit, filters=filters,
                         oldest_first=True)


# ---- profiles ------------------------------------------------------------------------------------


def read_profiles(conn: sqlite3.Connection, filters: dict[str, Any],
                  order: str = "last seen") -> tuple[list[Profile], int, int, bool]:
    """The first PROFILE_PAGE matches, how many match, how many profiles there are in all, and
    whether the count stopped at COUNT_CAP (more match). A page shorter than PROFILE_PAGE is every
    match: nothing is counted then."""
    profiles = list_profiles(conn, limit=PROFILE_PAGE, order=order, **filters)
    everyone = count_profiles(conn)
    if filters == NO_FILTER:
        return profiles, everyone, everyone, False
    if len(profiles) < PROFILE_PAGE:
        return profiles, len(profiles), everyone, False
    total, more = count_profiles_up_to(conn, COUNT_CAP, **filters)
    return profiles, total, everyone, more


def read_history(conn: sqlite3.Connection, arguments: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    """Profiles' consent history: the newest PROFILE_PAGE changes matching, how many match, for
    how many numbers (`arguments`: tui/profile_filter.py's HistoryFilter.ledger_arguments)."""
    changes = list(consent_changes(conn, **arguments, newest_first=True, limit=PROFILE_PAGE))
    return changes, *count_consent_changes(conn, **arguments)


LedgerRead = tuple[list[dict[str, Any]], dict[int, MessageRow | None], list[MessageRow]]


def read_ledger(conn: sqlite3.Connection, p: Profile) -> LedgerRead:
    """A number's consent ledger, the message behind each entry (by row id), its latest messages."""
    ledger = consent_ledger(conn, p.sandbox, p.number)
    messages = messages_of(conn, p.sandbox, p.number)
    found = messages_by_id(conn, [e["message_row_id"] for e in ledger if e["message_row_id"]])
    causes = {e["message_row_id"]: found.get(e["message_row_id"]) for e in ledger}
    return ledger, causes, messages


# ---- Infobip -------------------------------------------------------------------------------------


def interactive_client(cred: Credential, *, max_attempts: int = 1) -> InfobipClient:
    from smsdesk.infobip.client import InfobipClient

    return InfobipClient(cred.base_url, cred.api_key, timeout=TIMEOUT_SECONDS,
                         connect_timeout=CONNECT_TIMEOUT_SECONDS, max_attempts=max_attempts,
                         max_retry_seconds=TIMEOUT_SECONDS)


async def infobip_side(client: InfobipClient, cred: StoredCredential, data: DataService | None) -> Text:
    """The verify screen's lines after the balance: where the inbound number's messages go (one
    line, from its inbound configuration at Infobip), and, read by the data service off the UI
    thread, the Blocklist pushes waiting and the last reconcile. Red only for a problem."""
    from rich.text import Text

    from smsdesk.usecases.infobip_side import blocklist_status, check_forwarding, public_url

    forwarding = await check_forwarding(client, cred, public_url())
    style = "green" if forwarding.ok else "red" if forwarding.ok is False else ""
    text = Text(forwarding.line, style=style)
    if data is not None and cred.blocklist_sync.pushes:
        queued, last = await data.read(blocklist_status, cred.id)
        waiting = f"{queued} push{'' if queued == 1 else 'es'} waiting for serve" if queued else "nothing waiting"
        text.append(f"\nBlocklist sync {cred.blocklist_sync}: {waiting}")
        text.append("\n" + make_inert(last.line() if last else "never reconciled (smsdesk consent reconcile)"))
    return text


def error_lines(exc: InfobipError) -> list[str]:
    """One headline and one line per violation, inert (Infobip's text is not ours to trust).

    InfobipError never carries the API key (infobip/errors.py builds messages from the status,
    Infobip's own text and the host only), so these lines are safe to show.
    """
    head = f"HTTP {exc.status}" if exc.status is not None else exc.kind.value
    if exc.code:
        head += f" {exc.code}"
    lines = [make_inert(f"{head}: {exc.text}" if exc.text else head)]
    lines.extend(make_inert(f"  • {prop}: {violation}" if prop else f"  • {violation}")
                 for prop, violation in exc.violations)
    if exc.action:
        lines.append(make_inert(exc.action))
    return lines


# Exports from the TUI, on a data-service thread: what the log shows (its filter) as JSON Lines,
# the rows and bytes of `smsdesk export messages --format jsonl`, oldest first; the consent
# history Profiles shows, those of `smsdesk export consent --since ...`; and one number's
# evidence record, the bytes of `smsdesk consent evidence --json`. All written by
# usecases/exports.py, as the CLI writes them.

def _new_private_file(path: Path) -> TextIO:
    """`path` opened for writing, 0600, never over an existing file."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8")


def export_file_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"smsdesk-messages-{moment}.jsonl"


def export_messages(conn: sqlite3.Connection, filters: MessageFilter, path: Path) -> int:
    """Write the matching messages to `path` (0600, never over an existing file); the count."""
    with _new_private_file(path) as out:
        return write_jsonl(iter_message_export(conn, filters), out)


def history_file_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"smsdesk-consent-{moment}.jsonl"


def export_history(conn: sqlite3.Connection, arguments: dict[str, Any], path: Path) -> int:
    """Write the consent history Profiles shows to `path` (0600, never over an existing file),
    oldest first: the rows and bytes of `smsdesk export consent --since ... --format jsonl`."""
    with _new_private_file(path) as out:
        return write_jsonl(consent_changes(conn, **arguments), out)


def evidence_file_name(number: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c for c in number if c.isalnum()) or "number"  # a name stored as received may hold anything
    return f"smsdesk-evidence-{safe}-{moment}.json"


def export_evidence(conn: sqlite3.Connection, sandbox: str, number: str, path: Path) -> str:
    """Write the number's evidence record to `path` (0600, never over an existing file); its digest."""
    record = evidence(conn, sandbox, number)
    with _new_private_file(path) as out:
        out.write(inert_json(record, indent=2) + "\n")
    return str(record["digest"])
