"""The log says how much a search read (issue 28, honest counts): a count that stops at its bound
reads "first N of more than N", a one- or two-character search "the newest W (…not all
searched)". Real SQLite file, the real app at 80x24; the bounds made small so a test file can
pass them (store/queries.py reads them at each call)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from smsdesk.store import queries
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.log import LogScreen
from tests.support.live import SHOP, inbound, seed_db, store, wait_until

SIZE = (80, 24)


@pytest.fixture
def searched_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(queries, "COUNT_CAP", 120)
    monkeypatch.setattr(queries, "SCAN_WINDOW", 12)
    db = seed_db(tmp_path / "smsdesk.db")
    # More than a first page (100 rows: a shorter page is every match, nothing counted) and the bound.
    store(db, *(inbound(f"+4179300{i:03d}", SHOP, f"hello there {i}") for i in range(130)))
    return db


async def _status_after_filter(db: Path, typed: str) -> tuple[str, int]:
    app = SmsDeskApp(db, initial_mode="log", poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded, what="log")
        await pilot.press("slash", *typed, "enter")
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.log_view.filters.text == typed,
                         what="filtered")
        await pilot.pause()
        return str(screen.query_one("#log-status", Static).render()), screen.log_view.total


async def test_a_count_that_stopped_says_first_n_of_more_than_n(searched_db: Path) -> None:
    status, total = await _status_after_filter(searched_db, "hello")
    assert "first 120 of more than 120 matching" in status, status
    assert total == 120  # the list holds the first 120, newest first


async def test_a_short_search_says_it_read_only_the_newest_messages(searched_db: Path) -> None:
    status, _ = await _status_after_filter(searched_db, "he")
    assert "the newest 12 (1-2 characters: not all searched)" in status, status


async def test_a_search_under_the_bound_is_counted_exactly(searched_db: Path) -> None:
    status, total = await _status_after_filter(searched_db, "there 1")
    # 1, 10-19, 100-129: 41, fewer than a page, so every match is on it
    assert total == 41 and "41 of " in status and "more than" not in status, status


async def test_profiles_say_more_than_when_their_count_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consent or segment filter has no index that counts it: the count walks at most COUNT_CAP
    matches and says "more than" (store/queries.py count_profiles_up_to); under a page, it is the page."""
    from smsdesk.store.db import connect, transaction
    from smsdesk.tui import adapters
    from smsdesk.tui.screens.profiles import ProfilesScreen

    monkeypatch.setattr(adapters, "COUNT_CAP", 510)
    db = seed_db(tmp_path / "smsdesk.db")
    handle = connect(db)
    try:
        with transaction(handle) as conn:
            conn.executemany("INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES ('bulk', ?, ?, ?)",
                             [(f"+4420000{i:05d}", "2025-01-01T00:00:00", "2025-02-01T00:00:00") for i in range(520)])
    finally:
        handle.close()
    app = SmsDeskApp(db, initial_mode="profiles", poll_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        status = screen.query_one("#profiles-status", Static)
        await pilot.press("slash", *"consent:none", "enter")
        await wait_until(pilot, lambda: "more than 510 of " in str(status.render()), what="bounded count")
        assert "profiles match (first 500)" in str(status.render())
        await pilot.press("slash", "ctrl+u", *"sandbox:prod", "enter")
        await wait_until(pilot, lambda: "filter sandbox:prod" in str(status.render()), what="prod")
        assert "more than" not in str(status.render())
