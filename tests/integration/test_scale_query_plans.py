"""Every read a view, a filter, the sender or a CLI command runs at scale has an index or a bounded read.

Like test_job_query_plans.py: each read is run as the TUI's data service or the CLI runs it, on a
real database holding messages, replies in every status, profiles, consent and a ledger; every
statement is traced and explained. No plan may scan messages, outbox, profiles or the consent
ledger, except the lines a read is allowed, each named here with why. Reads that depend on an
index of schema 16 must name it: `test_each_index_of_schema_16_is_needed` drops each in turn and
shows that its read's check then fails.

The log's substring filters (schema 18, store/message_search.py): free text and `num:` of three
characters or more search the trigram index `messages_search` (FTS5 explains it as a SCAN of the
virtual table with a MATCH: a search of its index), `cred:` the ranges of `messages_credential`;
one or two characters read a window of the newest messages (a range of the primary key).
`test_each_index_of_schema_18_is_needed` drops the index, the table and a trigger in turn.
Exports and `consent verify` read whole tables by design.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store import queries
from smsdesk.store.consent_history import consent_changes
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.store.message_search import index_new_messages
from smsdesk.store.outbox import SendOutcome, claim_due, record_outcomes
from smsdesk.store.queries import (
    MessageFilter,
    impact_preview,
    iter_message_export_rows,
    list_profiles,
    log_first_page,
    messages_at_offset,
    page_messages,
    profile_of,
)
from smsdesk.store.review import review_page
from smsdesk.tui.adapters import page_after, page_before, read_ledger
from tests.support.query_plans import full_text_search, plans, table_scans, traced
from tests.support.store import copy_db, rows

KEYWORDS = ("STOP", "START", "HELP", "hello", "YES", "DISCOUNT", "stpo")
NUMBERS = 2000
MESSAGES = 5000
LATER = 4.0e9
# SQLite counts a whole table without reading a row (the page count of its smallest index): the
# unfiltered totals ("N messages", "N profiles") are this, and explain as a scan of some index.
PAGE_COUNT = re.compile(r"SELECT COUNT\(\*\) FROM (messages m|messages|profiles p LEFT JOIN consent c "
                        r"ON c\.sandbox = p\.sandbox AND c\.number = p\.number)\s*")


def traffic_of(start: int, count: int) -> list[InboundMessage]:
    return [InboundMessage(f"scale-{start + i}", f"+4179{(start + i) % NUMBERS:07d}",
                           "+" + (SHOP_NUMBER if i % 2 else CLUB_NUMBER), KEYWORDS[(i // 2) % len(KEYWORDS)],
                           f"2026-11-{1 + i * 25 // count:02d}T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z")
            for i in range(count)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    club = club_credential(fuzzy_opt_out="review")
    db_path = make_db(tmp_path_factory.mktemp("scale-plans") / "template.db", shop_credential(), club)
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            store_messages(conn, RouteTable(), traffic_of(0, MESSAGES))
            while claimed := claim_due(conn, 1000, LATER - 1):
                record_outcomes(conn, [tuple(SendOutcome(row[0], "sent", f"ib-{row[0]}", "PENDING"))
                                       for row in claimed])
            store_messages(conn, RouteTable(), traffic_of(MESSAGES, 1000))  # a backlog, queued
            # Names as a renamed credential leaves them: `cred:sh` is two ranges to merge.
            conn.execute("UPDATE messages SET credential = 'Shop UK' WHERE credential = 'Shop' AND id % 3 = 0")
            while index_new_messages(conn):  # serve's indexer job: the trigram index holds them all
                pass
    finally:
        db.close()
    assert rows(db_path, "SELECT COUNT(*) FROM outbox WHERE status = 'queued'")[0][0] > 100
    assert rows(db_path, "SELECT COUNT(*) FROM review_queue WHERE status = 'open'")[0][0] > 10
    return db_path


@pytest.fixture()
def db_path(template: Path, tmp_path: Path) -> Path:
    return copy_db(template, tmp_path / "plans.db")


@dataclass(frozen=True)
class Read:
    """One read at scale: what runs it, the indexes its plan must use, the scan lines it may have."""

    run: Callable[[sqlite3.Connection], Any]
    needs: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    write: bool = False


def _end_of_log(conn: sqlite3.Connection) -> Any:
    total = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    top = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
    return messages_at_offset(conn, MessageFilter(), total - 30, 100, top=top, total=total)


def _oldest_first_end(conn: sqlite3.Connection) -> Any:
    total = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    top = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
    return messages_at_offset(conn, MessageFilter(), total - 30, 100, True, top, total)


def _windowed(read: Callable[[sqlite3.Connection], Any]) -> Callable[[sqlite3.Connection], Any]:
    """A short search on a log longer than its window (SCAN_WINDOW made small for these 6,000 rows)."""
    def run(conn: sqlite3.Connection) -> Any:
        saved, queries.SCAN_WINDOW = queries.SCAN_WINDOW, 500
        try:
            return read(conn)
        finally:
            queries.SCAN_WINDOW = saved
    return run


def _then_page_and_jump(filters: MessageFilter) -> Callable[[sqlite3.Connection], Any]:
    """The first screen, the next page, and a jump (End without an exact total walks the offset,
    at most COUNT_CAP rows), as the log reads with the filter it got back."""
    def run(conn: sqlite3.Connection) -> Any:
        page = log_first_page(conn, filters, 100)
        scope = page.filters or filters
        page_before(conn, scope, page.rows[-1].id if page.rows else page.top, 100)
        messages_at_offset(conn, scope, 150, 100, top=page.top, total=None if page.more else page.total)
        return messages_at_offset(conn, scope, 40, 100, True, page.top, None)
    return run


# The log's substring filters, each read it runs: free text and numbers through the trigram index,
# credentials through their ranges of messages_credential.
FILTERS = {"free text": MessageFilter(text="hello"), "free text, rare": MessageFilter(text="DISCOUNT"),
           "number": MessageFilter(number="79000001"), "number, common": MessageFilter(number="4179"),
           "cred, one name": MessageFilter(credential="club"), "cred, two names": MessageFilter(credential="sh"),
           "cred and text": MessageFilter(credential="sh", text="stop"),
           "cred and action": MessageFilter(credential="SH", action="opt-out"),
           "text and number": MessageFilter(text="hel", number="790000")}
INDEXED_BY = {"free text": "messages_search", "free text, rare": "messages_search", "number": "messages_search",
              "number, common": "messages_search", "cred, one name": "messages_credential",
              "cred, two names": "messages_credential", "cred and text": "messages_search",
              "cred and action": "messages_credential", "text and number": "messages_search"}

# A count that would walk every match counts the ids of a subquery that stops at COUNT_CAP + 1.
CAPPED_COUNT = tuple(f"SCAN (subquery-{n})" for n in range(1, 4))

NOW = datetime(2026, 11, 27, tzinfo=UTC)

READS: dict[str, Read] = {
    "log, first screen": Read(partial(log_first_page, filters=MessageFilter(), limit=100)),
    "log, oldest first": Read(partial(log_first_page, filters=MessageFilter(), limit=100, oldest_first=True)),
    "log, action filter beside a known total": Read(partial(
        log_first_page, filters=MessageFilter(action="opt-out"), limit=100, known_all=(4000, 4000)),
        needs=("messages_action",)),
    "log, review filter": Read(partial(log_first_page, filters=MessageFilter(action="review"), limit=100,
                                       known_all=(4000, 4000)), needs=("messages_action",)),
    "log, next page": Read(lambda conn: page_before(conn, MessageFilter(), 3000, 100)),
    "log, next page oldest first": Read(lambda conn: page_after(conn, MessageFilter(), 3000, 5500, 100)),
    "log, End": Read(_end_of_log),
    "log, End oldest first": Read(_oldest_first_end),
    # In the index's order, stopping at the page: a bounded read, no sort of every profile.
    **{f"log, {name}": Read(_then_page_and_jump(filters), allowed=CAPPED_COUNT) for name, filters in FILTERS.items()},
    "log, text of two characters": Read(_windowed(_then_page_and_jump(MessageFilter(text="ll"))),
                                        allowed=CAPPED_COUNT),
    "log, number of one character": Read(_windowed(_then_page_and_jump(MessageFilter(number="7"))),
                                         allowed=CAPPED_COUNT),
    "log, two characters beside a known total": Read(_windowed(partial(
        log_first_page, filters=MessageFilter(text="ST"), limit=100, known_all=(4000, 4000))), allowed=CAPPED_COUNT),
    "export, free text": Read(lambda conn: list(iter_message_export_rows(conn, MessageFilter(text="hello")))),
    "export, cred": Read(lambda conn: list(iter_message_export_rows(conn, MessageFilter(credential="club")))),
    "profiles, first screen": Read(partial(list_profiles, limit=500), needs=("profiles_last_seen",),
                                   allowed=("SCAN p USING INDEX profiles_last_seen",)),
    "profiles, one number": Read(lambda conn: profile_of(conn, "prod", "+41790000001")),
    "profile, ledger and messages": Read(
        lambda conn: read_ledger(conn, profile_of(conn, "prod", "+41790000001") or pytest.fail("no profile"))),
    "review, first screen": Read(partial(review_page, limit=1000)),
    "export consent --since": Read(lambda conn: list(consent_changes(conn, since="2026-11-20T00:00:00.000+00:00")),
                                   needs=("consent_ledger_received",)),
    "impact preview": Read(lambda conn: impact_preview(conn, 1, shop_credential(), now=NOW)),
    "outbox claim": Read(partial(claim_due, limit=100, now=LATER - 1), needs=("outbox_queued", "outbox_unfinished"),
                         allowed=("SCAN o USING INDEX outbox_queued",
                                  # the open Blocklist pushes only (a partial index; store/outbox.py)
                                  "SCAN blocklist_queue USING INDEX blocklist_queue_open"), write=True),
}


def problems(db_path: Path, read: Read) -> list[str]:
    """What is wrong with a read's plans: a scan it is not allowed, an index it does not use, or an error."""
    try:
        _, statements = traced(db_path, read.run, write=read.write)
    except sqlite3.Error as exc:
        return [f"fails: {exc}"]
    counted = [sql for sql in statements if not PAGE_COUNT.fullmatch(sql)]
    found = [f"{sql}: {lines}" for sql, lines in table_scans(db_path, counted, read.allowed).items()]
    details = " ".join(line for lines in plans(db_path, statements).values() for line in lines)
    found += [f"does not use {index}" for index in read.needs if f"INDEX {index}" not in details]
    return found


@pytest.mark.parametrize("name", sorted(READS))
def test_the_read_searches_or_is_bounded(db_path: Path, name: str) -> None:
    assert problems(db_path, READS[name]) == []


@pytest.mark.parametrize("name", sorted(READS))
def test_the_read_stays_searched_once_sqlite_has_statistics(db_path: Path, name: str) -> None:
    """serve runs PRAGMA optimize at start (ANALYZE where it helps): the plans must hold with statistics too."""
    conn = sqlite3.connect(db_path)
    conn.execute("ANALYZE")
    conn.close()
    assert problems(db_path, READS[name]) == []


INDEXES_OF_16 = {"outbox_queued": "outbox claim", "outbox_unfinished": "outbox claim",
                 "profiles_last_seen": "profiles, first screen", "consent_ledger_received": "export consent --since"}


@pytest.mark.parametrize("index", sorted(INDEXES_OF_16))
def test_each_index_of_schema_16_is_needed(db_path: Path, index: str) -> None:
    read = READS[INDEXES_OF_16[index]]
    assert problems(db_path, read) == []
    conn = sqlite3.connect(db_path)
    conn.execute(f"DROP INDEX {index}")
    conn.close()
    assert problems(db_path, read) != []


def test_the_log_total_is_not_a_count_with_its_newest_id(db_path: Path) -> None:
    """`COUNT(*), MAX(id)` in one statement reads every row; apart, MAX is one step down the key."""
    _, statements = traced(db_path, partial(log_first_page, filters=MessageFilter(), limit=100), write=False)
    assert not [sql for sql in statements if "COUNT(" in sql and "MAX(" in sql]


def test_a_filter_does_not_count_every_message_again(db_path: Path) -> None:
    """With the total the log already has, a filter counts only what arrived after it."""
    top = rows(db_path, "SELECT MAX(id) FROM messages")[0][0]
    page, statements = traced(db_path, partial(log_first_page, filters=MessageFilter(action="opt-out"), limit=100,
                                               known_all=(top - 10, top - 10)), write=False)
    unfiltered = [sql for sql in statements if "COUNT(" in sql and "WHERE" not in sql]
    assert unfiltered == []
    assert (page.all_total, page.all_top) == (top, top)  # the ten newer ones were counted


def uses(db_path: Path, read: Read, index: str) -> bool:
    """Whether some statement of the read searches `index` (the trigram index: a MATCH of its table)."""
    _, statements = traced(db_path, read.run, write=read.write)
    details = [line for lines in plans(db_path, statements).values() for line in lines]
    if index == "messages_search":
        return any(full_text_search(line) for line in details)
    return any(f"INDEX {index}" in line for line in details)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_substring_filter_reads_through_its_index(db_path: Path, name: str) -> None:
    assert uses(db_path, READS[f"log, {name}"], INDEXED_BY[name])


@pytest.mark.parametrize("name", sorted(FILTERS))
@pytest.mark.parametrize("dropped", ["DROP TABLE messages_search", "DROP INDEX messages_credential"])
def test_each_index_of_schema_18_is_needed(db_path: Path, name: str, dropped: str) -> None:
    read = READS[f"log, {name}"]
    assert problems(db_path, read) == []
    if INDEXED_BY[name] not in dropped:
        return
    conn = sqlite3.connect(db_path)
    conn.execute(dropped)
    conn.close()
    assert problems(db_path, read) != []


def test_the_index_is_kept_by_serve_and_its_delete_trigger(db_path: Path) -> None:
    """Messages stored after the mark are not in the index until serve's indexer job adds them
    (a search reads them by id meanwhile: store/message_search.py); a deleted indexed message
    leaves the index through its trigger, and without the trigger the index disagrees."""
    from smsdesk.store.message_search import indexed_upto

    conn = sqlite3.connect(db_path, isolation_level=None)

    def agree() -> bool:
        indexed = conn.execute("SELECT rowid FROM messages_search WHERE messages_search MATCH 'text : \"hello\"' "
                               "ORDER BY rowid").fetchall()
        return indexed == conn.execute("SELECT id FROM messages WHERE text LIKE '%hello%' ORDER BY id").fetchall()

    assert agree()
    conn.execute("INSERT INTO messages (id, message_id, received_at, stored_at, from_number, to_number, text, "
                 "normalized, action) SELECT MAX(id) + 1, 'late', '', '', '+41791111111', '+1', 'hello late', "
                 "'', 'default' FROM messages")
    assert not agree()  # above the mark: not indexed yet
    assert MessageFilter(text="hello").search(conn).indexed_upto == indexed_upto(conn)
    found = [row.id for row in page_messages(conn, filters=MessageFilter(text="hello late"))]
    assert found == [row[0] for row in conn.execute("SELECT MAX(id) FROM messages")]  # read by id meanwhile
    assert index_new_messages(conn) == 1 and agree()
    assert index_new_messages(conn) == 0  # nothing above the mark: nothing written
    conn.execute("DELETE FROM messages WHERE id = (SELECT MIN(id) FROM messages WHERE text = 'hello')")
    assert agree()
    conn.execute("DROP TRIGGER messages_search_deleted")
    conn.execute("DELETE FROM messages WHERE id = (SELECT MIN(id) FROM messages WHERE text = 'hello')")
    assert not agree()
    conn.close()


def test_a_short_search_on_a_short_log_reads_it_all(db_path: Path) -> None:
    """Shorter than the window, the log is read whole: a bounded read, said by no window."""
    page, _ = traced(db_path, partial(log_first_page, filters=MessageFilter(text="ll"), limit=100), write=False)
    assert page.filters == MessageFilter(text="ll")
