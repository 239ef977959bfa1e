"""Infobip's pulls are read-once (issue 24, point 2): a pull consumes what it returns, so the
poller never sends one again by itself, keeps the answer's bytes before it reads them, and
reports an answer that was lost or cannot be read where the operator looks: the log,
`pull_losses` (the TUI's problem line) and /healthz.

Real pieces: the simulator over loopback HTTP, a real SQLite file, the writer process.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.engine import poller as poller_module
from smsdesk.engine.poller import InboxPoller, PulledBatch, Spool, spool_dir
from smsdesk.infobip.client import INBOX_PATH
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import FaultKind, SimulatorState
from smsdesk.store.paths import write_all
from smsdesk.store.pull_losses import latest_pull_loss
from smsdesk.writer.parent import ProcessWriter
from tests.support.serve import running_serve, wait_until
from tests.support.store import rows

KEY = "shop-key-0001"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorState(keys={KEY})) as simulator:
        yield simulator


@pytest.fixture
def db(tmp_path: Path, sim: SimulatorThread) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, inbound_mode="pull"))


def queue(sim: SimulatorThread, prefix: str, *texts: str) -> None:
    for i, text in enumerate(texts):
        sim.state.queue_inbound(f"4179{i:07d}", SHOP_NUMBER, text, message_id=f"{prefix}-{i}")


def spool_files(db_path: Path) -> list[Path]:
    directory = spool_dir(db_path)
    return sorted(directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("how", ["dropped", "read timeout"])
async def test_a_pull_whose_answer_was_lost_is_not_sent_again_and_is_reported(
        db: Path, sim: SimulatorThread, how: str, caplog: pytest.LogCaptureFixture) -> None:
    """Before: the client retried the GET after the dropped connection, which consumed the next
    batch, and nothing said the first was gone (STOP included)."""
    queue(sim, "lost", "HELP", "STOP")
    if how == "dropped":
        sim.state.lose_pull_answers(1)
    else:  # Infobip takes the pull at once and answers after the client gave up
        sim.state.inject(FaultKind.SLOW, 1, delay=3.0, process=True, path_prefix=INBOX_PATH)
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer, client_options={"timeout": 1.0})
    try:
        await asyncio.to_thread(writer.wait_ready)
        with caplog.at_level(logging.ERROR, logger="smsdesk.poller"):
            assert await poller.run_once() == 0
        assert sim.state.count_requests(INBOX_PATH) == 1  # one request: never sent again
        assert sim.state.inbox_size == 0  # consumed at Infobip all the same
        loss = latest_pull_loss(sqlite3.connect(db))
        assert loss is not None and (loss.credential, loss.kind) == ("Shop", "inbox")
        assert loss.reason.startswith("no answer: ")
        detail = poller.health_detail()
        assert detail is not None and detail.startswith(f"last pull answer lost at {loss.at} for credential Shop")
        assert "lost its answer" in caplog.text and "read-once" in caplog.text
        # The next round pulls again, as every round does: what came since is stored.
        queue(sim, "after", "HELP")
        assert await poller.run_once() == 1
    finally:
        await poller.aclose()
        writer.stop()
    assert rows(db, "SELECT message_id FROM messages") == [("after-0",)]
    assert spool_files(db) == []


async def test_a_pull_answer_that_is_not_json_is_kept_and_reported(db: Path, sim: SimulatorThread) -> None:
    queue(sim, "garbled", "STOP")
    queue(sim, "readable", "HELP")
    sim.state.garble_pull_answers(1)  # the first pull consumes both and answers a proxy's HTML page
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        assert await poller.run_once() == 0
        assert sim.state.inbox_size == 0 and sim.state.count_requests(INBOX_PATH) == 1
    finally:
        await poller.aclose()
        writer.stop()
    [kept] = spool_files(db)  # set aside, never loaded as a batch again
    assert kept.name.endswith("-inbox.pull.unreadable")
    header, _, raw = kept.read_bytes().partition(b"\n")
    assert raw == b"<html><body>502 Bad Gateway</body></html>" and json.loads(header)["length"] == len(raw)
    [(credential, kind, reason)] = rows(db, "SELECT credential, kind, reason FROM pull_losses")
    assert (credential, kind) == ("Shop", "inbox") and "not JSON" in reason and str(kept) in reason
    [(source, why, text)] = rows(db, "SELECT source, reason, raw FROM unreadable_inbound")
    assert (source, why, text) == ("pull", reason, "<html><body>502 Bad Gateway</body></html>")


@pytest.mark.parametrize("body", [b'[{"messageId": "x"}]', b'{"results": "none"}', b'{"messageCount": 0}'],
                         ids=["an array", "results not an array", "no results"])
async def test_a_pull_answer_in_another_shape_is_reported(db: Path, sim: SimulatorThread, body: bytes) -> None:
    queue(sim, "shape", "STOP")
    sim.state.garble_pull_answers(1, body)
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        assert await poller.run_once() == 0
    finally:
        await poller.aclose()
        writer.stop()
    [(reason,)] = rows(db, "SELECT reason FROM pull_losses")
    assert reason.startswith("the answer cannot be read: the pull answer ")


async def test_a_result_that_is_not_an_object_does_not_lose_its_neighbours(db: Path, sim: SimulatorThread) -> None:
    sim.state.queue_raw_inbound(42)
    queue(sim, "neighbour", "STOP")
    sim.state.queue_raw_inbound(["an", "array"])
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        assert await poller.run_once() == 1
    finally:
        await poller.aclose()
        writer.stop()
    assert rows(db, "SELECT message_id FROM messages") == [("neighbour-0",)]
    assert rows(db, "SELECT raw FROM unreadable_inbound ORDER BY id") == [("42",), ('["an", "array"]',)]
    assert rows(db, "SELECT COUNT(*) FROM pull_losses") == [(0,)]  # the answer was read: nothing lost


async def test_the_answer_is_spooled_as_it_came_before_anything_reads_it(
        db: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the spool was written only after the answer parsed; a failure in between lost it."""
    queue(sim, "spooled", "STOP", "HELP")

    def broken(body: bytes) -> list[object]:
        raise RuntimeError("a bug while reading the answer")

    monkeypatch.setattr(poller_module, "pull_results", broken)
    writer = ProcessWriter(db).start()
    try:
        await asyncio.to_thread(writer.wait_ready)
        poller = InboxPoller(db, writer)
        try:
            assert await poller.run_once() == 0  # the credential's round failed
        finally:
            await poller.aclose()
        [spooled] = spool_files(db)
        assert b'"messageId":"spooled-0"' in spooled.read_bytes().replace(b" ", b"")
        monkeypatch.undo()
        poller = InboxPoller(db, writer)  # the next start stores what the spool kept
        try:
            assert await poller.run_once() == 2
        finally:
            await poller.aclose()
    finally:
        writer.stop()
    assert sorted(rows(db, "SELECT message_id FROM messages")) == [("spooled-0",), ("spooled-1",)]
    assert spool_files(db) == []


def test_a_short_write_is_continued_and_a_write_of_nothing_is_a_full_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(poller_module.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    spool = Spool(tmp_path / "spool")
    batch = PulledBatch("inbox", 1, "Shop", [], raw=b'{"results": [{"messageId": "short-writes"}]}')
    spool.write(batch)
    [loaded] = spool.load()
    assert loaded.raw == batch.raw and loaded.path == batch.path

    monkeypatch.setattr(poller_module.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])) if len(data) > 40
                        else 0)
    with pytest.raises(OSError) as full:
        spool.write(PulledBatch("inbox", 1, "Shop", [], raw=b'{"results": [{"messageId": "a full disk"}]}'))
    assert full.value.errno == errno.ENOSPC
    assert sorted(path.name for path in (tmp_path / "spool").iterdir()) == [batch.path.name]  # no torn file
    assert [b.raw for b in spool.load()] == [batch.raw]
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            write_all(fd, b"x" * 10)
    finally:
        os.close(fd)


def test_a_torn_temporary_spool_file_is_left_in_place_not_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.write(PulledBatch("inbox", 1, "Shop", [], raw=b'{"results": []}'))
    [whole] = list((tmp_path / "spool").iterdir())
    torn = whole.with_name("00000000000000000000-1-000000-inbox.pull.tmp")
    torn.write_bytes(whole.read_bytes()[:-3])  # a stop before all of it was written
    whole_tmp = whole.with_name(whole.name + ".tmp")
    os.rename(whole, whole_tmp)  # a stop after the fsync, before the rename: complete
    assert [batch.path for batch in spool.load()] == [whole_tmp]
    assert torn.exists()


def test_serve_reports_a_lost_pull_answer_in_healthz_and_stays_200(db: Path, sim: SimulatorThread) -> None:
    queue(sim, "healthz", "STOP")
    sim.state.lose_pull_answers(1)
    with running_serve(db, run_poller=True, poll_interval=0.1) as serve:
        def pull_detail() -> tuple[int, dict[str, str]]:
            answer = httpx.get(serve.url + "/healthz", timeout=5)
            return answer.status_code, answer.json()

        assert wait_until(lambda: "pull" in pull_detail()[1], timeout=10), pull_detail()
        status, body = pull_detail()
        assert status == 200 and body["status"] == "ok"
        assert body["pull"].startswith("last pull answer lost at ") and "for credential Shop (inbox: no answer" in body[
            "pull"]
    assert sim.state.count_requests(INBOX_PATH) >= 2  # later rounds pulled again, each once
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(0,)]


async def test_a_rotated_key_closes_the_pollers_old_client(db: Path, sim: SimulatorThread) -> None:
    from smsdesk.store.credentials import get_credential, update_credential
    from smsdesk.store.db import connect

    sim.state.keys.add("rotated-key-0002")
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        await poller.run_once()
        [old] = poller.clients.open_clients()
        handle = connect(db)
        cred = get_credential(handle, "Shop")
        update_credential(handle, cred.id, shop_credential(sim.url, inbound_mode="pull", api_key="rotated-key-0002"),
                          cred.version)
        handle.close()
        await poller.run_once()
        assert old.closed
        [new] = poller.clients.open_clients()
        assert new is not old and not new.closed
    finally:
        await poller.aclose()
        writer.stop()
