"""A pull answer lost at Infobip (issue 24, point 2) is shown under the tab line of every view,
read from `pull_losses` when the data changes; one older than Infobip keeps messages is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.pull_losses import record_pull_loss
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.log import LogScreen
from tests.support.live import screen_text, wait_until

SIZE = (80, 24)


def lose_a_pull(db_path: Path, at: datetime) -> None:
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            record_pull_loss(conn, at.isoformat(timespec="milliseconds"), 1, "Shop", "inbox",
                             "no answer: dropped: connection dropped: Server disconnected")
    finally:
        db.close()


async def test_a_lost_pull_answer_is_shown_in_every_view_until_it_is_too_old(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    lose_a_pull(db_path, datetime.now(UTC) - timedelta(hours=49))  # Infobip no longer has it anyway
    app = SmsDeskApp(db_path, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Shop" in screen_text(pilot), what="the credentials view")
        assert app.notice == "" and "A pull of" not in screen_text(pilot)
        lose_a_pull(db_path, datetime.now(UTC))  # what serve's poller records
        await wait_until(pilot, lambda: "✗ A pull of inbound messages for Shop lost its answer at" in
                         screen_text(pilot).replace("\n", " "), what="the problem line")
        assert "Infobip's web interface" in app.screen.problem and "(retrying)" not in app.screen.problem
        await pilot.press("2")
        assert isinstance(app.screen, LogScreen)
        await wait_until(pilot, lambda: "✗ A pull of" in screen_text(pilot), what="the log shows it too")
        assert app.is_running
