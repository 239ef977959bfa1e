"""While Infobip is failing, the log's status line shows the replies waiting to go out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.tui.app import SmsDeskApp


async def status_text(app: SmsDeskApp) -> str:
    return str(app.screen.query_one("#log-status").render())


async def test_backlog_of_queued_and_failed_replies_is_shown(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    app = SmsDeskApp(db_path, initial_mode="log")
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):
            await pilot.pause(0.05)
            if "LIVE" in await status_text(app):
                break
        assert "replies" not in await status_text(app)
        db = connect(db_path)
        with transaction(db) as conn:
            store_messages(conn, RouteTable(), [
                InboundMessage(f"b{i}", f"+4179000000{i}", "+447491163443", "HELP", "2026-11-26T10:00:00.000+00:00")
                for i in range(3)])
            conn.execute("UPDATE outbox SET status = 'failed' WHERE id = 1")
            conn.execute("UPDATE outbox SET status = 'unknown' WHERE id = 2")  # its answer lost: logs asked
        db.close()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if "1 queued, 1 unknown, 1 failed" in await status_text(app):
                break
        assert "replies: 1 queued, 1 unknown, 1 failed" in await status_text(app)
