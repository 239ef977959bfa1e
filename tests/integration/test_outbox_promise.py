"""The outbox's promise, tried the way the world breaks it: real `serve`, real simulator, real SQLite.

Nothing but the opt-out confirmation (and HELP answers) reaches an opted-out number; a reply goes
only with the account it was queued for; an accepted reply is never sent again because recording
it failed; one sender per database; per number, replies leave in arrival order, batched per
credential; consent follows receivedAt.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from smsdesk.infobip.net import http_url, listen_socket, start_server_thread, wait_until
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import Gate, SimulatorState
from smsdesk.store.credentials import create_credential, delete_credential, get_credential, update_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.outbox import claim_due
from smsdesk.store.serve_locks import SenderLock, SenderLockHeld
from tests.support.cli import SCRIPT
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve, writer_pid
from tests.support.store import create_old_credential, rows, store_directly

SHOP_KEY = "shop-key-0001"


@pytest.fixture
def sim():
    state = SimulatorState(keys={SHOP_KEY, "club-key-0002", "new-shop-key-0003"}, webhook_retry_base=0.05)
    with SimulatorThread(state) as simulator:
        yield simulator




def store(db_path: Path, *messages: tuple[str, str, str]) -> None:
    """Store (from, text, receivedAt) messages to the shop's number in one transaction."""
    store_directly(db_path, [InboundMessage(f"m-{time.monotonic_ns()}-{i}", sender, "+" + SHOP_NUMBER, text,
                                            received_at) for i, (sender, text, received_at) in enumerate(messages)])


def claim(db_path: Path, limit: int = 1000) -> list[tuple]:
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            return claim_due(conn, limit)
    finally:
        db.close()


def forward_to(sim: SimulatorThread, serve) -> None:
    sim.state.forward_url = serve.url + "/infobip/inbound"
    sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)


def at(second: int) -> str:
    return f"2026-11-26T10:00:{second:02d}.000+00:00"


# --------------------------------------------------------------------------- 1. opt-out cancels


def test_an_opt_out_cancels_what_was_queued_before_it_except_help(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000001", "hello", at(1)), ("+41790000001", "HELP", at(2)))
    store(db, ("+41790000001", "STOP", at(3)))
    assert rows(db, "SELECT kind, status, last_error FROM outbox ORDER BY id") == [
        ("default", "cancelled", "the number opted out (message #3) before the reply was sent"),
        ("help", "queued", ""),
        ("opt-out", "queued", ""),
    ]


def test_an_opt_out_in_the_same_batch_cancels_the_earlier_reply_not_a_later_opt_in(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000002", "hello", at(1)), ("+41790000002", "STOP", at(2)),
          ("+41790000002", "START", at(3)))
    assert rows(db, "SELECT kind, status FROM outbox ORDER BY id") == [
        ("default", "cancelled"), ("opt-out", "queued"), ("opt-in", "queued")]


def test_the_claim_rechecks_consent_and_cancels_instead_of_sending(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000003", "hello", at(1)))
    # Consent changed by another way than a message of this batch (a review, an import, a
    # second process): the queued reply was never cancelled, the claim must catch it.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO consent (sandbox, number, consent, changed_at, received_at) "
                     "VALUES ('prod', '+41790000003', 'n', 'x', ?)", (at(2),))
    conn.close()
    assert claim(db) == []
    assert rows(db, "SELECT status, last_error FROM outbox") == [
        ("cancelled", "the number opted out before the reply was sent")]


def test_hello_then_stop_from_fifty_numbers_gets_nothing_after_the_confirmation(tmp_path: Path,
                                                                             sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    numbers = [f"4179100{i:04d}" for i in range(50)]
    with running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        for number in numbers:
            sim.state.queue_inbound(number, SHOP_NUMBER, "hello", received_at=at(1))
            sim.state.queue_inbound(number, SHOP_NUMBER, "STOP", received_at=at(2))
        assert sim.wait_until(lambda: sum(m.text == "Shop: unsubscribed." for m in sim.state.sent) == 50,
                              timeout=30)
        time.sleep(0.5)  # anything still due would go out now
    confirmed: set[str] = set()
    for message in sim.state.sent:
        if message.text == "Shop: unsubscribed.":
            confirmed.add(message.to)
        else:
            assert message.to not in confirmed, f"{message.text!r} reached {message.to} after its opt-out"
    assert rows(db, "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')") == [(0,)]


def test_replies_queued_during_an_outage_are_cancelled_by_a_later_stop(tmp_path: Path,
                                                                       sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    sim.state.inject("500", duration=2.0, path_prefix="/sms/3/messages")
    with running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        for i in range(10):
            sim.state.queue_inbound(f"4179200{i:04d}", SHOP_NUMBER, "hello", received_at=at(1))
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox") == [(10,)], timeout=10)
        for i in range(10):
            sim.state.queue_inbound(f"4179200{i:04d}", SHOP_NUMBER, "STOP", received_at=at(2))
        assert sim.wait_until(lambda: len(sim.state.sent) == 10, timeout=40)
        time.sleep(0.5)
    assert {m.text for m in sim.state.sent} == {"Shop: unsubscribed."}
    assert rows(db, "SELECT kind, status, COUNT(*) FROM outbox GROUP BY 1, 2 ORDER BY 1") == [
        ("default", "cancelled", 10), ("opt-out", "sent", 10)]


# --------------------------------------------------------------------------- 2. the right account


def test_credential_ids_are_never_reused(tmp_path: Path) -> None:
    db = connect(tmp_path / "smsdesk.db")
    first = create_credential(db, shop_credential())
    delete_credential(db, first.id)
    second = create_credential(db, shop_credential(name="Shop 2"))
    assert second.id > first.id
    db.close()


def test_migration_starts_credential_ids_above_every_id_ever_pointed_at(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = connect(path, upto=3)
    cred_id = create_old_credential(db, shop_credential())
    db.conn.execute("INSERT INTO outbox (credential_id, our_message_id, sender, to_number, text, "
                    "validity_period_hours, created_at, updated_at) VALUES (7, 'x', 's', '+1', 't', 1, 'a', 'a')")
    db.conn.commit()
    db.conn.execute("DELETE FROM credentials")  # schema 3 let a credential go and its id come back
    db.conn.commit()
    db.close()
    db = connect(path)
    assert create_credential(db, shop_credential()).id == 8 > cred_id
    with pytest.raises(sqlite3.IntegrityError, match="never be reused"):
        db.conn.execute("DELETE FROM outbox")
    db.close()


def test_deleting_a_credential_cancels_its_queue_and_a_new_account_never_sends_it(
        tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=False) as serve:  # the replies wait in the queue
        forward_to(sim, serve)
        for i in range(5):
            sim.state.queue_inbound(f"4179300{i:04d}", SHOP_NUMBER, "hello")
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox") == [(5,)], timeout=10)
    handle = connect(db)
    old = get_credential(handle, "Shop")
    assert delete_credential(handle, old.id) == 5  # cancelled in the delete's transaction
    create_credential(handle, shop_credential(sim.url, name="Other", api_key="new-shop-key-0003", sender="OtherCo"))
    handle.close()
    with running_serve(db, run_outbox=True):
        time.sleep(1.5)  # the sender's rounds: nothing of the old queue may go out, on any account
    assert sim.state.sent == []
    assert rows(db, "SELECT status, credential_name, last_error FROM outbox GROUP BY 1, 2, 3") == [
        ("cancelled", "Shop", "credential 'Shop' was deleted before the reply was sent")]


def test_an_edited_api_key_sends_the_queued_replies_with_the_new_key(tmp_path: Path,
                                                                    sim: SimulatorThread) -> None:
    """Replies belong to the credential, not to a key: a rotated key (the old one revoked at
    Infobip) is what the backlog is sent with; sender and text stay as queued."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=False) as serve:  # the replies wait in the queue
        forward_to(sim, serve)
        for i in range(3):
            sim.state.queue_inbound(f"4179400{i:04d}", SHOP_NUMBER, "hello")
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox") == [(3,)], timeout=10)
    handle = connect(db)
    cred = get_credential(handle, "Shop")
    rotated = shop_credential(sim.url, api_key="new-shop-key-0003", sender="Renamed")
    update_credential(handle, cred.id, rotated, cred.version)
    handle.close()
    sim.state.keys.discard(SHOP_KEY)
    with running_serve(db, run_outbox=True):
        assert sim.wait_until(lambda: len(sim.state.sent) == 3, timeout=30)
    assert {(m.key, m.sender) for m in sim.state.sent} == {("new-shop-key-0003", SHOP_NUMBER)}


def test_a_key_and_base_url_rotated_while_serve_runs_are_used_from_the_next_send(tmp_path: Path,
                                                                                   sim: SimulatorThread) -> None:
    """No restart: the running sender reads the credential for each round, so replies queued after
    the edit go out with the new key to the new base URL, and none fails on the revoked key."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with SimulatorThread(SimulatorState(keys={"new-shop-key-0003"})) as moved, \
            running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        sim.state.queue_inbound("41794010000", SHOP_NUMBER, "hello")
        assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=10)
        handle = connect(db)
        cred = get_credential(handle, "Shop")
        update_credential(handle, cred.id, shop_credential(moved.url, api_key="new-shop-key-0003"), cred.version)
        handle.close()
        sim.state.keys.discard(SHOP_KEY)  # revoked at Infobip
        for i in range(1, 4):
            sim.state.queue_inbound(f"4179401{i:04d}", SHOP_NUMBER, "hello")
        assert moved.wait_until(lambda: len(moved.state.sent) == 3, timeout=15)
    assert {m.key for m in moved.state.sent} == {"new-shop-key-0003"}
    assert len(sim.state.sent) == 1 and not [r for r in sim.state.requests if r.status == 401]
    assert rows(db, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", 4)]


# --------------------------------------------------------------------------- 3. never re-sent


def _hold_write_lock(db_path: Path, seconds: float, holding: threading.Event) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    holding.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def test_a_reply_is_not_sent_again_when_recording_it_waits_behind_a_lock(tmp_path: Path,
                                                                         sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        sim.state.inject("slow", count=1, delay=2.0, path_prefix="/sms/3/messages")
        for i in range(20):
            sim.state.queue_inbound(f"4179500{i:04d}", SHOP_NUMBER, "hello")
        # Once the replies are in flight (the sender looks every 50 ms, Infobip takes 2 s to
        # answer), another process takes the write lock for longer than the writer's busy
        # timeout: recording the answer fails.
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox") == [(20,)], timeout=10)
        time.sleep(0.5)
        holding = threading.Event()
        locker = threading.Thread(target=_hold_write_lock, args=(db, 5.0, holding))
        locker.start()
        holding.wait(5)
        locker.join()
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'") == [(20,)],
                              timeout=30)
    assert len(sim.state.sent) == 20
    assert len({m.message_id for m in sim.state.sent}) == 20


def test_a_reply_is_not_sent_again_when_the_writer_dies_between_send_and_record(
        tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        pid = serve.service.writer.submit(writer_pid).result(timeout=5)
        sim.state.inject("slow", count=1, delay=2.0, path_prefix="/sms/3/messages")
        for i in range(10):
            sim.state.queue_inbound(f"4179600{i:04d}", SHOP_NUMBER, "hello")
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox") == [(10,)], timeout=10)
        time.sleep(0.5)  # the replies are in flight: Infobip answers after 2 s
        os.kill(pid, signal.SIGKILL)
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'") == [(10,)],
                              timeout=30)
    assert len(sim.state.sent) == 10


def test_answers_journaled_by_a_sender_killed_before_recording_them_are_not_sent_again(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """End to end, with a real kill: Infobip answers, the answer is journaled, recording it waits
    behind another process's write lock, and serve is SIGKILLed. The next serve records the
    journal instead of sending again, with Infobip's logs unreadable so that only the journal
    can tell it (the logs lookup is tested on its own)."""
    from smsdesk.store.paths import beside_database

    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179970{i:04d}", "hello", at(1)) for i in range(10)])
    # Infobip accepts the request on arrival and holds its answer until the test has taken the
    # lock (a gate, not a delay: on a loaded machine a 2 s delay let the answer be recorded first).
    gate = Gate()
    sim.state.inject("slow", count=1, gate=gate, path_prefix="/sms/3/messages")
    log = tmp_path / "serve.log"

    def start() -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDESK_WEBHOOK")}
        with open(log, "ab") as err:
            return subprocess.Popen([str(SCRIPT), "--db", str(db), "serve", "--port", "0", "--insecure-no-auth",
                                     "--poll-interval", "60"], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    start_new_session=True)

    first = start()
    holder = None
    try:
        # The request is in flight (Infobip holds the answer): another process takes the lock,
        # then Infobip answers.
        assert gate.arrived.wait(20), log.read_text()
        assert rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sending'") == [(10,)]
        holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys\n"
                                   f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                                   "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.readline()"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        gate.release()
        journal = beside_database(db, "-answers.journal")
        assert wait_until(lambda: journal.exists() and journal.read_text().endswith("\n"), 10), log.read_text()
        assert len(sim.state.sent) == 10
    finally:
        gate.release()
        # SIGKILL serve and its writer process together (a crash of the whole service, as
        # systemd's KillMode=control-group does): a writer left alive would record the answers
        # itself once the lock goes, and the journal would have nothing to do.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert wait_until(lambda: subprocess.run(["pgrep", "-g", str(first.pid)], capture_output=True).returncode
                          == 1, 10)
        if holder is not None:
            holder.kill()
            holder.wait(10)
    assert rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sending'") == [(10,)]
    sim.state.inject("500", None, duration=60, path_prefix="/sms/3/logs")
    second = start()
    try:
        # Recorded from the journal, which is then cleared
        assert wait_until(lambda: not journal.exists(), 20), log.read_text()
        assert rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'") == [(10,)]
        time.sleep(1.0)  # anything requeued would be sent again meanwhile (nothing must be)
    finally:
        second.terminate()
        second.wait(10)
    assert len(sim.state.sent) == 10  # each reply reached Infobip once


# --------------------------------------------------------------------------- 4. one sender


def test_a_second_sender_on_the_same_database_is_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    with running_serve(db, run_outbox=True):
        with pytest.raises(RuntimeError, match="did not start"), running_serve(db, run_outbox=True):
            pass
        with running_serve(db, run_outbox=False) as receiver_only:  # --no-send
            assert receiver_only.server.started
        lock = SenderLock(db)
        with pytest.raises(SenderLockHeld, match=rf"pid {os.getpid()}\).*--no-send"):
            lock.acquire()


def _serve(db: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SMSDESK_DB": str(db)}
    env.pop("SMSDESK_WEBHOOK_PASSWORD", None)
    return subprocess.Popen([str(SCRIPT), "--db", str(db), "serve", "--port", "0",
                             "--insecure-no-auth", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_started(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "smsdesk serve on" in line, line


def test_serve_refuses_a_second_sender_with_one_line_and_a_killed_one_leaves_no_lock(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    first = _serve(db)
    try:
        _wait_started(first)
        second = subprocess.run([str(SCRIPT), "--db", str(db), "serve", "--port", "0",
                                 "--insecure-no-auth"], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"smsdesk: another smsdesk serve (pid {first.pid}) is sending replies from this database; stop it, "
            "or start this one with --no-send to only receive"]
        receiver = _serve(db, "--no-send")
        try:
            _wait_started(receiver)
        finally:
            receiver.terminate()
            receiver.wait(10)
    finally:
        first.kill()  # SIGKILL: the kernel releases the lock with the process
        first.wait(10)
    after = _serve(db)
    try:
        _wait_started(after)
    finally:
        after.terminate()
        after.wait(10)


@pytest.mark.parametrize("other_path", ["symlink to the file", "symlink to its directory", "relative"])
def test_the_same_database_by_another_path_is_refused_a_second_sender(tmp_path: Path, other_path: str) -> None:
    """The lock, the answer journal and the pull spool belong to the file, not to how it was named:
    a second serve that reached it by another name would take over the first's claimed replies
    (store/outbox.py, `requeue_unknown` after the logs lookup) and send them twice."""
    db = make_db(tmp_path / "real" / "smsdesk.db", shop_credential())
    cwd = None
    if other_path == "symlink to the file":
        (tmp_path / "desk.db").symlink_to(db)
        name = str(tmp_path / "desk.db")
    elif other_path == "symlink to its directory":
        (tmp_path / "link").symlink_to(db.parent, target_is_directory=True)
        name = str(tmp_path / "link" / "smsdesk.db")
    else:
        name, cwd = "smsdesk.db", db.parent
    first = _serve(db)
    try:
        _wait_started(first)
        try:
            second = subprocess.run([str(SCRIPT), "--db", name, "serve", "--port", "0", "--insecure-no-auth"],
                                    capture_output=True, text=True, timeout=20, cwd=cwd)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a second sender started on the same database by its {other_path}")
        assert second.returncode == 1, second.stderr
        assert f"another smsdesk serve (pid {first.pid}) is sending replies" in second.stderr
    finally:
        first.terminate()
        first.wait(10)


# --------------------------------------------------------------------------- 5. order and batches


def test_replies_to_one_number_leave_in_arrival_order_one_request_after_the_other(
        tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, double_opt_in_keywords=["CONFIRM"],
                                                          double_opt_in_message="Shop: confirmed."))
    numbers = [f"4179700{i:04d}" for i in range(30)]
    with running_serve(db, run_outbox=True) as serve:
        forward_to(sim, serve)
        for number in numbers:
            sim.state.queue_inbound(number, SHOP_NUMBER, "START", received_at=at(1))
            sim.state.queue_inbound(number, SHOP_NUMBER, "CONFIRM", received_at=at(2))
            sim.state.queue_inbound(number, SHOP_NUMBER, "HELP", received_at=at(3))
        assert sim.wait_until(lambda: len(sim.state.sent) == 90, timeout=30)
    for number in numbers:
        texts = [m.text for m in sim.state.sent if m.to == number]
        assert texts == ["Welcome to Shop. Reply STOP to end.", "Shop: confirmed.", "Shop help: shop.example"]
        bulks = [m.bulk_id for m in sim.state.sent if m.to == number]
        assert len(set(bulks)) == 3  # never two replies to one number in one request


def test_a_failed_send_keeps_each_numbers_replies_in_arrival_order(tmp_path: Path, sim: SimulatorThread) -> None:
    """The first request fails (500): its replies wait with backoff, and the replies queued after
    them to the same numbers wait behind them instead of overtaking."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    numbers = [f"+4179402{i:04d}" for i in range(5)]
    store(db, *[(number, "hello", at(1)) for number in numbers])
    store(db, *[(number, "HELP", at(2)) for number in numbers])
    sim.state.inject("500", 1, path_prefix="/sms/3/messages")
    with running_serve(db, run_outbox=True):
        assert sim.wait_until(lambda: len(sim.state.sent) == 10, timeout=30)
    failed = [r for r in sim.state.requests if r.path == "/sms/3/messages" and r.status == 500]
    assert len(failed) == 1
    for number in numbers:
        texts = [m.text for m in sim.state.sent if m.to == number.removeprefix("+")]
        assert texts == [shop_credential().default_reply_message, "Shop help: shop.example"], number


def test_due_replies_of_one_credential_go_many_to_a_request(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179800{i:04d}", "HELP", at(1)) for i in range(250)])  # a backlog, all due
    with running_serve(db, run_outbox=True):
        assert sim.wait_until(lambda: len(sim.state.sent) == 250, timeout=40)
    sizes = sorted(len(r.body["messages"]) for r in sim.state.requests if r.path == "/sms/3/messages")
    assert sizes == [50, 100, 100]


def test_one_bad_destination_fails_only_itself(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179900{i:04d}", "hello", at(1)) for i in range(5)])
    conn = sqlite3.connect(db)
    with conn:  # a message Infobip refuses (a blank text) in the middle of the batch
        conn.execute("UPDATE outbox SET text = '' WHERE id = 3")
    conn.close()
    with running_serve(db, run_outbox=True):
        assert sim.wait_until(lambda: len(sim.state.sent) == 4, timeout=20)
        assert sim.wait_until(lambda: rows(db, "SELECT status FROM outbox WHERE id = 3") == [("failed",)],
                              timeout=10)
    assert rows(db, "SELECT id, status FROM outbox ORDER BY id") == [
        (1, "sent"), (2, "sent"), (3, "failed"), (4, "sent"), (5, "sent")]
    assert "messages[2].content.text: must not be blank" in rows(db, "SELECT last_error FROM outbox WHERE id = 3")[0][0]


class _PickyInfobip:
    """An Infobip that refuses a whole request whose messages include the text BAD with a 400
    naming no message (the case the sender narrows by halving), and accepts anything else."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, scope, receive, send) -> None:  # a bare ASGI app
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        messages = json.loads(body)["messages"]
        texts = [m["content"]["text"] for m in messages]
        self.batches.append(texts)
        if "BAD" in texts:
            status, answer = 400, {"errorCode": "E400", "description": "Request cannot be processed.",
                                   "violations": [{"property": "", "violation": "content refused"}]}
        else:
            status, answer = 200, {"bulkId": "b", "messages": [
                {"messageId": m["destinations"][0]["messageId"], "destination": m["destinations"][0]["to"],
                 "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}}
                for m in messages]}
        payload = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


def test_a_400_naming_no_message_is_narrowed_until_only_the_bad_one_fails(tmp_path: Path) -> None:
    infobip = _PickyInfobip()
    sock = listen_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(infobip, log_level="critical", lifespan="off"))
    thread = start_server_thread(server, "picky-infobip", "the picky Infobip", sockets=[sock])
    try:
        db = make_db(tmp_path / "smsdesk.db", shop_credential(http_url("127.0.0.1", sock.getsockname()[1])))
        store(db, *[(f"+4179950{i:04d}", "hello", at(1)) for i in range(5)])
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE outbox SET text = 'BAD' WHERE id = 4")
        conn.close()
        with running_serve(db, run_outbox=True):
            assert wait_until(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
                              == [(0,)], timeout=20)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert rows(db, "SELECT id, status FROM outbox ORDER BY id") == [
        (1, "sent"), (2, "sent"), (3, "sent"), (4, "failed"), (5, "sent")]
    assert "content refused" in rows(db, "SELECT last_error FROM outbox WHERE id = 4")[0][0]
    assert infobip.batches[0] == ["Shop: thanks!"] * 3 + ["BAD", "Shop: thanks!"]  # one request first
    assert sum(texts == ["BAD"] for texts in infobip.batches) == 1  # narrowed down to the bad one alone


# --------------------------------------------------------------------------- 6. consent by time


def test_an_older_start_delivered_after_a_stop_does_not_opt_back_in(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000010", "STOP", at(5)))
    store(db, ("+41790000010", "START", at(1)))  # sent first, delivered later by a retry
    assert rows(db, "SELECT consent, received_at FROM consent") == [("n", at(5))]
    assert rows(db, "SELECT old, new, effect, received_at FROM consent_ledger ORDER BY id") == [
        ("", "n", "changed", at(5)), ("n", "y", "overruled", at(1))]
    assert rows(db, "SELECT kind FROM outbox") == [("opt-out",)]  # the late START gets no reply
    rule = rows(db, "SELECT rule FROM messages WHERE text = 'START'")[0][0]
    assert "the number expressed a newer wish; consent kept, not answered" in rule


def test_consent_by_time_holds_inside_one_batch_too(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000011", "START", at(9)), ("+41790000011", "STOP", at(3)))
    assert rows(db, "SELECT consent FROM consent") == [("y",)]
    assert rows(db, "SELECT kind FROM outbox") == [("opt-in",)]


def test_shuffled_deliveries_end_at_each_numbers_latest_wish(tmp_path: Path, sim: SimulatorThread) -> None:
    import random

    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    rng = random.Random(11)
    expected: dict[str, str] = {}
    deliveries = []
    for i in range(200):
        number = f"4178000{i:04d}"
        texts = [rng.choice(["STOP", "START"]) for _ in range(4)]
        expected["+" + number] = "n" if texts[-1] == "STOP" else "y"
        deliveries += [(number, text, at(10 + k)) for k, text in enumerate(texts)]
    rng.shuffle(deliveries)
    with running_serve(db) as serve:
        forward_to(sim, serve)
        for number, text, when in deliveries:
            sim.state.queue_inbound(number, SHOP_NUMBER, text, received_at=when)
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM messages") == [(800,)], timeout=60)
    assert dict(rows(db, "SELECT number, consent FROM consent")) == expected
    verify = subprocess.run([str(SCRIPT), "--db", str(db), "consent", "verify"],
                            capture_output=True, text=True, timeout=30)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_verify_catches_an_applied_change_older_than_the_one_it_overturned(tmp_path: Path) -> None:
    from smsdesk.store.consent_audit import verify_consent

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, ("+41790000012", "STOP", at(5)))
    store(db, ("+41790000012", "START", at(1)))
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok
    with conn:  # what an engine that follows arrival order would have written
        conn.execute("UPDATE consent_ledger SET effect = 'changed' WHERE effect = 'overruled'")
        conn.execute("UPDATE consent SET consent = 'y'")
    problems = [d.problem for d in verify_consent(conn).differences]
    conn.close()
    assert "changed 'n' to 'y', but the rules make it overruled 'n' to 'y'" in problems, problems



async def _first_round(db: Path) -> None:
    """One round of a sender that starts where a dead one left off (journal, logs, requeue, send),
    looking at Infobip's logs at once and once only (the looks over time are tested in
    test_outbox_unknown.py)."""
    from smsdesk.engine.outbox_sender import OutboxSender
    from smsdesk.writer.thread_writer import GroupCommitWriter

    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer, logs_lag=0, logs_looks=1)
    try:
        await sender.run_once()
    finally:
        await sender.aclose()
        writer.stop()


async def test_answers_journaled_before_a_kill_are_recorded_not_sent_again(tmp_path: Path,
                                                                          sim: SimulatorThread) -> None:
    """A sender killed after Infobip answered but before the database recorded it: the next
    sender finds the answers in the journal and records them instead of sending again."""
    from smsdesk.engine.answer_journal import AnswerJournal
    from smsdesk.store.outbox import SendOutcome

    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179960{i:04d}", "hello", at(1)) for i in range(3)])
    claimed = claim(db)  # the dead sender's claim: `sending`, the request went out, Infobip answered
    AnswerJournal(db).append([(row[3], *SendOutcome(row[0], "sent", f"ib-{row[0]}", "PENDING_ACCEPTED"))
                              for row in claimed])
    await _first_round(db)
    assert rows(db, "SELECT status, infobip_message_id FROM outbox ORDER BY id") == [
        ("sent", "ib-1"), ("sent", "ib-2"), ("sent", "ib-3")]
    assert sim.state.sent == []
    assert not AnswerJournal(db).path.exists()


def _accepted_by_infobip(sim: SimulatorThread, claimed: list[tuple]) -> None:
    """The dead sender's request reached Infobip, which accepted it; its answer was lost with it."""
    from smsdesk.infobip.client import OutboundSms

    messages = [OutboundSms(sender=SHOP_NUMBER, to=row[5], text=row[6], message_id=row[3]) for row in claimed]
    sim.state.accept_send({"messages": [m.to_payload() for m in messages]}, SHOP_KEY)


async def test_replies_in_flight_that_infobip_accepted_are_found_in_its_logs_not_sent_again(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """A sender killed after Infobip accepted its request and before the answer was journaled:
    the next sender finds those replies in Infobip's message logs and records them; only the one
    Infobip never got is sent (again, with the same messageId)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179961{i:04d}", "hello", at(1)) for i in range(3)])
    claimed = claim(db)
    _accepted_by_infobip(sim, claimed[:2])
    await _first_round(db)
    sent_ids = [m.message_id for m in sim.state.sent]
    assert sorted(sent_ids) == sorted(row[3] for row in claimed)  # each exactly once
    assert rows(db, "SELECT status, infobip_message_id = our_message_id FROM outbox ORDER BY id") == [
        ("sent", 1), ("sent", 1), ("sent", 1)]
    assert [r.status for r in sim.state.requests if r.path == "/sms/3/logs"] == [200]


@pytest.mark.parametrize("logs", ["failing", "not in the key's scopes"])
async def test_replies_in_flight_are_sent_again_when_the_logs_cannot_be_read(tmp_path: Path, sim: SimulatorThread,
                                                                            logs: str) -> None:
    """At-least-once holds without the logs: a reply whose fate is unknown is sent again."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179962{i:04d}", "hello", at(1)) for i in range(2)])
    claimed = claim(db)
    _accepted_by_infobip(sim, claimed)
    if logs == "failing":
        sim.state.inject("500", None, duration=60, path_prefix="/sms/3/logs")
    else:
        sim.state.no_scope_keys.add(SHOP_KEY)  # sends, may not read logs (403)
    await _first_round(db)
    assert sorted(m.message_id for m in sim.state.sent) == sorted(2 * [row[3] for row in claimed])
    assert rows(db, "SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_an_unreadable_logs_answer_sends_the_replies_again_and_sending_goes_on(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """A log entry the client cannot read must not stop the sender (opt-out confirmations
    included): those replies are sent again, as when the logs are unreachable."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179963{i:04d}", "hello", at(1)) for i in range(2)])
    claimed = claim(db)
    sim.state.logs_answer = {"results": [{"messageId": row[3], "status": "PENDING"} for row in claimed]}
    await _first_round(db)
    assert sorted(m.message_id for m in sim.state.sent) == sorted(row[3] for row in claimed)
    assert rows(db, "SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_logs_that_do_not_answer_hold_the_first_round_at_most_the_deadline(
        tmp_path: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    from smsdesk.engine import outbox_sender

    monkeypatch.setattr(outbox_sender, "LOGS_DEADLINE_S", 1.0)
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179964{i:04d}", "hello", at(1)) for i in range(2)])
    claimed = claim(db)
    sim.state.inject("slow", None, duration=30, delay=10.0, path_prefix="/sms/3/logs")
    started = time.monotonic()
    await _first_round(db)
    assert time.monotonic() - started < 5.0
    assert sorted(m.message_id for m in sim.state.sent) == sorted(row[3] for row in claimed)


async def test_replies_in_flight_of_a_credential_deleted_since_do_not_stop_the_sender(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """A dead sender left replies `sending` for a credential deleted since: there is nothing to
    look up, they are cancelled, and the other replies go out."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, ("+41799650000", "hello", at(1)))
    claim(db)
    handle = connect(db)
    delete_credential(handle, get_credential(handle, "Shop").id)
    create_credential(handle, shop_credential(sim.url, name="Shop again"))
    handle.close()
    store(db, ("+41799650001", "hello", at(2)))
    await _first_round(db)
    assert rows(db, "SELECT to_number, status FROM outbox ORDER BY id") == [("+41799650000", "cancelled"),
                                                                          ("+41799650001", "sent")]
    assert [m.to for m in sim.state.sent] == ["41799650001"]


async def test_a_sender_stopped_during_the_logs_lookup_leaves_no_lookup_running(tmp_path: Path,
                                                                                sim: SimulatorThread) -> None:
    """serve stopping while the start-up lookup waits for Infobip: the lookups are cancelled
    with the sender, not left running against clients that are being closed."""
    from smsdesk.engine.outbox_sender import OutboxSender
    from smsdesk.writer.thread_writer import GroupCommitWriter

    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179966{i:04d}", "hello", at(1)) for i in range(2)])
    claim(db)
    sim.state.inject("slow", None, duration=30, delay=10.0, path_prefix="/sms/3/logs")
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer, logs_lag=0)
    try:
        first_round = asyncio.ensure_future(sender.run_once())
        await asyncio.sleep(0.5)  # the lookup waits for the logs (10 s)
        assert rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'unknown'") == [(2,)]
        first_round.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first_round
        assert asyncio.all_tasks() == {asyncio.current_task()}
    finally:
        await sender.aclose()
        writer.stop()
    assert sim.state.sent == []

