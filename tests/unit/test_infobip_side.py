"""domain/infobip_side.py: where a number's inbound goes, and the Blocklist against consent, on
plain values (bad and odd input as carefully as good)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from smsdesk.domain.infobip_side import (
    DifferenceKind,
    ForwardingState,
    blocklist_differences,
    forwarding_verdict,
    inbound_url,
    same_endpoint,
    shown_url,
)

DESK = "https://desk.example.com"


@dataclass
class Config:
    forwarding_type: str
    url: str = ""
    format: str = ""
    keyword: str = ""


@dataclass
class Block:
    destination: str
    source_type: str = "CUSTOM"
    created_date: str = "2026-01-01T10:00:00.000+0000"


@pytest.mark.parametrize(("public", "expected"), [
    ("https://desk.example.com", "https://desk.example.com/infobip/inbound"),
    ("https://desk.example.com/", "https://desk.example.com/infobip/inbound"),
    (" https://desk.example.com/sms/infobip/inbound/ ", "https://desk.example.com/sms/infobip/inbound"),
])
def test_the_inbound_url_comes_from_the_public_url(public: str, expected: str) -> None:
    assert inbound_url(public) == expected


def test_a_shown_url_carries_no_credentials_no_query_and_no_controls() -> None:
    assert shown_url("https://u:p4ss@Host.example:8443/in?token=abc#x") == "https://host.example:8443/in?…"
    assert "\x1b" not in shown_url("https://evil.example/\x1b]52;c;QUJD\x07")
    assert shown_url("https://[::1:bad/x") == "(a URL that cannot be read)"
    assert shown_url("https://h.example:99999/") == "(a URL that cannot be read)"


def test_the_same_endpoint_ignores_credentials_case_and_a_trailing_slash() -> None:
    assert same_endpoint("https://a:b@DESK.example.com/infobip/inbound/", f"{DESK}/infobip/inbound")
    assert not same_endpoint("http://desk.example.com/infobip/inbound", f"{DESK}/infobip/inbound")
    assert not same_endpoint("https://desk.example.com:8443/infobip/inbound", f"{DESK}/infobip/inbound")
    assert not same_endpoint("https://[::1/x", f"{DESK}/infobip/inbound")


@pytest.mark.parametrize(("configs", "mode", "state", "ok", "words"), [
    ([Config("HTTP_FORWARD", f"{DESK}/infobip/inbound", "MO_JSON_2")], "forward", ForwardingState.HERE, True,
     "✓ inbound forwards to this desk"),
    ([Config("HTTP_FORWARD", f"{DESK}/infobip/inbound")], "forward", ForwardingState.HERE, True, "MO_JSON_2"),
    ([Config("HTTP_FORWARD", f"{DESK}/infobip/inbound", "MO_XML")], "forward", ForwardingState.HERE_OTHER_FORMAT,
     False, "serve reads MO_JSON_2 only"),
    ([Config("HTTP_FORWARD", "https://old.example/in", "MO_JSON_2")], "forward", ForwardingState.ELSEWHERE, False,
     "forwards elsewhere: https://old.example/in"),
    ([Config("PULL")], "forward", ForwardingState.PULL, False, "set for pull; nothing reaches serve"),
    ([Config("PULL")], "pull", ForwardingState.PULL, True, "✓ inbound is set for pull"),
    ([Config("HTTP_FORWARD", f"{DESK}/infobip/inbound")], "pull", ForwardingState.HERE, False,
     "the credential pulls"),
    ([], "forward", ForwardingState.NONE, False, "not configured"),
    ([Config("")], "forward", ForwardingState.NONE, False, "not configured"),
    ([Config("MAIL_FORWARD")], "forward", ForwardingState.OTHER, False, "a MAIL_FORWARD action"),
    # a keyword's own configuration does not decide where the rest goes
    ([Config("PULL", keyword="QUIZ"), Config("HTTP_FORWARD", f"{DESK}/infobip/inbound")], "forward",
     ForwardingState.HERE, True, "this desk"),
])
def test_the_forwarding_verdict(configs: list[Config], mode: str, state: ForwardingState, ok: bool,
                                words: str) -> None:
    verdict = forwarding_verdict(configs, mode, DESK)
    assert (verdict.state, verdict.ok) == (state, ok)
    assert words in verdict.line and "\n" not in verdict.line


def test_without_a_public_url_a_forward_url_is_not_judged_this_desk() -> None:
    verdict = forwarding_verdict([Config("HTTP_FORWARD", f"{DESK}/infobip/inbound")], "forward", "")
    assert verdict.state is ForwardingState.ELSEWHERE and not verdict.ok
    assert "set SMSDESK_PUBLIC_URL" in verdict.line


def test_hostile_text_from_infobip_is_inert_in_the_line() -> None:
    verdict = forwarding_verdict([Config("HTTP_FORWARD", "https://x.example/in", "MO\x1b[31mX")], "forward", DESK)
    assert "\x1b" not in verdict.line
    other = forwarding_verdict([Config("\u202eDRAWROF")], "forward", DESK)
    assert "\u202e" not in other.line


def test_blocklist_differences_both_ways() -> None:
    blocks = [("+41790000001", Block("41790000001", "MO")),
              ("+41790000002", Block("41790000002")),  # opted out here too: no difference
              ("+41790000003", Block("41790000003", created_date="2026-01-01T10:00:00.000+0000")),
              ("+41790000005", Block("41790000005", created_date="not a date")),
              ("+41790000006", Block("41790000006"))]
    consent = {"+41790000002": ("n", "2026-01-02T00:00:00.000+00:00"),
               "+41790000003": ("y", "2026-02-01T00:00:00.000+00:00"),  # opted in after the block
               "+41790000004": ("n", "2026-01-03T00:00:00.000+00:00"),  # opted out here only
               "+41790000005": ("y", "2026-02-01T00:00:00.000+00:00"),  # block time unreadable: not "after"
               "+41790000007": ("n", "2026-01-03T00:00:00.000+00:00")}  # a push waits: left to the queue
    found = {(d.number, d.kind, d.source_type) for d in blocklist_differences(blocks, consent,
                                                                              waiting=["+41790000007"])}
    assert found == {("+41790000001", DifferenceKind.BLOCKED_THERE, "MO"),
                     ("+41790000003", DifferenceKind.OPTED_IN_AFTER, "CUSTOM"),
                     ("+41790000004", DifferenceKind.OPTED_OUT_HERE, ""),
                     ("+41790000005", DifferenceKind.BLOCKED_THERE, "CUSTOM"),
                     ("+41790000006", DifferenceKind.BLOCKED_THERE, "CUSTOM")}


def test_an_opt_in_before_the_block_is_no_newer_wish() -> None:
    blocks = [("+41790000003", Block("41790000003", created_date="2026-03-01T10:00:00.000+0000"))]
    (difference,) = blocklist_differences(blocks, {"+41790000003": ("y", "2026-02-01T00:00:00.000+00:00")})
    assert difference.kind is DifferenceKind.BLOCKED_THERE
