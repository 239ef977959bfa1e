"""The keyword and consent rules (README, "Configuration"; docs/architecture.md) as a table over the pure decision."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.consent_decider import expires_at as pending_expires_at
from smsdesk.domain.credential import Credential
from smsdesk.domain.fuzzy import near_miss
from smsdesk.domain.normalize import normalize
from smsdesk.domain.rules import Action, decide, keyword_index, leading_opt_out


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


# -- keyword engine 2 (issue 15) ---------------------------------------------------------------

MULTI = credential(opt_out_keywords=["STOP", "OPT OUT", "STOP ALL"], opt_in_keywords=["ARRÊT SVP", "JOIN"],
                   inbound_keywords=["BLACK FRIDAY"])
FR = credential(opt_out_keywords=["ARRÊT", "STOP"])
REPLIES = credential(inbound_keywords=["DISCOUNT", "quiz", "NOREPLY"],
                     custom_keyword_replies={"discount": "10% off with code SAVE10", "QUIZ": "Question 1: ..."})


def fuzzy(mode: str, **overrides: object) -> Credential:
    return credential(fuzzy_opt_out=mode, fuzzy_opt_out_message="Reply STOP to unsubscribe.",
                      **overrides)


REPLY_MODE, REVIEW_MODE, BOTH_MODE, OFF_MODE = fuzzy("reply"), fuzzy("review"), fuzzy("reply+review"), fuzzy("off")
FUZZ = "Reply STOP to unsubscribe."

# (case, credential, text, consent before, action, consent after, reply, keyword)
ENGINE2 = [
    # 1. multi-word keywords and matching
    ("multi-word keyword", MULTI, "OPT OUT", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "OPT OUT"),
    ("multi-word: case, repeated spaces", MULTI, "  opt   out ", "y", Action.OPT_OUT, "n", "You are unsubscribed.",
     "OPT OUT"),
    ("multi-word: hyphen is a word end", MULTI, "Opt-Out!", "y", Action.OPT_OUT, "n", "You are unsubscribed.",
     "OPT OUT"),
    ("multi-word: full width", MULTI, "ＯＰＴ　ＯＵＴ", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "OPT OUT"),
    ("starts with multi-word opt-out", MULTI, "opt out please", "y", Action.OPT_OUT, "n", "You are unsubscribed.",
     "OPT OUT"),
    ("longest opt-out prefix named", MULTI, "stop all of it", "y", Action.OPT_OUT, "n", "You are unsubscribed.",
     "STOP ALL"),
    ("multi-word custom keyword", MULTI, "black friday", "y", Action.CUSTOM, "y", "", "BLACK FRIDAY"),
    ("multi-word opt-in with accent", MULTI, "arret svp", "", Action.OPT_IN, "y", "Welcome! Reply STOP to end.",
     "ARRÊT SVP"),
    ("opt-out prefix must be whole words", MULTI, "opt outside", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("prefix is not a word start", MULTI, "stopped", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("accent folded: text without", FR, "arret", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "ARRÊT"),
    ("accent folded: text with", FR, "Arrêt.", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "ARRÊT"),
    ("comma ends the first word", PLAIN, "STOP,thanks", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("hyphen ends the first word", PLAIN, "stop-please", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("zero-width space dropped", PLAIN, "S\u200bTOP", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("soft hyphen dropped", PLAIN, "ST\u00adOP", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("bidi mark dropped", PLAIN, "\u200fSTOP", "y", Action.OPT_OUT, "n", "You are unsubscribed.", "STOP"),
    ("opt-in still whole text only", PLAIN, "start now", "", Action.DEFAULT, "", "Thanks, we got it.", ""),
    # 3. a reply per custom keyword
    ("custom keyword reply", REPLIES, "Discount!", "y", Action.CUSTOM, "y", "10% off with code SAVE10", "DISCOUNT"),
    ("custom reply keyed by configured spelling", REPLIES, "QUIZ", "", Action.CUSTOM, "", "Question 1: ...", "quiz"),
    ("custom keyword without reply", REPLIES, "noreply", "y", Action.CUSTOM, "y", "", "NOREPLY"),
    ("custom reply not sent when opted out", REPLIES, "discount", "n", Action.CUSTOM, "n", "", "DISCOUNT"),
    # 4. fuzzy opt-out
    ("near miss: swap, reply mode", REPLY_MODE, "STPO", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "STOP"),
    ("near miss: insertion", REPLY_MODE, "STOPP", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "STOP"),
    ("near miss: adjacent key", REPLY_MODE, "UNSUBSCRIBR", "", Action.NEAR_OPT_OUT, "", FUZZ, "UNSUBSCRIBE"),
    ("near miss: deletion", REPLY_MODE, "unsubscibe", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "UNSUBSCRIBE"),
    ("near miss: digit for letter", REPLY_MODE, "ST0P", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "STOP"),
    ("near miss: phrase with keyword", REPLY_MODE, "please stop texting me", "y", Action.NEAR_OPT_OUT, "y", FUZZ,
     "STOP"),
    ("near miss: built-in phrase", REPLY_MODE, "Remove me!", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "remove me"),
    ("near miss: review mode has no reply", REVIEW_MODE, "STPO", "y", Action.NEAR_OPT_OUT, "y", "", "STOP"),
    ("near miss: reply+review", BOTH_MODE, "stopp", "y", Action.NEAR_OPT_OUT, "y", FUZZ, "STOP"),
    ("near miss when opted out: nothing sent", BOTH_MODE, "stopp", "n", Action.NEAR_OPT_OUT, "n", "", "STOP"),
    ("off: near miss gets today's default", OFF_MODE, "STPO", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("far key is no slip", REPLY_MODE, "SHOP", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("different word is no slip", REPLY_MODE, "STEP", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("short keywords not slipped (END)", REPLY_MODE, "ENDS", "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("short keywords not contained (NO)", REPLY_MODE, "i have no idea", "y", Action.DEFAULT, "y",
     "Thanks, we got it.", ""),
    ("long text is no phrase near miss", REPLY_MODE, "we will stop by the shop on monday to pick up the parcel",
     "y", Action.DEFAULT, "y", "Thanks, we got it.", ""),
    ("exact keyword is never a near miss", REPLY_MODE, "STOP", "y", Action.OPT_OUT, "n", "You are unsubscribed.",
     "STOP"),
    ("prefix opt-out beats near miss", REPLY_MODE, "stop texting me", "y", Action.OPT_OUT, "n",
     "You are unsubscribed.", "STOP"),
    ("other keyword is never a near miss", fuzzy("reply", inbound_keywords=["STOPS"]), "STOPS", "y", Action.CUSTOM,
     "y", "", "STOPS"),
]


@pytest.mark.parametrize(("case", "cred", "text", "before", "action", "after", "reply", "keyword"), ENGINE2,
                         ids=[row[0] for row in ENGINE2])
def test_engine2_table(case: str, cred: Credential, text: str, before: str, action: Action, after: str,
                       reply: str, keyword: str) -> None:
    decision = decide(text, cred, before)
    assert (decision.action, decision.consent_after, decision.reply_text, decision.keyword) == (
        action, after, reply, keyword)
    assert decision.rule


@pytest.mark.parametrize(("cred", "review"), [(REPLY_MODE, False), (REVIEW_MODE, True), (BOTH_MODE, True)])
def test_near_miss_review_flag_follows_the_mode(cred: Credential, review: bool) -> None:
    decision = decide("STPO", cred, "y")
    assert decision.review is review
    assert "near miss" in decision.rule and "consent unchanged" in decision.rule
    assert decide("STPO", cred, "n").review is False  # already opted out: nothing to review


def test_double_opt_in_expired_is_unmatched() -> None:
    decision = decide("CONFIRM", DOUBLE, "p", pending_expired=True)
    assert decision.action is Action.DEFAULT and decision.consent_after == "p"
    assert "expired" in decision.rule
    assert decide("CONFIRM", DOUBLE, "p").action is Action.DOUBLE_OPT_IN


@pytest.mark.parametrize(("since", "days", "expires"), [
    ("2026-01-01T10:00:00.000+00:00", 30, "2026-01-31T10:00:00.000+00:00"),
    ("2026-01-01T10:00:00+02:00", 1, "2026-01-02T08:00:00.000+00:00"),
    ("2026-01-01T10:00:00.000+00:00", 0, ""),
    ("not a time", 30, ""),
    ("", 30, ""),
])
def test_pending_expiry_moment(since: str, days: int, expires: str) -> None:
    assert pending_expires_at(since, days) == expires


# -- properties --------------------------------------------------------------------------------

_words = st.sampled_from(["stop", "STOP", "opt", "out", "arrêt", "please", "stpo", "remove", "me", "no",
                          "unsubscribr", "S\u200bTOP", "-", ",", "!", " ", "ＳＴＯＰ", "quit", "e\u0301"])
texts = st.one_of(st.text(max_size=40), st.lists(_words, max_size=6).map("".join),
                  st.lists(_words, max_size=6).map(" ".join))


@settings(max_examples=400, deadline=None)
@given(texts)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from([REPLY_MODE, BOTH_MODE, fuzzy("review", opt_out_keywords=["STOP", "OPT OUT"])]))
def test_no_text_is_both_a_keyword_and_a_near_miss(text: str, cred: Credential) -> None:
    index = keyword_index(cred)
    decision = decide(text, cred, "y", index)
    if normalize(text) in index or leading_opt_out(normalize(text), index):
        assert decision.action is not Action.NEAR_OPT_OUT
    if decision.action is Action.NEAR_OPT_OUT:
        assert near_miss(normalize(text), index.opt_outs) is not None
        assert normalize(text) not in index


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["STOP", "QUIT", "CANCEL", "UNSUBSCRIBE", "OPT OUT", "REVOKE"]), st.data())
def test_one_slip_of_an_opt_out_keyword_is_a_near_miss_or_a_keyword(keyword: str, data: st.DataObject) -> None:
    cred = fuzzy("review", opt_out_keywords=["STOP", "QUIT", "CANCEL", "UNSUBSCRIBE", "OPT OUT", "REVOKE"])
    compact = keyword.replace(" ", "").lower()
    i = data.draw(st.integers(0, len(compact) - 1))
    typo = compact[:i] + compact[i] + compact[i:]  # a doubled letter
    assert decide(typo, cred, "y").action in (Action.NEAR_OPT_OUT, Action.OPT_OUT)
