"""Profiles' filter vocabulary: `consent:y|n|p|none attr:DISCOUNT sandbox:prod num:4179` -> the
keyword arguments of the profile queries (store/queries.py); with `since:`, `until:` or
`changed:` the view lists the consent ledger's changes instead (store/consent_history.py): who
changed consent in a window, how and why.

Words and quotes are read by the filter lines' one parser (tui/filter_parser.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smsdesk.tui.filter_parser import FilterSyntaxError, parse_terms

SYNTAX = (
    ("consent:y|n|p|none", "the number's consent in its sandbox now"),
    ("attr:KEYWORD", "numbers that sent this custom keyword (a segment; any case)"),
    ("sandbox:NAME", "one sandbox"),
    ("num:DIGITS", "part of the number (bare digits work too)"),
    ("Consent history", ""),
    ("changed:y|n|p|none", "the ledger's changes to this consent (review decisions, operator opt-outs, "
                           "expiries included); x exports them"),
    ("since:DATE", "changes from this date or time (UTC unless it says otherwise), e.g. since:2026-12-06"),
    ("until:DATE", "changes before this date or time, e.g. until:2026-12-07T09:30"),
)
_KEYS = {"consent": "consent", "sandbox": "sandbox", "num": "number", "number": "number",
         "since": "since", "until": "until", "changed": "changed",
         **{key: "attribute" for key in ("attr", "attribute", "segment", "kw", "custom", "keyword")}}
CONSENTS = ("y", "n", "p", "none")


@dataclass(frozen=True)
class HistoryFilter:
    """The consent-history terms: a window of the ledger and the consent a change ended at."""

    since: str = ""  # the ledger's UTC text, as `smsdesk export consent --since` makes it
    until: str = ""
    changed: str | None = None  # None: any change; '' for none

    def ledger_arguments(self, profile_filters: dict[str, object]) -> dict[str, Any]:
        """The arguments of store/consent_history.py's consent_changes for the whole filter: the
        profile terms narrow the changes to the numbers they match."""
        return {"since": self.since, "until": self.until, "consent": self.changed,
                "sandbox": profile_filters["sandbox"], "number": profile_filters["number"],
                "current": profile_filters["consent"], "attribute": profile_filters["attribute"]}


def parse_moment(value: str) -> str:
    """A date or a time (ISO-8601, UTC unless it says otherwise) as the ledger's UTC text: the
    reading of `smsdesk export consent --since/--until`."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterSyntaxError(f"{value!r} is not a date or time: e.g. 2026-12-06 or 2026-12-06T09:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_view_filter(text: str) -> tuple[dict[str, object], HistoryFilter | None]:
    """The profile terms, and the history terms (None when there are none). A bare word is (part
    of) a number; a key Profiles does not know is an error."""
    found: dict[str, object] = {"sandbox": "", "consent": None, "attribute": "", "number": ""}
    history: dict[str, Any] = {}
    for term in parse_terms(text, _KEYS):
        if term.key is None:
            found["number"] = term.word
        elif term.field is None:
            raise FilterSyntaxError(f"unknown filter {term.key!r}: use consent:, attr:, sandbox:, num:, "
                                    "changed:, since:, until:")
        elif term.field in ("consent", "changed"):
            if term.value.lower() not in CONSENTS:
                raise FilterSyntaxError(f"{term.key} must be y, n, p or none")
            value = "" if term.value.lower() == "none" else term.value.lower()
            (found if term.field == "consent" else history)[term.field] = value
        elif term.field in ("since", "until"):
            history[term.field] = parse_moment(term.value)
        else:
            found[term.field] = term.value
    if history.get("since") and history.get("until") and history["since"] >= history["until"]:
        raise FilterSyntaxError("until: must be later than since:")
    return found, (HistoryFilter(**history) if history else None)


def parse_profile_filter(text: str) -> dict[str, object]:
    """The profile terms of `text` (the keyword arguments of the profile queries)."""
    return parse_view_filter(text)[0]


NO_FILTER = parse_profile_filter("")
