"""The keyword and consent rules: one pure decision per inbound message.

`decide(text, credential, consent)` says what should happen; it reads and writes nothing, so
the whole rule table is testable without a database and the keyword tester in the TUI can
show what *would* happen without storing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smsdesk.domain.consent_decider import Consent
from smsdesk.domain.credential import KEYWORD_LISTS, Credential
from smsdesk.domain.fuzzy import NearMissIndex, near_miss
from smsdesk.domain.normalize import normalize, words


class Action(StrEnum):
    OPT_IN = "opt-in"
    OPT_OUT = "opt-out"
    HELP = "help"
    DOUBLE_OPT_IN = "double-opt-in"
    CUSTOM = "custom"
    DEFAULT = "default"
    UNROUTED = "unrouted"
    NEAR_OPT_OUT = "near-opt-out"  # not a keyword, but one slip from an opt-out (domain/fuzzy.py)


_ACTION_OF_LIST = {
    "opt_in_keywords": Action.OPT_IN,
    "opt_out_keywords": Action.OPT_OUT,
    "help_keywords": Action.HELP,
    "double_opt_in_keywords": Action.DOUBLE_OPT_IN,
    "inbound_keywords": Action.CUSTOM,
}


@dataclass(slots=True)
class Decision:
    action: Action
    normalized: str
    keyword: str  # the keyword as configured, '' when none matched
    consent_before: str
    consent_after: str
    reply_text: str  # '' means: send nothing
    rule: str  # a sentence for the operator: why this happened
    attribute: str = ""  # custom keyword to record on the profile
    review: bool = False  # a near miss for the operator's review queue

    @property
    def consent_changed(self) -> bool:
        return self.consent_after != self.consent_before


class KeywordIndex(dict[str, tuple[Action, str]]):
    """normalised keyword -> (action, keyword as configured), plus what the prefix and near-miss
    rules need: the opt-out keys, longest first (so `STOP ALL please` names STOP ALL, not STOP)."""

    def __init__(self, cred: Credential) -> None:
        super().__init__()
        for list_name in KEYWORD_LISTS:
            for keyword in getattr(cred, list_name):
                self.setdefault(normalize(keyword), (_ACTION_OF_LIST[list_name], keyword))
        self.opt_outs: list[tuple[str, str]] = sorted(
            ((key, keyword) for key, (action, keyword) in self.items() if action is Action.OPT_OUT),
            key=lambda pair: -len(words(pair[0])))
        self.near_misses = NearMissIndex(self.opt_outs)


def keyword_index(cred: Credential) -> KeywordIndex:
    return KeywordIndex(cred)


def leading_opt_out(normalized: str, index: KeywordIndex) -> str | None:
    """The opt-out keyword (as configured) that the text starts with as whole words, if any."""
    for key, keyword in index.opt_outs:
        if normalized.startswith(key) and normalized[len(key):len(key) + 1] in ("", " "):
            return keyword
    return None


def decide(
    text: str,
    cred: Credential | None,
    consent: str,
    index: KeywordIndex | None = None,
    *,
    pending_expired: bool = False,
) -> Decision:
    """Apply the keyword and consent rules (README, "Keyword rules") to one inbound text.

    `index` may be passed to reuse work. `pending_expired`: the consent is `p` but older than
    the credential's double opt-in expiry (the caller knows the times; this stays pure).
    """
    normalized = normalize(text)
    before = consent or ""
    if cred is None:
        return Decision(Action.UNROUTED, normalized, "", before, before, "",
                        "no credential has this inbound number: stored, not answered")
    index = keyword_index(cred) if index is None else index
    matched = index.get(normalized)
    if matched is None:
        # A missed opt-out is the legal risk: "STOP please", "opt out now" and "stop." revoke consent too.
        head = leading_opt_out(normalized, index)
        if head is not None:
            return _opt_out(normalized, head, before, cred, whole=False)
        if cred.fuzzy_opt_out != "off":
            missed = near_miss(normalized, index.near_misses)
            if missed is not None:
                return _near_miss(normalized, before, cred, missed.keyword, missed.rule())
    else:
        action, keyword = matched
        if action is Action.OPT_OUT:
            return _opt_out(normalized, keyword, before, cred, whole=True)
        if action is Action.HELP:
            return Decision(Action.HELP, normalized, keyword, before, before, cred.help_message,
                            f"help keyword {keyword!r}: help message, whatever the consent")
        if action is Action.OPT_IN:
            return _opt_in(normalized, keyword, before, cred)
        if action is Action.DOUBLE_OPT_IN and before == Consent.PENDING and not pending_expired:
            return Decision(Action.DOUBLE_OPT_IN, normalized, keyword, before, Consent.YES,
                            cred.double_opt_in_message,
                            f"double opt-in keyword {keyword!r} while pending: consent confirmed")
        if action is Action.CUSTOM:
            return _custom(normalized, keyword, before, cred)
    return _default(normalized, before, cred, matched, pending_expired=pending_expired)


def overruled(decision: Decision, consent: str) -> Decision:
    """A consent keyword the decider did not apply: a newer wish of the number stands.

    Infobip may deliver messages out of order; consent follows the time of each wish, so this
    message changes nothing and gets no reply (its confirmation would contradict the consent the
    number has now).
    """
    return Decision(decision.action, decision.normalized, decision.keyword, consent, consent, "",
                    f"{decision.rule.split(':')[0]}: the number expressed a newer wish; consent kept, not answered",
                    attribute=decision.attribute)


def _opt_out(normalized: str, keyword: str, before: str, cred: Credential, *, whole: bool) -> Decision:
    how = "opt-out keyword" if whole else "first word is opt-out keyword"
    change = "consent withdrawn" if before != Consent.NO else "already opted out"
    return Decision(Action.OPT_OUT, normalized, keyword, before, Consent.NO, cred.opt_out_message,
                    f"{how} {keyword!r}: {change}, opt-out message sent")


def _custom(normalized: str, keyword: str, before: str, cred: Credential) -> Decision:
    reply = cred.custom_keyword_replies.get(keyword, "")
    if not reply:
        how = "no reply configured"
    elif before == Consent.NO:
        how, reply = "number opted out, its reply not sent", ""
    else:
        how = "its reply sent"
    return Decision(Action.CUSTOM, normalized, keyword, before, before, reply,
                    f"custom keyword {keyword!r}: recorded as a profile attribute, {how}", attribute=keyword)


def _near_miss(normalized: str, before: str, cred: Credential, keyword: str, why: str) -> Decision:
    """Never the default reply, never a consent change: a reply pointing at STOP and/or a review."""
    mode = cred.fuzzy_opt_out
    if before == Consent.NO:
        return Decision(Action.NEAR_OPT_OUT, normalized, keyword, before, before, "",
                        f"{why}; number already opted out, nothing to do")
    reply = cred.fuzzy_opt_out_message if mode.replies else ""
    done = [part for part, on in (("fuzzy reply sent", bool(reply)), ("queued for review", mode.reviews)) if on]
    return Decision(Action.NEAR_OPT_OUT, normalized, keyword, before, before, reply,
                    f"{why} (fuzzy opt-out {mode}): " + (", ".join(done) or "no reply configured")
                    + "; consent unchanged", review=mode.reviews)


def _opt_in(normalized: str, keyword: str, before: str, cred: Credential) -> Decision:
    if not cred.double_opt_in_keywords:
        return Decision(Action.OPT_IN, normalized, keyword, before, Consent.YES, cred.opt_in_message,
                        f"opt-in keyword {keyword!r}: opted in")
    if before == Consent.YES:
        # Already confirmed: asking again must not downgrade a confirmed consent to pending.
        return Decision(Action.OPT_IN, normalized, keyword, before, before, cred.opt_in_message,
                        f"opt-in keyword {keyword!r}: already opted in, consent kept")
    return Decision(Action.OPT_IN, normalized, keyword, before, Consent.PENDING, cred.opt_in_message,
                    f"opt-in keyword {keyword!r} with double opt-in: pending confirmation")


def _default(normalized: str, before: str, cred: Credential,
             matched: tuple[Action, str] | None, *, pending_expired: bool = False) -> Decision:
    if matched and pending_expired:
        prefix = (f"double opt-in keyword {matched[1]!r} after the pending opt-in expired "
                  f"({cred.double_opt_in_expiry_days} days): unmatched; ")
    elif matched:
        prefix = f"double opt-in keyword {matched[1]!r} without a pending opt-in: unmatched; "
    else:
        prefix = "no keyword matched: "
    if before == Consent.NO:
        return Decision(Action.DEFAULT, normalized, "", before, before, "",
                        prefix + "number opted out, no default reply")
    if not cred.default_reply_message:
        return Decision(Action.DEFAULT, normalized, "", before, before, "",
                        prefix + "no default reply configured")
    return Decision(Action.DEFAULT, normalized, "", before, before, cred.default_reply_message,
                    prefix + "default reply")
