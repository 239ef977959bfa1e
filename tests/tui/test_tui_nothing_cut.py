"""Nothing cut that has room to show, pop-ups inside their frame (issue 27, point 5), at 80x24 and
60x20: what the terminal shows is read back line by line (the compositor's text, not the widgets')."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Input
from textual.widgets._select import SelectOverlay

from smsdesk.simulator.sample_data import make_db
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.impact import ImpactScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets.traffic import TrafficStrip
from tests.support.live import ALICE, FIXED_NOW, SHOP, inbound, screen_lines, screen_text, seed_db, store, wait_until
from tests.support.tui_steps import field_on_the_last_line
from tests.tui.test_tui_contrast import set_fuzzy_mode

SIZES = [(80, 24), (60, 20)]


def flat(pilot_text: str) -> str:
    """The screen's text as one line of words: a sentence wrapped over lines still matches."""
    return " ".join(pilot_text.split())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
async def test_the_tab_line_names_every_view(tmp_path: Path, size: tuple[int, int]) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode="log", poll_seconds=30)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        tabs = screen_lines(pilot)[0]
        for key, word in (("1", "credentials"), ("2", "log"), ("3", "profiles"), ("4", "tester"), ("5", "review")):
            assert f" {key} " in tabs and word in tabs.lower(), tabs
        assert "…" not in tabs


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
async def test_log_rows_fit_and_the_traffic_strip_shows_every_count(tmp_path: Path, size: tuple[int, int]) -> None:
    db = seed_db(tmp_path / "smsdesk.db", stored_at_received=True)
    set_fuzzy_mode(db, "reply")
    store(db, inbound(ALICE, SHOP, "STOPP", "2025-01-15T09:20:00.000+00:00"))  # a near-opt-out today
    app = SmsDeskApp(db, initial_mode="log", poll_seconds=30)
    app.VIEWS = tuple(v if v.mode != "log" else type(v)(v.mode, v.key, v.title, lambda a: LogScreen(
        a.data, clock=lambda: FIXED_NOW)) for v in SmsDeskApp.VIEWS)
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.query_one(TrafficStrip).latest is not None,
                         what="log")
        await pilot.pause(0.2)
        lines = screen_lines(pilot)
        assert all(len(line.rstrip()) <= size[0] for line in lines)
        strip = flat(" ".join(lines[1:5]))
        for word in ("opt-in", "opt-out", "help", "double-opt-in", "custom", "default", "unrouted", "near-opt-out",
                     "· last hour", "peak 1/min"):
            assert word in strip, strip
        text = screen_text(pilot)
        for word in ("double-opt-in", "delivered", "near-opt-out", "unrouted"):
            assert f" {word} " in text or text.count(word) > 1, f"{word} cut:\n{text}"


async def test_the_reply_column_widens_when_a_reply_changes_state(tmp_path: Path) -> None:
    """The column is sized to what it shows: a reply that goes from queued to undeliverable
    takes its room (it stayed 'undeliv…' at 120 columns with the text column wide open)."""
    db = make_db(tmp_path / "smsdesk.db")
    seed_db(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE outbox SET status = 'queued'")
    conn.close()
    app = SmsDeskApp(db, initial_mode="log", poll_seconds=0.05)
    async with app.run_test(size=(120, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded and "queued" in screen_text(pilot), what="log")
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE outbox SET status = 'undeliverable' WHERE id = (SELECT MIN(id) FROM outbox)")
        conn.close()
        await wait_until(pilot, lambda: "undeliver" in screen_text(pilot), what="the new state")
        await pilot.pause(0.2)
        assert " undeliverable" in screen_text(pilot), screen_text(pilot)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
async def test_the_review_empty_state_and_a_filter_error_are_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode="review", poll_seconds=30)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: "Nothing to review" in screen_text(pilot), what="the empty state")
        await pilot.pause()
        assert ("Nothing to review: near misses appear here when a credential's fuzzy opt-out is review or "
                "reply+review.") in flat(screen_text(pilot))
        await pilot.press("2")
        await wait_until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_view.loaded, what="log")
        await pilot.press("slash", *"action:zzz")
        await wait_until(pilot, lambda: "✗" in screen_text(pilot), what="the filter error")
        await pilot.pause()
        error = str(app.screen.query_one(".filter-error").render())
        assert error.startswith("✗ action must be one of") and error.endswith("review")
        assert flat(error) in flat(screen_text(pilot)), screen_text(pilot)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
async def test_the_form_status_is_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), poll_seconds=30)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-name", Input).value = "Promo"
        form.query_one("#f-base_url", Input).value = "ftp://promo.example.com"
        await pilot.press("f2")
        await pilot.pause()
        shown = region_text(pilot, form.query_one("#edit-status").region)
        assert "✗ 2 fields need attention: API base URL, API key" in flat(shown), screen_text(pilot)


def region_text(pilot: object, region: Region) -> str:
    """What the terminal shows inside `region`, line by line."""
    lines = screen_lines(pilot)  # type: ignore[arg-type]
    return "\n".join(line[region.x:region.right] for line in lines[region.y:region.bottom])


def inside(inner: Region, outer: Region) -> bool:
    return outer.contains_region(inner)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
@pytest.mark.parametrize("field", ["fuzzy_opt_out", "inbound_mode"])
async def test_a_dropdown_opens_inside_the_form(tmp_path: Path, size: tuple[int, int], field: str) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), poll_seconds=30)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        await pilot.press("down", "e")
        form = app.screen
        assert isinstance(form, CredentialEditScreen)
        select = await field_on_the_last_line(pilot, form, field)
        await pilot.press("enter")
        await pilot.pause(0.3)
        overlay = select.query_one(SelectOverlay)
        frame = form.query_one("#edit-dialog")
        bar = form.query_one("#edit-bar")
        assert overlay.region.area, "the dropdown did not open"
        assert inside(overlay.region, frame.region.shrink(frame.styles.gutter)), (overlay.region, frame.region)
        assert not overlay.region.overlaps(bar.region), (overlay.region, bar.region)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
async def test_the_impact_preview_opens_inside_the_form(tmp_path: Path, size: tuple[int, int]) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), poll_seconds=30)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        await pilot.press("down", "e")
        form = app.screen
        assert isinstance(form, CredentialEditScreen)
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, ImpactScreen), what="the impact preview")
        await pilot.pause(0.3)
        dialog = app.screen.query_one("#impact-dialog")
        frame = form.query_one("#edit-dialog")
        assert inside(dialog.region, frame.region.shrink(frame.styles.gutter)), (dialog.region, frame.region)
        assert not dialog.region.overlaps(form.query_one("#edit-bar").region)


async def test_the_review_queue_lists_at_60_columns(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    set_fuzzy_mode(db, "review")
    store(db, inbound(ALICE, SHOP, "STPO"))
    app = SmsDeskApp(db, initial_mode="review", poll_seconds=30)
    async with app.run_test(size=(60, 20)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        await wait_until(pilot, lambda: bool(screen.items), what="the near miss")
        await pilot.pause()
        shown = screen_text(pilot)
        assert "1 to review" in shown
        assert "STPO" in shown and ALICE in shown, shown  # the near miss and its number, not scrolled off


async def test_the_credentials_list_shows_every_column_at_60_columns(tmp_path: Path) -> None:
    """Name, sandbox and host are cut further (Enter and `/` have them whole); mode and valid stay."""
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), poll_seconds=30)
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        await pilot.pause()
        lines = screen_lines(pilot)
        assert "mode" in lines[2] and "valid" in lines[2], lines[2]
        assert "48h" in screen_text(pilot) and "12h" in screen_text(pilot)
