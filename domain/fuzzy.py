"""Near-miss opt-outs: texts that are not a keyword but almost certainly mean "stop".

The rule (README, "Keyword rules", keeps the same wording). A normalised text that matched no
keyword is a near miss of an opt-out keyword when either

1. **slip**: with spaces removed, it equals or is one edit away from an opt-out keyword of
   four or more letters (spaces removed too): one letter inserted (`STOPP`), one deleted
   (`UNSUBSCIBE`, `STP`), two neighbouring letters swapped (`STPO`), or one letter replaced by
   a key next to it on a QWERTY keyboard (`UNSUBSCRIBR`, `ST0P`); a replacement by a far key
   (`SHOP`, `STEP`) is a different word, not a slip; or
2. **phrase**: it has at most eight words and contains, as whole words, an opt-out keyword of
   four or more letters or of several words (`please stop texting me`, `i want to opt out`),
   or one of the built-in opt-out phrases (`remove me`, `take me off`...). Short opt-out
   keywords (`NO`, `END`) are left out of this part: they are everywhere in ordinary text.

Pure functions: the keyword tester and the impact preview call them as the inbound writer does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smsdesk.domain.normalize import normalize

MIN_LETTERS = 4
MAX_PHRASE_WORDS = 8

# English phrases people use instead of a keyword (normalised on load, as keywords are).
OPT_OUT_PHRASES = tuple(normalize(p) for p in (
    "remove me", "take me off", "stop texting", "stop messaging", "stop sending", "stop messages",
    "stop the texts", "no more texts", "no more messages", "do not text", "don't text", "dont text",
    "do not contact", "unsubscribe me", "opt me out", "leave me alone",
))

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, frozenset[str]]:
    """Keys touching each key on a staggered QWERTY layout: left and right on its row, and the
    two it overlaps on the row above (same column and the next) and below (previous and same);
    so T touches R, Y, 5, 6, F and G."""
    where = {key: (row, col) for row, keys in enumerate(_ROWS) for col, key in enumerate(keys)}
    found: dict[str, frozenset[str]] = {}
    for key, (row, col) in where.items():
        near = {other for other, (orow, ocol) in where.items()
                if (orow == row and abs(ocol - col) == 1)
                or (orow == row - 1 and ocol in (col, col + 1))
                or (orow == row + 1 and ocol in (col - 1, col))}
        found[key] = frozenset(near)
    return found


NEIGHBOURS = _neighbours()


def one_slip(text: str, keyword: str) -> bool:
    """True when `text` is `keyword` with one insertion, deletion, swap of neighbours or
    replacement by an adjacent key. Equal strings are not a slip."""
    if text == keyword:
        return False
    lt, lk = len(text), len(keyword)
    if abs(lt - lk) > 1:
        return False
    if lt == lk:
        diffs = [i for i in range(lt) if text[i] != keyword[i]]
        if len(diffs) == 1:
            i = diffs[0]
            return text[i] in NEIGHBOURS.get(keyword[i], ())
        return (len(diffs) == 2 and diffs[1] == diffs[0] + 1
                and text[diffs[0]] == keyword[diffs[1]] and text[diffs[1]] == keyword[diffs[0]])
    longer, shorter = (text, keyword) if lt > lk else (keyword, text)
    for i in range(len(shorter)):
        if longer[i] != shorter[i]:
            return longer[i + 1:] == shorter[i:]
    return True  # the extra character is the last one


def _letters(key: str) -> int:
    return sum(c.isalnum() for c in key)


@dataclass(frozen=True, slots=True)
class NearMiss:
    keyword: str  # the opt-out keyword as configured, or the built-in phrase
    how: str  # "slip" | "phrase"

    def rule(self) -> str:
        if self.how == "slip":
            return f"near miss: one slip away from opt-out keyword {self.keyword!r}"
        return f"near miss: short text containing opt-out words {self.keyword!r}"


class NearMissIndex:
    """What `near_miss` compares with, worked out once per credential (the writer and the impact
    preview call it for every unmatched text)."""

    def __init__(self, opt_out_keywords: Iterable[tuple[str, str]]) -> None:
        pairs = list(opt_out_keywords)  # (normalised key, keyword as configured)
        self.slips = [(key.replace(" ", ""), keyword) for key, keyword in pairs if _letters(key) >= MIN_LETTERS]
        self.phrases = [(f" {key} ", keyword) for key, keyword in pairs
                        if _letters(key) >= MIN_LETTERS or " " in key]
        self.phrases += [(f" {phrase} ", phrase) for phrase in OPT_OUT_PHRASES]


def near_miss(normalized: str, opt_out_keywords: Iterable[tuple[str, str]] | NearMissIndex) -> NearMiss | None:
    """`opt_out_keywords`: (normalised key, keyword as configured), or their NearMissIndex. Call
    only for a text that matched no keyword (that is what makes it a *near* miss)."""
    if not normalized:
        return None
    index = opt_out_keywords if isinstance(opt_out_keywords, NearMissIndex) else NearMissIndex(opt_out_keywords)
    compact = normalized.replace(" ", "")
    size = len(compact)
    for target, keyword in index.slips:
        if abs(len(target) - size) <= 1 and (compact == target or one_slip(compact, target)):
            return NearMiss(keyword, "slip")
    if normalized.count(" ") >= MAX_PHRASE_WORDS:  # more than eight words
        return None
    padded = f" {normalized} "
    for phrase, keyword in index.phrases:
        if phrase in padded:
            return NearMiss(keyword, "phrase")
    return None
