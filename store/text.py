"""Text normalisation shared by keyword validation and inbound matching.

Both sides of a comparison go through :func:`normalize`, so a keyword configured
as "stop" matches "STOP!", " Ｓｔｏｐ " (full width) and "stop." alike.
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
    """NFKC, strip edge whitespace/punctuation/symbols, collapse inner whitespace, casefold."""
    return _normalize_short(text) if len(text) <= _CACHED_LENGTH else _normalize(text)


def _normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text)
    start, end = 0, len(folded)
    while start < end and _is_edge_junk(folded[start]):
        start += 1
    while end > start and _is_edge_junk(folded[end - 1]):
        end -= 1
    return " ".join(folded[start:end].split()).casefold()


_normalize_short = lru_cache(maxsize=65536)(_normalize)


def first_word(normalized_text: str) -> str:
    """The first word of already-normalised text, itself stripped of edge punctuation."""
    head = normalized_text.split(" ", 1)[0] if normalized_text else ""
    return normalize(head)


def make_inert(text: str) -> str:
    """Render control characters visible so terminal escape sequences never reach a tty raw,
    and bidi controls and lone surrogates as escapes."""
    # isprintable() (C speed) is False for every character escaped below, so printable text,
    # nearly all of it, skips the per-character loop: this runs for every cell drawn.
    if text.isprintable():
        return text
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}" if code != 0x0A else "⏎")
        elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or 0xD800 <= code <= 0xDFFF:
            # Bidi embeddings, overrides and isolates reorder what follows them on screen (a name
            # "Shop\u202egnp.exe" shows as "Shopexe.png"); a lone surrogate (a file name that is
            # not UTF-8) cannot even be written to a UTF-8 terminal. Both shown as their escape.
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
