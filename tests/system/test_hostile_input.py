"""Hostile input, generated: webhook bodies, credential imports and form fields never crash smsdesk,
never half-write, and never put a raw terminal control sequence on the operator's screen.

About 10,500 generated cases per run (CI budget: well under 90 s). For a long run scale the total:
``SMSDESK_PROPERTY_EXAMPLES=200000 pytest tests/system/test_hostile_input.py``. The generated cases are
split between the tests by weight, below.

The HTTP properties go through the real Starlette app of `serve` (its real group-commit writer on a
real SQLite file) with starlette's TestClient, in process for speed; a smaller share goes over real
loopback HTTP to `serve` on a thread.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console
from starlette.testclient import TestClient

from smsdesk.cli.main import cli
from smsdesk.domain.credential import Credential, field_errors
from smsdesk.domain.credential_records import public_dict, validate_records
from smsdesk.engine.mo import InputProblem, parse_delivery_reports, parse_inbound, parse_inbound_batch
from smsdesk.engine.service import ServeConfig, Service
from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store import credentials as repo
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.tui.textual_private import screen_update
from smsdesk.tui.widgets.credential_form import FIELD_SPECS, form_values
from tests.support.cli import SCRIPT
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import give_legacy_name, record

TOTAL = int(os.environ.get("SMSDESK_PROPERTY_EXAMPLES", "10500"))
_WEIGHTS = {  # share of the generated cases per test (sums to 1); cheap pure checks get the most
    "inbound_http": 0.11, "inbound_loopback": 0.006, "dlr_http": 0.05, "parse_inbound": 0.08,
    "parse_dlr": 0.05, "validate_records": 0.11, "import": 0.05, "cli_import": 0.02,
    "model_field": 0.274, "form_field": 0.22, "neighbours": 0.02,
}
# Over real sockets to a serve with small limits: few cases, each bounded in time (seconds).
_FIXED = {"headers": 40, "slow_clients": 10}


def fixed(test: str) -> settings:
    return settings(max_examples=_FIXED[test], deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def examples(test: str) -> int:
    return max(10, round(TOTAL * _WEIGHTS[test]))


def budget(test: str) -> settings:
    return settings(max_examples=examples(test), deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


# Raw controls a terminal acts on: C0 except newline/tab, DEL, and C1 (U+009B alone is a CSI).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
NASTY = ["", " ", "\t", "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x9b31m", "\x1bP+q\x1b\\", "[/x]", "[b]bold",
         "\u202eSTOP", "STOP\u200b", "ＳＴＯＰ", "stop.", "STOP please", "\x00", "\ud800", "0" * 40, "💥" * 50,
         "+41 79 302 67 27", "0041793026727", "not a number", "9" * 64, "x" * 300]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=40),  # controls and Latin
    st.sampled_from(NASTY),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(0, 2_000)),
    st.sampled_from(["x" * 25_000, "é" * 20_001, "💥" * 5_000, "STOP " * 4_000]),  # huge: past every limit
)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Near-valid: four in five draws are plausible, the rest hostile of any type."""
    return st.integers(0, 4).flatmap(lambda i: valid if i else hostile)


ID_POOL = [f"mo-{i}" for i in range(40)]  # small, so redeliveries happen within and across batches
anything = st.one_of(hostile_text, json_any)
mo_fields = {
    "messageId": mostly(st.sampled_from(ID_POOL) | st.sampled_from([" mo-1 ", "mo-1\u3000"]), anything),
    "from": mostly(st.sampled_from(["41793026727", "41793026728", "+41793026729", "385911234567", "InfoSMS",
                                    "[/x]", " 41793026727 "]), anything),
    "to": mostly(st.sampled_from([SHOP_NUMBER, CLUB_NUMBER, "+" + SHOP_NUMBER, "447000000000"]), anything),
    "text": mostly(st.sampled_from(["STOP", "START", "HELP", "DISCOUNT", "CONFIRM", "hello", "stop.", "YES", ""])
                   | hostile_text, anything),
    "receivedAt": mostly(st.sampled_from(["2026-11-26T10:00:00.000+0000", "2026-11-26T10:00:00Z", "2026-11-26",
                                          "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
                         | st.datetimes().map(lambda d: d.isoformat()) | st.none(), anything),
}
extras = st.dictionaries(st.sampled_from(["cleanText", "keyword", "smsCount", "price", "entityId", "x"])
                         | st.text(max_size=6), json_any, max_size=3)
mo_result = st.one_of(
    st.builds(lambda fields, more: more | fields, st.fixed_dictionaries(mo_fields), extras),  # all fields
    st.builds(lambda fields, more: more | fields, st.fixed_dictionaries({}, optional=mo_fields), extras),
)


def body_of(results: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    batch = st.builds(lambda rs, more: more | {"results": rs}, st.lists(results, max_size=6),
                      st.dictionaries(st.sampled_from(["messageCount", "pendingMessageCount", "x"]), json_any,
                                      max_size=2))
    return st.one_of(batch, batch, batch, json_any, st.builds(lambda r: {"results": r}, json_any))


def encoded(body: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    as_json = st.builds(lambda b, ascii_: json.dumps(b, ensure_ascii=ascii_).encode("utf-8", "surrogatepass"),
                        body, st.booleans())
    return st.one_of(as_json, as_json, as_json, st.binary(max_size=64),
                     st.sampled_from([b"", b"[" * 50_000 + b"]" * 50_000, b'{"results": [], "n": ' + b"9" * 5000
                                      + b"}", b"\xef\xbb\xbf{}", b'{"results": [NaN]}', b"null"]))


TABLES = ("messages", "outbox", "consent", "consent_ledger", "profiles", "profile_attributes")


def snapshot(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def stored_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT message_id FROM messages")}


def assert_error_response(response: httpx.Response) -> None:
    """A 4xx with a JSON object naming the problem."""
    assert response.status_code in (400, 413), (response.status_code, response.text)
    payload = response.json()
    assert isinstance(payload["error"], str) and payload["error"]
    assert set(payload) <= {"error", "field"}
    if "field" in payload:
        assert isinstance(payload["field"], str) and payload["field"]


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unreadable_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM unreadable_inbound").fetchone()[0]


def _indexes(wheres: list[str]) -> list[int]:
    return [int(where[len("results["):where.index("]")]) for where in wheres]


def check_inbound(response: httpx.Response, sent: bytes, conn: sqlite3.Connection, before: dict[str, int],
                  ids_before: set[str], kept_before: int) -> None:
    """A 4xx changes nothing but unreadable_inbound; a 200 stored exactly the results that can be
    read on their own (one that cannot holds no neighbour), and kept the others."""
    after = snapshot(conn)
    kept = unreadable_count(conn) - kept_before
    if response.status_code != 200:
        assert_error_response(response)
        assert after == before, "a rejected batch changed the database"
        assert kept <= 1
        return
    results = json.loads(sent)["results"]
    alone = [parse_inbound_batch({"results": [r]}) for r in results]  # each result on its own
    readable = [i for i, parsed in enumerate(alone) if parsed.messages]
    # ids are compared without surrounding whitespace, and with lone surrogates stored as U+FFFD
    ids = [LONE_SURROGATE.sub("\ufffd", results[i]["messageId"]).strip() for i in readable]
    new = set(ids) - ids_before
    repaired = sorted(f"results[{i}].{key}" for i in readable for key in ("messageId", "from", "to", "text")
                      if isinstance(results[i].get(key), str) and LONE_SURROGATE.search(results[i][key]))
    expected: dict[str, Any] = {"stored": len(new), "duplicates": len(ids) - len(new)}
    if repaired:
        expected["repaired"] = repaired
    payload = response.json()
    payload["repaired"] = sorted(payload.get("repaired", [])) if "repaired" in payload else None
    not_stored = _indexes(payload.pop("unreadable", []))
    timed_by_arrival = _indexes(payload.pop("arrival_time", []))
    assert payload == expected | {"repaired": expected.get("repaired")}
    assert not_stored == [i for i in range(len(results)) if i not in readable]
    assert timed_by_arrival == [i for i in readable if alone[i].unreadable]
    assert 0 <= kept <= len(not_stored) + len(timed_by_arrival)  # a redelivered one is kept once
    assert after["messages"] - before["messages"] == len(new)
    assert stored_ids(conn) == ids_before | new
    assert all(after[t] >= before[t] for t in TABLES)


@pytest.fixture(scope="module")
def fast_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """RAM-backed when possible: thousands of synchronous=FULL commits would otherwise wait for a disk."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="smsdesk-hostile-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def live_db(fast_dir: Path) -> Path:
    return make_db(fast_dir / "smsdesk.db", shop_credential(), club_credential())


@pytest.fixture(scope="module")
def app_client(live_db: Path) -> Iterator[TestClient]:
    service = Service(ServeConfig(db_path=live_db, auth=None, insecure_no_auth=True, run_poller=False,
                                  run_outbox=False))
    # raise_server_exceptions: an unhandled exception (a would-be 500 with a traceback) fails the test
    with TestClient(service.app(), raise_server_exceptions=True) as client:
        yield client


@pytest.fixture(scope="module")
def reader(live_db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(live_db)
    yield conn
    conn.close()


@budget("inbound_http")
@given(sent=encoded(body_of(mo_result)))
def test_inbound_webhook_never_500_never_partial(app_client: TestClient, reader: sqlite3.Connection,
                                                 sent: bytes) -> None:
    before, ids_before, kept_before = snapshot(reader), stored_ids(reader), unreadable_count(reader)
    response = app_client.post("/infobip/inbound", content=sent, headers={"content-type": "application/json"})
    check_inbound(response, sent, reader, before, ids_before, kept_before)


def test_inbound_webhook_consent_evidence_still_verifies(app_client: TestClient, reader: sqlite3.Connection) -> None:
    """After everything the generated batches did (module order: runs after the property above)."""
    report = verify_consent(reader)
    assert report.ok, report.differences[:5]


@budget("inbound_loopback")
@given(sent=encoded(body_of(mo_result)))
def test_inbound_over_real_loopback_http(loopback: tuple[str, sqlite3.Connection], sent: bytes) -> None:
    url, conn = loopback
    before, ids_before, kept_before = snapshot(conn), stored_ids(conn), unreadable_count(conn)
    response = httpx.post(url + "/infobip/inbound", content=sent, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD),
                          headers={"content-type": "application/json"}, timeout=30)
    check_inbound(response, sent, conn, before, ids_before, kept_before)


@pytest.fixture(scope="module")
def loopback(fast_dir: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    path = make_db(fast_dir / "loopback.db", shop_credential(), club_credential())
    with running_serve(path) as server:
        conn = sqlite3.connect(path)
        yield server.url, conn
        conn.close()


dlr_status = st.fixed_dictionaries({}, optional={
    "groupName": mostly(st.sampled_from(["DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "PENDING"]), anything),
    "name": mostly(st.sampled_from(["DELIVERED_TO_HANDSET", "EXPIRED_EXPIRED"]), anything),
    "description": anything,
    "groupId": json_any,
})
dlr_result = st.builds(lambda fields, more: more | fields, st.fixed_dictionaries({}, optional={
    "messageId": mostly(st.sampled_from(["unknown-1", "smsdesk-nope"]), anything),
    "status": mostly(dlr_status, json_any),
}), extras)


def outbox_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()


@budget("dlr_http")
@given(sent=encoded(body_of(dlr_result)), known=st.booleans())
def test_delivery_reports_never_500_never_partial(app_client: TestClient, reader: sqlite3.Connection, sent: bytes,
                                                  known: bool) -> None:
    outbox = outbox_rows(reader)
    if known and outbox and sent.startswith(b'{"results": [{'):
        # point the first report at a real queued reply, so accepted reports also change rows
        body = json.loads(sent)
        if isinstance(body["results"][0], dict):
            body["results"][0]["messageId"] = outbox[0][3]
            sent = json.dumps(body).encode()
    before = snapshot(reader)
    response = app_client.post("/infobip/delivery-reports", content=sent, headers={"content-type": "application/json"})
    if response.status_code != 200:
        assert_error_response(response)
        assert outbox_rows(reader) == outbox and snapshot(reader) == before
        return
    results = json.loads(sent)["results"]
    payload = response.json()
    assert payload["matched"] + payload["unknown"] == len(results)
    assert snapshot(reader) == before  # reports only ever update replies


@budget("parse_inbound")
@given(body=body_of(mo_result))
def test_parse_inbound_only_raises_input_problems(body: Any) -> None:
    try:
        messages = parse_inbound(body)
    except InputProblem as problem:
        assert problem.message and RAW_CONTROL.search(str(problem)) is None
        return
    for message in messages:
        assert isinstance(message, InboundMessage)
        for value in (message.message_id, message.from_number, message.to_number):
            assert value and value == value.strip() and RAW_CONTROL.search(value) is None
        assert message.received_at.endswith("+00:00")


@budget("parse_inbound")
@given(body=body_of(mo_result))
def test_parse_inbound_batch_accounts_for_every_result(body: Any) -> None:
    """Only a body that is no batch is refused; otherwise every result is a message or kept as
    unreadable (or both, when only its receivedAt is unreadable), and each unreadable row is storable."""
    try:
        batch = parse_inbound_batch(body)
    except InputProblem as problem:
        assert not (isinstance(body, dict) and isinstance(body.get("results"), list))
        assert problem.message and RAW_CONTROL.search(str(problem)) is None
        return
    positions = [batch.position(k) for k in range(len(batch.messages))]
    quarantined = [u.index for u in batch.unreadable if not u.stored_as]
    assert sorted(positions + quarantined) == list(range(len(body["results"])))
    assert {u.index for u in batch.unreadable if u.stored_as} <= set(positions)
    for _, _, reason, raw in batch.unreadable_rows():
        reason.encode(), raw.encode()  # no lone surrogate: SQLite takes them as UTF-8
        assert len(raw) <= 4000


@budget("parse_dlr")
@given(body=body_of(dlr_result))
def test_parse_delivery_reports_only_raises_input_problems(body: Any) -> None:
    try:
        reports = parse_delivery_reports(body)
    except InputProblem as problem:
        assert problem.message
        return
    assert len(reports) == len(body["results"])


# ---- batch neighbours, request heads, slow clients ----------------------------------------------

_fresh_numbers = itertools.count(41791000000)


def with_lone_surrogates(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text with halves of emoji put in at random places, as truncated messages arrive."""
    return st.builds(lambda t, cut, half: t[:cut] + half + t[cut:], text, st.integers(0, 40),
                     st.sampled_from(["\ud83d", "\ude00", "\udfff", "\ud800\ud800"]))


neighbour_result = st.fixed_dictionaries({
    "messageId": st.one_of(st.sampled_from(ID_POOL), with_lone_surrogates(st.sampled_from(ID_POOL))),
    "from": st.one_of(st.sampled_from(["41793026728", "InfoSMS"]), hostile_text),
    "to": st.sampled_from([SHOP_NUMBER, CLUB_NUMBER, "447000000000"]),
    "text": st.one_of(hostile_text, with_lone_surrogates(hostile_text), st.just("x" * 20_000)),
})


@budget("neighbours")
@given(neighbour=st.one_of(neighbour_result, neighbour_result, mo_result, json_any), stop_first=st.booleans(),
       raw=st.booleans())
def test_no_neighbour_holds_a_stop_hostage(app_client: TestClient, reader: sqlite3.Connection, neighbour: Any,
                                           stop_first: bool, raw: bool) -> None:
    """A STOP from a fresh number next to any result (lone surrogates, controls, huge text, odd
    senders, a receivedAt that is no time, no messageId, not an object): the batch is
    acknowledged and the STOP is in force; a neighbour that cannot be read is kept, not stored."""
    number = str(next(_fresh_numbers))
    stop = {"messageId": f"stop-{number}", "from": number, "to": SHOP_NUMBER, "text": "STOP"}
    results = [stop, neighbour] if stop_first else [neighbour, stop]
    sent = json.dumps({"results": results}, ensure_ascii=not raw).encode("utf-8", "surrogatepass")
    before, ids_before, kept_before = snapshot(reader), stored_ids(reader), unreadable_count(reader)
    response = app_client.post("/infobip/inbound", content=sent, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    check_inbound(response, sent, reader, before, ids_before, kept_before)
    consent = reader.execute("SELECT consent FROM consent WHERE number = ?", ("+" + number,)).fetchone()
    assert consent == ("n",)


HEAD_LIMIT = 2048
SLOW_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def limited(fast_dir: Path) -> Iterator[tuple[str, int]]:
    """serve on loopback with a small head limit and request timeout."""
    from smsdesk.engine.limits import HttpLimits

    path = make_db(fast_dir / "limited.db", shop_credential())
    limits = HttpLimits(max_header_bytes=HEAD_LIMIT, request_timeout=SLOW_TIMEOUT, keep_alive_timeout=1)
    with running_serve(path, limits=limits) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


def exchange(address: tuple[str, int], chunks: list[bytes], pause: float = 0.0, timeout: float = 5.0) -> bytes:
    """Send `chunks` (with `pause` between them) on a fresh connection; what comes back until close."""
    import socket
    import time

    sock = socket.create_connection(address, timeout=timeout)
    try:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause:
                time.sleep(pause)
        data = b""
        while True:
            try:
                part = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not part:
                break
            data += part
        return data
    finally:
        sock.close()


header_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=20)
header_value = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=1500)


@fixed("headers")
@given(headers=st.lists(st.tuples(header_name, header_value), max_size=12), cuts=st.lists(st.integers(1, 4000),
       max_size=6), path=st.sampled_from(["/healthz", "/infobip/inbound", "/nowhere"]))
def test_request_heads_over_the_limit_are_431_and_under_it_are_served(limited: tuple[str, int], headers: Any,
                                                                       cuts: list[int], path: str) -> None:
    """Any head, sent in any pieces: 431 exactly when it is larger than the limit, else an answer
    of the app (never a 5xx), and the server goes on answering."""
    method = "GET" if path == "/healthz" else "POST"
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n"
    head += "".join(f"x-{name}: {value}\r\n" for name, value in headers) + "\r\n"
    raw = head.encode()
    pieces, start = [], 0
    for cut in sorted(set(cuts)):
        if start < cut < len(raw):
            pieces.append(raw[start:cut])
            start = cut
    pieces.append(raw[start:])
    answer = exchange(limited, pieces)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    if len(raw) > HEAD_LIMIT:
        assert status == 431, (len(raw), answer[:100])
    else:
        assert status is not None and status < 500 and status != 431, (len(raw), answer[:100])
    assert httpx.get(f"http://{limited[0]}:{limited[1]}/healthz").status_code == 200


@fixed("slow_clients")
@given(body=st.binary(min_size=1, max_size=30), slow_part=st.sampled_from(["head", "body"]),
       pieces=st.integers(4, 8))
def test_slow_clients_get_408_and_fast_ones_are_served(limited: tuple[str, int], body: bytes, slow_part: str,
                                                       pieces: int) -> None:
    """A request dribbled out over twice the timeout is answered 408 and closed, wherever it is slow;
    the same request sent at once is answered by the app."""
    import base64

    token = base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode()  # the app reads the body
    head = (f"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    fast = exchange(limited, [head + body])
    assert fast.startswith(b"HTTP/1.1 ") and not fast.startswith((b"HTTP/1.1 408", b"HTTP/1.1 5"))
    slow = head if slow_part == "head" else body
    step = max(1, len(slow) // pieces)
    chunks = [slow[i:i + step] for i in range(0, len(slow), step)]
    if slow_part == "body":
        chunks = [head, *chunks]
    if slow_part == "head":
        chunks.append(body)
    pause = 2 * SLOW_TIMEOUT / max(1, len(chunks) - 1)  # the last piece leaves well after the timeout
    answer = exchange(limited, chunks, pause=pause)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


# ---- credentials: import records, the model, the form ------------------------------------------

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": hostile_text, "provider": st.sampled_from(["infobip", "INFOBIP", "twilio"]) | anything,
    "sandbox": st.sampled_from(["prod", "Prod", "a" * 65, "dev-1"]) | anything,
    "base_url": st.sampled_from(["http://evil.example", "https://u:p@x.api.infobip.com", "xyz.api.infobip.com:99999",
                                 "https://x.api.infobip.com/path", "HTTPS://X.API.INFOBIP.COM", "ftp://x"]) | anything,
    "api_key": st.sampled_from(["••••abcd", "key with space", "k"]) | anything,
    "sender": hostile_text | anything, "inbound_number": hostile_text | anything,
    "validity_period_hours": st.sampled_from([0, 1, 48, 49, 12.0, 12.5, "12", " 7 ", "٣", True, None]) | anything,
    "principal_entity_id": st.sampled_from(["123", "١٢٣", "12a"]) | anything,
    "content_template_id": st.sampled_from(["123"]) | anything,
    "inbound_mode": st.sampled_from(["forward", "pull", "PULL"]) | anything,
    "callback_data": hostile_text | anything,
}
for _list in ("opt_in_keywords", "opt_out_keywords", "help_keywords", "double_opt_in_keywords", "inbound_keywords"):
    FIELD_VALUES[_list] = st.one_of(st.lists(hostile_text, max_size=4), hostile_text,
                                    st.sampled_from([["STOP"], ["A,B"], ["x" * 35], "STOP, HELP", ["!!!"]]), json_any)
for _message in ("opt_in_message", "opt_out_message", "help_message", "double_opt_in_message",
                 "default_reply_message"):
    FIELD_VALUES[_message] = st.one_of(hostile_text, json_any, st.just("m" * 1601))
FIELD_VALUES["fuzzy_opt_out_message"] = st.one_of(hostile_text, json_any, st.just("m" * 1601))
FIELD_VALUES["fuzzy_opt_out"] = st.sampled_from(["off", "reply", "review", "reply+review", "REVIEW", "x"]) | anything
FIELD_VALUES["double_opt_in_expiry_days"] = st.sampled_from([0, 30, -1, 3651, "7", " 7 ", 1.5, True, None]) | anything
FIELD_VALUES["blocklist_sync"] = st.sampled_from(["off", "push", "two-way", "TWO-WAY", "both", ""]) | anything
FIELD_VALUES["custom_keyword_replies"] = st.one_of(
    st.dictionaries(hostile_text, hostile_text, max_size=3), hostile_text, json_any,
    st.sampled_from(['{"X": "y"}', "{not json", "A = b\nno equals", "[" * 5000, {"STOP": "m" * 1601}]))
assert set(FIELD_VALUES) == set(Credential.model_fields)

_serial = itertools.count(1000)


@st.composite
def credential_records(draw: st.DrawFn) -> list[Any]:
    records: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        n = next(_serial)
        rec = record(n, name=f"Programme {n}", sandbox="prod", inbound_number="")
        for name in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=3, unique=True)):
            rec[name] = draw(FIELD_VALUES[name])
        if draw(st.integers(0, 9)) == 0:
            rec.pop(draw(st.sampled_from(["name", "base_url", "api_key"])))
        if draw(st.integers(0, 9)) == 0:
            rec[draw(st.text(min_size=1, max_size=8))] = draw(json_any)  # unknown field: forbidden
        if records and draw(st.integers(0, 9)) == 0:
            previous = draw(st.sampled_from(records))
            if isinstance(previous, dict) and "name" in previous:
                rec["name"] = previous["name"]  # duplicate within the file
        records.append(rec if draw(st.integers(0, 14)) else draw(json_any))
    return records


KNOWN_FIELDS = set(Credential.model_fields) | {"record", "credential"}


@budget("validate_records")
@given(records=credential_records())
def test_validate_records_reports_every_problem_safely(records: list[Any]) -> None:
    creds, problems = validate_records(records)
    for problem in problems:
        assert 0 <= problem.index < len(records)
        # a real field, or the unknown key itself (extra fields are refused by name)
        record_keys = set(records[problem.index]) if isinstance(records[problem.index], dict) else set()
        assert problem.field in record_keys or problem.field.split(".")[0] in KNOWN_FIELDS, problem
        line = str(problem)
        # printed to stderr by `creds import`: one line, nothing a terminal would act on
        assert "\n" not in line and RAW_CONTROL.search(line) is None, line
    for cred in creds:  # what is accepted is stable: validating the stored form again changes nothing
        again = Credential.model_validate(public_dict(cred, with_secrets=True))
        assert again == cred


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT COUNT(*) FROM credentials").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])


@pytest.fixture(scope="module")
def cred_db(fast_dir: Path) -> Iterator[Any]:
    db = connect(fast_dir / "creds.db")
    yield db
    db.close()


@budget("import")
@given(records=credential_records(), replace=st.booleans())
def test_import_is_all_or_nothing(cred_db: Any, records: list[Any], replace: bool) -> None:
    before = counts(cred_db.conn)
    existing = {c.name.casefold() for c in repo.list_credentials(cred_db.conn)}
    try:
        written = repo.import_credentials(cred_db, records, replace=replace)
    except repo.ImportRejected as exc:
        assert exc.problems
        assert counts(cred_db.conn) == before
        return
    assert len(written) == len(records)
    after = counts(cred_db.conn)
    # The database persists across examples, so a generated name may already exist: with
    # --replace that record updates (an audit row only if something changed), otherwise it adds.
    fresh = [name for name in written if name.casefold() not in existing]
    assert after[0] - before[0] == len(fresh)
    assert len(fresh) <= after[1] - before[1] <= len(records)
    for name in written:
        assert repo.get_credential(cred_db, name).name == name


@budget("cli_import")
@given(records=credential_records(), raw=st.one_of(st.none(), st.binary(max_size=40), hostile_text))
def test_cli_creds_import_exits_cleanly(tmp_path: Path, records: list[Any], raw: Any) -> None:
    db_path = tmp_path / "cli.db"
    source = tmp_path / "creds.json"
    if raw is None:
        source.write_text(json.dumps(records), encoding="ascii")  # lone surrogates travel as \ud800 escapes
    else:
        source.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    db = connect(db_path)
    before = counts(db.conn)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "creds", "import", str(source)])
    after = counts(db.conn)
    db.close()
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    assert RAW_CONTROL.search(result.stderr + result.stdout) is None
    if result.exit_code == 0:
        assert after[0] - before[0] == len(records) and result.stderr == ""
    else:
        assert after == before
        lines = result.stderr.splitlines()
        assert lines and all(line.startswith("smsdesk: ") for line in lines), lines
        if len(lines) > 1:  # one line per problem, then the verdict
            assert lines[-1].endswith("problem(s))") and "nothing imported" in lines[-1]


BASE = {"name": "Shop", "base_url": "x.api.infobip.com", "api_key": "k-0123456789"}


@budget("model_field")
@given(field=st.sampled_from(sorted(FIELD_VALUES)), data=st.data())
def test_model_with_one_hostile_field(field: str, data: st.DataObject) -> None:
    """A JSON record (any types) with one field replaced: valid, or errors that name real fields."""
    value = data.draw(FIELD_VALUES[field])
    try:
        cred = Credential.model_validate(BASE | {field: value})
    except ValidationError as exc:
        errors = field_errors(exc)
        assert errors and set(errors) <= set(Credential.model_fields), errors
        assert all(m and RAW_CONTROL.search(m) is None for m in errors.values()), errors
        return
    assert Credential.model_validate(cred.model_dump(mode="json")) == cred
    # an imported credential opened in the edit form and saved unchanged stays the same credential
    assert Credential.model_validate(form_values(cred)) == cred


@budget("form_field")
@given(field=st.sampled_from(sorted(FIELD_SPECS)), text=hostile_text)
def test_form_field_with_random_text(field: str, text: str) -> None:
    """What the edit form validates: every widget's text, one of them random.

    CredentialEditScreen.validate is a method over its widgets, not a pure function; its whole
    decision is `Credential.model_validate(values)` then `field_errors`, with `values` shaped as
    `form_values` makes them, so that is what runs here, thousands of times, without a Pilot.
    """
    values = form_values(None) | BASE | {field: text}
    try:
        cred = Credential.model_validate(values)
    except ValidationError as exc:
        errors = field_errors(exc)
        # the form puts each error under its widget and focuses the first: each must be a form field
        assert errors and set(errors) <= set(FIELD_SPECS), errors
        assert all(m and "\n" not in m for m in errors.values()), errors
        return
    # saved and reopened, the form shows text that validates to the same credential
    assert Credential.model_validate(form_values(cred)) == cred


# ---- what reaches the terminal ---------------------------------------------------------------

EVIL_NAME = "Shop \x1b[31mred\x1b[0m \x9b2J [/x] \x07"
EVIL_TEXT = "hi \x1b]0;owned\x07 \x1b[2J \x9b31m [/b] \x00 end"
EVIL_FROM = "[/x]\x1b[5m\x9b"  # stored as received: not a number


@pytest.fixture
def evil_db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "evil.db", shop_credential(name="Evil", inbound_keywords=["DISC"]))
    give_legacy_name(path, "Evil", EVIL_NAME)  # refused on input now; a row an older smsdesk stored
    legacy = sqlite3.connect(path)
    with legacy:  # so is a control character in a keyword
        legacy.execute("UPDATE credentials SET inbound_keywords = ?", (json.dumps(["DISC\x1b[5m"]),))
    legacy.close()
    db = connect(path)
    with transaction(db) as conn:  # the store path itself: rows as older versions or other paths may have left
        store_messages(conn, RouteTable(), [
            InboundMessage("e1", "+41793026727", "+" + SHOP_NUMBER, EVIL_TEXT, "2026-01-01T00:00:00.000+00:00"),
            InboundMessage("e2", EVIL_FROM, "+" + SHOP_NUMBER, "DISC\x1b[5m", "2026-01-01T00:00:01.000+00:00"),
            InboundMessage("e3", EVIL_FROM, "+" + SHOP_NUMBER, "STOP", "2026-01-01T00:00:02.000+00:00"),
        ])
    db.close()
    return path


def terminal_text(app: Any) -> str:
    """Every character the screen sends to the terminal as text (escape codes of styles excluded)."""
    update = screen_update(app.screen)
    console = Console(width=app.size.width, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      legacy_windows=False)
    return "".join(segment.text for segment in console.render(update) if not segment.control)


async def test_tui_renders_hostile_rows_inert(evil_db: Path) -> None:
    from smsdesk.tui.app import SmsDeskApp

    app = SmsDeskApp(evil_db)
    async with app.run_test(size=(120, 30)) as pilot:
        async def shown(mode: str, marker: str) -> str:
            app.switch_mode(mode)
            for _ in range(100):
                await pilot.pause(0.05)
                text = terminal_text(app)
                if marker in text:
                    return text
            raise AssertionError(f"{mode}: {marker!r} never shown:\n{text}")

        screens = {
            "credentials": await shown("credentials", "Shop \\x1b[31"),
            "log": await shown("log", "hi \\x1b]0;owned"),
            "profiles": await shown("profiles", "[/x]\\x1b[5m"),
        }
        app.switch_mode("log")
        await pilot.pause(0.2)
        await pilot.press("G", "enter")  # the oldest row: the hostile text
        for _ in range(40):
            await pilot.pause(0.05)
            if type(app.screen).__name__ == "MessageDetailScreen":
                break
        screens["detail"] = terminal_text(app)
        assert "owned" in screens["detail"]
        await pilot.press("escape")
        app.switch_mode("profiles")
        await pilot.pause(0.2)
        await pilot.press("enter")
        for _ in range(60):
            await pilot.pause(0.05)
            screens["profile"] = terminal_text(app)
            if "Consent ledger" in screens["profile"] and "loading" not in screens["profile"]:
                break
        assert "DISC" in screens["profile"]
        for name, text in screens.items():
            assert RAW_CONTROL.search(text) is None, (name, RAW_CONTROL.findall(text))


def test_cli_prints_hostile_names_inert(evil_db: Path) -> None:
    runner = CliRunner()
    outputs = {}
    for args in (["creds", "list"], ["creds", "list", "--json"], ["creds", "show", EVIL_NAME],
                 ["creds", "show", EVIL_NAME, "--json"], ["creds", "export"],
                 ["export", "messages"], ["export", "profiles"], ["export", "consent"],
                 ["export", "messages", "--format", "csv"], ["consent", "verify"]):
        result = runner.invoke(cli, ["--db", str(evil_db), *args])
        assert result.exit_code == 0, (args, result.output)
        outputs[" ".join(args)] = result.stdout
    for args, out in outputs.items():
        if args.endswith("csv"):
            continue  # not a terminal here: CSV keeps the data verbatim (see below)
        assert RAW_CONTROL.search(out) is None, (args, RAW_CONTROL.findall(out))
    # the JSON forms escape controls without losing them
    exported = [json.loads(line) for line in outputs["export messages"].splitlines()]
    assert EVIL_TEXT in [row["text"] for row in exported]
    assert json.loads(outputs["creds list --json"])[0]["name"] == EVIL_NAME.strip()
    assert EVIL_TEXT.replace("\x00", "") in outputs["export messages --format csv"].replace("\x00", "")


def test_csv_export_on_a_terminal_is_inert(evil_db: Path) -> None:
    """On a tty CSV cells show controls as visible escapes; redirected, they are the data itself."""
    import pty
    import subprocess

    script = SCRIPT
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([str(script), "--db", str(evil_db), "export", "messages", "--format", "csv"],
                              stdout=secondary, stderr=subprocess.PIPE, timeout=60)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    assert proc.returncode == 0, proc.stderr
    # CSV ends rows with \r\n, and the tty turns that \n into \r\n too
    shown = b"".join(chunks).decode().replace("\r\r\n", "\n").replace("\r\n", "\n")
    assert "hi \\x1b]0;owned\\x07" in shown
    assert RAW_CONTROL.search(shown) is None, RAW_CONTROL.findall(shown)
