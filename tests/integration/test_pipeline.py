"""The inbound pipeline against a real SQLite file: one transaction per message, exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdesk.engine.mo import InputProblem, parse_inbound
from smsdesk.simulator.sample_data import CLUB_NUMBER, club_credential, make_db, mo_body, mo_result, shop_credential
from smsdesk.store.db import connect
from smsdesk.store.inbound import RouteTable, store_messages
from smsdesk.store.queries import consent_ledger, list_profiles, page_messages
from smsdesk.writer.thread_writer import GroupCommitWriter


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return make_db(tmp_path / "smsdesk.db", shop_credential(), club_credential())


@pytest.fixture
def writer(db_path: Path):
    w = GroupCommitWriter(db_path).start()
    yield w
    w.stop()


def ingest(writer: GroupCommitWriter, *results: dict) -> list:
    routes = RouteTable()
    messages = parse_inbound(mo_body(*results))
    return writer.submit(lambda conn: store_messages(conn, routes, messages)).result(timeout=10)


def test_stop_writes_message_consent_ledger_and_reply_together(db_path: Path, writer: GroupCommitWriter) -> None:
    [outcome] = ingest(writer, mo_result("Stop please", message_id="m1"))
    conn = connect(db_path).conn
    row = conn.execute("SELECT action, keyword, consent_before, consent_after, reply_id, from_number, to_number "
                       "FROM messages WHERE message_id = 'm1'").fetchone()
    assert row == ("opt-out", "STOP", "", "n", outcome.reply_id, "+41793026727", "+447491163443")
    assert conn.execute("SELECT consent FROM consent WHERE number = '+41793026727'").fetchone() == ("n",)
    [entry] = consent_ledger(conn, "prod", "+41793026727")
    assert (entry["old"], entry["new"], entry["message_row_id"]) == ("", "n", outcome.row_id)
    reply = conn.execute("SELECT sender, to_number, text, validity_period_hours, callback_data, principal_entity_id, "
                         "content_template_id, status FROM outbox WHERE id = ?", (outcome.reply_id,)).fetchone()
    assert reply == ("+447491163443", "+41793026727", "Shop: unsubscribed.", 12, "shop-cb",
                     "1702157864390060348", "1107160000000000001", "queued")


def test_redelivered_message_id_changes_nothing(db_path: Path, writer: GroupCommitWriter) -> None:
    first = ingest(writer, mo_result("STOP", message_id="dup"))
    again = ingest(writer, mo_result("START", message_id="dup"), mo_result("START", message_id="dup"))
    assert first[0].row_id is not None
    assert [o.row_id for o in again] == [None, None]
    conn = connect(db_path).conn
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (1,)
    assert conn.execute("SELECT consent FROM consent").fetchone() == ("n",)


def test_traffic_counts_follow_the_stored_messages(db_path: Path, writer: GroupCommitWriter) -> None:
    """The per-minute counts the traffic strip reads match the rows; duplicates count nothing."""
    ingest(writer, mo_result("STOP", message_id="t1"), mo_result("hello", message_id="t2"),
           mo_result("HELP", message_id="t3"), mo_result("STOP", message_id="t1"))
    ingest(writer, mo_result("hello again", message_id="t4"), mo_result("STOP", message_id="t1"),
           mo_result("x", to="4915112345678", message_id="t5"))
    conn = connect(db_path).conn
    counted = dict(conn.execute("SELECT action, SUM(count) FROM traffic GROUP BY action").fetchall())
    assert counted == {"opt-out": 1, "default": 2, "help": 1, "unrouted": 1}
    assert counted == dict(conn.execute("SELECT action, COUNT(*) FROM messages GROUP BY action").fetchall())
    minutes = {m for (m,) in conn.execute("SELECT minute FROM traffic")}
    assert minutes == {s[:16] for (s,) in conn.execute("SELECT stored_at FROM messages")}


def test_duplicate_inside_one_batch_is_stored_once(db_path: Path, writer: GroupCommitWriter) -> None:
    outcomes = ingest(writer, mo_result("HELP", message_id="same"), mo_result("HELP", message_id="same"))
    assert [o.row_id is not None for o in outcomes] == [True, False]


def test_repeated_stop_replies_each_time_but_ledger_records_one_change(db_path: Path,
                                                                       writer: GroupCommitWriter) -> None:
    ingest(writer, mo_result("STOP"), mo_result("stop"), mo_result("STOP!"))
    conn = connect(db_path).conn
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (3,)
    entries = consent_ledger(conn, "prod", "+41793026727")
    assert [(e["old"], e["new"], e["effect"]) for e in entries] == [
        ("", "n", "changed"), ("n", "n", "reaffirmed"), ("n", "n", "reaffirmed")]


def test_unrouted_is_stored_and_not_answered(db_path: Path, writer: GroupCommitWriter) -> None:
    [outcome] = ingest(writer, mo_result("STOP", to="4915112345678"))
    conn = connect(db_path).conn
    assert conn.execute("SELECT action, credential FROM messages WHERE id = ?", (outcome.row_id,)).fetchone() == (
        "unrouted", "")
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM consent").fetchone() == (0,)


def test_custom_keyword_builds_a_segment(db_path: Path, writer: GroupCommitWriter) -> None:
    ingest(writer, mo_result("discount", sender="41790000001"), mo_result("DISCOUNT!", sender="41790000001"),
           mo_result("discount", sender="41790000002"), mo_result("hello", sender="41790000003"))
    conn = connect(db_path).conn
    segment = list_profiles(conn, attribute="DISCOUNT")
    assert sorted(p.number for p in segment) == ["+41790000001", "+41790000002"]
    counts = {p.number: p.attributes["DISCOUNT"]["count"] for p in segment}
    assert counts == {"+41790000001": 2, "+41790000002": 1}


def test_double_opt_in_flow_and_alphanumeric_sender(db_path: Path, writer: GroupCommitWriter) -> None:
    ingest(writer, mo_result("YES", to=CLUB_NUMBER, sender="41790000009"))
    ingest(writer, mo_result("confirm", to=CLUB_NUMBER, sender="41790000009"))
    conn = connect(db_path).conn
    ledger = consent_ledger(conn, "dev", "+41790000009")
    assert [(e["old"], e["new"]) for e in ledger] == [("", "p"), ("p", "y")]
    senders = {r[0] for r in conn.execute("SELECT sender FROM outbox")}
    assert senders == {"ClubInfo"}


def test_consent_is_kept_per_sandbox(db_path: Path, writer: GroupCommitWriter) -> None:
    ingest(writer, mo_result("STOP", sender="41790000010"))
    ingest(writer, mo_result("hi", to=CLUB_NUMBER, sender="41790000010"))
    conn = connect(db_path).conn
    assert dict(conn.execute("SELECT sandbox, consent FROM consent").fetchall()) == {"prod": "n"}
    newest = page_messages(conn, limit=1)[0]
    assert (newest.credential, newest.consent_before) == ("Club", "")


def test_a_failing_job_rolls_back_alone(db_path: Path, writer: GroupCommitWriter) -> None:
    routes = RouteTable()
    good = parse_inbound(mo_body(mo_result("HELP", message_id="good")))
    bad = parse_inbound(mo_body(mo_result("HELP", message_id="bad")))

    def failing(conn):
        store_messages(conn, routes, bad)
        raise RuntimeError("boom")

    f_bad = writer.submit(failing)
    f_good = writer.submit(lambda conn: store_messages(conn, routes, good))
    with pytest.raises(RuntimeError):
        f_bad.result(timeout=10)
    assert f_good.result(timeout=10)[0].row_id is not None
    ids = {r[0] for r in connect(db_path).conn.execute("SELECT message_id FROM messages")}
    assert ids == {"good"}


@pytest.mark.parametrize(("body", "where"), [
    ([], ""),
    ({}, "results"),
    ({"results": "x"}, "results"),
    ({"results": [{"from": "1", "to": "2", "text": "x"}]}, "results[0].messageId"),
    ({"results": [{"messageId": "a", "to": "2"}]}, "results[0].from"),
    ({"results": [{"messageId": "a", "from": "1"}]}, "results[0].to"),
    ({"results": [{"messageId": " ", "from": "1", "to": "2"}]}, "results[0].messageId"),
    ({"results": [{"messageId": "a", "from": "1", "to": "2", "receivedAt": "yesterday"}]}, "results[0].receivedAt"),
    ({"results": [{"messageId": "a", "from": 5, "to": "2"}]}, "results[0].from"),
])
def test_bad_bodies_name_the_problem(body: object, where: str) -> None:
    with pytest.raises(InputProblem) as info:
        parse_inbound(body)
    assert info.value.where == where


def test_unknown_fields_and_null_text_are_accepted() -> None:
    [msg] = parse_inbound(mo_body(mo_result("x", applicationId="app", entityId="e", campaignReferenceId="c")
                                  | {"text": None}))
    assert msg.text == "" and msg.received_at.startswith("2026-11-26T10:")


def test_control_characters_get_a_plain_message() -> None:
    with pytest.raises(InputProblem) as info:
        parse_inbound({"results": [{"messageId": "a\x1b[31m", "from": "1", "to": "2"}]})
    assert info.value.where == "results[0].messageId"
    assert info.value.message == "must be non-blank text without control characters"


def _hold_writer(writer: GroupCommitWriter):
    """Keep the writer busy so that what is submitted next queues up and commits as one group."""
    import threading

    started, release = threading.Event(), threading.Event()

    def hold(conn):
        started.set()
        release.wait(10)

    held = writer.submit(hold)
    started.wait(10)
    return release, held


def test_webhooks_queued_together_are_stored_in_one_call(db_path: Path, writer: GroupCommitWriter) -> None:
    routes = RouteTable()
    calls: list[int] = []

    def store(conn, messages):
        calls.append(len(messages))
        return store_messages(conn, routes, messages)

    bodies = [parse_inbound(mo_body(mo_result("HELP", message_id="a1"), mo_result("hi", message_id="a2"))),
              parse_inbound(mo_body(mo_result("STOP", message_id="b1"))),
              parse_inbound(mo_body(mo_result("again", message_id="a1")))]  # a redelivery, same group
    release, held = _hold_writer(writer)
    futures = [writer.submit_items(store, body) for body in bodies]
    release.set()
    held.result(10)
    results = [f.result(10) for f in futures]
    assert calls == [4]  # one call for the three webhooks
    assert [[o.message_id for o in r] for r in results] == [["a1", "a2"], ["b1"], ["a1"]]
    assert [o.action for o in results[1]] == ["opt-out"]
    assert results[0][0].row_id is not None and results[2][0].row_id is None  # the redelivery changed nothing
    conn = connect(db_path).conn
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (3,)


def test_a_failing_webhook_in_a_shared_call_fails_alone(db_path: Path, writer: GroupCommitWriter) -> None:
    routes = RouteTable()

    def store(conn, messages):
        outcomes = store_messages(conn, routes, messages)
        if any(m.text == "poison" for m in messages):
            raise RuntimeError("boom")
        return outcomes

    good = parse_inbound(mo_body(mo_result("HELP", message_id="g1")))
    bad = parse_inbound(mo_body(mo_result("poison", message_id="p1")))
    later = parse_inbound(mo_body(mo_result("hi", message_id="g2")))
    release, held = _hold_writer(writer)
    futures = [writer.submit_items(store, body) for body in (good, bad, later)]
    release.set()
    held.result(10)
    assert futures[0].result(10)[0].row_id is not None
    with pytest.raises(RuntimeError):
        futures[1].result(10)
    assert futures[2].result(10)[0].row_id is not None
    ids = {r[0] for r in connect(db_path).conn.execute("SELECT message_id FROM messages")}
    assert ids == {"g1", "g2"}
