"""One vocabulary for actions, reply states and consents, everywhere the TUI shows them.

The words are the values stored in the database and written by `smsdesk export` (scripts read
them), so the log's column, the traffic strip, the profile ledger, the filter, the help legend
and the exports all say the same thing. Only the styles are the TUI's own. Filters also take
the short labels older versions showed (`kw`, `2x`, `keyword`...) and any unambiguous prefix.

Styles differ by more than colour: under NO_COLOR (colours become greys) each action keeps its
own weight, slant, underline or reverse, and red is kept for errors only (a failed reply).
"""

from __future__ import annotations

from rich.style import Style

from smsdesk.domain.rules import Action

# `review` is shown, not stored: a near-opt-out still waiting in the review queue (store/queries.py).
ACTIONS: tuple[str, ...] = (*(a.value for a in Action), "review")

ACTION_MEANING = {
    "opt-in": "an opt-in keyword: consent set to y (or p awaiting confirmation)",
    "opt-out": "an opt-out keyword: consent set to n, only the confirmation is sent",
    "help": "a help keyword: the help message is sent, consent unchanged",
    "double-opt-in": "the confirmation of a double opt-in: consent p becomes y",
    "custom": "a custom keyword of the credential: recorded as a profile attribute",
    "default": "no keyword: the default reply, if any and if consent allows",
    "unrouted": "sent to a number no credential owns: stored, not answered",
    "near-opt-out": "not a keyword, but one slip from an opt-out (fuzzy opt-out): consent unchanged",
    "review": "a near-opt-out waiting in the review queue (view 5) for an operator's decision",
}
assert set(ACTION_MEANING) == set(ACTIONS), "every stored action needs a meaning in the legend"

# Words older screens showed, still understood by the filter.
ACTION_ALIASES = {"in": "opt-in", "out": "opt-out", "2x": "double-opt-in", "2x-opt-in": "double-opt-in",
                  "double": "double-opt-in", "kw": "custom", "keyword": "custom", "def": "default",
                  "unr": "unrouted", "optin": "opt-in", "optout": "opt-out", "near": "near-opt-out",
                  "fuzzy": "near-opt-out"}

# Colour plus an attribute of its own, so no two actions look alike without colour.
ACTION_STYLES = {
    "opt-in": Style(color="green", bold=True),
    "opt-out": Style(color="yellow", bold=True, reverse=True),
    "help": Style(color="cyan", italic=True),
    "double-opt-in": Style(color="green", bold=True, underline=True),
    "custom": Style(color="blue", underline=True),
    "default": Style(),
    "unrouted": Style(color="magenta", italic=True, underline=True),
    "near-opt-out": Style(color="yellow", bold=True, italic=True),
    "review": Style(color="yellow", reverse=True),
}
# Under NO_COLOR: the attributes alone, nothing dim (dim is what read at 1.6:1).
ACTION_STYLES_NO_COLOR = {action: Style(bold=s.bold, italic=s.italic, underline=s.underline, reverse=s.reverse)
                          for action, s in ACTION_STYLES.items()}

REPLY_STATUSES = ("queued", "sending", "unknown", "sent", "delivered", "failed", "cancelled", "undeliverable",
                  "expired", "rejected")
REPLY_MEANING = {
    "queued": "waiting in the outbox to be sent",
    "sending": "being handed to Infobip right now",
    "unknown": "Infobip's answer was lost: its message logs are asked whether it went (sent again only if not)",
    "sent": "accepted by Infobip, no delivery report yet",
    "delivered": "the handset got it",
    "failed": "could not be sent (the detail says why)",
    "cancelled": "not sent: the number opted out or the credential was deleted first",
    "undeliverable": "Infobip could not deliver it",
    "expired": "not delivered within the validity period",
    "rejected": "Infobip refused it",
}
STATUS_STYLES = {
    "queued": Style(italic=True),
    "sending": Style(italic=True, bold=True),
    "unknown": Style(italic=True, underline=True),
    "sent": Style(color="blue"),
    "delivered": Style(color="green", bold=True),
    "failed": Style(color="red", bold=True, reverse=True),
    "cancelled": Style(strike=True),
    "undeliverable": Style(color="red", bold=True),
    "expired": Style(color="red", underline=True),
    "rejected": Style(color="red", bold=True, underline=True),
}
STATUS_STYLES_NO_COLOR = {status: Style(bold=s.bold, italic=s.italic, underline=s.underline, reverse=s.reverse,
                                        strike=s.strike) for status, s in STATUS_STYLES.items()}


# A consent as the detail views name it: the stored y, n or p, and "" for never expressed.
CONSENT_NAMES = {"y": "opted in (y)", "n": "opted out (n)", "p": "pending (p)", "": "none"}


def consent_name(value: str | None) -> str:
    return CONSENT_NAMES.get(value or "", value or "")


def action_style(action: str, no_color: bool = False) -> Style | None:
    return (ACTION_STYLES_NO_COLOR if no_color else ACTION_STYLES).get(action)


def status_style(status: str, no_color: bool = False) -> Style | None:
    return (STATUS_STYLES_NO_COLOR if no_color else STATUS_STYLES).get(status)


class UnknownAction(ValueError):
    pass


def resolve_action(word: str) -> str:
    """The stored action a filter word means: itself, an old label, or an unambiguous prefix."""
    value = word.strip().lower()
    if value in ACTIONS:
        return value
    if value in ACTION_ALIASES:
        return ACTION_ALIASES[value]
    matches = [a for a in ACTIONS if a.startswith(value)] if value else []
    if len(matches) == 1:
        return matches[0]
    raise UnknownAction(f"action must be one of {', '.join(ACTIONS)}")


def legend() -> tuple[tuple[str, str], ...]:
    """(word, meaning) lines for F1."""
    return (*((a, ACTION_MEANING[a]) for a in ACTIONS),
            *((f"reply {s}", REPLY_MEANING[s]) for s in REPLY_STATUSES))
