"""Direct commits (writer/direct_commits.py): a lone webhook committed by serve itself, on the real
file; and everything else, a lock, a failure, a webhook that is not alone, handed to the writer."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.engine.healthz import CHECK_TIMEOUT_S, StorageHealth
from smsdesk.engine.mo import parse_inbound
from smsdesk.engine.service import ServerThread
from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.store.inbound import inbound_rows, store_inbound
from smsdesk.writer.direct_commits import MAX_REQUESTS, MAX_RESULTS, DirectCommits, DirectCommitter
from smsdesk.writer.jobs import job
from smsdesk.writer.thread_writer import GroupCommitWriter
from tests.support.serve import (
    WEBHOOK_PASSWORD,
    WEBHOOK_USER,
    durability,
    hold_writer,
    page_limit,
    running_serve,
    wait_until,
    writer_disk_full,
)
from tests.support.store import rows

AUTH = (WEBHOOK_USER, WEBHOOK_PASSWORD)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential(default_reply_message="Thanks!"))


@pytest.fixture
def serve(db_path: Path) -> Iterator[ServerThread]:
    """`serve` in-process, with direct commits (the default)."""
    with running_serve(db_path) as server:
        assert server.service.direct is not None
        yield server


@pytest.fixture
def direct(db_path: Path) -> Iterator[DirectCommitter]:
    committer = DirectCommitter(db_path, pause=0.3)
    committer.open()
    yield committer
    committer.close()


def webhook(*texts: str, prefix: str = "m") -> list[tuple[str, ...]]:
    """A webhook's results as the receiver hands them on (parsed and normalised)."""
    body = mo_body(*(mo_result(text, message_id=f"{prefix}-{i}") for i, text in enumerate(texts)))
    return inbound_rows(parse_inbound(body))


def stored(db_path: Path) -> list[tuple]:
    return rows(db_path, "SELECT message_id, action FROM messages ORDER BY id")


def replies(db_path: Path) -> int:
    return int(rows(db_path, "SELECT COUNT(*) FROM outbox")[0][0])


class LockHolder:
    """Another process holding SQLite's write lock on the file until it is told to let go."""

    def __init__(self, db_path: Path) -> None:
        code = ("import sqlite3, sys\n"
                f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.readline()\n"
                "c.execute('ROLLBACK')\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


def failing_run(conn: sqlite3.Connection, items: list[tuple[str, ...]]) -> list[object]:
    """Writes, then fails on its input as a bug would: nothing of it may stay."""
    store_inbound(conn, items)
    raise ValueError("a result the job cannot take")


# --- the committer on its own -------------------------------------------------------------------


def test_a_job_is_committed_with_its_reply_and_its_outcomes_returned(direct: DirectCommitter, db_path: Path) -> None:
    outcomes = direct.try_commit(store_inbound, webhook("hello", "STOP"))
    assert outcomes is not None
    assert [(message_id, action) for message_id, _, action, _ in outcomes] == [("m-0", "default"),
                                                                               ("m-1", "opt-out")]
    assert stored(db_path) == [("m-0", "default"), ("m-1", "opt-out")]  # read by another connection: committed
    assert replies(db_path) == 2
    assert (direct.committed, direct.declined) == (1, 0)
    again = direct.try_commit(store_inbound, webhook("hello", "STOP"))  # Infobip's retry of the same webhook
    assert again is not None and [row_id for _, row_id, _, _ in again] == [None, None]
    assert len(stored(db_path)) == 2


def test_declines_at_once_while_another_process_holds_the_write_lock(direct: DirectCommitter, db_path: Path) -> None:
    holder = LockHolder(db_path)
    try:
        started = time.monotonic()
        assert direct.try_commit(store_inbound, webhook("STOP")) is None
        # Declined without waiting for the lock: the writer, not the event loop, waits for it.
        assert time.monotonic() - started < 1.0
        assert direct.declined == 1
    finally:
        holder.release()
    assert stored(db_path) == []
    # A lock is nobody's failure: no pause, the next webhook is committed here again.
    assert direct.try_commit(store_inbound, webhook("STOP")) is not None
    assert stored(db_path) == [("m-0", "opt-out")]


def test_a_job_failing_on_its_input_leaves_nothing_and_does_not_pause(direct: DirectCommitter,
                                                                      db_path: Path) -> None:
    assert direct.try_commit(failing_run, webhook("hello", "STOP")) is None
    assert stored(db_path) == [] and replies(db_path) == 0
    assert direct.try_commit(store_inbound, webhook("hello")) is not None
    assert stored(db_path) == [("m-0", "default")]


def test_storage_trouble_pauses_direct_commits_then_a_new_connection_takes_over(direct: DirectCommitter,
                                                                                db_path: Path) -> None:
    # The connection's page limit fails the next growth exactly as a full disk does (SQLITE_FULL).
    assert direct.try_commit(page_limit(1), []) == []
    big = webhook(*(["x" * 1500] * 50))
    assert direct.try_commit(store_inbound, big) is None
    assert stored(db_path) == []
    # Paused: declined without trying, though the disk would not fail a small webhook.
    assert direct.try_commit(store_inbound, webhook("hello", prefix="small")) is None
    assert stored(db_path) == []
    assert direct.declined == 2
    calls: list[int] = []
    assert direct.try_commit(lambda conn, items: calls.append(1) or [], []) is None
    assert calls == []  # not tried at all while paused
    time.sleep(0.35)
    # After the pause a new connection, without the old one's state, is opened on a thread (the
    # caller's loop never waits for an open): declined meanwhile, then committing again.
    assert wait_until(lambda: direct.try_commit(store_inbound, big) is not None, 5)
    assert len(stored(db_path)) == 50


def not_a_database(path: Path) -> None:
    path.write_bytes(b"this is not a SQLite file" * 200)


def another_programs_database(path: Path) -> None:
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes (body TEXT)")  # tables, but not ours: the migration check refuses it
    other.close()


@pytest.mark.parametrize("make_file", [not_a_database, another_programs_database], ids=lambda f: f.__name__)
def test_a_file_it_cannot_open_is_declined_not_raised(tmp_path: Path, make_file: Any) -> None:
    make_file(tmp_path / "smsdesk.db")
    committer = DirectCommitter(tmp_path / "smsdesk.db", pause=60)
    try:
        committer.open()  # logged, not raised (another program's file: RuntimeError from the migration check)
        assert committer.try_commit(store_inbound, webhook("STOP")) is None
        assert committer.declined == 1
    finally:
        committer.close()


def test_a_closed_committer_declines(direct: DirectCommitter, db_path: Path) -> None:
    direct.close()
    assert direct.try_commit(store_inbound, webhook("STOP")) is None
    assert stored(db_path) == []


# --- serve deciding who commits -----------------------------------------------------------------


def post(url: str, *results: dict) -> httpx.Response:
    return httpx.post(url + "/infobip/inbound", json=mo_body(*results), auth=AUTH, timeout=30)


def test_both_connections_that_commit_webhooks_are_wal_and_synchronous_full(serve: ServerThread) -> None:
    """README: "200 only after COMMIT" with synchronous=FULL, whichever connection commits: the
    writer process's and serve's own (a SIGKILL test passes even at synchronous=OFF)."""
    assert serve.service.writer.submit(job(durability)).result(10) == ("wal", 2)
    direct = serve.service.direct
    assert direct.try_commit(lambda conn, items: [durability(conn) for _ in items], [None]) == [("wal", 2)]


def test_a_lone_webhook_is_committed_by_serve_itself(serve: ServerThread, db_path: Path) -> None:
    direct = serve.service.direct
    response = post(serve.url, mo_result("STOP", message_id="lone"))
    assert response.status_code == 200 and response.json() == {"stored": 1, "duplicates": 0}
    assert direct.committed == 1
    assert stored(db_path) == [("lone", "opt-out")]
    assert post(serve.url, mo_result("STOP", message_id="lone")).json() == {"stored": 0, "duplicates": 1}


class SlowRequest:
    """A webhook whose body has not all arrived: a request in progress until `finish`."""

    def __init__(self, url: str, message_id: str) -> None:
        self.content = json.dumps(mo_body(mo_result("hello", message_id=message_id))).encode()
        credentials = base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode()
        head = (f"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Basic {credentials}\r\nContent-Length: {len(self.content)}\r\n\r\n")
        parsed = httpx.URL(url)
        self.sock = socket.create_connection((parsed.host, parsed.port))
        self.sock.sendall(head.encode() + self.content[:10])

    def finish(self) -> bytes:
        try:
            self.sock.sendall(self.content[10:])
            return self.sock.recv(4096)
        finally:
            self.sock.close()


def test_with_another_request_in_progress_a_webhook_is_still_committed_on_the_loop(serve: ServerThread,
                                                                                   db_path: Path) -> None:
    direct = serve.service.direct
    in_progress = serve.server.server_state.tasks  # uvicorn's request tasks: what the receiver counts
    slow = SlowRequest(serve.url, "slow")
    assert wait_until(lambda: len(in_progress) == 1, 5)
    assert post(serve.url, mo_result("STOP", message_id="meanwhile")).status_code == 200
    assert direct.committed == 1  # two in progress: a group, of one, committed on the loop
    assert b"200 OK" in slow.finish()
    assert direct.committed == 2  # alone by then
    assert sorted(stored(db_path)) == [("meanwhile", "opt-out"), ("slow", "default")]


def test_with_many_requests_in_progress_a_webhook_goes_to_the_writer(serve: ServerThread, db_path: Path) -> None:
    direct = serve.service.direct
    in_progress = serve.server.server_state.tasks
    slow = [SlowRequest(serve.url, f"slow-{i}") for i in range(MAX_REQUESTS)]
    assert wait_until(lambda: len(in_progress) == MAX_REQUESTS, 5)
    response = post(serve.url, mo_result("STOP", message_id="meanwhile"))
    assert response.status_code == 200
    assert direct.committed == 0 and direct.declined == 0  # not even tried: the writer's
    for request in slow:
        assert b"200 OK" in request.finish()
    assert len(stored(db_path)) == MAX_REQUESTS + 1


def test_a_webhook_of_many_results_goes_to_the_writer(serve: ServerThread, db_path: Path) -> None:
    direct = serve.service.direct
    results = [mo_result("hello", sender=f"4179000{i:04d}", message_id=f"many-{i}") for i in range(MAX_RESULTS + 1)]
    assert post(serve.url, *results).json() == {"stored": MAX_RESULTS + 1, "duplicates": 0}
    assert direct.committed == 0 and direct.declined == 0


def test_a_lock_held_by_another_process_is_waited_for_by_the_writer_not_by_the_loop(serve: ServerThread,
                                                                                   db_path: Path) -> None:
    """README: "another process holding the write lock: declined within a second, never waited for
    on the event loop, the writer answers"."""
    direct = serve.service.direct
    holder = LockHolder(db_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            in_progress = serve.server.server_state.tasks
            webhook_sent = pool.submit(post, serve.url, mo_result("STOP", message_id="behind-a-lock"))
            assert wait_until(lambda: len(in_progress) == 1, 5)
            started = time.monotonic()
            # The loop answers another request while the webhook waits for the lock: in the
            # writer, not in a direct commit on the loop (whose wait would hold this answer too).
            assert httpx.get(serve.url + "/no-such-route", timeout=5).status_code == 404
            assert time.monotonic() - started < 1.0  # a busy timeout is 2 s
            assert direct.declined >= 1
            assert not webhook_sent.done()
            holder.release()  # within the writer's busy timeout: it commits
            assert webhook_sent.result(10).status_code == 200
    finally:
        holder.release()
    assert direct.committed == 0
    assert stored(db_path) == [("behind-a-lock", "opt-out")]


def test_healthz_says_database_locked_while_another_process_holds_the_lock_and_ok_after(
        serve: ServerThread, db_path: Path) -> None:
    """README: /healthz answers 503 "whenever webhooks would get 503", and says why: here another
    process holds the write lock past the writer's busy timeout (2 s)."""
    holder = LockHolder(db_path)
    try:
        webhook = post(serve.url, mo_result("STOP", message_id="locked-out"))
        assert webhook.status_code == 503 and webhook.headers["retry-after"]
        time.sleep(0.3)  # the verdict the webhook left is older than FRESH_S: /healthz checks again
        health = httpx.get(serve.url + "/healthz", timeout=10)
        assert health.status_code == 503
        assert "database locked" in health.text
    finally:
        holder.release()
    assert wait_until(lambda: httpx.get(serve.url + "/healthz", timeout=10).status_code == 200, 1.5)
    assert post(serve.url, mo_result("STOP", message_id="locked-out")).status_code == 200
    assert stored(db_path) == [("locked-out", "opt-out")]


def test_healthz_says_storage_not_answering_when_the_writer_does_not_answer(serve: ServerThread) -> None:
    held = serve.service.writer.submit(job(hold_writer, CHECK_TIMEOUT_S + 1.5))
    try:
        started = time.monotonic()
        health = httpx.get(serve.url + "/healthz", timeout=20)
        assert health.status_code == 503 and "storage not answering" in health.text
        assert time.monotonic() - started < CHECK_TIMEOUT_S + 1.0  # answered at the check's timeout
    finally:
        held.result(20)
    assert wait_until(lambda: httpx.get(serve.url + "/healthz", timeout=10).status_code == 200, 2)


def test_a_webhook_while_the_writer_has_a_job_in_hand_goes_to_the_writer(serve: ServerThread, db_path: Path) -> None:
    direct = serve.service.direct
    held = serve.service.writer.submit(job(hold_writer, 1.0))
    response = post(serve.url, mo_result("STOP", message_id="behind-a-job"))
    assert held.done(), "answered before the writer's job ended: it did not go through the writer"
    assert response.status_code == 200
    assert direct.committed == 0 and direct.declined == 0
    assert stored(db_path) == [("behind-a-job", "opt-out")]


def test_serve_without_direct_commits_sends_every_webhook_to_the_writer(db_path: Path) -> None:
    with running_serve(db_path, direct_commits=False) as serve:
        assert serve.service.direct is None
        assert post(serve.url, mo_result("STOP", message_id="via-writer")).status_code == 200
        assert stored(db_path) == [("via-writer", "opt-out")]


def test_while_healthz_reports_a_problem_webhooks_go_to_the_writer(serve: ServerThread, db_path: Path) -> None:
    """/healthz's verdict holds for webhooks: while its last check found a problem, the writer
    answers them (here the writer's connection cannot grow the file; serve's own still could)."""
    direct = serve.service.direct
    writer_disk_full(serve)
    assert wait_until(lambda: httpx.get(serve.url + "/healthz").json()["status"] == "disk full", 5)
    big = [mo_result("x" * 1500, message_id=f"full-{i}") for i in range(50)]
    assert post(serve.url, *big).status_code == 503
    assert direct.committed == 0 and stored(db_path) == []
    writer_disk_full(serve, False)
    assert wait_until(lambda: httpx.get(serve.url + "/healthz").status_code == 200, 5)
    assert post(serve.url, *big).json() == {"stored": 50, "duplicates": 0}  # many results: the writer
    assert post(serve.url, mo_result("STOP", message_id="after")).status_code == 200
    assert direct.committed == 1


# --- grouping on the loop -------------------------------------------------------------------------


def store_unless_boom(conn: sqlite3.Connection, items: list[tuple[str, ...]]) -> list[tuple]:
    """`store_inbound`, failing on its input (as a bug would) when a result's text is "boom"."""
    if any(item[3] == "boom" for item in items):
        raise ValueError("a result the job cannot take")
    return store_inbound(conn, items)


@pytest.fixture
def writer(db_path: Path) -> Iterator[GroupCommitWriter]:
    started = GroupCommitWriter(db_path).start()
    yield started
    started.stop()


@pytest.fixture
def health(writer: GroupCommitWriter) -> StorageHealth:
    return StorageHealth(writer)


@pytest.fixture
def loop_commits(direct: DirectCommitter, writer: GroupCommitWriter, health: StorageHealth) -> DirectCommits:
    return DirectCommits(direct, writer, health)


THREE_IN_PROGRESS = ("a", "b", "c")  # what the receiver passes: the server's requests in progress


def together(loop_commits: DirectCommits, webhook: list[tuple[str, ...]]) -> Awaitable[list[Any] | None]:
    """One of three webhooks in progress at once."""
    return loop_commits.store(store_unless_boom, THREE_IN_PROGRESS, webhook)


async def test_webhooks_in_progress_together_share_one_commit(loop_commits: DirectCommits, db_path: Path) -> None:
    webhooks = [webhook("hello", "STOP", prefix=f"w{i}") for i in range(3)]
    outcomes = await asyncio.gather(*(together(loop_commits, webhook) for webhook in webhooks))
    # Each gets its own results back, in its own order.
    assert [[(message_id, action) for message_id, _, action, _ in mine] for mine in outcomes] == [
        [(f"w{i}-0", "default"), (f"w{i}-1", "opt-out")] for i in range(3)]
    assert loop_commits.committer.committed == 1
    assert len(stored(db_path)) == 6


async def test_the_same_message_twice_in_one_group_is_stored_once(loop_commits: DirectCommits,
                                                                  db_path: Path) -> None:
    first, again = await asyncio.gather(together(loop_commits, webhook("STOP")),
                                        together(loop_commits, webhook("STOP")))
    assert first is not None and again is not None
    assert [row_id is None for _, row_id, _, _ in first + again] == [False, True]
    assert stored(db_path) == [("m-0", "opt-out")]


async def test_a_group_that_fails_sends_every_webhook_to_the_writer(loop_commits: DirectCommits,
                                                                     db_path: Path) -> None:
    outcomes = await asyncio.gather(together(loop_commits, webhook("STOP", prefix="good")),
                                    together(loop_commits, webhook("boom", prefix="bad")))
    assert outcomes == [None, None]  # the writer's turn: it finds whose result failed
    assert stored(db_path) == []


async def test_too_many_in_progress_or_too_many_results_or_unknown_is_the_writers(loop_commits: DirectCommits,
                                                                                 db_path: Path) -> None:
    assert await loop_commits.store(store_unless_boom, ("r",) * (MAX_REQUESTS + 1), webhook("STOP")) is None
    assert await loop_commits.store(store_unless_boom, THREE_IN_PROGRESS, webhook(*["hi"] * (MAX_RESULTS + 1))) is None
    assert await loop_commits.store(store_unless_boom, None, webhook("STOP")) is None  # not served by our HTTP protocol
    assert stored(db_path) == [] and loop_commits.committer.declined == 0
    assert await loop_commits.store(store_unless_boom, ("r",), webhook("STOP")) is not None  # alone: at once


async def test_a_group_takes_at_most_max_requests_webhooks(loop_commits: DirectCommits, db_path: Path) -> None:
    webhooks = [webhook("hello", prefix=f"w{i}") for i in range(MAX_REQUESTS + 1)]
    outcomes = await asyncio.gather(*(together(loop_commits, webhook) for webhook in webhooks))
    assert [mine is not None for mine in outcomes] == [True] * MAX_REQUESTS + [False]  # the last: the writer's
    assert loop_commits.committer.committed == 1
    assert len(stored(db_path)) == MAX_REQUESTS


def short_results(conn: sqlite3.Connection, items: list[tuple[str, ...]]) -> list[tuple]:
    """A job that stores its items but returns fewer results than it was given."""
    return store_inbound(conn, items)[:-1]


def test_a_job_returning_the_wrong_number_of_results_is_rolled_back(direct: DirectCommitter,
                                                                    db_path: Path) -> None:
    assert direct.try_commit(short_results, webhook("hello", "STOP")) is None
    assert stored(db_path) == []


async def test_a_problem_found_while_a_group_forms_sends_the_group_to_the_writer(
        loop_commits: DirectCommits, health: StorageHealth, db_path: Path) -> None:
    first = asyncio.ensure_future(together(loop_commits, webhook("STOP", prefix="a")))
    await asyncio.sleep(0)  # the group has begun, its commit two turns away
    # Meanwhile a webhook the writer answered 503 (or /healthz) found the disk full.
    health.note_failure(sqlite3.OperationalError("database or disk is full"))
    assert await first is None
    assert stored(db_path) == []


async def test_a_stale_problem_is_checked_again_so_direct_commits_resume_by_themselves(
        loop_commits: DirectCommits, health: StorageHealth, db_path: Path) -> None:
    health.note_failure(sqlite3.OperationalError("database is locked"))  # a lock another process let go of
    assert await loop_commits.store(store_unless_boom, ("r",), webhook("STOP", prefix="a")) is None
    # Nobody polls /healthz here: declined attempts check again once the verdict is stale.
    deadline = time.monotonic() + 5
    while health.last_problem is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await loop_commits.store(store_unless_boom, ("r",), webhook("STOP", prefix="b"))
    assert health.last_problem is None
    assert await loop_commits.store(store_unless_boom, ("r",), webhook("STOP", prefix="c")) is not None


async def test_a_cancelled_request_in_a_group_is_committed_and_its_neighbours_answered(
        loop_commits: DirectCommits, db_path: Path) -> None:
    gone = asyncio.ensure_future(together(loop_commits, webhook("STOP", prefix="gone")))
    stays = asyncio.ensure_future(together(loop_commits, webhook("hello", prefix="stays")))
    await asyncio.sleep(0)
    gone.cancel()  # its client went away: what it sent is committed all the same, as a writer job would be
    assert [message_id for message_id, *_ in await stays] == ["stays-0"]
    assert gone.cancelled()
    assert sorted(stored(db_path)) == [("gone-0", "opt-out"), ("stays-0", "default")]


def test_after_the_writer_answers_503_the_next_webhook_gets_the_writers_answer(serve: ServerThread,
                                                                               db_path: Path) -> None:
    """The writer's connection cannot grow the file, serve's own could: once a webhook got 503
    from the writer, the next lone one is the writer's to answer, not a direct commit's."""
    direct = serve.service.direct
    writer_disk_full(serve)
    many = [mo_result("x" * 1500, message_id=f"full-{i}") for i in range(50)]  # many results: the writer
    assert post(serve.url, *many).status_code == 503
    post(serve.url, mo_result("STOP", message_id="lone"))  # 503, or 200 if it fits in the file's free room
    assert direct.committed == 0 and direct.declined == 0  # either way the writer's answer, not tried here
    writer_disk_full(serve, False)
    # No /healthz poll: the verdict is checked again by itself and direct commits resume.
    assert wait_until(lambda: post(serve.url, mo_result("hi", message_id="later")).status_code == 200
                      and direct.committed >= 1, 10)
