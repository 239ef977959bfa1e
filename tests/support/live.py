"""Fixed inbound traffic for the live log, profiles and tester tests (Pilot and snapshots).

Messages go through the real pipeline (`store.inbound.store_messages`), so consent, the
ledger, attributes and queued replies are what production would write.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store.db import connect, transaction, utcnow
from smsdesk.store.inbound import InboundMessage, RouteTable, StoredOutcome, store_messages
from smsdesk.store.schema import recount_traffic
from smsdesk.tui import textual_private

SHOP = "+" + SHOP_NUMBER
CLUB = "+" + CLUB_NUMBER
ALICE = "+41793026727"
BOB = "+41793026728"
CAROL = "+41793026729"
DORA = "+385911111111"
EVE = "+385922222222"
STRANGER = "+41790000000"
# The clock the traffic strip is given in snapshots: half an hour after the seed traffic.
FIXED_NOW = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)

# (from, to, text, minute:second after 09:00 on 2025-01-15), oldest first.
SEED: tuple[tuple[str, str, str, str], ...] = (
    (ALICE, SHOP, "YES", "00:01"),
    (ALICE, SHOP, "DISCOUNT", "01:02"),
    (BOB, SHOP, "STOP please", "02:03"),
    (DORA, CLUB, "join", "03:04"),
    (DORA, CLUB, "START", "04:05"),
    (DORA, CLUB, "confirm", "05:06"),
    (STRANGER, "+41000000001", "wrong number", "06:07"),
    (CAROL, SHOP, "HELP", "07:08"),
    (CAROL, SHOP, "Do you ship to Zürich? 🚚", "08:09"),
    (EVE, CLUB, "start", "09:10"),
)
_ids = itertools.count(1)


def inbound(sender: str, to: str, text: str, at: str | None = None,
            message_id: str | None = None) -> InboundMessage:
    """Without `at`, each message a millisecond after the one before from 10:00 on the seed's day
    (consent follows receivedAt, and equal times would go to the opt-out)."""
    number = next(_ids)
    at = at or f"2025-01-15T10:00:{number // 1000 % 60:02d}.{number % 1000:03d}+00:00"
    return InboundMessage(message_id or f"live-{number}", sender, to, text, at)


def store(db_path: Path, *messages: InboundMessage, arrived_at: str | None = None) -> list[StoredOutcome]:
    """Store through the pipeline on a connection of its own, as the server process would
    (arriving now, or at `arrived_at`: the consent decider's clock)."""
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            return store_messages(conn, RouteTable(), list(messages), arrived_at)
    finally:
        db.close()


def seed_db(path: Path, *, stored_at_received: bool = False) -> Path:
    """Shop (STOP/YES, DISCOUNT keyword, default reply) and Club (double opt-in) with SEED stored.

    `stored_at_received` pins `stored_at` to the fixed receive times (for a fixed clock).
    The HELP reply to Carol is marked delivered, the opt-out reply to Bob failed.
    """
    make_db(path, shop_credential(), club_credential())
    # Decided as they arrived, on that day (a double opt-in pending since then expired long ago)...
    store(path, *(inbound(sender, to, text, f"2025-01-15T09:{when}.000+00:00", f"seed-{i}")
                  for i, (sender, to, text, when) in enumerate(SEED)), arrived_at="2025-01-15T09:10:00.000+00:00")
    db = connect(path)
    try:
        with transaction(db) as conn:
            # ... and shown as stored now (the traffic strip's recent minutes), or at those times.
            conn.execute("UPDATE messages SET stored_at = received_at" if stored_at_received else
                         "UPDATE messages SET stored_at = ?", () if stored_at_received else (utcnow(),))
            recount_traffic(conn)  # and the counts the writer keeps, recut to match
            conn.execute(
                "UPDATE outbox SET status = 'delivered', delivery_status = 'DELIVERED', "
                "delivery_detail = 'DELIVERED_TO_HANDSET: Message delivered to handset' "
                "WHERE message_row_id = (SELECT id FROM messages WHERE text = 'HELP')")
            conn.execute(
                "UPDATE outbox SET status = 'failed', last_error = 'HTTP 401: invalid login details' "
                "WHERE message_row_id = (SELECT id FROM messages WHERE text = 'STOP please')")
    finally:
        db.close()
    return path


def row_counts(path: Path) -> dict[str, int]:
    db = connect(path)
    try:
        return {table: db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("messages", "outbox", "consent", "consent_ledger", "profiles", "profile_attributes")}
    finally:
        db.close()


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 5.0,
                     what: str = "condition") -> float:
    """Poll the UI (letting it run) until `condition()`; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        await pilot.pause(0.02)
    if condition():
        return time.monotonic() - start
    raise AssertionError(f"{what} not reached within {seconds} s")


def screen_lines(pilot: Pilot[None]) -> list[str]:
    """The text of every terminal line as the compositor would paint it."""
    return textual_private.screen_lines(pilot.app.screen)


def screen_text(pilot: Pilot[None]) -> str:
    """What the terminal shows, as text: proves rows are drawn, not only held."""
    return "\n".join(screen_lines(pilot))
