"""One result that cannot be stored as it is must not hold its batch-mates (a STOP among them) hostage.

A text with a lone surrogate (half an emoji: a message cut at a bad place) is stored with U+FFFD in
its place, the repair is named in the answer and logged; a result the store refuses for any other
reason is refused alone (500, named, logged) while its neighbours are stored and acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from tests.support.serve import running_serve, store_inbound_refusing
from tests.support.serve_process import AUTH, LiveServe

HALF_EMOJI = "\ud83d"




def rows(db_path: Path) -> dict[str, tuple[str, str]]:
    conn = sqlite3.connect(db_path)
    try:
        found = conn.execute("SELECT message_id, text, action FROM messages")
        return {mid: (text, action) for mid, text, action in found}
    finally:
        conn.close()


def consent(db_path: Path, number: str) -> str | None:
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT consent FROM consent WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@pytest.mark.parametrize("raw", [False, True], ids=["json-escape", "raw-bytes"])
def test_stop_next_to_a_half_emoji_is_stored_and_acknowledged(serve: LiveServe, raw: bool) -> None:
    body = mo_body(mo_result("STOP", sender="41790000001", message_id="A"),
                   mo_result(f"see you {HALF_EMOJI}", sender="41790000002", message_id="B"))
    content = json.dumps(body, ensure_ascii=not raw).encode("utf-8", "surrogatepass")
    response = httpx.post(serve.url + "/infobip/inbound", content=content, auth=AUTH,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0, "repaired": ["results[1].text"]}
    stored = rows(serve.db_path)
    assert stored["A"][1] == "opt-out" and consent(serve.db_path, "+41790000001") == "n"
    assert stored["B"][0] == "see you \ufffd"
    lines = [line for line in serve.log().splitlines() if "lone surrogate" in line]
    assert len(lines) == 1 and "results[1].text" in lines[0] and "'B'" in lines[0]
    # Infobip's redelivery is recognised: the repaired id and text are the same every time
    again = httpx.post(serve.url + "/infobip/inbound", content=content, auth=AUTH,
                       headers={"content-type": "application/json"})
    assert again.json()["duplicates"] == 2


def test_surrogate_in_message_id_and_number_is_repaired_not_refused(serve: LiveServe) -> None:
    body = mo_body(mo_result("STOP", sender="41790000001", message_id="A2"),
                   mo_result("hi", sender=f"4179{HALF_EMOJI}", message_id=f"B2{HALF_EMOJI}"))
    response = httpx.post(serve.url + "/infobip/inbound", content=json.dumps(body).encode(), auth=AUTH,
                          headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert sorted(response.json()["repaired"]) == ["results[1].from", "results[1].messageId"]
    assert set(rows(serve.db_path)) == {"A2", "B2\ufffd"}


def test_a_result_the_store_refuses_is_refused_alone(tmp_path: Path) -> None:
    """Over loopback to serve's real app and writer process, with a store job that refuses one
    result: its neighbours are stored, the answer is 500 naming it (Infobip retries the batch,
    whose stored results are then acknowledged as duplicates)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    with running_serve(db) as server:
        server.service.receiver.store_run = store_inbound_refusing
        body = mo_body(mo_result("STOP", sender="41790000001", message_id="S"),
                       mo_result("POISON", sender="41790000002", message_id="P"),
                       mo_result("HELP", sender="41790000003", message_id="H"))
        response = httpx.post(server.url + "/infobip/inbound", json=body, auth=AUTH, timeout=30)
        assert response.status_code == 500
        assert response.json() == {"error": "some results could not be stored; the others were", "stored": 2,
                                   "duplicates": 0, "failed": ["results[1]"]}
        assert set(rows(db)) == {"S", "H"}
        assert consent(db, "+41790000001") == "n"
        retry = httpx.post(server.url + "/infobip/inbound", json=body, auth=AUTH, timeout=30)
        assert retry.status_code == 500 and retry.json()["duplicates"] == 2
