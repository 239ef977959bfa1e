"""InfobipClient against the running simulator over loopback: payloads, verify, pulls, errors, retries."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from smsdesk.domain.credential import Credential
from smsdesk.infobip.client import (
    INBOX_PATH,
    LOGS_PATH,
    SEND_PATH,
    InfobipClient,
    OutboundSms,
    RetryPolicy,
    VerifyOutcome,
    log_id_chunks,
    parse_retry_after,
)
from smsdesk.infobip.errors import (
    ErrorKind,
    InfobipConnectionDropped,
    InfobipError,
    InfobipTimeout,
    InfobipTlsError,
    InfobipUnreachable,
    parse_error_body,
)
from smsdesk.simulator.http_api import SimulatorThread
from tests.support.sim import BAD_KEY, GOOD_KEY, SMS_ONLY_KEY, closed_port, fast_client

FULL = OutboundSms(
    sender="+447491163443", to="+41793026727", text="Reply text", validity_period_hours=24,
    callback_data="campaign=7", principal_entity_id="1702157864390060348",
    content_template_id="1107160000000000001", delivery_url="http://127.0.0.1:9/infobip/delivery-reports",
    message_id="ours-0001",
)


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --------------------------------------------------------------------------- sending

async def test_send_with_every_option(sim: SimulatorThread) -> None:
    async with fast_client(sim.url) as client:
        result = await client.send([FULL])
    assert sim.state.bodies(SEND_PATH) == [{"messages": [{
        "sender": "447491163443",
        "destinations": [{"to": "41793026727", "messageId": "ours-0001"}],
        "content": {"text": "Reply text"},
        "options": {"validityPeriod": {"amount": 24, "timeUnit": "HOURS"},
                    "regional": {"indiaDlt": {"principalEntityId": "1702157864390060348",
                                              "contentTemplateId": "1107160000000000001"}}},
        "webhooks": {"callbackData": "campaign=7",
                     "delivery": {"url": "http://127.0.0.1:9/infobip/delivery-reports"}},
    }]}]
    assert result.bulk_id == sim.state.sent[0].bulk_id
    [message] = result.messages
    assert (message.message_id, message.destination) == ("ours-0001", "41793026727")
    assert (message.status_group, message.status_name, message.status_id) == ("PENDING", "PENDING_ACCEPTED", 26)
    assert message.message_count == 1


async def test_send_without_dlt_or_optional_parts(sim: SimulatorThread) -> None:
    plain = OutboundSms(sender="InfoSMS", to="41793026727", text="hi")
    dlt_entity_only = OutboundSms(sender="InfoSMS", to="41793026728", text="hi", validity_period_hours=48,
                                  principal_entity_id="1702157864390060348")
    async with fast_client(sim.url) as client:
        result = await client.send([plain, dlt_entity_only])
    [body] = sim.state.bodies(SEND_PATH)
    first, second = body["messages"]
    assert first == {"sender": "InfoSMS", "destinations": [{"to": "41793026727"}], "content": {"text": "hi"}}
    assert second["options"] == {"validityPeriod": {"amount": 48, "timeUnit": "HOURS"},
                                 "regional": {"indiaDlt": {"principalEntityId": "1702157864390060348"}}}
    assert "webhooks" not in second
    # Without our id, the simulator (like Infobip) generates one per destination.
    ids = [m.message_id for m in result.messages]
    assert len(set(ids)) == 2 and all(ids)


async def test_outbound_from_credential(sim: SimulatorThread) -> None:
    cred = Credential(name="Shop", base_url=sim.url, api_key=GOOD_KEY, inbound_number="+447491163443",
                      validity_period_hours=12, callback_data="shop", principal_entity_id="1702157864390060348")
    sms = OutboundSms.from_credential(cred, "+41793026727", "Thanks", "m-42", delivery_url="https://h/dlr")
    assert sms.sender == "+447491163443"  # no sender configured: replies come from the inbound number
    async with fast_client(cred.base_url, cred.api_key) as client:
        await client.send([sms])
    [body] = sim.state.bodies(SEND_PATH)
    message = body["messages"][0]
    assert message["sender"] == "447491163443"
    assert message["options"]["validityPeriod"]["amount"] == 12
    assert message["webhooks"] == {"callbackData": "shop", "delivery": {"url": "https://h/dlr"}}


@pytest.mark.parametrize("kwargs", [
    {"message_id": "x" * 201}, {"to": "not-a-number"}, {"validity_period_hours": 49}, {"callback_data": "c" * 4001},
    {"content_template_id": "11071600"},
])
def test_outbound_rejects_what_infobip_would(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"sender": "447491163443", "to": "41793026727", "text": "t"}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        OutboundSms(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- verify

async def test_verify_good_key(sim: SimulatorThread) -> None:
    sim.state.balance, sim.state.currency = 12.5, "GBP"
    async with fast_client(sim.url) as client:
        result = await client.verify()
    assert result.ok and result.key_valid
    assert result.balance is not None and (result.balance.balance, result.balance.currency) == (12.5, "GBP")
    assert "12.50 GBP" in result.message


async def test_verify_bad_key(sim: SimulatorThread) -> None:
    async with fast_client(sim.url, BAD_KEY) as client:
        result = await client.verify()
    assert result.outcome is VerifyOutcome.BAD_KEY and not result.key_valid and result.status == 401


async def test_verify_key_without_balance_scope(sim: SimulatorThread) -> None:
    async with fast_client(sim.url, SMS_ONLY_KEY) as client:
        result = await client.verify()
        sent = await client.send([OutboundSms(sender="InfoSMS", to="41793026727", text="still works")])
    assert result.outcome is VerifyOutcome.NO_SCOPE and result.key_valid and not result.ok
    assert "key valid, balance not readable" in result.message
    assert sent.messages[0].status_group == "PENDING"


async def test_verify_unreachable_host() -> None:
    async with fast_client(f"http://127.0.0.1:{closed_port()}") as client:
        result = await client.verify()
    assert result.outcome is VerifyOutcome.UNREACHABLE
    assert "connection refused" in result.message


async def test_verify_timeout(sim: SimulatorThread) -> None:
    sim.state.inject("slow", delay=0.6)
    async with fast_client(sim.url, timeout=0.2) as client:
        started = time.monotonic()
        result = await client.verify()
    assert result.outcome is VerifyOutcome.TIMEOUT
    assert time.monotonic() - started < 0.55


async def test_verify_tls_failure(sim: SimulatorThread) -> None:
    # An https client talking to the plain-HTTP simulator: the handshake itself fails.
    async with fast_client(f"https://127.0.0.1:{sim.port}") as client:
        result = await client.verify()
        with pytest.raises(InfobipTlsError) as caught:
            await client.balance()
    assert result.outcome is VerifyOutcome.TLS
    assert caught.value.kind is ErrorKind.TLS and not caught.value.retryable


async def test_verify_other_http_error_is_reported_without_retry(sim: SimulatorThread) -> None:
    sim.state.inject("500", count=5)
    async with fast_client(sim.url) as client:
        result = await client.verify()
    assert result.outcome is VerifyOutcome.HTTP_ERROR and result.status == 500
    assert sim.state.count_requests() == 1  # a person is waiting: one attempt


# --------------------------------------------------------------------------- pulls

async def test_pull_inbound_consumes(sim: SimulatorThread) -> None:
    for i in range(3):
        sim.state.queue_inbound("+41793026727", "+447491163443", f"msg {i}")
    async with fast_client(sim.url) as client:
        first = await client.pull_inbound(limit=2)
        second = await client.pull_inbound()
        third = await client.pull_inbound()
    assert [m["text"] for m in first] == ["msg 0", "msg 1"]
    assert [m["text"] for m in second] == ["msg 2"]
    assert third == []
    assert first[0]["from"] == "41793026727" and first[0]["to"] == "447491163443"
    assert sim.state.bodies(INBOX_PATH) == []  # GETs carry no body
    assert sim.state.count_requests(INBOX_PATH) == 3


async def test_pull_reports_consumes(sim: SimulatorThread) -> None:
    async with fast_client(sim.url) as client:
        await client.send([OutboundSms(sender="InfoSMS", to="41793026727", text="a", message_id="r1"),
                           OutboundSms(sender="InfoSMS", to="41793026728", text="b", message_id="r2")])
        assert sim.state.deliver() == 2
        reports = await client.pull_reports(limit=10)
        again = await client.pull_reports(limit=10)
    assert sorted(r["messageId"] for r in reports) == ["r1", "r2"]
    assert {r["status"]["name"] for r in reports} == {"DELIVERED_TO_HANDSET"}
    assert again == []


async def test_message_logs_find_what_this_account_sent(sim: SimulatorThread) -> None:
    ours = [f"smsdesk-{i:032x}" for i in range(120)]  # 40 characters each: 49 fit in 2048
    chunks = log_id_chunks(ours)
    assert [len(chunk) for chunk in chunks] == [49, 49, 22]
    assert all(len(",".join(chunk)) <= 2048 for chunk in chunks)
    async with fast_client(sim.url) as client:
        await client.send([OutboundSms(sender="InfoSMS", to="41793026727", text="a", message_id=ours[0]),
                           OutboundSms(sender="InfoSMS", to="41793026727", text="b", message_id=ours[119])])
        found = {}
        for chunk in chunks:
            found |= await client.message_logs(chunk)
        with pytest.raises(ValueError):
            await client.message_logs(ours)  # over 2048 characters in one request
    sim.state.keys.add("sim-other-account-key-0123456789")
    async with fast_client(sim.url, "sim-other-account-key-0123456789") as other_account:
        assert await other_account.message_logs(chunks[0]) == {}  # logs are per account
    async with fast_client(sim.url, SMS_ONLY_KEY) as sms_only:
        with pytest.raises(InfobipError) as refused:  # a key without the scope to read logs
            await sms_only.message_logs(chunks[0])
        assert refused.value.status == 403
    assert sorted(found) == [ours[0], ours[119]]
    assert found[ours[0]].status_group == "PENDING" and found[ours[0]].destination == "41793026727"
    assert [r.status for r in sim.state.requests if r.path == LOGS_PATH] == [200] * 4 + [403]


async def test_message_logs_are_retried_like_any_read(sim: SimulatorThread) -> None:
    sim.state.inject("500", 1, path_prefix=LOGS_PATH)
    async with fast_client(sim.url) as client:
        assert await client.message_logs(["never-sent"]) == {}
    assert [r.status for r in sim.state.requests if r.path == LOGS_PATH] == [500, 200]


async def test_message_logs_count_only_entries_with_one_of_infobips_statuses(sim: SimulatorThread) -> None:
    """An entry says a message is at Infobip only with one of its statuses: one without a status,
    with one Infobip does not document, or that cannot be read, leaves the id out (still unknown)."""
    accepted = {"messageId": "ours-1", "status": {"groupName": "PENDING", "name": "PENDING_ACCEPTED"}}
    rejected = {"messageId": "ours-1", "status": {"groupName": "REJECTED", "name": "REJECTED_NETWORK"}}
    async with fast_client(sim.url) as client:
        sim.state.logs_answer = {"results": [rejected, {"messageId": "not-ours", "status": "PENDING"}, accepted]}
        found = await client.message_logs(["ours-1"])
        assert list(found) == ["ours-1"] and found["ours-1"].status_group == "PENDING"  # accepted wins
        for entry in ({"messageId": "ours-1", "status": "PENDING"}, {"messageId": "ours-1"},
                      {"messageId": "ours-1", "status": {}}, {"messageId": "ours-1", "status": {"groupName": "OK"}},
                      {"messageId": "ours-1", "status": {"groupName": "ACCEPTED"}}):
            sim.state.logs_answer = {"results": [entry]}
            assert await client.message_logs(["ours-1"]) == {}, entry
        sim.state.logs_answer = {"results": "none"}
        with pytest.raises(InfobipError):
            await client.message_logs(["ours-1"])


async def test_pull_limit_is_checked_before_calling() -> None:
    client = InfobipClient("http://127.0.0.1:9", "k")
    with pytest.raises(ValueError):
        await client.pull_inbound(limit=1001)
    await client.aclose()


# --------------------------------------------------------------------------- errors

async def test_current_error_shape_with_violations(sim: SimulatorThread) -> None:
    async with fast_client(sim.url) as client:
        with pytest.raises(InfobipError) as caught:
            await client.send([OutboundSms(sender="InfoSMS", to="41793026727", text="")])
    err = caught.value
    assert (err.status, err.code, err.retryable) == (400, "E400", False)
    assert err.violations == [("messages[0].content.text", "must not be blank")]
    assert "messages[0].content.text" in str(err)
    assert sim.state.count_requests(SEND_PATH) == 1  # never retried


async def test_legacy_error_shape(sim: SimulatorThread) -> None:
    async with fast_client(sim.url, BAD_KEY) as client:
        with pytest.raises(InfobipError) as caught:
            await client.pull_inbound()
    assert (caught.value.status, caught.value.code, caught.value.text) == (401, "UNAUTHORIZED", "Invalid login details")
    assert sim.state.count_requests() == 1
    # validationErrors of the legacy shape, as the simulator answers a bad limit:
    response = httpx.get(f"{sim.url}{INBOX_PATH}", params={"limit": 5000},
                         headers={"Authorization": f"App {GOOD_KEY}"})
    err = parse_error_body(response.status_code, response.content)
    assert (err.status, err.code) == (400, "BAD_REQUEST")
    assert err.violations == [("limit", "must be between 1 and 1000")]


def test_error_bodies_that_are_not_json() -> None:
    err = parse_error_body(502, b"<html><body>Bad gateway</body></html>")
    assert err.status == 502 and err.retryable and "Bad gateway" in err.text
    assert parse_error_body(404, b"").text == "not found (check the base URL)"


async def test_key_is_never_in_errors_repr_or_logs(sim: SimulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim.state.inject("500", count=2)
    client = fast_client(sim.url, BAD_KEY)
    with pytest.raises(InfobipError) as caught:
        await client.balance()
    await client.aclose()
    for text in (str(caught.value), repr(caught.value), repr(client), caplog.text,
                 str(caught.value.__cause__ or "")):
        assert BAD_KEY not in text
    assert sim.state.count_requests() == 3


# --------------------------------------------------------------------------- retries

@pytest.mark.parametrize("kind", ["429", "500", "drop"])
async def test_transient_failures_of_a_read_are_retried(sim: SimulatorThread, kind: str) -> None:
    sim.state.inject(kind, count=2)
    async with fast_client(sim.url, max_attempts=3) as client:
        await client.balance()
    assert [r.fault for r in sim.state.requests] == [kind, kind, ""]


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_refused_sends_are_retried(sim: SimulatorThread, kind: str) -> None:
    sim.state.inject(kind, count=2)
    async with fast_client(sim.url, max_attempts=3) as client:
        result = await client.send([FULL])
    assert result.messages[0].message_id == "ours-0001"
    assert sim.state.count_requests(SEND_PATH) == 3
    assert len(sim.state.sent) == 1


@pytest.mark.parametrize(("kind", "error_type"), [("429", InfobipError), ("500", InfobipError)])
async def test_retries_stop_at_max_attempts(sim: SimulatorThread, kind: str, error_type: type) -> None:
    sim.state.inject(kind, count=10)
    async with fast_client(sim.url, max_attempts=4) as client:
        with pytest.raises(error_type) as caught:
            await client.send([FULL])
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert sim.state.count_requests(SEND_PATH) == 4
    assert sim.state.sent == []


async def test_timeout_is_retried_then_reported(sim: SimulatorThread) -> None:
    sim.state.inject("slow", count=2, delay=0.5)
    async with fast_client(sim.url, timeout=0.15, max_attempts=2) as client:
        with pytest.raises(InfobipTimeout):
            await client.balance()
    assert sim.wait_until(lambda: sim.state.count_requests() == 2, timeout=3)


async def test_no_retry_on_client_errors(sim: SimulatorThread) -> None:
    async with fast_client(sim.url, BAD_KEY, max_attempts=5) as client:
        with pytest.raises(InfobipError) as caught:
            await client.send([FULL])
    assert caught.value.status == 401 and not caught.value.retryable
    assert sim.state.count_requests(SEND_PATH) == 1


async def test_retry_after_is_honoured(sim: SimulatorThread) -> None:
    sim.state.inject("429", count=1, retry_after=2)
    sleep = RecordingSleep()
    async with fast_client(sim.url, sleep=sleep, max_attempts=3) as client:
        await client.balance()
    assert sleep.calls == [2.0]  # exactly the server's figure, no jitter


async def test_retry_after_really_waits(sim: SimulatorThread) -> None:
    sim.state.inject("429", count=1, retry_after=0.3)
    async with fast_client(sim.url, max_attempts=2) as client:
        started = time.monotonic()
        await client.balance()
    assert time.monotonic() - started >= 0.3


async def test_retry_after_beyond_budget_gives_up_at_once(sim: SimulatorThread) -> None:
    sim.state.inject("429", count=1, retry_after=60)
    sleep = RecordingSleep()
    async with fast_client(sim.url, sleep=sleep, max_attempts=5, max_retry_seconds=10) as client:
        with pytest.raises(InfobipError) as caught:
            await client.balance()
    assert caught.value.status == 429 and caught.value.retry_after == 60
    assert sleep.calls == [] and sim.state.count_requests() == 1


async def test_time_budget_bounds_retries(sim: SimulatorThread) -> None:
    sim.state.inject("500", count=50)
    async with fast_client(sim.url, max_attempts=50, backoff_base=0.05, backoff_max=0.05,
                           max_retry_seconds=0.3) as client:
        started = time.monotonic()
        with pytest.raises(InfobipError):
            await client.balance()
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert 1 < sim.state.count_requests() < 50


async def test_backoff_sleeps_grow_with_full_jitter(sim: SimulatorThread) -> None:
    sim.state.inject("500", count=3)
    sleep = RecordingSleep()
    async with fast_client(sim.url, sleep=sleep, rand=lambda: 1.0, max_attempts=4, backoff_base=0.5,
                           backoff_max=1.5) as client:
        await client.balance()
    assert sleep.calls == [0.5, 1.0, 1.5]


def test_backoff_policy_bounds() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_max=4.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.backoff(5, lambda: 0.0) == 0.0


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now.timestamp()) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("process", [True, False], ids=["accepted, answer lost", "dropped before handling"])
async def test_a_send_whose_answer_was_lost_is_never_sent_again_by_the_client(sim: SimulatorThread,
                                                                               process: bool) -> None:
    """The connection closed after the request was written: Infobip may have accepted it (here it
    did, or did not), and the client cannot tell. It says so (`outcome_unknown`) after one
    request, whatever its retry policy: sent again, an accepted message would go twice."""
    sim.state.inject("drop", count=1, process=process)
    async with fast_client(sim.url, max_attempts=5) as client:
        with pytest.raises(InfobipConnectionDropped) as caught:
            await client.send([FULL])
    assert caught.value.outcome_unknown and caught.value.kind is ErrorKind.DROPPED
    assert [s.message_id for s in sim.state.sent] == (["ours-0001"] if process else [])
    assert len([r for r in sim.state.requests if r.path == SEND_PATH or r.fault == "drop"]) == 1


async def test_a_send_answered_late_is_not_sent_again_by_the_client(sim: SimulatorThread) -> None:
    sim.state.inject("slow", count=1, delay=0.5, process=True, path_prefix=SEND_PATH)
    async with fast_client(sim.url, timeout=0.15, max_attempts=5) as client:
        with pytest.raises(InfobipTimeout) as caught:
            await client.send([FULL])
    assert caught.value.outcome_unknown
    assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=3)
    assert sim.state.count_requests(SEND_PATH) == 1


@pytest.mark.parametrize("body", range(5))
async def test_a_200_in_a_strange_shape_is_an_unknown_outcome_not_retried(sim: SimulatorThread, body: int) -> None:
    """Infobip (or a proxy) took the request and answered 200 with a body that is not Infobip's:
    each of the simulator's strange bodies is an unknown outcome, after one request."""
    sim.state.strange_answers = body  # which of the strange bodies
    sim.state.inject("strange", count=1, path_prefix=SEND_PATH)
    async with fast_client(sim.url, max_attempts=5) as client:
        with pytest.raises(InfobipError) as caught:
            await client.send([FULL])
    assert caught.value.outcome_unknown and caught.value.kind is ErrorKind.BAD_RESPONSE and caught.value.status == 200
    assert [s.message_id for s in sim.state.sent] == ["ours-0001"]
    assert sim.state.count_requests(SEND_PATH) == 1


async def test_a_send_that_could_not_connect_is_retried() -> None:
    """Nothing was written: trying again cannot send twice."""
    sleep = RecordingSleep()
    async with fast_client(f"http://127.0.0.1:{closed_port()}", max_attempts=3, sleep=sleep) as client:
        with pytest.raises(InfobipUnreachable) as caught:
            await client.send([FULL])
    assert not caught.value.outcome_unknown and len(sleep.calls) == 2


async def test_unreachable_is_retryable_for_callers() -> None:
    async with fast_client(f"http://127.0.0.1:{closed_port()}", max_attempts=2) as client:
        with pytest.raises(InfobipUnreachable) as caught:
            await client.send([FULL])
    assert caught.value.retryable and caught.value.status is None
