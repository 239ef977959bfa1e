"""The log's filter vocabulary: `cred:Shop action:opt-out num:4179 free text` -> MessageFilter.

Words and quotes are read by the filter lines' one parser (tui/filter_parser.py)."""

from __future__ import annotations

from smsdesk.store.queries import MessageFilter
from smsdesk.tui.filter_parser import FilterSyntaxError, parse_terms, quote
from smsdesk.tui.vocabulary import ACTIONS, UnknownAction, resolve_action

SYNTAX = (
    ("cred:NAME", "credential name, any case, a prefix is enough (cred:coffee finds Coffee Club)"),
    ("action:WORD", "one of " + ", ".join(ACTIONS) + " (a prefix is enough)"),
    ("num:DIGITS", "part of the sender's or the inbound number (1-2 digits: the newest 100,000 messages)"),
    ("free text", "part of the message text (1-2 characters: the newest 100,000 messages); quote values "
                  "with spaces: cred:\"Shop UK\""),
)
_KEYS = {"cred": "credential", "credential": "credential", "action": "action", "num": "number",
         "number": "number", "from": "number"}


def parse_filter(text: str) -> MessageFilter:
    """A key the log does not know is free text, like any other word."""
    values = {"credential": "", "action": "", "number": "", "text": ""}
    words: list[str] = []
    for term in parse_terms(text, _KEYS):
        if term.field is None:
            words.append(term.word)
            continue
        value = term.value
        if term.field == "action":
            try:
                value = resolve_action(value)
            except UnknownAction as exc:
                raise FilterSyntaxError(str(exc)) from None
        values[term.field] = value
    values["text"] = " ".join(words)
    return MessageFilter(**values)


def describe(filters: MessageFilter) -> str:
    parts = [f"{name}:{quote(value)}" for name, value in (
        ("cred", filters.credential), ("action", filters.action), ("num", filters.number)) if value]
    if filters.text:
        parts.append(repr(filters.text))
    return " ".join(parts)
