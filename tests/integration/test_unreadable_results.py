"""One inbound result that cannot be read never blocks its neighbours (issue 23, point 4).

A STOP next to a result serve cannot read (a receivedAt that is no time, a number or out of range,
a control character in `from`, no messageId, not an object) is stored and acknowledged; the
unreadable result is kept raw with its reason in `unreadable_inbound`, in the same transaction;
one whose only fault is its receivedAt is stored with its arrival time and kept there too. Only a
body that is no batch at all is refused (400), and kept. Every 4xx is logged, rate-limited, inert,
without secrets. The poller reads pulled batches the same way. `smsdesk inbound unreadable` lists
them.

Real pieces: `serve` over loopback (its writer process), the simulator's inbox, a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.engine import receiver as receiver_module
from smsdesk.engine.mo import MAX_UNREADABLE_KEPT, InputProblem, parse_inbound, parse_inbound_batch
from smsdesk.engine.poller import InboxPoller, spool_dir
from smsdesk.engine.ratelog import RateLimitedLog
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, mo_body, mo_result, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.db import utcnow
from smsdesk.store.unreadable import MAX_RAW_CHARS, insert_unreadable
from smsdesk.writer.parent import ProcessWriter
from tests.support.cli import run_main
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve

AUTH = (WEBHOOK_USER, WEBHOOK_PASSWORD)
STOPPER = "41790000001"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential())


@pytest.fixture
def serve(db: Path) -> Iterator[Any]:
    with running_serve(db) as server:
        yield server


@pytest.fixture
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver's rate limiters as at start: earlier tests in this process logged too."""
    monkeypatch.setattr(receiver_module, "_refusals", RateLimitedLog(receiver_module.log))
    monkeypatch.setattr(receiver_module, "_unreadable", RateLimitedLog(receiver_module.log))


def query(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def consent(db_path: Path, number: str) -> str | None:
    rows = query(db_path, "SELECT consent FROM consent WHERE number = ?", number)
    return rows[0][0] if rows else None


def unreadable(db_path: Path) -> list[tuple[str, str, str]]:
    return [tuple(row) for row in query(db_path, "SELECT source, reason, raw FROM unreadable_inbound ORDER BY id")]


def post(server: Any, body: Any, **options: Any) -> httpx.Response:
    content = json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as JSON escapes
    return httpx.post(server.url + "/infobip/inbound", content=content, auth=AUTH, timeout=30,
                      headers={"content-type": "application/json"}, **options)


# (neighbour, where its problem is named, stored anyway with its arrival time)
QUARANTINED = {
    "control-in-from": (mo_result("hello", sender="4179\x1b[2J0000002", message_id="bad"), "results[1].from"),
    "no-message-id": ({k: v for k, v in mo_result("hello", sender="41790000002").items() if k != "messageId"},
                      "results[1].messageId"),
    "a-number": (12345, "results[1]"),
    "a-string": ("STOP", "results[1]"),
    "null": (None, "results[1]"),
    "an-array": ([{"messageId": "x"}], "results[1]"),
    "text-too-long": (mo_result("x" * 20_001, sender="41790000002", message_id="long"), "results[1].text"),
}
TIMED_BY_ARRIVAL = {
    "receivedAt-with-UTC-word": "2026-12-06 02:03:00 UTC",
    "receivedAt-a-number": 12345,
    "receivedAt-out-of-range": "0001-01-01T00:00:00+01:00",
    "receivedAt-year-five-digits": "99999-01-01T00:00:00Z",
    "receivedAt-an-object": {"at": "2026-12-06"},
}


@pytest.mark.parametrize("kind", list(QUARANTINED))
def test_a_stop_next_to_an_unreadable_result_is_stored_and_the_result_kept(serve: Any, db: Path, kind: str) -> None:
    neighbour, where = QUARANTINED[kind]
    body = mo_body(mo_result("STOP", sender=STOPPER, message_id="S"), neighbour,
                   mo_result("HELP", sender="41790000003", message_id="H"))
    response = post(serve, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0, "unreadable": [where]}
    assert {row[0] for row in query(db, "SELECT message_id FROM messages")} == {"S", "H"}
    assert consent(db, "+" + STOPPER) == "n"
    [(source, reason, raw)] = unreadable(db)
    assert source == "forward"
    assert reason.startswith(where + ": ") and len(reason) > len(where) + 2
    assert raw == json.dumps(neighbour, ensure_ascii=False)[:MAX_RAW_CHARS]
    # Infobip's redelivery (a lost 200) stores nothing twice and keeps the result once
    again = post(serve, body)
    assert again.json() == {"stored": 0, "duplicates": 2, "unreadable": [where]}
    assert len(unreadable(db)) == 1


@pytest.mark.parametrize("kind", list(TIMED_BY_ARRIVAL))
def test_a_result_whose_only_fault_is_its_received_at_is_stored_with_its_arrival_time(serve: Any, db: Path,
                                                                                      kind: str) -> None:
    """A STOP must never be lost for its time: stored, timed by its arrival, and kept as unreadable."""
    stop = mo_result("STOP", sender=STOPPER, message_id="late-stop") | {"receivedAt": TIMED_BY_ARRIVAL[kind]}
    before = utcnow()
    response = post(serve, mo_body(mo_result("hello", sender="41790000002", message_id="N"), stop))
    after = utcnow()
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0, "arrival_time": ["results[1].receivedAt"]}
    [(received_at, action)] = query(db, "SELECT received_at, action FROM messages WHERE message_id = 'late-stop'")
    assert before <= received_at <= after and action == "opt-out"
    assert consent(db, "+" + STOPPER) == "n"
    [(source, reason, raw)] = unreadable(db)
    assert source == "forward" and reason.startswith("results[1].receivedAt: ")
    assert reason.endswith("; stored as messageId 'late-stop' with its arrival time")
    assert json.loads(raw) == stop


def test_a_missing_received_at_is_the_arrival_time_and_no_unreadable_row(serve: Any, db: Path) -> None:
    result = {k: v for k, v in mo_result("STOP", sender=STOPPER, message_id="M").items() if k != "receivedAt"}
    response = post(serve, mo_body(result))
    assert response.json() == {"stored": 1, "duplicates": 0}
    assert consent(db, "+" + STOPPER) == "n" and unreadable(db) == []


def test_nothing_but_unreadable_results_is_200_once_kept(serve: Any, db: Path) -> None:
    """Infobip must not retry what can never be read: 200, after the rows are committed."""
    response = post(serve, mo_body(7, {"from": "1"}))
    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicates": 0, "unreadable": ["results[0]", "results[1].messageId"]}
    assert [reason.split(":")[0] for _, reason, _ in unreadable(db)] == ["results[0]", "results[1].messageId"]
    assert post(serve, mo_body()).json() == {"stored": 0, "duplicates": 0}  # empty: nothing to keep


def test_a_lone_surrogate_is_still_repaired_beside_an_unreadable_result(serve: Any, db: Path) -> None:
    body = mo_body(mo_result("STOP", sender=STOPPER, message_id="S"), None,
                   mo_result("see you \ud83d", sender="41790000002", message_id="B"),
                   mo_result("x\ud83d", sender="", message_id="C"))  # repairable text, but no sender
    response = post(serve, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0, "repaired": ["results[2].text"],
                               "unreadable": ["results[1]", "results[3].from"]}
    assert dict(query(db, "SELECT message_id, text FROM messages"))["B"] == "see you \ufffd"
    raws = [raw for _, _, raw in unreadable(db)]
    assert raws[1].startswith('{"messageId": "C"') and "\\ud83d" in raws[1]  # the surrogate kept as its escape


@pytest.mark.parametrize(("body", "field"), [([1, 2], None), ({"nothing": []}, "results"),
                                             ({"results": {"0": mo_result("STOP")}}, "results")])
def test_a_body_that_is_no_batch_is_400_and_kept(serve: Any, db: Path, body: Any, field: str | None) -> None:
    response = post(serve, body)
    assert response.status_code == 400
    assert response.json().get("field") == field
    [(source, reason, raw)] = unreadable(db)
    assert source == "forward" and json.loads(raw) == body
    assert reason == (f"{field}: " if field else "") + response.json()["error"]
    assert query(db, "SELECT COUNT(*) FROM messages") == [(0,)]


def test_an_unreadable_result_is_kept_bounded(serve: Any, db: Path) -> None:
    huge = mo_result("x" * 30_000, sender="41790000002", message_id="huge")
    assert post(serve, mo_body(huge)).status_code == 200
    [(_, reason, raw)] = unreadable(db)
    assert reason.startswith("results[0].text: ") and len(raw) == MAX_RAW_CHARS


def test_every_4xx_is_logged_once_per_interval_inert_and_without_secrets(serve: Any, db: Path, fresh_log: None,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="smsdesk.receiver"):
        for _ in range(3):
            assert post(serve, [1, 2]).status_code == 400
        wrong = ("infobip", "a-wrong-password-0x1b")
        assert httpx.post(serve.url + "/infobip/inbound", json=mo_body(), auth=wrong).status_code == 401
        assert httpx.post(serve.url + "/nowhere%1B%5B2J?password=hunter2hunter2", auth=AUTH).status_code == 404
        assert httpx.get(serve.url + "/infobip/inbound", auth=AUTH).status_code == 405
        assert post(serve, mo_body(None)).status_code == 200  # kept: one line too
    lines = [record.getMessage() for record in caplog.records if record.name == "smsdesk.receiver"]
    refused = [line for line in lines if "answered 400" in line]
    assert refused == ["/infobip/inbound: answered 400: body must be a JSON object with a 'results' array"]
    assert [line for line in lines if "answered 401" in line] == [
        "/infobip/inbound: answered 401: authentication required (the Authorization header is not logged)"]
    assert [line for line in lines if "answered 404" in line] == ["/nowhere\\x1b[2J: answered 404: Not Found"]
    assert [line for line in lines if "answered 405" in line] == ["/infobip/inbound: answered 405: Method Not Allowed"]
    assert sum("could not be read" in line and "results[0]: must be a JSON object" in line for line in lines) == 1
    text = "\n".join(lines)
    for secret in (WEBHOOK_PASSWORD, "a-wrong-password", "hunter2", "Basic "):
        assert secret not in text
    assert "\x1b" not in text


def test_a_refusal_is_logged_inert(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(receiver_module, "_refusals", RateLimitedLog(receiver_module.log))
    with caplog.at_level(logging.WARNING, logger="smsdesk.receiver"):
        receiver_module.log_refusal("(other)", "/a\u202egnp.exe", 404, "x\x9b31m\nnext")
    assert caplog.messages == ["/a\\u202egnp.exe: answered 404: x\\x9b31m⏎next"]


def test_the_cli_lists_them_newest_first_and_inert(serve: Any, db: Path) -> None:
    post(serve, mo_body(mo_result("a", sender="41\x1b]0;pwned\x07", message_id="one")))
    post(serve, mo_body({"messageId": "two", "from": "1"}))
    listed = run_main("--db", str(db), "inbound", "unreadable")
    listed.assert_ok()
    lines = listed.out.splitlines()
    assert "results[0].to: Field required" in lines[0] and "forward" in lines[0]
    assert lines[1].strip() == '{"messageId": "two", "from": "1"}'
    assert "results[0].from: must be non-blank text without control characters" in lines[2]
    assert "\x1b" not in listed.out and "\x07" not in listed.out and "\\u001b]0;pwned\\u0007" in lines[3]
    as_json = run_main("--db", str(db), "inbound", "unreadable", "--json", "--limit", "1")
    as_json.assert_ok()
    [row] = as_json.json()
    assert set(row) == {"id", "at", "source", "reason", "raw"} and row["raw"] == '{"messageId": "two", "from": "1"}'
    more = run_main("--db", str(db), "inbound", "unreadable", "--limit", "1")
    assert more.out.splitlines()[0] == "the newest 1 of 2 (--limit N for more)"


def test_the_cli_says_when_there_are_none(db: Path) -> None:
    listed = run_main("--db", str(db), "inbound", "unreadable")
    listed.assert_ok()
    assert listed.out == "no unreadable inbound results\n"
    assert run_main("--db", str(db), "inbound", "unreadable", "--json").json() == []


# ---- the poller: pulled batches are consumed at Infobip, so nothing readable may be refused --------

KEY = "shop-key-0001"


@pytest.fixture
def pull_sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorState(keys={KEY})) as simulator:
        yield simulator


async def test_a_pulled_batch_with_unreadable_results_stores_the_rest(tmp_path: Path,
                                                                      pull_sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(pull_sim.url, inbound_mode="pull"))
    state = pull_sim.state
    state.queue_inbound(STOPPER, SHOP_NUMBER, "STOP", message_id="pulled-stop")
    state.queue_inbound("41790000002", SHOP_NUMBER, "hi", message_id="late", received_at="2026-12-06 02:03:00 UTC")
    state.queue_inbound("4179\x1b[2J", SHOP_NUMBER, "hi", message_id="bad-from")
    state.queue_inbound("41790000004", SHOP_NUMBER, "hi", messageId=None)
    with state.lock:  # a result that is not an object: the simulator's own API cannot queue one
        state._inbox.append(42)
    state.queue_inbound("41790000005", SHOP_NUMBER, "HELP", message_id="help")
    writer = ProcessWriter(db).start()
    poller = InboxPoller(db, writer)
    try:
        await asyncio.to_thread(writer.wait_ready)
        assert await poller.run_once() == 3
        assert poller.unsaved == 0
    finally:
        await poller.aclose()
        writer.stop()
    assert state.inbox_size == 0
    assert {row[0] for row in query(db, "SELECT message_id FROM messages")} == {"pulled-stop", "late", "help"}
    assert consent(db, "+" + STOPPER) == "n"
    rows = unreadable(db)
    assert [source for source, _, _ in rows] == ["pull"] * 4
    assert [reason.split(":")[0] for _, reason, _ in rows] == [
        "results[1].receivedAt", "results[2].from", "results[3].messageId", "results[4]"]
    assert rows[0][1].endswith("stored as messageId 'late' with its arrival time")
    assert rows[3][2] == "42"
    assert not spool_dir(db).exists() or list(spool_dir(db).glob("*.json*")) == []


# ---- the parser itself ---------------------------------------------------------------------------


def test_the_all_or_nothing_parse_still_names_the_first_problem() -> None:
    with pytest.raises(InputProblem) as info:
        parse_inbound(mo_body(mo_result("x"), mo_result("y") | {"receivedAt": "yesterday"}, 7))
    assert info.value.where == "results[1].receivedAt"


def test_a_body_of_junk_keeps_a_bounded_number_of_rows() -> None:
    batch = parse_inbound_batch(mo_body(mo_result("STOP", message_id="S"), *([0] * (MAX_UNREADABLE_KEPT + 500))))
    assert [m.message_id for m in batch.messages] == ["S"]
    assert len(batch.unreadable) == MAX_UNREADABLE_KEPT + 1
    last = batch.unreadable[-1]
    assert last.where == f"results[{MAX_UNREADABLE_KEPT + 1}]"
    assert last.reason.endswith("(and 499 more unreadable results of this body, not kept one by one)")


def test_positions_name_each_message_in_the_body() -> None:
    batch = parse_inbound_batch(mo_body(None, mo_result("a", message_id="a"), {}, mo_result("b", message_id="b")))
    assert [batch.position(k) for k in range(len(batch.messages))] == [1, 3]


def test_the_same_unreadable_row_is_kept_once(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        rows = [("2026-01-01T00:00:00.000+00:00", "forward", "results[0]: must be a JSON object", "7")]
        assert insert_unreadable(conn, rows) == 1
        assert insert_unreadable(conn, [("later", *rows[0][1:])]) == 0
        assert insert_unreadable(conn, [("later", "pull", *rows[0][2:])]) == 1  # another source: another row
    finally:
        conn.close()
