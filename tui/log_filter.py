"""The log's filter line: `cred:Shop action:opt-out num:4179 free text` -> MessageFilter."""

from __future__ import annotations

import shlex

from smsdesk.store.queries import MessageFilter
from smsdesk.store.rules import Action

ACTIONS = tuple(a.value for a in Action)
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
            value = value.lower()
            matches = [a for a in ACTIONS if a.startswith(value)] if value else []
            if len(matches) != 1 and value not in ACTIONS:
                raise FilterSyntaxError(f"action must be one of {', '.join(ACTIONS)}")
            value = value if value in ACTIONS else matches[0]
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
