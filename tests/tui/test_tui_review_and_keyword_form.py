"""Keyword engine 2 in the TUI: the review queue (view 5), custom keyword replies and presets in
the form, near misses in the keyword tester. Pilot tests and 80x24 snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import connect
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.impact import ImpactScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.screens.tester import TesterScreen as KeywordTester  # not a pytest class
from tests.support.live import inbound, row_counts, screen_text, store, wait_until
from tests.support.tui import ready, select_row

SIZE = (80, 24)
SHOP = "+447491163443"


@pytest.fixture
def review_db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "smsdesk.db",
                   shop_credential(fuzzy_opt_out="reply+review", inbound_keywords=["DISCOUNT", "BLACK FRIDAY"],
                                   custom_keyword_replies={"DISCOUNT": "10% off today with code SAVE10"}),
                   club_credential())
    store(path,
          inbound("+41793026727", SHOP, "START", "2025-01-15T09:00:00.000+00:00", "r-1"),
          inbound("+41793026727", SHOP, "please stop texting me", "2025-01-15T09:05:00.000+00:00", "r-2"),
          inbound("+41793026728", SHOP, "STPO", "2025-01-15T08:30:00.000+00:00", "r-3"),
          inbound("+41793026729", SHOP, "remove me", "2025-01-15T10:00:00.000+00:00", "r-4"))
    return path


def ledger_effects(path: Path) -> list[tuple[str, str, str, str]]:
    db = connect(path)
    try:
        return db.conn.execute("SELECT number, effect, new, operator FROM consent_ledger WHERE operator != '' "
                               "ORDER BY id").fetchall()
    finally:
        db.close()


async def _review_ready(pilot: Pilot[None], rows: int) -> ReviewScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ReviewScreen)
    await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == rows, what=f"{rows} review rows")
    await pilot.pause()
    return screen


async def _open_shop_form(pilot: Pilot[None]) -> CredentialEditScreen:
    app = pilot.app
    select_row(await ready(pilot), "Shop")
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(app.screen, CredentialEditScreen), what="form")
    await pilot.pause()
    assert isinstance(app.screen, CredentialEditScreen)
    return app.screen


async def test_review_queue_opt_out_and_dismiss(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="review")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _review_ready(pilot, 3)
        assert [i.text for i in screen.items] == ["STPO", "please stop texting me", "remove me"]  # oldest first
        await pilot.press("o")  # opt out the oldest: +41793026728 (asked first)
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the question")
        assert "Opt out +41793026728" in screen_text(pilot)
        await pilot.press("n")  # not now: nothing recorded
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ReviewScreen", what="back")
        assert len(screen.items) == 3 and ledger_effects(review_db) == []
        await pilot.press("o", "y")
        await _review_ready(pilot, 2)
        await wait_until(pilot, lambda: "opted out" in screen_text(pilot), what="the decision shown")
        await pilot.press("x", "y")  # dismiss the next
        await _review_ready(pilot, 1)
        await pilot.press("enter")  # the number's history: its ledger and messages, the near miss in full
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ProfileDetailScreen", what="the history")
        await wait_until(pilot, lambda: "remove me" in screen_text(pilot), what="the near miss in the history")
    effects = ledger_effects(review_db)
    assert [(n, e, new) for n, e, new, _ in effects] == [("+41793026728", "changed", "n"),
                                                         ("+41793026727", "dismissed", "y")]
    assert all(op for *_, op in effects)  # the OS user is recorded
    db = connect(review_db)
    try:
        assert verify_consent(db.conn).ok
    finally:
        db.close()


async def test_view_5_and_the_palette_reach_the_review_queue(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("5")
        await _review_ready(pilot, 3)
        assert "5 Review" in screen_text(pilot)
        commands = [c.title for c in app.get_system_commands(app.screen)]
    assert "Go to Review" in commands


async def test_log_shows_open_near_misses_as_review(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="log")
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_until(pilot, lambda: "please stop texting me" in screen_text(pilot), what="log rows")
        assert "review" in screen_text(pilot)


async def test_form_edits_custom_replies_and_applies_a_preset(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_shop_form(pilot)
        replies = form.query_one("#f-custom_keyword_replies", TextArea)
        assert replies.text == "DISCOUNT = 10% off today with code SAVE10"
        replies.load_text("DISCOUNT = 10% off today with code SAVE10\nblack friday = Doors open at 8")
        form.query_one("#preset", Select).value = "us"
        await pilot.pause()
        assert "OPT OUT" in form.query_one("#f-opt_out_keywords", Input).value
        assert form.query_one("#f-help_keywords", Input).value == "HELP, INFO"
        form.query_one("#f-fuzzy_opt_out", Select).value = "review"
        await pilot.pause()
        assert "BLACK FRIDAY" in str(form.query_one("#note-custom_keyword_replies").render()) or \
            "black friday" in str(form.query_one("#note-custom_keyword_replies").render())
        await pilot.press("f2")
        await wait_until(pilot, lambda: not isinstance(app.screen, CredentialEditScreen), what="saved")
    db = connect(review_db)
    try:
        from smsdesk.store.credentials import get_credential
        shop = get_credential(db, "Shop")
    finally:
        db.close()
    assert shop.custom_keyword_replies == {"DISCOUNT": "10% off today with code SAVE10",
                                           "BLACK FRIDAY": "Doors open at 8"}
    assert "REVOKE" in shop.opt_out_keywords and shop.fuzzy_opt_out == "review"


def test_snapshot_review_queue(snap_compare: Callable[..., bool], review_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _review_ready(pilot, 3)

    assert snap_compare(SmsDeskApp(review_db, initial_mode="review"), terminal_size=SIZE, run_before=run_before)


def test_snapshot_form_custom_replies(snap_compare: Callable[..., bool], review_db: Path,
                                      no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        form = await _open_shop_form(pilot)
        form.query_one("#f-custom_keyword_replies", TextArea).load_text(
            "DISCOUNT = 10% off today with code SAVE10\nBLACK FRIDAY = Doors open at 8, first 100 get a gift")
        form.query_one("#f-custom_keyword_replies").focus()
        note = form.query_one("#note-custom_keyword_replies", Static)
        # The part counts follow the text a moment later: wait for them, not for a fixed pause.
        await wait_until(pilot, lambda: "BLACK FRIDAY: 37 chars" in str(note.render()), what="part counts")
        # The form's height settles a moment later on a loaded machine, which moves the scrollbar
        # thumb by a cell: this snapshot is about the field, so the form's scrollbar is hidden.
        form.query_one("#edit-fields").styles.scrollbar_size_vertical = 0
        await pilot.pause()
        # Put the field at the top: the same frame whatever focus scrolled to first.
        form.query_one("#f-custom_keyword_replies").scroll_visible(animate=False, top=True)
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(SmsDeskApp(review_db, initial_mode="credentials"), terminal_size=SIZE,
                        run_before=run_before)


def test_snapshot_form_preset_applied(snap_compare: Callable[..., bool], review_db: Path,
                                      no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        form = await _open_shop_form(pilot)
        form.query_one("#preset", Select).value = "fr"
        form.query_one("#preset").focus()
        await pilot.pause()
        form.query_one("#note-opt_out_keywords").scroll_visible(animate=False, top=True)
        await pilot.pause()

    assert snap_compare(SmsDeskApp(review_db, initial_mode="credentials"), terminal_size=SIZE,
                        run_before=run_before)


def test_snapshot_tester_near_miss(snap_compare: Callable[..., bool], review_db: Path,
                                   no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, KeywordTester)
        await wait_until(pilot, lambda: bool(screen.credentials), what="credentials loaded")
        shop = next(c.id for c in screen.credentials.values() if c.name == "Shop")
        screen.query_one("#tester-credential", Select).value = shop
        screen.query_one("#tester-consent", Select).value = "y"
        screen.query_one("#tester-text", Input).focus()
        await pilot.press(*"STPO")
        await pilot.pause()

    assert snap_compare(SmsDeskApp(review_db, initial_mode="tester"), terminal_size=SIZE, run_before=run_before)


async def test_tester_shows_the_custom_reply(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="tester")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, KeywordTester)
        await wait_until(pilot, lambda: bool(screen.credentials), what="credentials loaded")
        screen.query_one("#tester-credential", Select).value = next(
            c.id for c in screen.credentials.values() if c.name == "Shop")
        screen.query_one("#tester-text", Input).value = "discount"
        await wait_until(pilot, lambda: "SAVE10" in screen_text(pilot), what="custom reply shown")
        screen.query_one("#tester-text", Input).value = "please stop texting me"
        await wait_until(pilot, lambda: "near miss" in screen_text(pilot), what="near miss rule shown")


async def _impact_open(pilot: Pilot[None]) -> None:
    form = await _open_shop_form(pilot)
    form.query_one("#f-opt_out_keywords", Input).value = "STOP, OPT OUT, REMOVE ME"
    form.query_one("#f-inbound_keywords", Input).value = "DISCOUNT, BLACK FRIDAY, HELLO"
    await pilot.pause()
    await pilot.press("f6")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImpactScreen), what="impact preview")
    await pilot.pause()


@pytest.fixture
def impact_db(review_db: Path) -> Path:
    now = datetime.now(UTC)
    store(review_db, *(inbound(f"+4179100{i:04d}", SHOP, text, (now - timedelta(days=1, minutes=i)).isoformat(),
                               f"imp-{i}")
                       for i, text in enumerate(["remove me", "Remove me!", "hello", "hello", "opt out please",
                                                 "what time?"])))
    return review_db


async def test_impact_preview_counts_changes_and_stores_nothing(impact_db: Path) -> None:
    before = row_counts(impact_db)
    app = SmsDeskApp(impact_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        await _impact_open(pilot)
        shown = screen_text(pilot)
        assert "near-opt-out -> opt-out" in shown
        assert "default -> custom HELLO" in shown
        assert "default -> opt-out" in shown  # "opt out please": a multi-word opt-out at the start
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, CredentialEditScreen), what="back to the form")
    assert row_counts(impact_db) == before


def test_snapshot_impact_preview(snap_compare: Callable[..., bool], impact_db: Path, no_cursor_blink: None) -> None:
    assert snap_compare(SmsDeskApp(impact_db, initial_mode="credentials"), terminal_size=SIZE,
                        run_before=_impact_open)
