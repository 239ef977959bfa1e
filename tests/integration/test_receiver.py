"""The webhook receiver over real HTTP on loopback: auth, bad input, exactly-once, durability."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from smsdesk.engine.service import ServeConfig, ServeConfigError
from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.writer.jobs import job
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, first_value, page_limit, running_serve, wait_until

AUTH = (WEBHOOK_USER, WEBHOOK_PASSWORD)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential())


@pytest.fixture
def serve(db_path: Path):
    with running_serve(db_path) as server:
        yield server


@pytest.fixture(scope="module")
def refusing_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("refusing") / "smsdesk.db", shop_credential())


@pytest.fixture(scope="module")
def refusing(refusing_db: Path):
    """One serve (and writer process) for every test whose requests must all be refused: nothing
    may ever be stored in its database, and each of those tests checks that it stays empty."""
    with running_serve(refusing_db) as server:
        yield server


def counts(db_path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(db_path)
    try:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("messages", "outbox", "consent_ledger"))
    finally:
        conn.close()


def test_health_needs_no_auth(refusing) -> None:
    assert httpx.get(refusing.url + "/healthz").json() == {"status": "ok"}


def test_inbound_is_stored_and_acknowledged(serve, db_path: Path) -> None:
    body = mo_body(mo_result("STOP", message_id="a1"), mo_result("hello", sender="41790000077", message_id="a2"))
    response = httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)
    assert response.status_code == 200
    assert response.json() == {"stored": 2, "duplicates": 0}
    assert counts(db_path) == (2, 2, 1)


def test_redelivery_is_acknowledged_without_a_second_row(serve, db_path: Path) -> None:
    body = mo_body(mo_result("STOP", message_id="again"))
    first = httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)
    second = httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"stored": 0, "duplicates": 1}
    assert counts(db_path) == (1, 1, 1)


@pytest.mark.parametrize("auth", [None, ("infobip", "wrong-password!!"), ("other", WEBHOOK_PASSWORD), ("", "")])
def test_wrong_or_missing_auth_is_401_and_writes_nothing(refusing, refusing_db: Path, auth) -> None:
    response = httpx.post(refusing.url + "/infobip/inbound", json=mo_body(mo_result("STOP")), auth=auth)
    assert response.status_code == 401
    assert "error" in response.json()
    assert counts(refusing_db) == (0, 0, 0)


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Bearer abc", "Basic " + "x" * 10, "Basic"])
def test_malformed_auth_header_is_401(refusing, header: str) -> None:
    response = httpx.post(refusing.url + "/infobip/inbound", json=mo_body(mo_result("x")),
                          headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize(("content", "status", "field"), [
    (b"not json", 400, None),
    (b"", 400, None),
    (b"\xff\xfe\x00", 400, None),
    (b"[1, 2]", 400, None),
    (json.dumps({"nothing": []}).encode(), 400, "results"),
    (json.dumps({"results": "x"}).encode(), 400, "results"),
])
def test_bad_input_is_4xx_json_naming_the_problem(refusing, refusing_db: Path, content: bytes, status: int,
                                                  field: str | None) -> None:
    response = httpx.post(refusing.url + "/infobip/inbound", content=content, auth=AUTH,
                          headers={"content-type": "application/json"})
    assert response.status_code == status
    payload = response.json()
    assert payload["error"]
    if field:
        assert payload["field"] == field
    assert counts(refusing_db) == (0, 0, 0)


@pytest.mark.parametrize(("result", "field"), [
    ({"from": "41793026727", "to": "447491163443", "text": "x"}, "results[0].messageId"),
    ({"messageId": "m", "to": "447491163443", "text": "x"}, "results[0].from"),
    ({"messageId": "m", "from": "41793026727", "text": "x"}, "results[0].to"),
])
def test_a_result_that_cannot_be_read_is_named_and_kept_not_stored(serve, db_path: Path, result: dict,
                                                                    field: str) -> None:
    """Formerly a 400 for the whole batch: now a 200 once the result is kept in unreadable_inbound
    (Infobip would only retry what can never be read), naming it; nothing else is written."""
    response = httpx.post(serve.url + "/infobip/inbound", json={"results": [result]}, auth=AUTH)
    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicates": 0, "unreadable": [field]}
    assert counts(db_path) == (0, 0, 0)
    conn = sqlite3.connect(db_path)
    try:
        [(reason,)] = conn.execute("SELECT reason FROM unreadable_inbound").fetchall()
    finally:
        conn.close()
    assert reason.startswith(field + ": ")


def test_one_bad_result_does_not_reject_the_whole_batch(serve, db_path: Path) -> None:
    body = mo_body(mo_result("STOP"), mo_result("HELP"), {"messageId": "x", "to": "447491163443"})
    response = httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)
    assert response.status_code == 200
    assert response.json() == {"stored": 2, "duplicates": 0, "unreadable": ["results[2].from"]}
    assert counts(db_path) == (2, 2, 1)


def test_body_over_one_mebibyte_is_413(refusing, refusing_db: Path) -> None:
    big = mo_body(mo_result("x" * 19_000))
    big["padding"] = "y" * (1024 * 1024)
    response = httpx.post(refusing.url + "/infobip/inbound", json=big, auth=AUTH)
    assert response.status_code == 413
    assert counts(refusing_db) == (0, 0, 0)


def test_chunked_body_over_limit_is_413(refusing, refusing_db: Path) -> None:
    def chunks():
        yield b'{"results": [], "pad": "'
        for _ in range(130):
            yield b"z" * 8192
        yield b'"}'

    response = httpx.post(refusing.url + "/infobip/inbound", content=chunks(), auth=AUTH,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_unknown_fields_are_accepted(serve, db_path: Path) -> None:
    body = mo_body(mo_result("HELP", applicationId="a", entityId="b", campaignReferenceId="c", future={"x": 1}))
    body["somethingNew"] = True
    assert httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH).status_code == 200
    assert counts(db_path)[0] == 1


def test_delivery_report_updates_the_reply(serve, db_path: Path) -> None:
    httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("HELP", message_id="h1")), auth=AUTH)
    conn = sqlite3.connect(db_path)
    our_id = conn.execute("SELECT our_message_id FROM outbox").fetchone()[0]
    report = {"results": [{"bulkId": "b", "messageId": our_id, "to": "41793026727",
                           "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                                      "description": "Message delivered to handset"},
                           "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"}},
                          {"messageId": "unknown-id", "status": {"groupName": "DELIVERED"}}]}
    response = httpx.post(serve.url + "/infobip/delivery-reports", json=report, auth=AUTH)
    assert response.json() == {"matched": 1, "unknown": 1}
    row = conn.execute("SELECT status, delivery_status, delivery_detail FROM outbox").fetchone()
    assert row == ("delivered", "DELIVERED", "DELIVERED_TO_HANDSET: Message delivered to handset")


def test_bad_delivery_report_is_400(refusing) -> None:
    response = httpx.post(refusing.url + "/infobip/delivery-reports", json={"results": [{"messageId": "x"}]},
                          auth=AUTH)
    assert response.status_code == 400 and response.json()["field"] == "results[0].status"


def test_locked_database_answers_503_then_recovers(serve, db_path: Path) -> None:
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        response = httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("STOP", message_id="L")),
                              auth=AUTH, timeout=30)
        assert response.status_code == 503
        assert response.headers["retry-after"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    retry = httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("STOP", message_id="L")), auth=AUTH)
    assert retry.status_code == 200 and retry.json()["stored"] == 1


@pytest.mark.parametrize(("host", "auth", "insecure", "ok"), [
    ("127.0.0.1", None, False, False),
    ("127.0.0.1", None, True, True),
    ("::1", None, True, True),
    ("0.0.0.0", None, True, False),
    ("192.0.2.10", None, True, False),
    ("0.0.0.0", ("u", "short"), False, False),
    ("0.0.0.0", ("", "long-enough-password"), False, False),
    ("0.0.0.0", ("u", "long-enough-password"), False, True),
])
def test_serve_refuses_weak_setups(tmp_path: Path, host: str, auth, insecure: bool, ok: bool) -> None:
    from smsdesk.engine.receiver import BasicAuth

    config = ServeConfig(db_path=tmp_path / "x.db", host=host, auth=BasicAuth(*auth) if auth else None,
                         insecure_no_auth=insecure)
    if ok:
        config.check()
    else:
        with pytest.raises(ServeConfigError):
            config.check()


def test_basic_auth_repr_hides_password() -> None:
    from smsdesk.engine.receiver import BasicAuth

    assert WEBHOOK_PASSWORD not in repr(BasicAuth(WEBHOOK_USER, WEBHOOK_PASSWORD))


def test_disk_full_answers_503_then_recovers(serve, db_path: Path) -> None:
    writer = serve.service.writer
    # SQLite's page limit makes the next growth fail exactly as a full disk does (SQLITE_FULL). It
    # is a connection's setting: serve's own connection for direct commits gets it too (no request
    # is in progress, so nothing else uses that connection meanwhile).
    pages = writer.submit(job(first_value, "PRAGMA page_count")).result(5)
    writer.submit(job(first_value, f"PRAGMA max_page_count = {pages}")).result(5)
    assert serve.service.direct.try_commit(page_limit(pages), []) == []
    big = mo_body(*(mo_result("x" * 2000, message_id=f"full-{i}") for i in range(50)))
    response = httpx.post(serve.url + "/infobip/inbound", json=big, auth=AUTH, timeout=30)
    assert response.status_code == 503
    assert counts(db_path) == (0, 0, 0)
    writer.submit(job(first_value, "PRAGMA max_page_count = 1073741823")).result(5)
    retry = httpx.post(serve.url + "/infobip/inbound", json=big, auth=AUTH, timeout=30)
    assert retry.status_code == 200 and retry.json()["stored"] == 50


def test_writer_process_death_answers_503_then_recovers(serve, db_path: Path) -> None:
    """The writer process killed: webhooks get 503 (Infobip retries), /healthz says so, and a new
    writer takes over within the respawn interval; the retried message is stored once."""
    writer = serve.service.writer
    os.kill(writer.pid, signal.SIGKILL)
    wait_until(lambda: not writer.alive, 10)
    body = mo_body(mo_result("STOP", message_id="while-down"))
    response = httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)
    assert response.status_code == 503 and response.headers["retry-after"]
    health = httpx.get(serve.url + "/healthz")
    assert health.status_code == 503 and health.json() == {"status": "writer down"}
    deadline = time.monotonic() + 15
    while (response := httpx.post(serve.url + "/infobip/inbound", json=body, auth=AUTH)).status_code != 200:
        assert response.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.2)
    assert response.json() == {"stored": 1, "duplicates": 0}
    assert httpx.get(serve.url + "/healthz").json() == {"status": "ok"}
    assert counts(db_path) == (1, 1, 1)


def test_serve_does_not_start_when_the_writer_cannot_open_the_database(tmp_path: Path) -> None:
    """A path the writer cannot open stops serve at start-up instead of answering 503 forever."""
    not_a_database = tmp_path / "smsdesk.db"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(RuntimeError, match="did not start"), running_serve(not_a_database):
        pass


def test_serve_records_its_heartbeat_through_the_writer(tmp_path: Path) -> None:
    """At start and every heartbeat_interval: the TUI's empty log tells a running receiver by it."""
    from smsdesk.store.db import connect_reader
    from smsdesk.store.queries import receiver_heartbeat_at

    db_path = make_db(tmp_path / "beat.db", shop_credential())
    seen: set[str] = set()
    with running_serve(db_path, heartbeat_interval=0.2):
        reader = connect_reader(db_path)
        try:
            deadline = time.monotonic() + 10
            while len(seen) < 2 and time.monotonic() < deadline:
                beat = receiver_heartbeat_at(reader)
                if beat is not None:
                    seen.add(beat)
                time.sleep(0.05)
        finally:
            reader.close()
    assert len(seen) >= 2, "serve beats at start and again every heartbeat_interval"
