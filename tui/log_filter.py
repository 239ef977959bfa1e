"""The log's filter line: `cred:Shop action:opt-out num:4179 free text` -> MessageFilter."""

from __future__ import annotations

import shlex

from smsdesk.store.queries import MessageFilter
from smsdesk.tui.vocabulary import ACTIONS, UnknownAction, resolve_action

__all__ = ["ACTIONS", "SYNTAX", "FilterSyntaxError", "describe", "parse_filter"]

SYNTAX = (
    ("cred:NAME", "credential name, any case, a prefix is enough (cred:coffee finds Coffee Club)"),
    ("action:WORD", "one of " + ", ".join(ACTIONS) + " (a prefix is enough)"),
    ("num:DIGITS", "part of the sender's or the inbound number"),
    ("free text", "part of the message text; quote values with spaces: cred:\"Shop UK\""),
)
_KEYS = {"cred": "credential", "credential": "credential", "action": "action", "num": "number",
         "number": "number", "from": "number"}


class FilterSyntaxError(ValueError):
    pass


def parse_filter(text: str) -> MessageFilter:
    values = {"credential": "", "action": "", "number": "", "text": ""}
    words: list[str] = []
    for token in _tokens(text):
        key, sep, value = token.partition(":")
        field = _KEYS.get(key.lower()) if sep else None
        if field is None:
            words.append(token)
            continue
        if field == "action":
            try:
                value = resolve_action(value)
            except UnknownAction as exc:
                raise FilterSyntaxError(str(exc)) from None
        values[field] = value
    values["text"] = " ".join(words)
    return MessageFilter(**values)


def _tokens(text: str) -> list[str]:
    """Words, with quotes for values holding spaces: `cred:"Shop UK"`. An unbalanced quote or a
    lone apostrophe ("don't") falls back to plain words rather than failing the filter."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def describe(filters: MessageFilter) -> str:
    parts = [f"{name}:{shlex.quote(value)}" for name, value in (
        ("cred", filters.credential), ("action", filters.action), ("num", filters.number)) if value]
    if filters.text:
        parts.append(repr(filters.text))
    return " ".join(parts)
