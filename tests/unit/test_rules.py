"""The keyword and consent rules (README, "Configuration"; docs/architecture.md) as a table over the pure decision."""

from __future__ import annotations

import pytest

from smsdesk.store.models import Credential
from smsdesk.store.rules import Action, decide


def credential(**overrides: object) -> Credential:
    base: dict[str, object] = dict(
        name="Shop", base_url="https://x.api.infobip.com", api_key="key-1234", inbound_number="447491163443",
        opt_in_message="Welcome! Reply STOP to end.", opt_out_message="You are unsubscribed.",
        help_message="Help: call 555.", default_reply_message="Thanks, we got it.",
    )
    base.update(overrides)
    return Credential.model_validate(base)


PLAIN = credential()
DOUBLE = credential(double_opt_in_keywords=["CONFIRM"], double_opt_in_message="Confirmed, thanks.",
                    opt_in_message="Reply CONFIRM to confirm.")
CUSTOM = credential(inbound_keywords=["DISCOUNT", "quiz"])
LOWER = credential(opt_out_keywords=["stop", "halt"], opt_in_keywords=["go"])
NO_DEFAULT = credential(default_reply_message="")

# (case, credential, text, consent before, action, consent after, reply, keyword)
TABLE = [
    ("opt-out", PLAIN, "STOP", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("opt-out from none", PLAIN, "stop", "", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("opt-out again replies again", PLAIN, "STOP", "n", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("punctuation", PLAIN, "Stop!", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("padding", PLAIN, "  stop \n", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("first word", PLAIN, "STOP please", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("first word with punctuation", PLAIN, "stop. now", "p", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("full width", PLAIN, "ＳＴＯＰ", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("other opt-out word", PLAIN, "Unsubscribe", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "UNSUBSCRIBE"),
    ("keyword configured lower case", LOWER, "HALT", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "halt"),
    ("custom list replaces defaults", LOWER, "QUIT", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("opt-in", PLAIN, "yes", "", Action.OPT_IN, "y", "Welcome! Reply STOP to end.", "YES"),
    ("opt-in after opt-out", PLAIN, "START", "n", Action.OPT_IN, "y", "Welcome! Reply STOP to end.", "START"),
    ("opt-in custom lower", LOWER, "Go", "", Action.OPT_IN, "y", "Welcome! Reply STOP to end.", "go"),
    ("help while opted out", PLAIN, "HELP", "n", Action.HELP, "n", "Help: call 555.", "HELP"),
    ("help while none", PLAIN, "help?", "", Action.HELP, "", "Help: call 555.", "HELP"),
    ("double opt-in: opt-in goes pending", DOUBLE, "YES", "", Action.OPT_IN, "p", "Reply CONFIRM to confirm.", "YES"),
    ("double opt-in: confirm while pending", DOUBLE, "confirm", "p", Action.DOUBLE_OPT_IN, "y",
     "Confirmed, thanks.", "CONFIRM"),
    ("double opt-in: confirm without pending is unmatched", DOUBLE, "CONFIRM", "", Action.DEFAULT, "",
     "Thanks, we got it.", ""),
    ("double opt-in: confirm when opted out is unmatched, no reply", DOUBLE, "CONFIRM", "n", Action.DEFAULT, "n",
     "", ""),
    ("double opt-in: opt-in when already confirmed keeps y", DOUBLE, "YES", "y", Action.OPT_IN, "y",
     "Reply CONFIRM to confirm.", "YES"),
    ("custom keyword", CUSTOM, "discount", "y", Action.CUSTOM, "y", "", "DISCOUNT"),
    ("custom keyword while opted out is recorded", CUSTOM, "QUIZ", "n", Action.CUSTOM, "n", "", "quiz"),
    ("default reply", PLAIN, "what time do you open?", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("default reply to unknown number", PLAIN, "hello", "", Action.DEFAULT, "", "Thanks, we got it.", ""),
    ("default suppressed when opted out", PLAIN, "hello", "n", Action.DEFAULT, "n", "", ""),
    ("no default configured", NO_DEFAULT, "hello", "y", Action.DEFAULT, "y", "", ""),
    ("keyword inside text is not a match", PLAIN, "I said yes", "", Action.DEFAULT, "", "Thanks, we got it.", ""),
    ("opt-in word first is not an opt-in", PLAIN, "yes please", "", Action.DEFAULT, "", "Thanks, we got it.", ""),
    ("empty text", PLAIN, "", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("emoji only", PLAIN, "👍", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
]


@pytest.mark.parametrize(("case", "cred", "text", "before", "action", "after", "reply", "keyword"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_rule_table(case: str, cred: Credential, text: str, before: str, action: Action, after: str,
                    reply: str, keyword: str) -> None:
    decision = decide(text, cred, before)
    assert (decision.action, decision.consent_after, decision.reply_text, decision.keyword) == (
        action, after, reply, keyword)
    assert decision.consent_before == before
    assert decision.rule  # the operator always gets a reason


def test_unrouted_has_no_reply_and_no_consent_change() -> None:
    decision = decide("STOP", None, "")
    assert decision.action is Action.UNROUTED
    assert decision.reply_text == "" and not decision.consent_changed


def test_custom_keyword_names_the_attribute() -> None:
    assert decide("Discount!", CUSTOM, "").attribute == "DISCOUNT"
    assert decide("hello", CUSTOM, "").attribute == ""


def test_consent_changed_only_on_real_change() -> None:
    assert decide("STOP", PLAIN, "y").consent_changed
    assert not decide("STOP", PLAIN, "n").consent_changed
    assert not decide("HELP", PLAIN, "y").consent_changed


def test_normalised_text_is_reported() -> None:
    assert decide("  Ｈｅｌｌｏ   World!! ", PLAIN, "").normalized == "hello world"
