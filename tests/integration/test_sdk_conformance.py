"""Conformance with Infobip's official Python SDK models (infobip-api-python-client).

What the client sends, captured at the simulator, and what the simulator answers must parse with
the SDK's pydantic models AND survive a round trip unchanged: the SDK silently ignores unknown
fields, so a misspelt field would otherwise pass unnoticed.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from types import ModuleType
from typing import Any

import httpx
import pytest

from smsdesk.infobip.client import BALANCE_PATH, INBOX_PATH, LOGS_PATH, REPORTS_PATH, SEND_PATH, OutboundSms
from smsdesk.simulator.http_api import SimulatorThread
from tests.support.sim import BAD_KEY, GOOD_KEY, SMS_ONLY_KEY, Receiver, fast_client

AUTH = {"Authorization": f"App {GOOD_KEY}"}


@pytest.fixture(scope="module")
def sdk() -> ModuleType:
    """The SDK's models, imported here rather than at the top: the import costs about 3 s of CPU,
    and every xdist worker imports each test module to collect it, not only the one running these."""
    return importlib.import_module("infobip_api_client.models")


def same(dumped: Any, original: Any, where: str = "$") -> None:
    """Assert the SDK's dump equals our JSON: same keys everywhere, equal values (datetimes parsed)."""
    if isinstance(dumped, datetime):
        assert datetime.fromisoformat(original) == dumped, where
    elif isinstance(dumped, dict):
        assert isinstance(original, dict), where
        # to_dict() leaves out None values; our JSON must then not have that key either.
        kept = {k for k, v in original.items() if v is not None}
        assert set(dumped) == kept, f"{where}: {kept ^ set(dumped)}"
        for key, value in dumped.items():
            same(value, original[key], f"{where}.{key}")
    elif isinstance(dumped, list):
        assert isinstance(original, list) and len(dumped) == len(original), where
        for i, (d, o) in enumerate(zip(dumped, original, strict=True)):
            same(d, o, f"{where}[{i}]")
    else:
        assert dumped == original, f"{where}: {dumped!r} != {original!r}"


def conforms(model: Any, data: Any) -> Any:
    parsed = model.from_dict(data)
    assert parsed is not None
    same(parsed.to_dict(), data)
    return parsed


def test_the_round_trip_check_catches_a_misspelt_field(sdk: ModuleType) -> None:
    good = {"messages": [{"sender": "447491163443", "destinations": [{"to": "41793026727"}],
                          "content": {"text": "t"}}]}
    conforms(sdk.SmsRequest, good)
    misspelt = {"messages": [{**good["messages"][0], "webhook": {"callbackData": "x"}}]}
    with pytest.raises(AssertionError):
        conforms(sdk.SmsRequest, misspelt)


# --------------------------------------------------------------------------- requests we send

OUTBOUND = [
    OutboundSms(sender="+447491163443", to="+41793026727", text="every option", validity_period_hours=48,
                callback_data="cb", principal_entity_id="1702157864390060348",
                content_template_id="1107160000000000001", delivery_url="https://h.example/dlr", message_id="m-1"),
    OutboundSms(sender="447491163443", to="41793026728", text="DLT entity only", validity_period_hours=1,
                principal_entity_id="1702157864390060348"),
    OutboundSms(sender="InfoSMS", to="41793026729", text="bare"),
]


async def test_send_request_and_response_conform(sim: SimulatorThread, sdk: ModuleType) -> None:
    async with fast_client(sim.url) as client:
        for sms in OUTBOUND:
            await client.send([sms])
        await client.send(OUTBOUND)
    bodies = sim.state.bodies(SEND_PATH)
    assert len(bodies) == len(OUTBOUND) + 1
    for body in bodies:
        request = conforms(sdk.SmsRequest, body)
        assert request.messages[0].content.actual_instance.text  # parsed as text content, not binary
    first = sdk.SmsRequest.from_dict(bodies[0]).messages[0]
    assert first.options.regional.india_dlt.content_template_id == "1107160000000000001"
    assert first.options.validity_period.time_unit.value == "HOURS"
    assert first.webhooks.delivery.url == "https://h.example/dlr"
    # The answer to the same body, straight from the simulator:
    answer = httpx.post(f"{sim.url}{SEND_PATH}", json=bodies[-1], headers=AUTH)
    response = conforms(sdk.SmsResponse, answer.json())
    assert [m.status.group_name.value for m in response.messages] == ["PENDING"] * len(OUTBOUND)


# --------------------------------------------------------------------------- inbound

def test_inbox_pull_conforms(sim: SimulatorThread, sdk: ModuleType) -> None:
    sim.state.queue_inbound("41793026727", "447491163443", "YES please", message_id="mo-1")
    sim.state.queue_inbound("41793026728", "447491163443", "STOP")
    data = httpx.get(f"{sim.url}{INBOX_PATH}", params={"limit": 1}, headers=AUTH).json()
    result = conforms(sdk.SmsInboundMessageResult, data)
    assert (result.message_count, result.pending_message_count) == (1, 1)
    assert result.results[0].var_from == "41793026727" and result.results[0].message_id == "mo-1"


def test_forwarded_inbound_conforms(sim: SimulatorThread, receiver: Receiver, sdk: ModuleType) -> None:
    sim.state.forward_url = f"{receiver.url}/inbound"
    sim.state.queue_inbound("41793026727", "447491163443", "HELP")
    assert sim.wait_until(lambda: len(receiver.posts) == 1)
    result = conforms(sdk.SmsInboundMessageResult, receiver.posts[0]["body"])
    assert result.results[0].text == "HELP"


# --------------------------------------------------------------------------- delivery reports

def _send_one(sim: SimulatorThread, url: str | None) -> None:
    message: dict[str, Any] = {"sender": "447491163443", "destinations": [{"to": "41793026727", "messageId": "x1"}],
                               "content": {"text": "t"}, "webhooks": {"callbackData": "cb"}}
    if url:
        message["webhooks"]["delivery"] = {"url": url}
    assert httpx.post(f"{sim.url}{SEND_PATH}", json={"messages": [message]}, headers=AUTH).status_code == 200


@pytest.mark.parametrize("status", ["DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"])
def test_delivery_report_webhook_conforms(sim: SimulatorThread, receiver: Receiver, sdk: ModuleType,
                                          status: str) -> None:
    _send_one(sim, f"{receiver.url}/dlr")
    sim.state.deliver(status=status)
    assert sim.wait_until(lambda: len(receiver.posts) == 1)
    result = conforms(sdk.SmsDeliveryResult, receiver.posts[0]["body"])
    assert result.results[0].status.group_name.value == status
    assert result.results[0].error.group_name.value == "OK"


def test_delivery_report_pull_conforms(sim: SimulatorThread, sdk: ModuleType) -> None:
    _send_one(sim, None)
    sim.state.deliver()
    data = httpx.get(f"{sim.url}{REPORTS_PATH}", headers=AUTH).json()
    result = conforms(sdk.SmsDeliveryResult, data)
    assert result.results[0].message_id == "x1" and result.results[0].callback_data == "cb"


def test_message_logs_conform(sim: SimulatorThread, sdk: ModuleType) -> None:
    _send_one(sim, None)
    data = httpx.get(f"{sim.url}{LOGS_PATH}", params={"messageId": "x1,unknown"}, headers=AUTH).json()
    result = conforms(sdk.SmsLogsResponse, data)
    assert [log.message_id for log in result.results] == ["x1"]
    assert result.results[0].status.group_name.value == "PENDING"


# --------------------------------------------------------------------------- balance

def test_balance_matches_documented_shape(sim: SimulatorThread) -> None:
    # SDK 6.0.0 ships no account/balance model; check the shape Infobip documents instead.
    data = httpx.get(f"{sim.url}{BALANCE_PATH}", headers=AUTH).json()
    assert set(data) == {"balance", "currency"}
    assert isinstance(data["balance"], float) and isinstance(data["currency"], str)


# --------------------------------------------------------------------------- errors

def test_current_error_shape_conforms(sim: SimulatorThread, sdk: ModuleType) -> None:
    bad = httpx.post(f"{sim.url}{SEND_PATH}", json={"messages": [{"destinations": []}]}, headers=AUTH)
    unauthorised = httpx.post(f"{sim.url}{SEND_PATH}", json={}, headers={"Authorization": f"App {BAD_KEY}"})
    sim.state.inject("429", retry_after=1)
    throttled = httpx.get(f"{sim.url}{REPORTS_PATH}", headers=AUTH)
    sim.state.inject("500")
    broken = httpx.post(f"{sim.url}{SEND_PATH}", json={}, headers=AUTH)
    for response, status in ((bad, 400), (unauthorised, 401), (throttled, 429), (broken, 500)):
        assert response.status_code == status
        error = conforms(sdk.ApiError, response.json())
        assert error.error_code == f"E{status}"
    assert {v.var_property for v in sdk.ApiError.from_dict(bad.json()).violations} >= {
        "messages[0].sender", "messages[0].destinations", "messages[0].content"}


def test_legacy_error_shape_conforms(sim: SimulatorThread, sdk: ModuleType) -> None:
    responses = [
        httpx.get(f"{sim.url}{BALANCE_PATH}", headers={"Authorization": f"App {BAD_KEY}"}),
        httpx.get(f"{sim.url}{BALANCE_PATH}", headers={"Authorization": f"App {SMS_ONLY_KEY}"}),
        httpx.get(f"{sim.url}{INBOX_PATH}", params={"limit": 0}, headers=AUTH),
    ]
    assert [r.status_code for r in responses] == [401, 403, 400]
    parsed = [conforms(sdk.ApiException, r.json()) for r in responses]
    codes = [p.request_error.service_exception.message_id for p in parsed]
    assert codes == ["UNAUTHORIZED", "FORBIDDEN", "BAD_REQUEST"]
    assert parsed[2].request_error.service_exception.validation_errors == {"limit": ["must be between 1 and 1000"]}
