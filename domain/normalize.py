"""Text normalisation shared by keyword validation and inbound matching.

Both sides of a comparison go through :func:`normalize`, so a keyword configured as "stop"
matches "STOP!", " Ｓｔｏｐ " (full width), "stop." and "S\u200bTOP" alike, and "arret" matches
"ARRÊT". The result is a sequence of words separated by one space: words end at whitespace and
at punctuation, so `OPT-OUT`, `opt out` and `Opt  Out!` are all "opt out" (README, "Keyword
rules").
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Unicode categories stripped from both ends: punctuation (P*) and symbols (S*).
_EDGE_CATEGORIES = ("P", "S")


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in _EDGE_CATEGORIES or (
        unicodedata.category(char) in ("Cf", "Cc")
    )


# Keywords and the texts that match them are short; caching only short texts keeps the hits
# ("STOP" arrives again and again) without letting 20,000-character messages fill memory.
_CACHED_LENGTH = 64


def normalize(text: str) -> str:
    """Drop invisible characters, fold case, width and accents, split words at punctuation,
    strip edge symbols, collapse whitespace. Idempotent (tests/unit/test_rules.py checks it)."""
    return _normalize_short(text) if len(text) <= _CACHED_LENGTH else _normalize(text)


# ASCII punctuation -> space, for the common case (most SMS are ASCII): str.translate runs in C.
_ASCII_PUNCTUATION = {code: " " for code in range(128) if unicodedata.category(chr(code))[0] == "P"}


def _fold(text: str) -> str:
    # Cf: zero-width space and joiners, soft hyphen, bidi marks; invisible, so a "S\u200bTOP" is STOP.
    # casefold before the decomposition: it can itself produce combining marks ("İ" -> "i̇").
    # NFKD + dropping non-spacing marks removes accents (ARRÊT -> arret) and folds width;
    # NFC recomposes what must stay composed (Hangul).
    if text.isascii():  # no invisible characters, accents or wide forms: case and punctuation only
        return text.casefold().translate(_ASCII_PUNCTUATION)
    kept = "".join(c for c in text if unicodedata.category(c) != "Cf")
    decomposed = unicodedata.normalize("NFKD", kept.casefold())
    if not decomposed.isascii():
        decomposed = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me"))
    folded = unicodedata.normalize("NFC", decomposed)
    # Words end at punctuation as well as whitespace: "STOP,thanks" and "stop-please" start with STOP.
    return "".join(" " if unicodedata.category(c)[0] == "P" else c for c in folded)


def _normalize(text: str) -> str:
    folded = _fold(text)
    if not text.isascii():  # ASCII folds in one step; others may expose a new foldable character
        again = _fold(folded)  # (a width form can decompose to an ASCII capital: "𝑨" -> "A" -> "a")
        while again != folded:  # settle on a fixed point (idempotence)
            folded, again = again, _fold(again)
    start, end = 0, len(folded)
    while start < end and _is_edge_junk(folded[start]):
        start += 1
    while end > start and _is_edge_junk(folded[end - 1]):
        end -= 1
    return " ".join(folded[start:end].split())


_normalize_short = lru_cache(maxsize=65536)(_normalize)


def words(normalized_text: str) -> list[str]:
    """The words of already-normalised text."""
    return normalized_text.split(" ") if normalized_text else []


def first_word(normalized_text: str) -> str:
    """The first word of already-normalised text."""
    return normalized_text.split(" ", 1)[0] if normalized_text else ""
