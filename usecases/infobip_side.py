"""The Infobip side of a credential, as `smsdesk creds verify/connect`, `smsdesk consent
reconcile` and the TUI's verify screen use it: is the number's inbound forwarded to this desk,
set it to be, and bring Infobip's Blocklist and the consent here together.

Network calls are awaited (the TUI runs them in async workers); store calls take the database or
a connection first, as everywhere in the use cases.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import sqlite_utils

from smsdesk.domain.credential import BlocklistSync, InboundMode, StoredCredential
from smsdesk.domain.inert import make_inert
from smsdesk.domain.infobip_side import (
    MO_FORMAT,
    Difference,
    DifferenceKind,
    ForwardingState,
    blocklist_differences,
    forwarding_verdict,
    inbound_url,
    shown_url,
)
from smsdesk.domain.phone import stored_number
from smsdesk.infobip.client import (
    BLOCKLIST_SCOPE,
    INBOUND_CONFIG_SCOPE,
    InboundConfiguration,
    InfobipClient,
    RetryPolicy,
    missing_scope,
)
from smsdesk.infobip.errors import InfobipError
from smsdesk.store.blocklist_queue import BLOCK, UNBLOCK, enqueue, list_pushes, open_counts, open_numbers
from smsdesk.store.blocklist_reconcile import (
    ReconcileRecord,
    audit_inbound_connect,
    consent_of_sandbox,
    last_reconcile,
    record_blocklist_opt_out,
    save_reconcile,
)
from smsdesk.store.db import transaction, utcnow
from smsdesk.usecases.operator import os_user

PUBLIC_URL_ENV = "SMSDESK_PUBLIC_URL"  # this desk's public webhook base URL (README, "Configuration")
WEBHOOK_USER_ENV = "SMSDESK_WEBHOOK_USER"
WEBHOOK_PASSWORD_ENV = "SMSDESK_WEBHOOK_PASSWORD"
ONE_TRY = RetryPolicy(max_attempts=1)  # a person is waiting


def public_url() -> str:
    return os.environ.get(PUBLIC_URL_ENV, "").strip()


# --------------------------------------------------------------------------- inbound forwarding

@dataclass(frozen=True, slots=True)
class ForwardingCheck:
    line: str  # one line, inert, no credentials of any URL
    ok: bool | None  # None: not checked (no inbound number, or the configuration could not be read)
    state: ForwardingState | None = None


async def check_forwarding(client: InfobipClient, cred: StoredCredential, desk_url: str) -> ForwardingCheck:
    """Read the number's inbound configuration and say where its messages go, in one line."""
    if not cred.inbound_number:
        return ForwardingCheck("no inbound number: no inbound configuration to check", None)
    try:
        configs = await client.inbound_configurations(cred.inbound_number, policy=ONE_TRY)
    except InfobipError as exc:
        line = missing_scope(exc, INBOUND_CONFIG_SCOPE, "read the inbound configuration")
        return ForwardingCheck(make_inert(line or f"inbound configuration not readable: {exc}"), None)
    verdict = forwarding_verdict(configs, str(cred.inbound_mode), desk_url)
    return ForwardingCheck(verdict.line, verdict.ok, verdict.state)


@dataclass(frozen=True)
class ForwardingTarget:
    """What `creds connect` sets: forwarding to `url` (with the webhook's Basic auth in it, never
    shown: `shown`), or pull for a credential in pull mode."""

    pull: bool
    url: str = field(default="", repr=False)
    shown: str = ""

    def describe(self) -> str:
        return "set for pull" if self.pull else f"forward to {self.shown} in {MO_FORMAT}"


def forwarding_target(cred: StoredCredential, desk_url: str) -> ForwardingTarget:
    """Where the number should send its messages; ValueError (a user-facing reason) when the desk's
    public URL is needed but not set or not a URL."""
    if cred.inbound_mode == InboundMode.PULL:
        return ForwardingTarget(pull=True)
    if not desk_url:
        raise ValueError(f"set {PUBLIC_URL_ENV} to this desk's public URL (e.g. https://sms.example.com)")
    url = inbound_url(desk_url)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{PUBLIC_URL_ENV} must be an https:// URL, e.g. https://sms.example.com")
    user, password = os.environ.get(WEBHOOK_USER_ENV, ""), os.environ.get(WEBHOOK_PASSWORD_ENV, "")
    if user and password:  # serve requires Basic auth: Infobip sends it from the URL's user info
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return ForwardingTarget(pull=False, url=url, shown=shown_url(url))


async def connect_forwarding(db: sqlite_utils.Database, client: InfobipClient, cred: StoredCredential,
                             target: ForwardingTarget) -> InboundConfiguration:
    """Set the number's keyword-less inbound configuration at Infobip, then audit it (OS user)."""
    if target.pull:
        config = await client.set_pull(cred.inbound_number, policy=ONE_TRY)
    else:
        config = await client.set_forwarding(cred.inbound_number, target.url, policy=ONE_TRY)
    with transaction(db) as conn:
        audit_inbound_connect(conn, cred.id, cred.name, by=os_user(), at=utcnow())
    return config


# --------------------------------------------------------------------------- the Blocklist

@dataclass
class ReconcileResult:
    credential: StoredCredential
    differences: list[Difference] = field(default_factory=list)
    error: str = ""
    applied: bool = False
    brought_here: int = 0
    pushed: int = 0
    queued: int = 0  # pushes that failed now and wait in the queue for serve
    waiting: int = 0  # numbers left out: a push of theirs already waits in the queue
    left: list[str] = field(default_factory=list)  # what --apply leaves as it is, and why

    def record(self) -> ReconcileRecord:
        count = {kind: sum(1 for d in self.differences if d.kind == kind) for kind in DifferenceKind}
        return ReconcileRecord(self.credential.id, utcnow(), self.applied, count[DifferenceKind.BLOCKED_THERE],
                               count[DifferenceKind.OPTED_OUT_HERE], count[DifferenceKind.OPTED_IN_AFTER],
                               self.brought_here, self.pushed, self.error)


def reconcilable(creds: list[StoredCredential], sandbox: str | None) -> list[StoredCredential]:
    """The credentials reconcile compares: those whose blocklist_sync is push or two-way."""
    return [c for c in creds
            if c.blocklist_sync.pushes and c.reply_sender and (sandbox is None or c.sandbox == sandbox)]


async def reconcile(db: sqlite_utils.Database, client: InfobipClient, cred: StoredCredential, *,
                    apply: bool) -> ReconcileResult:
    """The differences between the Blocklist (this credential's sender, SMS) and consent in the
    credential's sandbox; with `apply`, brought together: a block there becomes an opt-out here
    (two-way only; cause infobip-blocklist), an opt-out here is blocked there, an opt-in here
    after a block unblocks it. Pushes that fail now go to the queue. Recorded for the TUI."""
    result = ReconcileResult(cred, applied=apply)
    sender = cred.reply_sender
    try:
        blocks = await client.blocklist(sender=sender, policy=ONE_TRY)
    except InfobipError as exc:
        result.error = make_inert(missing_scope(exc, BLOCKLIST_SCOPE, "read the Blocklist")
                                  or f"the Blocklist could not be read: {exc}")
        with transaction(db) as conn:
            save_reconcile(conn, result.record())
        return result
    waiting = open_numbers(db.conn, cred.id)
    result.waiting = len(waiting)
    result.differences = blocklist_differences(
        [(stored_number(b.destination), b) for b in blocks if b.channel in ("SMS", "")],
        consent_of_sandbox(db.conn, cred.sandbox), waiting)
    if apply:
        for difference in result.differences:
            await _bring_together(db, client, cred, difference, result)
    with transaction(db) as conn:
        save_reconcile(conn, result.record())
    return result


async def _bring_together(db: sqlite_utils.Database, client: InfobipClient, cred: StoredCredential,
                          difference: Difference, result: ReconcileResult) -> None:
    number, sender = difference.number, cred.reply_sender
    if difference.kind == DifferenceKind.BLOCKED_THERE:
        if cred.blocklist_sync != BlocklistSync.TWO_WAY:
            result.left.append(f"{number}: blocked there, not brought here ({cred.name} is push only; two-way "
                               "brings blocks here)")
            return
        reason = (f"on Infobip's Blocklist for {sender} (sourceType {difference.source_type or '-'}, since "
                  f"{difference.blocked_at or '-'}), found by consent reconcile")
        with transaction(db) as conn:
            record_blocklist_opt_out(conn, cred.sandbox, number, reason, by=os_user(), now=utcnow(),
                                     credential_id=cred.id)
        result.brought_here += 1
        return
    action = BLOCK if difference.kind == DifferenceKind.OPTED_OUT_HERE else UNBLOCK
    try:
        if action == BLOCK:
            await client.block(sender, number, policy=ONE_TRY)
        else:
            await client.unblock(sender, number, policy=ONE_TRY)
        result.pushed += 1
    except InfobipError as exc:
        # Not lost: the queue pushes it (serve), reading the Blocklist first if this one's answer was lost.
        with transaction(db) as conn:
            push_id = enqueue(conn, cred.id, cred.sandbox, number, sender, action, utcnow())
            if exc.outcome_unknown:
                conn.execute("UPDATE blocklist_queue SET status = 'unknown', last_error = ? WHERE id = ?",
                             (str(exc)[:500], push_id))
        result.queued += 1
        scope = missing_scope(exc, BLOCKLIST_SCOPE, "change the Blocklist")
        result.left.append(make_inert(f"{number}: {scope or exc}; queued for serve"))


def blocklist_status(conn: sqlite3.Connection, credential_id: int) -> tuple[int, ReconcileRecord | None]:
    """For the TUI: the credential's open pushes and its last reconcile."""
    return open_counts(conn).get(credential_id, 0), last_reconcile(conn, credential_id)


__all__ = ["ForwardingCheck", "ForwardingTarget", "ReconcileResult", "blocklist_status", "check_forwarding",
           "connect_forwarding", "forwarding_target", "list_pushes", "public_url", "reconcilable", "reconcile"]
