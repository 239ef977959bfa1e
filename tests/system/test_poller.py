"""The poller never drops a pulled batch: inbound messages and delivery reports are consumed at
Infobip when pulled, so whatever fails while storing them, they wait (in memory, and in the
spool beside the database) until they are committed.

Real pieces throughout: the simulator over loopback HTTP, a real SQLite file, the writer process
(`ProcessWriter`) or the in-process group-commit writer, and once `smsdesk serve` itself, killed
with SIGKILL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.engine import poller as poller_module
from smsdesk.engine.poller import InboxPoller, spool_dir
from smsdesk.infobip.client import InfobipClient, OutboundSms
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.writer.parent import ProcessWriter
from smsdesk.writer.thread_writer import GroupCommitWriter
from tests.support.serve import apply_delivery_reports_unless, store_inbound_unless, wait_until

KEY = "shop-key-0001"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorState(keys={KEY})) as simulator:
        yield simulator


@pytest.fixture
def db(tmp_path: Path, sim: SimulatorThread) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, inbound_mode="pull"))


def count(db_path: Path, sql: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def queue_help(sim: SimulatorThread, n: int, prefix: str = "m") -> None:
    for i in range(n):
        sim.state.queue_inbound(f"4179{i:07d}", SHOP_NUMBER, "HELP", message_id=f"{prefix}-{i}")


async def rounds_until_stored(poller: InboxPoller, expected: int, seconds: float = 20.0) -> int:
    """Run poller rounds (its backoff decides when a kept batch is tried again) until `expected`."""
    stored = 0
    deadline = time.monotonic() + seconds
    while stored < expected and time.monotonic() < deadline:
        stored += await poller.run_once()
        await asyncio.sleep(0.05)
    return stored


def spooled(db_path: Path) -> list[Path]:
    directory = spool_dir(db_path)
    return sorted(path for pattern in ("*.pull", "*.pull.tmp", "*.json*") for path in directory.glob(pattern)) \
        if directory.exists() else []


async def test_a_job_raising_a_non_storage_error_keeps_the_batch(
        db: Path, sim: SimulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug in the storing job (RuntimeError in the writer process): the pulled batch is kept,
    nothing more is pulled meanwhile, and it is stored once the job works."""
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setattr(poller_module, "store_inbound", functools.partial(store_inbound_unless, str(flag)))
    queue_help(sim, 5)
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        with caplog.at_level(logging.ERROR, logger="smsdesk.poller"):
            assert await poller.run_once() == 0
            queue_help(sim, 3, prefix="later")
            await asyncio.sleep(0.6)  # past the first backoff: tried again, fails again
            assert await poller.run_once() == 0
        assert sim.state.inbox_size == 3, "pulled again while a batch was unsaved"
        flag.unlink()
        await rounds_until_stored(poller, 8)
    finally:
        await poller.aclose()
        writer.stop()
    assert count(db, "SELECT COUNT(*) FROM messages") == 8  # none of the first pull lost
    assert spooled(db) == []
    assert "RuntimeError: a bug in the job" in caplog.text and "kept, retrying" in caplog.text


async def test_a_dead_writer_keeps_pulled_delivery_reports(db: Path, sim: SimulatorThread) -> None:
    """Delivery reports are pulled too (GET /sms/3/reports consumes them): with the writer
    process killed they wait until its replacement stores them."""
    queue_help(sim, 2)
    writer = ProcessWriter(db, respawn_interval=2.0).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        assert await poller.run_once() == 2  # the HELPs, each with its reply queued
        our_ids = [row[0] for row in sqlite3.connect(db).execute("SELECT our_message_id FROM outbox ORDER BY id")]
        async with InfobipClient(sim.url, KEY) as client:  # as the sender would have sent them
            await client.send([OutboundSms(sender=SHOP_NUMBER, to="+41790000000", text="help", message_id=i)
                               for i in our_ids])
        assert sim.state.deliver() == 2  # no delivery URL: they wait for a pull
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert await poller.run_once() == 0
        assert poller.unsaved == 2 and sim.state.pull_reports(10) == {"results": []}
        assert await rounds_until_stored(poller, 2) == 2
    finally:
        await poller.aclose()
        writer.stop()
    assert count(db, "SELECT COUNT(*) FROM delivery_reports WHERE group_name = 'DELIVERED'") == 2
    assert count(db, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") == 2


async def test_a_report_job_raising_keeps_the_reports(db: Path, sim: SimulatorThread, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setattr(poller_module, "apply_delivery_reports",
                        functools.partial(apply_delivery_reports_unless, str(flag)))
    queue_help(sim, 1)
    writer = GroupCommitWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        assert await poller.run_once() == 1
        (our_id,) = sqlite3.connect(db).execute("SELECT our_message_id FROM outbox").fetchone()
        async with InfobipClient(sim.url, KEY) as client:
            await client.send([OutboundSms(sender=SHOP_NUMBER, to="+41790000000", text="help", message_id=our_id)])
        sim.state.deliver()
        assert await poller.run_once() == 0 and poller.unsaved == 1
        flag.unlink()
        assert await rounds_until_stored(poller, 1) == 1
    finally:
        await poller.aclose()
        writer.stop()
    assert count(db, "SELECT COUNT(*) FROM outbox WHERE status = 'delivered'") == 1


async def test_a_batch_unstored_at_stop_is_spooled_and_stored_at_the_next_start(
        db: Path, sim: SimulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setattr(poller_module, "store_inbound", functools.partial(store_inbound_unless, str(flag)))
    queue_help(sim, 4)
    writer = GroupCommitWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        assert await poller.run_once() == 0
    finally:
        with caplog.at_level(logging.ERROR, logger="smsdesk.poller"):
            await poller.aclose()  # serve stopping with the batch unstored
        writer.stop()
    files = spooled(db)
    assert len(files) == 1
    assert "4 pulled message(s) of Shop not stored yet; kept in" in caplog.text
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert spool_dir(db).stat().st_mode & 0o777 == 0o700
    assert "HELP" in files[0].read_text() and KEY not in files[0].read_text()

    flag.unlink()
    queue_help(sim, 2, prefix="after-restart")
    writer = GroupCommitWriter(db).start()
    poller = InboxPoller(db, writer)  # the next start
    try:
        assert await poller.run_once() == 6  # the spooled 4 first, then the new pull
    finally:
        await poller.aclose()
        writer.stop()
    assert spooled(db) == []
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT message_id FROM messages ORDER BY id")] == [
        "m-0", "m-1", "m-2", "m-3", "after-restart-0", "after-restart-1"]
    conn.close()


async def test_a_spool_that_cannot_be_written_still_keeps_the_batch_in_memory(
        db: Path, sim: SimulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setattr(poller_module, "store_inbound", functools.partial(store_inbound_unless, str(flag)))
    spool_dir(db).write_text("a file where the spool directory should be")
    queue_help(sim, 3)
    writer = GroupCommitWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        with caplog.at_level(logging.ERROR, logger="smsdesk.poller"):
            assert await poller.run_once() == 0
            assert "could not spool a pull answer of" in caplog.text
            flag.unlink()
            assert await rounds_until_stored(poller, 3) == 3
    finally:
        await poller.aclose()
        writer.stop()
    assert count(db, "SELECT COUNT(*) FROM messages") == 3


def what_serve_said(serve: subprocess.Popen[str], db: Path) -> str:
    """For a failed wait: serve stopped, its log, the simulator's and the spool's state."""
    serve.kill()
    _, stderr = serve.communicate(timeout=10)
    return f"spool: {spooled(db)}\nserve's log:\n{stderr}"


def test_serve_killed_with_a_pulled_batch_unstored_stores_it_after_restart(db: Path, sim: SimulatorThread) -> None:
    """`smsdesk serve` pulls while another process holds the database's write lock, is killed
    with SIGKILL, and the next `serve` stores the spooled batch."""
    env = dict(os.environ, SMSDESK_DB=str(db))
    command = [str(Path(sys.executable).with_name("smsdesk")), "serve", "--insecure-no-auth", "--port", "0",
               "--poll-interval", "0.2", "--no-send"]

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("smsdesk serve on "), line
        url = line.split()[3]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        return proc

    serve = start()
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the writer's commits now fail: database is locked
        queue_help(sim, 5)
        assert wait_until(lambda: sim.state.inbox_size == 0 and len(spooled(db)) == 1, timeout=20), \
            what_serve_said(serve, db)
        serve.kill()
        serve.wait(10)
    finally:
        if serve.poll() is None:
            serve.kill()
        blocker.execute("ROLLBACK")
        blocker.close()
    assert count(db, "SELECT COUNT(*) FROM messages") == 0
    serve = start()
    try:
        assert wait_until(lambda: count(db, "SELECT COUNT(*) FROM messages") == 5, timeout=20)
        assert wait_until(lambda: spooled(db) == [], timeout=5)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(15)
