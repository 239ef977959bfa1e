"""Live and large: a view's read in flight finishes, and the view reads once more after it.

At scale a first read takes a while; under live traffic a commit comes every second. A view that
restarted its read on every change (the log while not yet loaded, Profiles' exclusive worker)
never showed a screen, and the restarted reads kept running on the pool. Here the first read is
held at a gate (the real read, on the real file, only started late) while another connection
commits; the reads each view started are counted. The app's first probe is the baseline, not a
change (it made every first read run twice).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.tui import data as data_module
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.data import DataService
from smsdesk.tui.screens import profiles as profiles_module
from smsdesk.tui.screens import review as review_module
from smsdesk.tui.screens.profiles import ProfilesScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets import message_log as log_module
from smsdesk.tui.widgets.message_log import MessageLog
from tests.support.live import inbound, screen_text, store, wait_until

SHOP = "+447491163443"
COMMITS = 5


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    store(path, *(inbound(f"+4179302670{i}", SHOP, "hello", message_id=f"seed-{i}") for i in range(3)))
    return path


class Gate:
    """Wraps a store read: counts its calls and holds each at the gate until it opens (on the pool
    thread, as a slow read at scale would hold it); then the real read runs."""

    def __init__(self, read: Callable[..., Any]) -> None:
        self.read = read
        self.calls = 0
        self.open = threading.Event()

    def __call__(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.open.wait(10)
        return self.read(conn, *args, **kwargs)


async def commits_while_held(pilot: Any, db_path: Path, gate: Gate, prefix: str) -> None:
    """COMMITS messages from another connection, each seen by the app's probe, while the read waits."""
    for i in range(COMMITS):
        store(db_path, inbound(f"+4179400000{i}", SHOP, "hello again", message_id=f"{prefix}-{i}"))
        await pilot.pause(0.12)  # a few probe ticks: each commit is announced
    assert gate.calls >= 1, "the view's read did not start"
    gate.open.set()


async def test_the_log_finishes_its_first_read_and_polls_once_after_it(db_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(log_module.log_first_page)
    monkeypatch.setattr(log_module, "log_first_page", gate)
    app = SmsDeskApp(db_path, poll_seconds=0.03, initial_mode="log")
    async with app.run_test(size=(100, 30)) as pilot:
        await commits_while_held(pilot, db_path, gate, "live")
        log = app.screen.query_one(MessageLog)
        await wait_until(pilot, lambda: log.loaded and log.total == 3 + COMMITS, what="every message")
        await pilot.pause(0.2)
        assert (gate.calls, log.loads) == (1, 1)  # one first read; the commits came with a poll after it
        assert "hello again" in screen_text(pilot)


async def test_profiles_finish_their_read_and_read_once_more_after_it(db_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(profiles_module.read_profiles)
    monkeypatch.setattr(profiles_module, "read_profiles", gate)
    app = SmsDeskApp(db_path, poll_seconds=0.03, initial_mode="profiles")
    async with app.run_test(size=(100, 30)) as pilot:
        await commits_while_held(pilot, db_path, gate, "profiles")
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 3 + COMMITS, what="every profile")
        await pilot.pause(0.2)
        # The read held at the gate, and one more for everything committed meanwhile: not one per commit.
        assert gate.calls == 2 and screen.loads == 2


async def test_a_quiet_database_is_read_once(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first probe is the baseline: no commit, no second read (every first read ran twice)."""
    gate = Gate(log_module.log_first_page)
    gate.open.set()
    monkeypatch.setattr(log_module, "log_first_page", gate)
    app = SmsDeskApp(db_path, poll_seconds=0.03, initial_mode="log")
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.screen.query_one(MessageLog)
        await wait_until(pilot, lambda: log.loaded, what="the log")
        await pilot.pause(0.3)  # ten probe ticks
        assert gate.calls == 1


async def test_the_first_probe_is_the_baseline_and_a_commit_after_it_is_a_change(db_path: Path) -> None:
    service = DataService(db_path)
    try:
        assert await service.probe() is False
        assert await service.probe() is False
        store(db_path, inbound("+41794000009", SHOP, "hello", message_id="after-baseline"))
        assert await service.probe() is True
        assert await service.probe() is False
    finally:
        service.close()


async def test_a_commit_between_the_baseline_and_the_first_read_is_shown(db_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The app takes the baseline before the first view reads: a commit right after it is read."""
    real_probe = DataService.probe
    stored = []

    async def probe_then_commit(self: DataService) -> bool:
        changed = await real_probe(self)
        if not stored:
            stored.append(store(db_path, inbound("+41794000008", SHOP, "just after", message_id="racing")))
        return changed

    monkeypatch.setattr(data_module.DataService, "probe", probe_then_commit)
    app = SmsDeskApp(db_path, poll_seconds=0.03, initial_mode="log")
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.screen.query_one(MessageLog)
        await wait_until(pilot, lambda: log.loaded and log.total == 4, what="the message committed after the baseline")


async def test_the_review_queue_says_first_n_of_m(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store(db_path, *(inbound(f"+4179500000{i}", SHOP, "STPO", message_id=f"near-{i}") for i in range(5)))
    monkeypatch.setattr(review_module, "PAGE", 3)
    app = SmsDeskApp(db_path, poll_seconds=0.03, initial_mode="review")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 3, what="three rows")
        await wait_until(pilot, lambda: "first 3 of 5 to review" in screen_text(pilot), what="first 3 of 5")
        monkeypatch.setattr(review_module, "PAGE", 10)
        store(db_path, inbound("+41795000009", SHOP, "STPO", message_id="near-9"))
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 6, what="six rows")
        await wait_until(pilot, lambda: "6 to review" in screen_text(pilot), what="all six, no 'first'")
        assert "first 6" not in screen_text(pilot) and " of 6" not in screen_text(pilot)
