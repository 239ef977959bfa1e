"""The one parser of the filter lines (the inbound log's and Profiles'): words, quoted where a
value holds spaces (`cred:"Shop UK"`), each a KEY:VALUE term or a bare word.

What the keys are and which values they take is each view's vocabulary (tui/log_filter.py,
tui/profile_filter.py); the words, the quotes and the keys' case are the same in both.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass


class FilterSyntaxError(ValueError):
    """The text is not a filter; the message says why, in words for the filter line."""


@dataclass(frozen=True)
class Term:
    word: str  # as typed, quotes removed
    key: str | None  # before the first ':', in lower case; None: a bare word
    value: str  # after the first ':'; a bare word's is the word
    field: str | None  # what the view's vocabulary calls the key; None: a bare word or a key it lacks


def parse_terms(text: str, keys: Mapping[str, str]) -> list[Term]:
    """The terms of `text`, in order; `keys` maps each key the view knows (lower case) to its field."""
    terms = []
    for word in _words(text):
        key, sep, value = word.partition(":")
        if not sep:
            terms.append(Term(word, None, word, None))
        else:
            terms.append(Term(word, key.lower(), value, keys.get(key.lower())))
    return terms


def _words(text: str) -> list[str]:
    """Words, with quotes for values holding spaces. An unbalanced quote or a lone apostrophe
    ("don't") falls back to plain words rather than failing the filter."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def quote(value: str) -> str:
    """`value` as the filter line reads it back: quoted when it holds spaces or quotes."""
    return shlex.quote(value)
