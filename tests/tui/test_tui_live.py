"""The live views driven through the real app at 80x24 on a real SQLite file: the inbound log
(follow mode, the new-messages badge, filters, the detail pane), the traffic strip, profiles and
their consent ledger, the keyword tester, and rows written by another process."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credentials import CredentialsScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.message_detail import MessageDetailScreen
from smsdesk.tui.screens.profiles import ProfileDetailScreen, ProfilesScreen
from smsdesk.tui.screens.tester import TesterScreen as KeywordTesterScreen  # not a pytest class
from smsdesk.tui.textual_private import notification_texts
from smsdesk.tui.widgets.message_log import MessageLog
from smsdesk.tui.widgets.traffic import TrafficStrip
from tests.support.live import (
    ALICE,
    BOB,
    CAROL,
    CLUB,
    DORA,
    EVE,
    FIXED_NOW,
    SEED,
    SHOP,
    STRANGER,
    inbound,
    row_counts,
    screen_lines,
    screen_text,
    seed_db,
    store,
    wait_until,
)

SIZE = (80, 24)
SEED_TEXTS = [text for _, _, text, _ in SEED]


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    return seed_db(tmp_path / "smsdesk.db")


def text_of(widget: Static) -> str:
    return str(widget.render())


async def open_log(pilot: Pilot[None]) -> LogScreen:
    screen = pilot.app.screen
    assert isinstance(screen, LogScreen)
    log = screen.log_view
    await wait_until(pilot, lambda: log.loaded and "messages" in status(screen), what="log loaded")
    await pilot.pause()
    return screen


def status(screen: LogScreen) -> str:
    return text_of(screen.query_one("#log-status", Static))


def log_lines(log: MessageLog) -> list[str]:
    """The rows the log paints, top to bottom (placeholders while a page is fetched)."""
    return [log.render_line(y).text for y in range(log.size.height)]


def shown_texts(log: MessageLog, texts: list[str]) -> list[str]:
    """Which of `texts` the log shows, in screen order (each seed text is unique)."""
    lines = log_lines(log)
    return [t for line in lines for t in texts if t[:20] in line]


async def apply_filter(pilot: Pilot[None], text: str) -> None:
    await pilot.press("slash")
    box = pilot.app.screen.query_one("#log-filter", Input)
    assert box.has_focus
    box.value = text
    await pilot.press("enter")
    await pilot.pause()


async def filter_to(pilot: Pilot[None], log: MessageLog, text: str, total: int) -> None:
    """Apply a filter line and wait until the log has reloaded with `total` matching rows."""
    await apply_filter(pilot, text)
    await wait_until(pilot, lambda: log.loaded and log.total == total, what=f"{text!r} applied")


# ---- the log ------------------------------------------------------------------------------------

async def test_log_lists_newest_first_with_header_actions_and_reply_status(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        await wait_until(pilot, lambda: "time" in text_of(screen.query_one("#log-header", Static)),
                         what="column header")
        header = text_of(screen.query_one("#log-header", Static))
        for column in ("time", "credential", "from", "text", "action", "reply"):
            assert column in header
        log = screen.log_view
        assert log.follow and log.total == len(SEED)
        assert shown_texts(log, SEED_TEXTS) == SEED_TEXTS[::-1]
        lines = log_lines(log)
        assert lines[0].startswith("09:09:10 Club") and "start" in lines[0] and "opt-in" in lines[0]
        by_text = {t: line for line in lines for t in SEED_TEXTS if t[:20] in line}
        assert "opt-out" in by_text["STOP please"] and "failed" in by_text["STOP please"]
        assert "help" in by_text["HELP"] and "delivered" in by_text["HELP"]
        # The stored words, as in filters, exports and the help legend (tui/vocabulary.py).
        assert "custom" in by_text["DISCOUNT"]
        assert "double-opt-in" in by_text["confirm"]
        # The header's columns sit exactly over the rows' (checked on the widest words).
        assert header.index("action") == by_text["confirm"].index("double-opt-in")
        assert header.index("reply") == by_text["HELP"].index("delivered")
        assert header.index("text") == by_text["HELP"].index("HELP")
        assert "unrouted" in by_text["wrong number"] and " - " in by_text["wrong number"]
        # Every painted line is exactly the screen width: wide characters (emoji) counted as two.
        assert all(len(line) <= 80 for line in screen_lines(pilot))
        assert "● LIVE" in status(screen)


async def test_follow_mode_shows_rows_stored_by_another_connection_at_the_top(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        store(live_db, inbound(ALICE, SHOP, "first new"), inbound(BOB, SHOP, "second new"))
        took = await wait_until(pilot, lambda: "second new" in log_lines(log)[0], seconds=5,
                                what="new rows at the top")
        # The issue asks for half a second; the poll runs every 0.25 s. Allow slack for a busy CI box.
        assert took < 1.0, f"new rows took {took:.2f} s to appear"
        lines = log_lines(log)
        assert "first new" in lines[1] and "start" in lines[2]
        assert log.follow and log.cursor == 0 and log.scroll_offset.y == 0 and log.new_count == 0
        assert log.total == len(SEED) + 2
        await wait_until(pilot, lambda: f"{len(SEED) + 2} messages" in status(screen), what="total in status")
        assert "LIVE" in status(screen) and "new" not in status(screen)


async def test_paused_log_keeps_rows_in_place_counts_new_ones_and_l_returns_to_live(live_db: Path) -> None:
    store(live_db, *(inbound(ALICE, SHOP, f"filler {i:02d}") for i in range(40)))
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        await pilot.press("pagedown", "down", "down")
        await pilot.pause()
        assert not log.follow and log.scroll_offset.y > 0
        await wait_until(pilot, lambda: "PAUSED" in status(screen), what="paused status")
        assert "new" not in status(screen)
        before = log_lines(log)
        reading = log.cursor_row
        assert reading is not None and "…" not in before[0]

        store(live_db, *(inbound(BOB, SHOP, f"while away {i}") for i in range(3)))
        await wait_until(pilot, lambda: "3 new" in status(screen), what="'3 new' badge")
        await pilot.pause()
        assert log.new_count == 3 and not log.follow
        assert log_lines(log) == before, "rows under the cursor moved while paused"
        assert log.cursor_row == reading
        assert "while away" not in "".join(log_lines(log))

        await pilot.press("l")
        await wait_until(pilot, lambda: "LIVE" in status(screen), what="back to live")
        assert "new" not in status(screen) and log.new_count == 0
        assert log.follow and log.cursor == 0 and log.scroll_offset.y == 0
        assert "while away 2" in log_lines(log)[0]


async def test_cursor_down_inside_first_screen_pauses_and_counts_arrivals(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        await pilot.press("down", "down")
        reading = log.cursor_row
        assert reading is not None and reading.text == SEED_TEXTS[-3] and not log.follow
        store(live_db, inbound(ALICE, SHOP, "arrived"))
        await wait_until(pilot, lambda: "1 new" in status(screen), what="'1 new' badge")
        assert log.cursor_row == reading  # the highlighted message is still the one being read
        await pilot.press("enter")
        assert isinstance(app.screen, MessageDetailScreen) and app.screen.row.id == reading.id


# ---- filters ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("cred:Club", ["start", "confirm", "START", "join"]),
    ("action:opt-out", ["STOP please"]),
    ("action:OPT-IN", ["start", "START", "YES"]),
    ("action:double", ["confirm"]),  # an unambiguous prefix
    ("action:unr", ["wrong number"]),
    ("num:3026728", ["STOP please"]),
    ("num:+38591", ["confirm", "START", "join"]),
    ("ship", ["Do you ship to Zürich? 🚚"]),
    ("ZÜRICH", []),  # SQLite LIKE folds ASCII only: documented limitation, not a crash
    ("wrong NUMBER", ["wrong number"]),
    ("cred:Shop action:opt-in", ["YES"]),
    ("cred:Club num:+3859111 start", ["START"]),
    ("100%_", []),  # LIKE wildcards are literal
])
async def test_filter(live_db: Path, query: str, expected: list[str]) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        await filter_to(pilot, log, query, len(expected))
        assert shown_texts(log, SEED_TEXTS) == expected
        assert not screen.query_one("#log-filter", Input).display
        assert log.has_focus
        await wait_until(pilot, lambda: "filter" in status(screen), what="filter in status")

        await pilot.press("escape")
        await wait_until(pilot, lambda: log.loaded and log.total == len(SEED), what="filter cleared")
        assert shown_texts(log, SEED_TEXTS) == SEED_TEXTS[::-1]
        await wait_until(pilot, lambda: "filter" not in status(screen), what="status without filter")


async def test_filter_keeps_live_rows_flowing_only_when_they_match(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        await filter_to(pilot, log, "action:opt-out", 1)
        store(live_db, inbound(ALICE, SHOP, "hello again"), inbound(CAROL, SHOP, "stop now"))
        await wait_until(pilot, lambda: "stop now" in log_lines(log)[0], what="matching row")
        assert log.total == 2
        assert "hello again" not in "".join(log_lines(log))


async def test_ambiguous_action_prefix_is_an_error_and_keeps_the_filter_line(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        await apply_filter(pilot, "action:opt")
        box = screen.query_one("#log-filter", Input)
        assert box.display and box.has_focus and box.value == "action:opt"
        messages = notification_texts(app)
        assert any("action must be one of" in m and "opt-in" in m and "opt-out" in m for m in messages)
        assert screen.log_view.total == len(SEED) and screen.log_view.filters.action == ""
        await pilot.press("escape")
        assert not box.display and screen.log_view.has_focus


async def test_filter_by_a_credential_name_with_a_space(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential(name="Shop UK"),
                      shop_credential(name="Shop", inbound_number="447491163449"))
    store(db_path, inbound(ALICE, SHOP, "for the UK shop"), inbound(BOB, "+447491163449", "for the main shop"))
    app = SmsDeskApp(db_path, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        await filter_to(pilot, log, 'cred:"Shop UK"', 1)
        assert shown_texts(log, ["for the UK shop", "for the main shop"]) == ["for the UK shop"]
        assert "cred:'Shop UK'" in status(screen)


# ---- the detail pane ----------------------------------------------------------------------------

async def open_detail(pilot: Pilot[None], text: str) -> str:
    screen = await open_log(pilot)
    log = screen.log_view
    for _ in range(len(SEED)):
        if log.cursor_row is not None and log.cursor_row.text == text:
            break
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause()
    detail = pilot.app.screen
    assert isinstance(detail, MessageDetailScreen)
    return text_of(detail.query_one("#message-detail", Static))


async def test_detail_pane_of_an_opt_out(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        shown = await open_detail(pilot, "STOP please")
        assert "STOP please" in shown and "Normalised stop please" in shown
        assert "Action opt-out  keyword STOP" in shown
        assert "Rule first word is opt-out keyword 'STOP': consent withdrawn, opt-out message sent" in shown
        assert "Consent none → opted out (n)" in shown
        assert "Reply failed" in shown and "1 SMS part" in shown
        assert "Shop: unsubscribed." in shown
        assert "Why HTTP 401: invalid login details" in shown  # a failed reply says why
        assert f"From {BOB}" in shown and "Credential Shop  sandbox prod" in shown
        await pilot.press("escape")
        assert isinstance(app.screen, LogScreen)


async def test_detail_pane_of_a_delivered_help_reply_and_a_double_opt_in(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        shown = await open_detail(pilot, "HELP")
        assert "Reply delivered" in shown and "Shop help: shop.example" in shown
        assert "Delivery report DELIVERED DELIVERED_TO_HANDSET: Message delivered to handset" in shown
        assert "Consent opted in (y) → opted in (y)" not in shown  # Carol never opted in
        assert "Consent none → none" in shown
        await pilot.press("escape")
        shown = await open_detail(pilot, "confirm")
        assert "Action double-opt-in" in shown and "Consent pending (p) → opted in (y)" in shown
        assert "Club: confirmed." in shown


async def test_detail_pane_lists_every_delivery_report_of_the_reply(live_db: Path) -> None:
    """Intermediate and late reports are kept and shown, read on a worker thread."""
    db = connect(live_db)
    try:
        (our_id,) = db.conn.execute("SELECT o.our_message_id FROM outbox o JOIN messages m ON m.reply_id = o.id "
                                    "WHERE m.text = 'Do you ship to Zürich? 🚚'").fetchone()
        with transaction(db) as conn:
            apply_delivery_reports(conn, [
                (our_id, "PENDING", "PENDING_ENROUTE: Message sent to next instance", "2025-01-15T09:08:10.000+00:00"),
                (our_id, "DELIVERED", "DELIVERED_TO_HANDSET: Message delivered to handset",
                 "2025-01-15T09:08:30.000+00:00"),
                (our_id, "PENDING", "PENDING_WAITING_DELIVERY: late", "2025-01-15T09:08:20.000+00:00")])
    finally:
        db.close()
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        shown = await open_detail(pilot, "Do you ship to Zürich? 🚚")
        assert "Delivery report DELIVERED DELIVERED_TO_HANDSET" in shown  # the late PENDING did not undo it
        reports = app.screen.query_one("#message-reports", Static)
        await wait_until(pilot, lambda: reports.display and "as they arrived" in text_of(reports),
                         what="delivery reports")
        assert text_of(reports).splitlines() == [
            "Delivery reports 3, as they arrived",
            "  2025-01-15 09:08:10  PENDING  PENDING_ENROUTE: Message sent to next instance",
            "  2025-01-15 09:08:30  DELIVERED  DELIVERED_TO_HANDSET: Message delivered to handset",
            "  2025-01-15 09:08:20  PENDING  PENDING_WAITING_DELIVERY: late  (kept, did not change the status)"]
        await pilot.press("escape")
        await open_detail(pilot, "HELP")  # a reply without reports
        reports = app.screen.query_one("#message-reports", Static)
        await wait_until(pilot, lambda: reports.display, what="no reports line")
        assert text_of(reports) == "Delivery reports none yet"


async def test_detail_pane_of_an_unrouted_message_has_no_reply(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        shown = await open_detail(pilot, "wrong number")
        assert "none: unrouted" in shown and "Reply none" in shown and "Action unrouted" in shown


# ---- traffic strip ------------------------------------------------------------------------------

def strip_text(screen: LogScreen) -> str:
    return text_of(screen.query_one("#traffic-counts", Static))


async def test_traffic_strip_counts_today_and_follows_new_rows(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        strip = screen.query_one(TrafficStrip)
        await wait_until(pilot, lambda: strip.latest is not None, what="traffic figures")
        # The same words as the log's action column, the filter and the exports.
        assert strip_text(screen).startswith("today opt-in 3  opt-out 1  help 1  double-opt-in 1")
        assert "double-opt-in 1  custom 1\ndefault 2  unrouted 1" in strip_text(screen)  # whole items per line
        assert f"last hour {len(SEED)}, peak {len(SEED)}/min" in strip_text(screen)
        # Both lines fit beside the sparkline at 80 columns (under the tab line), uncut.
        top, second = screen_lines(pilot)[1:3]
        assert "today opt-in 3" in top and "double-opt-in 1" in top
        assert "unrouted 1" in second and f"peak {len(SEED)}/min" in second

        store(live_db, inbound(ALICE, SHOP, "STOP"), inbound(CAROL, SHOP, "stop it"))
        await wait_until(pilot, lambda: "opt-out 3" in strip_text(screen), what="strip refresh")
        assert sum(strip.latest.per_minute) == len(SEED) + 2  # type: ignore[union-attr]


async def test_traffic_strip_buckets_per_minute_against_its_clock(tmp_path: Path) -> None:
    """Rows stored at fixed times and a fixed clock: the sparkline data are exact."""
    db_path = seed_db(tmp_path / "smsdesk.db", stored_at_received=True)
    app = SmsDeskApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(LogScreen(app.data, clock=lambda: FIXED_NOW))
        screen = app.screen
        assert isinstance(screen, LogScreen)
        strip = screen.query_one(TrafficStrip)
        await wait_until(pilot, lambda: strip.latest is not None, what="traffic figures")
        per_minute = strip.latest.per_minute  # type: ignore[union-attr]
        # The window is 08:31..09:30; the seed has one message in each minute 09:00..09:09.
        assert per_minute[29:39] == [1] * 10 and sum(per_minute) == 10 and len(per_minute) == 60
        assert "today opt-in 3" in strip_text(screen)


# ---- a second process -----------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from smsdesk.store.db import connect, transaction
    from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
    db = connect(sys.argv[1])
    routes = RouteTable()
    for i in range(5):
        with transaction(db) as conn:
            store_messages(conn, routes, [InboundMessage(
                f"proc-{i}", "+41795550000", "+447491163443", f"from the server {i}",
                "2025-01-15T11:00:00.000+00:00")])
        time.sleep(0.1)
    db.close()
""")


async def test_messages_stored_by_a_second_process_appear(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        log = screen.log_view
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(live_db))
        await wait_until(pilot, lambda: "from the server 4" in log_lines(log)[0], seconds=15,
                         what="the other process's rows")
        assert await asyncio.wait_for(process.wait(), 10) == 0
        lines = log_lines(log)
        assert [f"from the server {i}" in lines[4 - i] for i in range(5)] == [True] * 5
        assert "+41795550000" in lines[0] and "default" in lines[0] and "queued" in lines[0]
        assert log.total == len(SEED) + 5 and log.follow


# ---- escape sequences ---------------------------------------------------------------------------

HOSTILE_TEXT = "hi \x1b[2J\x1b]0;pwned\x07 \x9b31m there\r\nline two"
HOSTILE_SENDER = "\x1b[31mEVIL"  # an alphanumeric sender is stored as received


async def test_escape_sequences_in_inbound_text_are_rendered_inert(live_db: Path) -> None:
    store(live_db, inbound(HOSTILE_SENDER, SHOP, HOSTILE_TEXT), inbound(ALICE, SHOP, HOSTILE_TEXT))
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        await wait_until(pilot, lambda: screen.log_view.total == len(SEED) + 2, what="hostile rows")
        painted = "\n".join(screen_lines(pilot))
        assert "\\x1b[2J" in painted
        for raw in ("\x1b", "\x07", "\x9b", "\r"):
            assert raw not in painted, f"raw {raw!r} reached the terminal (log)"

        await pilot.press("down", "enter")  # the hostile sender's row
        await pilot.pause()
        assert isinstance(app.screen, MessageDetailScreen)
        painted = "\n".join(screen_lines(pilot))
        assert "pwned" in painted and "EVIL" in painted
        for raw in ("\x1b", "\x07", "\x9b", "\r"):
            assert raw not in painted, f"raw {raw!r} reached the terminal (detail)"

        await pilot.press("escape", "3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) == 6, what="profiles with the hostile sender")
        await pilot.pause()
        painted = "\n".join(screen_lines(pilot))
        assert "EVIL" in painted
        assert "\x1b" not in painted, "raw ESC reached the terminal (profiles)"


# ---- profiles -----------------------------------------------------------------------------------

async def open_profiles(pilot: Pilot[None]) -> ProfilesScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ProfilesScreen)
    await wait_until(pilot, lambda: "profiles" in profiles_status(screen), what="profiles loaded")
    return screen


def profiles_status(screen: ProfilesScreen) -> str:
    return text_of(screen.query_one("#profiles-status", Static))


def numbers(screen: ProfilesScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_profiles_list_consent_attributes_and_first_last_contact(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        assert profiles_status(screen).startswith("5 profiles")  # the unrouted stranger has none
        assert numbers(screen) == [EVE, CAROL, DORA, BOB, ALICE]  # most recent contact first
        table = screen.query_one(DataTable)
        rows = {str(table.get_row_at(i)[1]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        # First contact as a date, last contact to the minute: the table fits 80 columns.
        assert rows[ALICE] == ["prod", ALICE, "y", "DISCOUNT×1", "2025-01-15", "2025-01-15 09:01"]
        assert rows[BOB][2] == "n" and rows[CAROL][2] == "none" and rows[DORA][2] == "y" and rows[EVE][2] == "p"
        assert rows[DORA][0] == "dev" and rows[DORA][4:] == ["2025-01-15", "2025-01-15 09:05"]


@pytest.mark.parametrize(("query", "expected", "status_start"), [
    ("consent:y", [DORA, ALICE], "2 of 5 profiles match"),
    ("consent:n", [BOB], "1 of 5 profiles match"),
    ("consent:p", [EVE], "1 of 5 profiles match"),
    ("consent:none", [CAROL], "1 of 5 profiles match"),
    ("consent:Y sandbox:prod", [ALICE], "1 of 5 profiles match"),
    ("attr:DISCOUNT", [ALICE], "1 of 5 profiles match in segment"),
    ("attr:discount", [ALICE], "1 of 5 profiles match in segment"),
    ("attr:NOPE", [], "0 of 5 profiles match in segment"),
    ("3026728", [BOB], "1 of 5 profiles match"),
])
async def test_profiles_filter(live_db: Path, query: str, expected: list[str], status_start: str) -> None:
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        await pilot.press("slash")
        box = screen.query_one("#profiles-filter", Input)
        assert box.has_focus
        box.value = query
        await pilot.press("enter")
        await wait_until(pilot, lambda: query in profiles_status(screen), what="filter applied")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert numbers(screen) == expected
        assert profiles_status(screen).startswith(status_start)  # "0 of 5 profiles match": never a bare 0
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(numbers(screen)) == 5 and "filter" not in profiles_status(screen),
                         what="filter cleared")


async def test_profiles_filter_rejects_a_bad_consent(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        await pilot.press("slash")
        screen.query_one("#profiles-filter", Input).value = "consent:maybe"
        await pilot.press("enter")
        await pilot.pause()
        assert any("consent must be y, n, p or none" in text for text in notification_texts(app))
        assert len(numbers(screen)) == 5


async def test_profile_ledger_modal_lists_consent_changes_with_their_messages(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        await pilot.press("down", "down")  # Dora, Club's double opt-in
        assert numbers(screen)[screen.query_one(DataTable).cursor_row] == DORA
        await pilot.press("enter")
        modal = app.screen
        assert isinstance(modal, ProfileDetailScreen)
        detail = modal.query_one("#profile-detail", Static)
        await wait_until(pilot, lambda: "Consent ledger" in text_of(detail), what="ledger loaded")
        lines = text_of(detail).splitlines()
        assert lines[0].startswith(f"{DORA} sandbox dev  consent y  first 2025-01-15T09:03:04")
        ledger = lines[lines.index("Consent ledger") + 1:lines.index("Attributes") - 1]
        assert len(ledger) == 2
        # Each change names the message that caused it, as the person typed it.
        assert "none → p" in ledger[0] and '"START"' in ledger[0] and "pending confirmation" in ledger[0]
        assert "p → y" in ledger[1] and '"confirm"' in ledger[1]
        latest = lines[lines.index("Latest messages") + 1:]
        assert [line.split()[1] for line in latest] == ["double-opt-in", "opt-in", "default"]
        await pilot.press("escape")
        assert isinstance(app.screen, ProfilesScreen)


async def test_profile_without_consent_says_so(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        await pilot.press("down", "enter")  # Carol: HELP and a question, never a consent keyword
        assert numbers(screen)[1] == CAROL
        detail = app.screen.query_one("#profile-detail", Static)
        await wait_until(pilot, lambda: "Consent ledger" in text_of(detail), what="ledger loaded")
        shown = text_of(detail)
        assert "(no consent ever expressed)" in shown and "HELP" in shown and "Do you ship" in shown


async def test_profile_messages_are_this_number_only(live_db: Path) -> None:
    """A number that is a prefix of another (+4179302672 of Alice's +41793026727) sees only its own."""
    store(live_db, inbound(ALICE[:-1], SHOP, "I am the shorter number"))
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_profiles(pilot)
        assert numbers(screen)[0] == ALICE[:-1]
        await pilot.press("enter")
        detail = app.screen.query_one("#profile-detail", Static)
        await wait_until(pilot, lambda: "Latest messages" in text_of(detail), what="profile loaded")
        latest = text_of(detail).split("Latest messages")[1]
        assert "I am the shorter number" in latest
        assert "DISCOUNT" not in latest and "YES" not in latest


MARKUP_TEXT = "[$accent]50% off[/] [/b] [@click=app.quit]x[/] [b]bold?"


async def test_markup_like_text_is_shown_as_typed_everywhere(live_db: Path) -> None:
    store(live_db, inbound(ALICE, SHOP, MARKUP_TEXT))
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        shown = await open_detail(pilot, MARKUP_TEXT)
        assert MARKUP_TEXT in shown
        await pilot.press("escape", "3")
        screen = await open_profiles(pilot)
        assert numbers(screen)[0] == ALICE  # the most recent contact
        await pilot.press("enter")
        detail = app.screen.query_one("#profile-detail", Static)
        await wait_until(pilot, lambda: "Latest messages" in text_of(detail), what="profile loaded")
        assert MARKUP_TEXT in text_of(detail)
        await pilot.press("escape", "4")
        tester = app.screen
        assert isinstance(tester, KeywordTesterScreen)
        await wait_until(pilot, lambda: bool(tester.credentials), what="tester ready")
        tester.query_one("#tester-text", Input).value = MARKUP_TEXT
        await pilot.pause()
        # words end at punctuation (issue 15): the brackets are gone from the normalised text, and
        # what is left is shown as typed, not as markup
        assert "Normalised  accent 50 off b click=app quit x b bold" in verdict(tester)


# ---- keyword tester -----------------------------------------------------------------------------

async def open_tester(pilot: Pilot[None], credential: str) -> KeywordTesterScreen:
    screen = pilot.app.screen
    assert isinstance(screen, KeywordTesterScreen)
    await wait_until(pilot, lambda: bool(screen.credentials), what="credentials loaded")
    select = screen.query_one("#tester-credential", Select)
    names = {c.name: c.id for c in screen.credentials.values()}
    await pilot.press("shift+tab", "shift+tab")
    assert select.has_focus
    await pilot.press("enter")
    for _ in range(len(names) + 1):
        if select.value == names[credential]:
            break
        await pilot.press("down", "enter")
        await pilot.pause()
        if select.value == names[credential]:
            break
        await pilot.press("enter")
    assert select.value == names[credential]
    screen.query_one("#tester-text", Input).focus()
    await pilot.pause()
    return screen


def verdict(screen: KeywordTesterScreen) -> str:
    return text_of(screen.query_one("#tester-verdict", Static))


async def test_tester_shows_the_decision_without_storing_anything(live_db: Path) -> None:
    before = row_counts(live_db)
    app = SmsDeskApp(live_db, initial_mode="tester")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tester(pilot, "Shop")
        await pilot.press(*"  Stop please!")
        shown = verdict(screen)
        assert "Normalised  stop please!" not in shown
        assert "Normalised  stop please" in shown
        assert "Action      opt-out  (keyword STOP)" in shown
        assert "Consent     none → opted out (n)  (changes)" in shown
        assert f"Reply       from {SHOP}, 19 chars, GSM-7, 1 SMS part" in shown
        assert "Shop: unsubscribed." in shown

        text_box = screen.query_one("#tester-text", Input)
        text_box.value = "discount"
        await pilot.pause()
        shown = verdict(screen)
        assert "Action      custom  (keyword DISCOUNT)" in shown
        assert "Attribute   DISCOUNT recorded on the profile" in shown
        assert "Consent     none → none  (unchanged)" in shown

        text_box.value = "what are your opening hours"
        await pilot.pause()
        assert "Reply       from" in verdict(screen) and "Shop: thanks!" in verdict(screen)

        # An opted-out number gets no default reply.
        consent = screen.query_one("#tester-consent", Select)
        consent.value = "n"
        await pilot.pause()
        assert "Reply       none" in verdict(screen)

        await pilot.pause(0.3)
    assert row_counts(live_db) == before


async def test_tester_counts_reply_parts_of_a_long_unicode_reply(tmp_path: Path) -> None:
    reply = "Dziękujemy za wiadomość! " * 4  # ę and ś are not GSM-7: UCS-2, 99 units, two parts of 67
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential(default_reply_message=reply.strip()))
    before = row_counts(db_path)
    app = SmsDeskApp(db_path, initial_mode="tester")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, KeywordTesterScreen)
        await wait_until(pilot, lambda: bool(screen.credentials), what="credentials loaded")
        await pilot.press(*"hello")
        assert "99 chars, UCS-2, 2 SMS parts" in verdict(screen)
    assert row_counts(db_path) == before


# ---- navigation ---------------------------------------------------------------------------------

async def test_views_switch_with_single_keys_and_back(live_db: Path) -> None:
    app = SmsDeskApp(live_db)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, CredentialsScreen)
        await pilot.press("2")
        assert isinstance(app.screen, LogScreen)
        await open_log(pilot)
        await pilot.press("3")
        assert isinstance(app.screen, ProfilesScreen)
        await open_profiles(pilot)
        await pilot.press("4")
        assert isinstance(app.screen, KeywordTesterScreen)
        await wait_until(pilot, lambda: bool(app.screen.credentials), what="tester ready")  # type: ignore[attr-defined]
        # The tester's text box has focus: digits are part of a message, Esc leaves the box.
        await pilot.press("1")
        assert isinstance(app.screen, KeywordTesterScreen)
        assert app.screen.query_one("#tester-text", Input).value == "1"
        await pilot.press("escape", "1")
        assert isinstance(app.screen, CredentialsScreen)
        await pilot.press("2")
        log_screen = app.screen
        assert isinstance(log_screen, LogScreen)  # the same screen, its state kept
        await pilot.press("4")
        assert app.screen.query_one("#tester-text", Input).value == "1"


async def test_views_are_reachable_from_the_command_palette(live_db: Path) -> None:
    app = SmsDeskApp(live_db)
    async with app.run_test(size=SIZE) as pilot:
        for search, screen_type in (("profiles", ProfilesScreen), ("tester", KeywordTesterScreen),
                                    ("inbound", LogScreen)):
            await pilot.press("ctrl+p")
            await pilot.press(*search)
            await wait_until(pilot, lambda: "Go to" in "\n".join(screen_lines(pilot)), what="palette hit")
            await pilot.press("enter")
            await wait_until(pilot, lambda t=screen_type: isinstance(app.screen, t), what=f"{search} view")


async def test_log_reads_without_colour(live_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR=1: actions and reply states are words, the paused state is spelled out."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        painted = screen_lines(pilot)
        assert any("opt-out" in line and "failed" in line for line in painted)
        await pilot.press("down")
        await wait_until(pilot, lambda: "PAUSED" in status(screen), what="paused")
        assert "l: back to live" in status(screen)


def test_profiles_seed_has_the_expected_consents(live_db: Path) -> None:
    """Guards the fixture the tests above rely on (the pipeline decides, not the tests)."""
    db = connect(live_db)
    try:
        consent = dict(db.conn.execute("SELECT number, consent FROM consent").fetchall())
    finally:
        db.close()
    assert consent == {ALICE: "y", BOB: "n", DORA: "y", EVE: "p"}
    assert CLUB != SHOP


async def test_a_reply_cancelled_by_a_later_stop_shows_cancelled_and_why(live_db: Path) -> None:
    store(live_db, inbound(STRANGER, SHOP, "is anyone there", at="2025-01-15T10:00:00.000+00:00"),
          inbound(STRANGER, SHOP, "STOP", at="2025-01-15T10:00:01.000+00:00"))
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "is anyone there" in screen_text(pilot), what="the message listed")
        row = next(line for line in screen_text(pilot).splitlines() if "is anyone there" in line)
        assert "cancelled" in row
        shown = await open_detail(pilot, "is anyone there")
        assert "Reply cancelled" in shown
        assert "Why the number opted out (message #" in shown and "before the reply was sent" in shown
