"""Profiles' filter vocabulary: `consent:y|n|p|none attr:DISCOUNT sandbox:prod num:4179` -> the
keyword arguments of the profile queries (store/queries.py).

Words and quotes are read by the filter lines' one parser (tui/filter_parser.py)."""

from __future__ import annotations

from smsdesk.tui.filter_parser import FilterSyntaxError, parse_terms

SYNTAX = (
    ("consent:y|n|p|none", "the number's consent in its sandbox"),
    ("attr:KEYWORD", "numbers that sent this custom keyword (a segment; any case)"),
    ("sandbox:NAME", "one sandbox"),
    ("num:DIGITS", "part of the number (bare digits work too)"),
)
_KEYS = {"consent": "consent", "sandbox": "sandbox", "num": "number", "number": "number",
         **{key: "attribute" for key in ("attr", "attribute", "segment", "kw", "custom", "keyword")}}
CONSENTS = ("y", "n", "p", "none")


def parse_profile_filter(text: str) -> dict[str, object]:
    """A bare word is (part of) a number; a key Profiles does not know is an error."""
    found: dict[str, object] = {"sandbox": "", "consent": None, "attribute": "", "number": ""}
    for term in parse_terms(text, _KEYS):
        if term.key is None:
            found["number"] = term.word
        elif term.field is None:
            raise FilterSyntaxError(f"unknown filter {term.key!r}: use consent:, attr:, sandbox:, num:")
        elif term.field == "consent":
            if term.value.lower() not in CONSENTS:
                raise FilterSyntaxError("consent must be y, n, p or none")
            found["consent"] = "" if term.value.lower() == "none" else term.value.lower()
        else:
            found[term.field] = term.value
    return found


NO_FILTER = parse_profile_filter("")
