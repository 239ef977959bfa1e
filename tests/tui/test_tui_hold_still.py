"""Issue 27, points 2 and 7: lists hold still while rows arrive, counts agree, and a TUI is quiet
when nothing it shows changed (the receiver's heartbeat), at 80x24 on a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.heartbeat import record_heartbeat
from smsdesk.store.queries import attributes_of, versions
from smsdesk.store.review import resolve
from smsdesk.tui.adapters import PROFILE_PAGE, read_profiles
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.data import DataService
from smsdesk.tui.screens.credentials import CredentialsScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.profiles import ProfileDetailScreen, ProfilesScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from tests.support.live import ALICE, BOB, CAROL, CLUB, DORA, EVE, SHOP, inbound, seed_db, store, wait_until
from tests.support.query_plans import table_scans, traced

SIZE = (80, 24)
POLL = 0.05


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    return seed_db(tmp_path / "smsdesk.db")


def _numbers(screen: ProfilesScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def _under_cursor(screen: ProfilesScreen) -> str:
    table = screen.query_one(DataTable)
    return str(table.get_row_at(table.cursor_row)[1])


# ---- point 2: lists hold still --------------------------------------------------------------------

async def test_profiles_keep_the_cursor_on_its_number_while_rows_arrive(live_db: Path) -> None:
    """New numbers arrive above, a number below moves to the top: the cursor stays on Dora,
    Enter opens Dora's profile and y copies Dora's number (it used to stay on the row index)."""
    app = SmsDeskApp(live_db, initial_mode="profiles", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        await wait_until(pilot, lambda: _numbers(screen) == [EVE, CAROL, DORA, BOB, ALICE], what="profiles")
        await pilot.press("j", "j")
        assert _under_cursor(screen) == DORA
        for round_ in range(3):  # stored by another connection, as `smsdesk serve` does
            store(live_db, inbound(f"+4179100000{round_}", SHOP, "hello"), inbound(f"+3859100000{round_}", CLUB, "hi"))
            await wait_until(pilot, lambda r=round_: f"+4179100000{r}" in _numbers(screen), what="new numbers")
            assert _under_cursor(screen) == DORA
        store(live_db, inbound(ALICE, SHOP, "DISCOUNT"))  # Alice, below Dora, goes to the top
        await wait_until(pilot, lambda: _numbers(screen)[0] == ALICE, what="Alice on top")
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert _under_cursor(screen) == DORA and screen.selected() is not None
        assert table.cursor_row == _numbers(screen).index(DORA) == 9
        await pilot.press("y")
        assert app.clipboard == DORA
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDetailScreen), what="the profile")
        assert isinstance(app.screen, ProfileDetailScreen) and app.screen.profile.number == DORA


async def test_profiles_keep_the_chosen_number_on_its_line_of_a_scrolled_list(live_db: Path) -> None:
    """A list longer than the screen, scrolled: rows arriving above move neither the cursor's
    number nor the line it is drawn on (the rows above it scroll away instead)."""
    db = connect(live_db)
    try:
        with transaction(db) as conn:
            conn.executemany("INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES ('bulk', ?, ?, ?)",
                             [(f"+4420000{i:05d}", "2025-01-01T00:00:00", f"2025-01-01T00:00:{i:02d}")
                              for i in range(40)])
    finally:
        db.close()
    app = SmsDeskApp(live_db, initial_mode="profiles", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: len(_numbers(screen)) == 45, what="profiles")
        for _ in range(25):
            await pilot.press("j")
        await pilot.pause()
        chosen, line = _under_cursor(screen), table.cursor_row - round(table.scroll_y)
        assert table.scroll_y > 0 and 0 <= line < table.size.height
        store(live_db, *(inbound(f"+4179300000{i}", SHOP, "hello") for i in range(3)))
        await wait_until(pilot, lambda: len(_numbers(screen)) == 48, what="three more")
        await wait_until(pilot, lambda: table.cursor_row - round(table.scroll_y) == line, what="the same line")
        assert _under_cursor(screen) == chosen and table.cursor_row == 28


async def test_profiles_leave_the_cursor_at_its_place_when_its_number_goes(live_db: Path) -> None:
    """Filtered on consent:y, the number under the cursor opts out and leaves the list: the cursor
    stays at the same position (the next number), not at the top."""
    first, second = "+41791000011", "+41791000012"
    store(live_db, inbound(first, SHOP, "YES"), inbound(second, SHOP, "YES"))
    app = SmsDeskApp(live_db, initial_mode="profiles", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        await wait_until(pilot, lambda: len(_numbers(screen)) == 7, what="profiles")
        await pilot.press("slash", *"consent:y", "enter")
        await wait_until(pilot, lambda: _numbers(screen) == [second, first, DORA, ALICE], what="consent:y")
        await pilot.press("j", "j")
        assert _under_cursor(screen) == DORA
        store(live_db, inbound(DORA, CLUB, "STOP"))
        await wait_until(pilot, lambda: DORA not in _numbers(screen), what="Dora opted out")
        assert screen.query_one(DataTable).cursor_row == 2 and _under_cursor(screen) == ALICE
        store(live_db, inbound("+41791000013", SHOP, "YES"))  # and from there it holds again
        await wait_until(pilot, lambda: len(_numbers(screen)) == 4, what="one more")
        assert _under_cursor(screen) == ALICE


async def test_review_keeps_the_cursor_on_its_item_and_decides_that_one(tmp_path: Path) -> None:
    """An older near miss arrives above the one under the cursor: `x` still dismisses the chosen
    one, and the cursor then goes to the next item, not back to the top."""
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"), club_credential())
    store(path,
          inbound("+41793026727", SHOP, "please stop texting me", "2025-01-15T09:05:00.000+00:00", "r-2"),
          inbound("+41793026728", SHOP, "STPO", "2025-01-15T08:30:00.000+00:00", "r-3"),
          inbound("+41793026729", SHOP, "remove me", "2025-01-15T10:00:00.000+00:00", "r-4"))
    app = SmsDeskApp(path, initial_mode="review", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="three near misses")
        await pilot.press("j")
        chosen = screen.selected()
        assert chosen is not None and chosen.text == "please stop texting me"
        store(path, inbound("+41793026730", SHOP, "STOPP", "2025-01-15T08:00:00.000+00:00", "r-5"))
        await wait_until(pilot, lambda: table.row_count == 4, what="the older near miss")
        assert [i.text for i in screen.items][:2] == ["STOPP", "STPO"]
        selected = screen.selected()
        assert selected is not None and selected.id == chosen.id and table.cursor_row == 2
        await pilot.press("x", "y")  # dismiss, and yes to the question
        await wait_until(pilot, lambda: table.row_count == 3, what="decided")
        assert chosen.id not in [i.id for i in screen.items]
        after = screen.selected()
        assert after is not None and after.text == "remove me"  # the next one, where the cursor was
    db = connect(path)
    try:
        assert db.conn.execute("SELECT status FROM review_queue WHERE id = ?", (chosen.id,)).fetchone()[0] == \
            "dismissed"
        assert db.conn.execute("SELECT COUNT(*) FROM review_queue WHERE status = 'open'").fetchone()[0] == 3
    finally:
        db.close()


async def test_credentials_keep_the_cursor_on_its_credential_while_others_arrive(tmp_path: Path) -> None:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(), club_credential())
    app = SmsDeskApp(path, poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        table = screen.query_one(CredentialsTable)
        await wait_until(pilot, lambda: [c.name for c in table.shown] == ["Club", "Shop"], what="credentials")
        await pilot.press("j")
        assert table.selected is not None and table.selected.name == "Shop"
        db = connect(path)
        try:  # another session adds two that sort before it
            for name, number in (("Alpha", "41790000001"), ("Beta", "41790000002")):
                create_credential(db, shop_credential(name=name, inbound_number=number, sandbox=name.lower()))
        finally:
            db.close()
        await wait_until(pilot, lambda: len(table.shown) == 4, what="two more")
        assert table.selected is not None and table.selected.name == "Shop" and table.cursor_row == 3
        await pilot.press("y")
        assert app.clipboard == "+" + shop_credential().inbound_number.lstrip("+")


_MATCH = re.compile(r"([\d,]+) of ([\d,]+) match")


async def test_the_log_match_count_never_exceeds_its_total_while_messages_arrive(live_db: Path) -> None:
    """Filtered on Shop, 12 Shop and 4 Club messages arrive from another connection: the status
    line says "N of M match" with N <= M all along, and ends on the real counts (it showed
    "31 of 27": the total of all messages stood still while the matches grew)."""
    app = SmsDeskApp(live_db, initial_mode="log", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded, what="log")
        await pilot.press("slash", *"cred:shop", "enter")
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.log_view.total == 5, what="filtered")
        seen: list[tuple[int, int]] = []

        def counts() -> tuple[int, int] | None:
            found = _MATCH.search(str(screen.query_one("#log-status", Static).render()))
            if found is None:
                return None
            pair = (int(found[1].replace(",", "")), int(found[2].replace(",", "")))
            seen.append(pair)
            assert pair[0] <= pair[1], f"{pair[0]} of {pair[1]} match"
            return pair

        assert counts() == (5, 10)
        for i in range(4):
            store(live_db, *(inbound(f"+4179200{i}{j}", SHOP, "hello") for j in range(3)),
                  inbound(f"+3859200{i}", CLUB, "hi"))
            await wait_until(pilot, lambda n=i: counts() == (5 + 3 * (n + 1), 10 + 4 * (n + 1)),
                             what=f"counts after round {i}")
        assert screen.log_view.total == 17 and screen.log_view.all_total == 26
    assert all(m <= t for m, t in seen)


# ---- point 7: quiet when nothing changed ---------------------------------------------------------

def _beat(db_path: Path, at: datetime | None = None) -> str:
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            return record_heartbeat(conn, 4242, at)
    finally:
        db.close()


def _count_reads(data: DataService) -> list[str]:
    """Every read the data service runs from now on, by the name of its query."""
    reads: list[str] = []
    run = data._run_read

    def counted(query: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        reads.append(getattr(query, "__name__", repr(query)))
        return run(query, args)

    data._run_read = counted  # type: ignore[method-assign]
    return reads


async def _quiet(pilot: Pilot[None], seconds: float = 0.3) -> None:
    """Let the workers finish and the timer tick a few times."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(seconds)
    await pilot.app.workers.wait_for_complete()


@pytest.mark.parametrize("mode", ["credentials", "log", "profiles", "review", "tester"])
async def test_a_heartbeat_makes_no_view_read(live_db: Path, mode: str) -> None:
    """serve commits a heartbeat every 30 s: the probe sees the commit, finds that nothing a view
    shows moved, and nothing is read (every view used to re-read everything); a message still is."""
    app = SmsDeskApp(live_db, initial_mode=mode, poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        await _quiet(pilot, 0.5)
        reads = _count_reads(app.data)
        version = app.data.version
        beats = [_beat(live_db) for _ in range(3)]
        await wait_until(pilot, lambda: getattr(app.data, "heartbeat", None) == beats[-1] or bool(reads),
                         what="the heartbeat seen by the probe")
        await _quiet(pilot)
        assert reads == [] and app.data.version == version
        store(live_db, inbound("+41793000999", SHOP, "hello"))
        await wait_until(pilot, lambda: app.data.version > version, what="a message is a change")
        await _quiet(pilot)
        if mode != "tester":  # the tester reads the credentials when its form asks, not on a change
            assert reads


async def test_the_empty_log_takes_the_heartbeat_without_reading(tmp_path: Path) -> None:
    path = make_db(tmp_path / "smsdesk.db", shop_credential())
    app = SmsDeskApp(path, initial_mode="log", poll_seconds=POLL)
    async with app.run_test(size=SIZE) as pilot:
        def shown() -> str:
            return " ".join(str(app.screen.query_one("#log-empty", Static).render()).split())

        await wait_until(pilot, lambda: "No receiver has run" in shown(), what="never a heartbeat")
        await _quiet(pilot)
        reads = _count_reads(app.data)
        _beat(path)
        await wait_until(pilot, lambda: "A receiver is running on this database" in shown(), what="running")
        assert reads == []
        await pilot.press("3")  # away while serve beats, back: the line is current
        await _quiet(pilot)
        _beat(path, datetime(2025, 1, 15, 9, 0, tzinfo=UTC))
        await wait_until(pilot, lambda: app.data.heartbeat is not None and app.data.heartbeat.startswith("2025"),
                         what="the old beat seen")
        await pilot.press("2")
        await wait_until(pilot, lambda: "No receiver is running on this database" in shown(), what="stopped")


def test_the_content_version_moves_with_what_views_show_and_not_with_the_heartbeat(live_db: Path) -> None:
    def now() -> Any:
        conn = sqlite3.connect(live_db)
        try:
            return versions(conn)
        finally:
            conn.close()

    def change(sql: str, *params: object) -> None:
        db = connect(live_db)
        try:
            with transaction(db) as conn:
                conn.execute(sql, params)
        finally:
            db.close()

    before = now()
    _beat(live_db)
    beat = now()
    assert beat.content == before.content and beat.heartbeat != before.heartbeat
    # In place, with no row added: a reply sent, delivered; consent; a review decided; a credential.
    for sql in ("UPDATE outbox SET status = 'sent' WHERE status = 'queued'",
                "UPDATE outbox SET delivery_status = 'DELIVERED' WHERE id = (SELECT MIN(id) FROM outbox)",
                "UPDATE consent SET consent = 'n' WHERE number = ?",
                "UPDATE credentials SET sender = 'X' WHERE name = 'Shop'"):
        last = now().content
        change(sql, *([ALICE] if "?" in sql else []))
        assert now().content != last, sql
    last = now().content
    store(live_db, inbound(CAROL, SHOP, "hello"))
    assert now().content != last


def test_a_review_decision_moves_the_content_version(tmp_path: Path) -> None:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    store(path, inbound(EVE, SHOP, "STPO"))
    conn = sqlite3.connect(path)
    try:
        last = versions(conn).content
        db = connect(path)
        try:
            resolve(db, 1, "dismiss", by="operator")
        finally:
            db.close()
        assert versions(conn).content != last
    finally:
        conn.close()


def test_a_read_sees_one_snapshot(live_db: Path) -> None:
    """Every read of the data service is one transaction: a commit between two of its statements
    is not half seen (the log's total and its matches, the profiles' page and their count)."""
    import asyncio

    def two_counts(conn: sqlite3.Connection) -> tuple[int, int]:
        first = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        store(live_db, inbound(ALICE, SHOP, "meanwhile"))  # another connection commits
        return first, conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    data = DataService(live_db)
    try:
        first, second = asyncio.run(data.read(two_counts))
    finally:
        data.close()
    assert first == second == 10


def test_profiles_read_a_page_with_its_attributes_in_a_few_statements(live_db: Path) -> None:
    """One statement for the page's attributes per 450 numbers, not one per profile (about 500)."""
    db = connect(live_db)
    try:
        with transaction(db) as conn:
            conn.executemany("INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES ('bulk', ?, ?, ?)",
                             [(f"+4420000{i:05d}", "2025-01-01T00:00:00",
                               f"2025-02-01T00:{i // 60 % 60:02d}:{i % 60:02d}") for i in range(700)])
            conn.executemany("INSERT INTO profile_attributes (sandbox, number, name, first_at, last_at, count) "
                             "VALUES ('bulk', ?, ?, '2025-01-01', '2025-01-02', ?)",
                             [(f"+4420000{i:05d}", name, i % 5 + 1) for i in range(700) for name in ("A", "B")
                              if name == "A" or i % 3 == 0])
    finally:
        db.close()
    (profiles, total, everyone, more), statements = traced(
        live_db, lambda conn: read_profiles(conn, {"sandbox": "", "consent": None, "attribute": "", "number": ""}),
        write=False)
    assert len(profiles) == PROFILE_PAGE and total == everyone == 705 and not more
    assert len(statements) <= 4, statements  # the page, its attributes (2 x 450 keys at most), the count
    for profile in profiles[:: 37]:
        assert profile.attributes == attributes_of(sqlite3.connect(live_db), profile.sandbox, profile.number)
    assert any(p.attributes for p in profiles)
    # Each number's attributes by their key (the numbers of the page are the constant table k).
    attributes = [sql for sql in statements if "profile_attributes" in sql]
    assert len(attributes) == 2 and table_scans(live_db, attributes, allowed=("SCAN k",)) == {}


def test_the_profile_export_reads_attributes_for_many_numbers_at_once(live_db: Path) -> None:
    """`smsdesk export profiles` had the same one-query-per-profile pattern; same rows, a few statements."""
    from smsdesk.store.queries import iter_profile_export

    db = connect(live_db)
    try:
        with transaction(db) as conn:
            conn.executemany("INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES ('bulk', ?, ?, ?)",
                             [(f"+4420000{i:05d}", "2025-01-01", "2025-01-02") for i in range(1000)])
            conn.executemany("INSERT INTO profile_attributes (sandbox, number, name, first_at, last_at, count) "
                             "VALUES ('bulk', ?, 'A', '2025-01-01', '2025-01-02', ?)",
                             [(f"+4420000{i:05d}", i) for i in range(0, 1000, 7)])
    finally:
        db.close()
    rows, statements = traced(live_db, lambda conn: list(iter_profile_export(conn)), write=False)
    assert len(rows) == 1005 and len(statements) <= 4
    conn = sqlite3.connect(live_db)
    try:
        assert all(row["attributes"] == attributes_of(conn, row["sandbox"], row["number"]) for row in rows)
    finally:
        conn.close()
    assert sum(1 for row in rows if row["attributes"]) == 143 + 1  # the bulk ones and Alice's DISCOUNT
