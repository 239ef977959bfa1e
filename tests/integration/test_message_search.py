"""The log's substring filters through the trigram index (schema 18, store/message_search.py) mean
what their LIKE scan meant: a literal substring (ASCII letters in any case; %, _, quotes and FTS5's
own syntax are plain characters), `cred:` a prefix of the stored name in any case. Every read is
compared with the LIKE scan of `MessageFilter.where` on the same rows of a real SQLite file; the
index forgets purged messages; a database made before schema 18 is indexed by the migration."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store import queries
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.message_search import index_new_messages
from smsdesk.store.queries import MessageFilter, count_and_top, log_first_page, messages_at_offset, page_messages
from smsdesk.store.retention import purge
from tests.support.store import copy_db, rows, store_directly

SHOP = "+447491163443"
TEXTS = ("hello there", "HELLO THERE", "Hello", "100% sure", "100 percent", "a_b", "axb", 'say "stop" now',
         "it's ok", "Ünïcödé ÉCOLE école", "emoji 🎉🎉 party 🎉", "Kelvin \u212a sign", "İstanbul istanbul",
         "straße STRASSE", "AND OR NOT NEAR(a b)", "col:value text:x", "star*", "back\\slash", "ok", "o",
         "zz", "line\nbreak", "tab\there", "   ", "ﬀ ligature", "ΣΊΣΥΦΟΣ σίσυφος")
NEEDLES = ("", "h", "he", "hel", "hello", "HELLO", "hElLo tHeRe", "100%", "% s", "%", "_", "a_b", "a%b", '"',
           '""', '"stop"', "'", "it's", "AND", "NEAR(", "NEAR(a", "*", "star*", "col:", "text:x", "ünï", "ÜNÏ",
           "école", "ÉCOLE", "école", "🎉", "🎉🎉", "y 🎉", "kelvin k", "k sign", "\u212a sign", "i̇stanbul",
           "İst", "ist", "straße", "STRASSE", "sse", "\\", "k\\s", "line\nb", "\t", "   ", "ff", "ﬀ l",
           "σίσυφος", "ΣΊΣΥΦΟΣ", "zzz", "\x00", "o", "ok")


def later(n: int) -> str:
    return (datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(timespec="milliseconds")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_db(tmp_path_factory.mktemp("search") / "s.db", shop_credential())
    messages = [InboundMessage(f"s-{i}", f"+4179{i * 7919 % 10**7:07d}", SHOP, TEXTS[i % len(TEXTS)], later(i))
                for i in range(400)]
    store_directly(path, messages)
    with sqlite3.connect(path) as conn:  # names as operators type them (a renamed credential keeps old ones)
        conn.execute("UPDATE messages SET credential = CASE id % 4 WHEN 0 THEN 'Shop UK' WHEN 1 THEN 'shop de' "
                     "WHEN 2 THEN 'Coffee_Club' ELSE '100% Coffee' END")
    indexing = connect(path)  # serve's indexer has added all but the newest 30: both halves of a search answer
    try:
        with transaction(indexing) as conn:
            assert index_new_messages(conn, batch=370) == 370
    finally:
        indexing.close()
    return path


def scanned(conn: sqlite3.Connection, filters: MessageFilter, descending: bool = True) -> list[int]:
    """The ids the filter's LIKE scan finds: what it means."""
    clauses, params = filters.where()
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return [row[0] for row in conn.execute(
        f"SELECT m.id FROM messages m {where} ORDER BY m.id {'DESC' if descending else 'ASC'}", params)]


def found(conn: sqlite3.Connection, filters: MessageFilter, oldest_first: bool = False) -> list[int]:
    return [row.id for row in page_messages(conn, filters=filters, limit=10_000, oldest_first=oldest_first)]


def check(conn: sqlite3.Connection, filters: MessageFilter) -> None:
    expected = scanned(conn, filters)
    assert found(conn, filters) == expected, filters
    assert found(conn, filters, oldest_first=True) == expected[::-1], filters
    assert count_and_top(conn, filters) == (len(expected), expected[0] if expected else 0), filters
    page = log_first_page(conn, filters, 100)
    assert [row.id for row in page.rows] == expected[:100] and page.total == len(expected) and not page.more
    assert [row.id for row in messages_at_offset(conn, filters, 7, 5, top=page.top)] == expected[7:12]


@pytest.mark.parametrize("needle", NEEDLES, ids=repr)
def test_free_text_and_numbers_find_what_the_scan_finds(db_path: Path, needle: str) -> None:
    conn = sqlite3.connect(db_path)
    try:
        check(conn, MessageFilter(text=needle))
        check(conn, MessageFilter(number=needle))
        check(conn, MessageFilter(text=needle, action="default"))
    finally:
        conn.close()


@pytest.mark.parametrize("number", ["4179", "41790", "0079", "447491163443", "79", "4", "+", "+4179", "%", "_",
                                    "9999999999999"])
def test_numbers_are_literal_substrings_of_either_number(db_path: Path, number: str) -> None:
    conn = sqlite3.connect(db_path)
    try:
        check(conn, MessageFilter(number=number))
        check(conn, MessageFilter(number=number, text="hello"))
    finally:
        conn.close()


@pytest.mark.parametrize("prefix", ["shop", "SHOP", "Shop UK", "shop d", "s", "c", "coffee_", "coffee%", "100%",
                                    "100_", "Shop UK and more", "x", "ç"])
def test_credentials_are_a_prefix_in_any_case(db_path: Path, prefix: str) -> None:
    conn = sqlite3.connect(db_path)
    try:
        check(conn, MessageFilter(credential=prefix))
        check(conn, MessageFilter(credential=prefix, text="hello"))
        check(conn, MessageFilter(credential=prefix, number="41"))
        check(conn, MessageFilter(credential=prefix, action="default"))
    finally:
        conn.close()


def test_every_offset_of_a_merged_credential_read(db_path: Path) -> None:
    """`cred:s` is two names: their ranges merged in id order, at every offset and from either end."""
    conn = sqlite3.connect(db_path)
    try:
        filters = MessageFilter(credential="s")
        expected = scanned(conn, filters)
        total, top = count_and_top(conn, filters)
        assert total == len(expected) > 100
        for offset in range(0, total + 2, 7):
            for oldest_first in (False, True):
                want = (expected[::-1] if oldest_first else expected)[offset:offset + 10]
                for known in (total, None):
                    got = messages_at_offset(conn, filters, offset, 10, oldest_first, top, known)
                    assert [row.id for row in got] == want, (offset, oldest_first, known)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("prop") / "empty.db", shop_credential())


PIECES = st.sampled_from([*"aAbBkK%_\\\"' *:()é ÉİıſK🎉ßΣσς\n", "NEAR", "AND", "OR"])


def pieces(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(PIECES, min_size=min_size, max_size=max_size).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(pieces(0, 12), min_size=1, max_size=8), needle=pieces(1, 5),
       number=st.text("0123456789+%_", max_size=5))
def test_any_text_and_needle_match_as_the_scan_does(empty_db: Path, tmp_path_factory: pytest.TempPathFactory,
                                                     texts: list[str], needle: str, number: str) -> None:
    path = copy_db(empty_db, tmp_path_factory.mktemp("example") / "p.db")
    conn = sqlite3.connect(path)
    try:
        with conn:
            for i, text in enumerate(texts):
                conn.execute(
                    "INSERT INTO messages (id, message_id, received_at, stored_at, credential, from_number, "
                    "to_number, text, normalized, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 'default')",
                    (i + 1, f"p-{i}", later(i), later(i), text[:3], f"+41{i}{text.count('a')}7", SHOP, text))
        for filters in (MessageFilter(text=needle), MessageFilter(text=needle + needle),
                        MessageFilter(text=texts[0][1:5] or needle), MessageFilter(credential=needle),
                        MessageFilter(number=number or "1"), MessageFilter(text=needle, number=number)):
            expected = scanned(conn, filters)
            assert found(conn, filters) == expected, filters
            assert count_and_top(conn, filters)[0] == len(expected), filters
    finally:
        conn.close()


def test_a_short_search_reads_a_window_and_says_so(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One or two characters have no trigram to look up: the newest SCAN_WINDOW messages are read,
    the page says which, and every later read of the log keeps that window."""
    monkeypatch.setattr(queries, "SCAN_WINDOW", 50)
    conn = sqlite3.connect(db_path)
    try:
        top = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
        page = log_first_page(conn, MessageFilter(text="o"), 100)
        assert page.filters == MessageFilter(text="o", after=top - 50)
        expected = scanned(conn, MessageFilter(text="o", after=top - 50))
        assert [row.id for row in page.rows] == expected and page.total == len(expected)
        long = log_first_page(conn, MessageFilter(text="hello"), 100)
        assert long.filters == MessageFilter(text="hello") and long.total == len(scanned(conn, long.filters))
    finally:
        conn.close()


def test_a_count_that_would_walk_every_match_stops_and_says_more(db_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "COUNT_CAP", 30)
    conn = sqlite3.connect(db_path)
    try:
        filters = MessageFilter(text="e")
        expected = scanned(conn, filters)
        assert len(expected) > 30
        page = log_first_page(conn, filters, 10)
        assert (page.total, page.more) == (30, True)
        assert [row.id for row in page.rows] == expected[:10]
        # a jump without an exact total walks the offset from the near end, within what is listed
        assert [row.id for row in messages_at_offset(conn, filters, 25, 5, top=page.top)] == expected[25:30]
        few = log_first_page(conn, MessageFilter(text="Kelvin"), 10)  # the page holds them all: nothing counted
        assert (few.total, few.more) == (len(scanned(conn, MessageFilter(text="Kelvin"))), False)
        creds = log_first_page(conn, MessageFilter(credential="s"), 10)  # an index answers: exact
        assert (creds.total, creds.more) == (len(scanned(conn, MessageFilter(credential="s"))), False)
    finally:
        conn.close()


def test_the_index_forgets_purged_messages_and_consent_still_verifies(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "purge.db", shop_credential())
    old = datetime.now(UTC) - timedelta(days=100)
    store_directly(db_path, [InboundMessage(f"old-{n}", f"+4179300{n:04d}", SHOP, f"quartz lantern {n}",
                                            (old + timedelta(seconds=n)).isoformat(timespec="milliseconds"))
                             for n in range(30)], old.isoformat(timespec="milliseconds"))
    store_directly(db_path, [InboundMessage("old-stop", "+41790000001", SHOP, "STOP quartz",
                                            (old + timedelta(minutes=5)).isoformat(timespec="milliseconds"))],
                   (old + timedelta(minutes=5)).isoformat(timespec="milliseconds"))
    indexing = connect(db_path)  # serve's indexer job: the old ones are in the index, the new ones not yet
    try:
        with transaction(indexing) as conn:
            assert index_new_messages(conn) == 31
    finally:
        indexing.close()
    store_directly(db_path, [InboundMessage(f"new-{n}", f"+4179300{n:04d}", SHOP, f"quartz again {n}",
                                            datetime.now(UTC).isoformat(timespec="milliseconds"))
                             for n in range(3)])
    with sqlite3.connect(db_path) as conn:  # stored when they were received, 100 days ago
        conn.execute("UPDATE messages SET stored_at = received_at WHERE message_id LIKE 'old-%'")
        conn.execute("UPDATE outbox SET status = 'delivered', created_at = ?", (old.isoformat(),))
    db = connect(db_path)
    try:
        purge(db, 30)
        conn = db.conn
        kept = [row[0] for row in conn.execute("SELECT id FROM messages ORDER BY id DESC")]
        assert len(kept) == 4  # the STOP is consent's evidence, and the three new ones
        indexed = [row[0] for row in conn.execute(
            "SELECT rowid FROM messages_search WHERE messages_search MATCH 'quartz' ORDER BY rowid DESC")]
        assert indexed == kept[3:]  # the STOP; the three new ones were never indexed, and were not "deleted" from it
        conn.execute("INSERT INTO messages_search (messages_search) VALUES ('integrity-check')")
        assert found(conn, MessageFilter(text="quartz")) == kept
        assert found(conn, MessageFilter(number="4179300")) == kept[:3]
        assert verify_consent(conn).ok
    finally:
        db.close()


def test_a_database_made_before_schema_18_is_indexed_by_the_migration(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    db = connect(db_path, upto=17)
    create_credential(db, shop_credential())
    db.close()
    store_directly_at_17(db_path, [InboundMessage(f"o-{n}", f"+4179400{n:04d}", SHOP, f"Before {n} Ünï",
                                                  later(n)) for n in range(20)])
    assert rows(db_path, "SELECT MAX(version) FROM schema_version")[0][0] == 17
    assert not rows(db_path, "SELECT name FROM sqlite_master WHERE name = 'messages_search'")
    connect(db_path).close()  # migrates, as serve and the TUI do when they open it
    assert rows(db_path, "SELECT MAX(version) FROM schema_version")[0][0] == 18
    store_directly(db_path, [InboundMessage("after-1", "+41794009999", SHOP, "before? no, after", later(99))])
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("INSERT INTO messages_search (messages_search) VALUES ('integrity-check')")
        for filters in (MessageFilter(text="before"), MessageFilter(text="Ünï"), MessageFilter(text="bEFORE 1"),
                        MessageFilter(number="794000"),
                        MessageFilter(number="4009999"), MessageFilter(credential="sh")):
            expected = scanned(conn, filters)
            assert expected and found(conn, filters) == expected, filters
        assert len(found(conn, MessageFilter(text="before"))) == 21
    finally:
        conn.close()


def store_directly_at_17(db_path: Path, messages: list[InboundMessage]) -> None:
    """Rows as an older smsdesk stored them: the store's insert on a file still at schema 17."""
    from smsdesk.store.db import transaction
    from smsdesk.store.inbound import RouteTable, store_messages

    db = connect(db_path, migrate=False)
    try:
        with transaction(db) as conn:
            store_messages(conn, RouteTable(), messages)
    finally:
        db.close()


def test_serve_indexes_what_it_stores(tmp_path: Path) -> None:
    """serve adds the messages it stores to the trigram index within a second or so, off the
    webhook's transaction (engine/service.py), and the search finds them either way."""
    import httpx

    from smsdesk.simulator.sample_data import mo_body, mo_result
    from smsdesk.store.message_search import indexed_upto
    from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve, wait_until

    db_path = make_db(tmp_path / "serve.db", shop_credential())
    with running_serve(db_path, search_index_interval=0.05) as serve:
        for n in range(5):
            body = mo_body(mo_result(f"quartz lantern {n}", sender=f"4179500{n:04d}", message_id=f"q-{n}"))
            assert httpx.post(serve.url + "/infobip/inbound", json=body, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD),
                              timeout=30).status_code == 200
        conn = sqlite3.connect(db_path)
        try:
            assert found(conn, MessageFilter(text="lantern")) == scanned(conn, MessageFilter(text="lantern"))
            top = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
            assert wait_until(lambda: indexed_upto(conn) == top, 20)
            indexed = [row[0] for row in conn.execute(
                "SELECT rowid FROM messages_search WHERE messages_search MATCH 'lantern' ORDER BY rowid DESC")]
            assert indexed == scanned(conn, MessageFilter(text="lantern")) and len(indexed) == 5
        finally:
            conn.close()


def test_most_messages_are_default_so_their_count_is_bounded_not_exact(db_path: Path) -> None:
    """`action:default` is most messages and has no index (schema 11 leaves it out): its count
    walks at most COUNT_CAP of them and says "more than", like a common word; an action with an
    index, or credentials alone, are counted exactly along their index."""
    from smsdesk.store.message_search import build

    conn = sqlite3.connect(db_path)
    try:
        assert not build(conn, "", "default", "", "", 0).index_counts
        assert build(conn, "", "opt-out", "", "", 0).index_counts
        assert build(conn, "shop", "", "", "", 0).index_counts
        assert not build(conn, "shop", "opt-out", "", "", 0).index_counts  # several ranges, filtered: walked
    finally:
        conn.close()
