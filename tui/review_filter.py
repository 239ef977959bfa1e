"""The review queue's filter vocabulary: `sandbox:prod cred:"Shop UK" num:4179 stop` -> which
near misses are listed. Words and quotes are read by the filter lines' one parser
(tui/filter_parser.py); the queue is in memory, so the filter applies as you type."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smsdesk.store.review import ReviewItem
from smsdesk.tui.filter_parser import FilterSyntaxError, parse_terms

SYNTAX = (
    ("sandbox:NAME", "one sandbox"),
    ("cred:NAME", "one credential (part of its name, any case)"),
    ("num:DIGITS", "part of the number"),
    ("WORD", "a word of the text (any case), or part of the number"),
)
_KEYS = {"sandbox": "sandbox", "cred": "credential", "credential": "credential", "num": "number",
         "number": "number", "text": "text"}


@dataclass(frozen=True)
class ReviewFilter:
    sandbox: str = ""
    credential: str = ""
    number: str = ""
    words: tuple[str, ...] = ()

    def matches(self, item: ReviewItem) -> bool:
        text = item.text.casefold()
        return ((not self.sandbox or item.sandbox == self.sandbox)
                and (not self.credential or self.credential.casefold() in item.credential.casefold())
                and (not self.number or self.number in item.number)
                and all(word.casefold() in text or word in item.number for word in self.words))


def parse_review_filter(text: str) -> ReviewFilter:
    """A key the review queue does not know is an error, named."""
    found: dict[str, str] = {}
    words: list[str] = []
    for term in parse_terms(text, _KEYS):
        if term.key is None or term.field == "text":
            words.append(term.value)
        elif term.field is None:
            raise FilterSyntaxError(f"unknown filter {term.key!r}: use sandbox:, cred:, num: or words of the text")
        else:
            found[term.field] = term.value
    return ReviewFilter(**found, words=tuple(words))


def matching(items: Iterable[ReviewItem], review_filter: ReviewFilter) -> list[ReviewItem]:
    return [item for item in items if review_filter.matches(item)]


NO_REVIEW_FILTER = ReviewFilter()
