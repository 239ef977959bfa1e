"""The Infobip simulator itself, spoken to with plain httpx over loopback."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from smsdesk.simulator.http_api import SimulatorThread, build_simulator_server
from smsdesk.simulator.state import DLR_STATUSES, SimulatorState
from tests.support.sim import BAD_KEY, GOOD_KEY, SMS_ONLY_KEY, Receiver

AUTH = {"Authorization": f"App {GOOD_KEY}"}


def message(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sender": "447491163443", "destinations": [{"to": "41793026727"}],
                            "content": {"text": "hello"}}
    base.update(overrides)
    return base


def post_send(sim: SimulatorThread, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{sim.url}/sms/3/messages", json=body, headers=AUTH if headers is None else headers)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize(("body", "prop"), [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [message(destinations=[])]}, "messages[0].destinations"),
    ({"messages": [message(destinations=[{}])]}, "messages[0].destinations[0].to"),
    ({"messages": [message(destinations=[{"to": "4" * 65}])]}, "messages[0].destinations[0].to"),
    ({"messages": [message(destinations=[{"to": "41", "messageId": "m" * 201}])]},
     "messages[0].destinations[0].messageId"),
    ({"messages": [message(content={})]}, "messages[0].content.text"),
    ({"messages": [message(sender="")]}, "messages[0].sender"),
    ({"messages": [message(options={"validityPeriod": {"amount": 0, "timeUnit": "HOURS"}})]},
     "messages[0].options.validityPeriod.amount"),
    ({"messages": [message(options={"validityPeriod": {"amount": 2, "timeUnit": "DAYS"}})]},
     "messages[0].options.validityPeriod.timeUnit"),
    ({"messages": [message(options={"regional": {"indiaDlt": {"contentTemplateId": "1107"}}})]},
     "messages[0].options.regional.indiaDlt.principalEntityId"),
    ({"messages": [message(webhooks={"callbackData": "c" * 4001})]}, "messages[0].webhooks.callbackData"),
    ({"messages": [message(webhooks={"delivery": {"url": "not a url"}})]}, "messages[0].webhooks.delivery.url"),
    ({"messages": [message(), message(content={"text": ""})]}, "messages[1].content.text"),
])
def test_send_validation(sim: SimulatorThread, body: dict[str, Any], prop: str) -> None:
    response = post_send(sim, body)
    assert response.status_code == 400
    data = response.json()
    assert data["errorCode"] == "E400" and data["resources"] == []
    assert prop in [v["property"] for v in data["violations"]]
    assert sim.state.sent == []


def test_malformed_json_is_a_400(sim: SimulatorThread) -> None:
    response = httpx.post(f"{sim.url}/sms/3/messages", content=b"{not json", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["violations"][0]["violation"] == "request body is not valid JSON"


def test_valid_send_answer(sim: SimulatorThread) -> None:
    body = {"messages": [message(destinations=[{"to": "41793026727", "messageId": "mine"}, {"to": "41793026728"}])]}
    response = post_send(sim, body)
    assert response.status_code == 200
    data = response.json()
    first, second = data["messages"]
    assert first["messageId"] == "mine" and second["messageId"] not in ("", "mine")
    assert first["status"] == {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                               "description": "Message sent to next instance"}
    assert (first["destination"], first["details"]) == ("41793026727", {"messageCount": 1})
    assert {s.bulk_id for s in sim.state.sent} == {data["bulkId"]}
    listed = httpx.get(f"{sim.url}/_sim/sent").json()
    assert [m["message_id"] for m in listed] == ["mine", second["messageId"]]


# --------------------------------------------------------------------------- auth

@pytest.mark.parametrize("headers", [{}, {"Authorization": f"App {BAD_KEY}"}, {"Authorization": f"Basic {GOOD_KEY}"},
                                     {"Authorization": GOOD_KEY}])
def test_auth_errors_use_each_path_family_shape(sim: SimulatorThread, headers: dict[str, str]) -> None:
    current = httpx.post(f"{sim.url}/sms/3/messages", json={"messages": [message()]}, headers=headers)
    assert current.status_code == 401 and current.json()["errorCode"] == "E401"
    for path in ("/account/1/balance", "/sms/1/inbox/reports"):
        legacy = httpx.get(f"{sim.url}{path}", headers=headers)
        assert legacy.status_code == 401
        assert legacy.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"
    reports = httpx.get(f"{sim.url}/sms/3/reports", headers=headers)
    assert reports.status_code == 401 and "errorCode" in reports.json()
    assert sim.state.sent == []


def test_scope_limited_key(sim: SimulatorThread) -> None:
    headers = {"Authorization": f"App {SMS_ONLY_KEY}"}
    balance = httpx.get(f"{sim.url}/account/1/balance", headers=headers)
    assert balance.status_code == 403
    assert balance.json()["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"
    assert post_send(sim, {"messages": [message()]}, headers).status_code == 200


def test_balance_is_configurable(sim: SimulatorThread) -> None:
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).json() == {"balance": 47.79, "currency": "EUR"}
    sim.state.balance = 3.0
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).json()["balance"] == 3.0


# --------------------------------------------------------------------------- inbound (pull)

def test_inbox_pull_shape_limits_and_consumption(sim: SimulatorThread) -> None:
    for i in range(55):
        sim.state.queue_inbound("41793026727", "447491163443", f"t{i}")
    first = httpx.get(f"{sim.url}/sms/1/inbox/reports", headers=AUTH).json()  # default limit 50
    assert (first["messageCount"], first["pendingMessageCount"]) == (50, 5)
    assert [r["text"] for r in first["results"][:2]] == ["t0", "t1"]
    result = first["results"][0]
    assert {"messageId", "from", "to", "text", "cleanText", "keyword", "receivedAt", "smsCount", "price"} <= set(result)
    assert result["receivedAt"].endswith("+0000") and len(result["receivedAt"]) == 28
    rest = httpx.get(f"{sim.url}/sms/1/inbox/reports", params={"limit": 1000}, headers=AUTH).json()
    assert (rest["messageCount"], rest["pendingMessageCount"]) == (5, 0)
    for bad in ("0", "1001", "x"):
        response = httpx.get(f"{sim.url}/sms/1/inbox/reports", params={"limit": bad}, headers=AUTH)
        assert response.status_code == 400
        assert "limit" in response.json()["requestError"]["serviceException"]["validationErrors"]


def test_inbound_control_endpoint(sim: SimulatorThread) -> None:
    response = httpx.post(f"{sim.url}/_sim/inbound", json=[
        {"from": "+41793026727", "to": "447491163443", "text": "STOP", "messageId": "mo-1"},
        {"from": "41793026728", "to": "447491163443", "text": "HELP", "receivedAt": "2024-01-02T03:04:05.000+0000"},
    ])
    assert response.status_code == 200 and response.json()["queued"] == 2
    pulled = httpx.get(f"{sim.url}/sms/1/inbox/reports", headers=AUTH).json()["results"]
    assert (pulled[0]["messageId"], pulled[0]["from"]) == ("mo-1", "41793026727")
    assert pulled[1]["receivedAt"] == "2024-01-02T03:04:05.000+0000"
    assert httpx.post(f"{sim.url}/_sim/inbound", json={"from": "1", "to": "2"}).status_code == 400


# --------------------------------------------------------------------------- inbound (forward)

def test_inbound_forwarding_with_basic_auth(sim: SimulatorThread, receiver: Receiver) -> None:
    sim.state.forward_url = f"{receiver.url}/inbound"
    sim.state.forward_auth = ("hook", "correct horse battery")
    sim.state.queue_inbound("41793026727", "447491163443", "YES")
    sim.state.queue_inbound("41793026728", "447491163443", "NO")
    assert sim.wait_until(lambda: len(receiver.results("/inbound")) == 2)
    assert [r["text"] for r in receiver.results("/inbound")] == ["YES", "NO"]
    post = receiver.posts[0]
    assert post["authorization"].startswith("Basic ")
    assert set(post["body"]) == {"results", "messageCount", "pendingMessageCount"}
    assert sim.state.inbox_size == 0  # forwarded messages are not also kept for pulls


def test_inbound_forwarding_retries_until_200(sim: SimulatorThread, receiver: Receiver) -> None:
    receiver.fail_next = 2
    sim.state.forward_url = f"{receiver.url}/inbound"
    sim.state.queue_inbound("41793026727", "447491163443", "retry me")
    assert sim.wait_until(lambda: len(sim.state.webhook_posts) == 3)  # noted once the answer is read
    assert len(receiver.results("/inbound")) == 1
    assert [p["status"] for p in receiver.posts] == [503, 503, 200]
    assert [(p.attempt, p.ok) for p in sim.state.webhook_posts] == [(1, False), (2, False), (3, True)]


def test_inbound_forwarding_gives_up_after_attempts(sim: SimulatorThread, receiver: Receiver) -> None:
    receiver.fail_next = 100
    sim.state.forward_url = f"{receiver.url}/inbound"
    sim.state.queue_inbound("41793026727", "447491163443", "lost")
    assert sim.wait_until(lambda: len(sim.state.webhook_failed) == 1)
    assert len(receiver.posts) == sim.state.webhook_attempts


# --------------------------------------------------------------------------- delivery reports

def _send(sim: SimulatorThread, count: int, url: str | None, prefix: str = "d") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(count)]
    webhooks: dict[str, Any] = {"callbackData": "cb"}
    if url:
        webhooks["delivery"] = {"url": url}
    body = {"messages": [message(destinations=[{"to": f"4179302{i:04d}", "messageId": mid}], webhooks=webhooks)
                         for i, mid in enumerate(ids)]}
    assert post_send(sim, body).status_code == 200
    return ids


def test_delivery_reports_posted_in_batches(sim: SimulatorThread, receiver: Receiver) -> None:
    sim.state.dlr_batch = 2
    ids = _send(sim, 5, f"{receiver.url}/dlr")
    assert sim.state.deliver() == 5
    assert sim.wait_until(lambda: len(receiver.results("/dlr")) == 5)
    assert sorted(len(p["body"]["results"]) for p in receiver.posts) == [1, 2, 2]
    reports = receiver.results("/dlr")
    assert sorted(r["messageId"] for r in reports) == ids
    report = reports[0]
    assert report["status"]["name"] == "DELIVERED_TO_HANDSET" and report["error"]["name"] == "NO_ERROR"
    assert report["callbackData"] == "cb" and report["sender"] == "447491163443"
    assert sim.state.deliver() == 0  # each message is reported once


def test_deliver_control_endpoint_with_status(sim: SimulatorThread, receiver: Receiver) -> None:
    sim.state.dlr_url = f"{receiver.url}/default-dlr"  # used when a message names no URL
    ids = _send(sim, 3, None)
    response = httpx.post(f"{sim.url}/_sim/deliver", json={"messageIds": ids[:1], "status": "UNDELIVERABLE"})
    assert response.json() == {"reports": 1}
    assert sim.wait_until(lambda: len(receiver.results("/default-dlr")) == 1)
    report = receiver.results("/default-dlr")[0]
    assert report["messageId"] == ids[0] and report["status"] == DLR_STATUSES["UNDELIVERABLE"]
    assert httpx.post(f"{sim.url}/_sim/deliver", json={"status": "LOST"}).status_code == 400


def test_reports_pull_when_no_webhook(sim: SimulatorThread) -> None:
    ids = _send(sim, 3, None)
    sim.state.deliver(status="EXPIRED")
    first = httpx.get(f"{sim.url}/sms/3/reports", params={"limit": 2}, headers=AUTH).json()["results"]
    rest = httpx.get(f"{sim.url}/sms/3/reports", headers=AUTH).json()["results"]
    assert [r["messageId"] for r in first + rest] == ids
    assert {r["status"]["groupName"] for r in first + rest} == {"EXPIRED"}
    assert httpx.get(f"{sim.url}/sms/3/reports", headers=AUTH).json() == {"results": []}


# --------------------------------------------------------------------------- faults

def test_fault_429_with_and_without_retry_after(sim: SimulatorThread) -> None:
    httpx.post(f"{sim.url}/_sim/faults", json={"kind": "429", "count": 1, "retryAfter": 3})
    sim.state.inject("429")
    with_header = httpx.get(f"{sim.url}/account/1/balance", headers=AUTH)
    without = post_send(sim, {"messages": [message()]})
    ok = httpx.get(f"{sim.url}/account/1/balance", headers=AUTH)
    assert (with_header.status_code, with_header.headers.get("retry-after")) == (429, "3")
    assert with_header.json()["requestError"]["serviceException"]["messageId"] == "TOO_MANY_REQUESTS"
    assert (without.status_code, without.headers.get("retry-after")) == (429, None)
    assert without.json()["errorCode"] == "E429"
    assert ok.status_code == 200
    assert [r.status for r in sim.state.requests] == [429, 429, 200]


def test_fault_500_for_a_duration_then_cleared(sim: SimulatorThread) -> None:
    sim.state.inject("500", duration=0.3)
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 500
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 500
    time.sleep(0.35)
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 200
    sim.state.inject("500", count=5)
    assert httpx.delete(f"{sim.url}/_sim/faults").status_code == 200
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 200


def test_fault_path_prefix_and_control_routes_unaffected(sim: SimulatorThread) -> None:
    sim.state.inject("500", count=1, path_prefix="/sms/3/")
    assert httpx.get(f"{sim.url}/_sim/sent").status_code == 200
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 200
    assert post_send(sim, {"messages": [message()]}).status_code == 500


def test_fault_drop_closes_without_response(sim: SimulatorThread) -> None:
    sim.state.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{sim.url}/account/1/balance", headers=AUTH)
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 200
    assert [(r.status, r.fault) for r in sim.state.requests] == [(0, "drop"), (200, "")]


def test_fault_slow(sim: SimulatorThread) -> None:
    sim.state.inject("slow", delay=0.3)
    started = time.monotonic()
    assert httpx.get(f"{sim.url}/account/1/balance", headers=AUTH).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_slow_after_processing_accepts_at_once_and_answers_late(sim: SimulatorThread) -> None:
    """`process=True`: the messages are taken (and recorded) on arrival, only the answer is late,
    so `sent` says when the sender's request reached Infobip."""
    import threading

    sim.state.inject("slow", delay=0.5, process=True, path_prefix="/sms/3/messages")
    answers: list[httpx.Response] = []
    started = time.monotonic()
    poster = threading.Thread(target=lambda: answers.append(post_send(sim, {"messages": [message()]})))
    poster.start()
    assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=5)
    assert time.monotonic() - started < 0.4 and not answers  # recorded while the answer waits
    poster.join(5)
    assert time.monotonic() - started >= 0.5
    assert answers[0].status_code == 200 and answers[0].json()["messages"][0]["status"]["groupName"] == "PENDING"


def test_bad_fault_request(sim: SimulatorThread) -> None:
    assert httpx.post(f"{sim.url}/_sim/faults", json={"kind": "fire"}).status_code == 400


# --------------------------------------------------------------------------- server helpers

def test_refuses_public_bind_by_default() -> None:
    with pytest.raises(ValueError):
        build_simulator_server(SimulatorState(keys={"k"}), "0.0.0.0", 9090)


def test_thread_helper_starts_and_stops() -> None:
    with SimulatorThread(keys=["k"]) as sim:
        assert httpx.get(f"{sim.url}/account/1/balance", headers={"Authorization": "App k"}).status_code == 200
        url = sim.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/account/1/balance")
