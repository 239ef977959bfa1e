"""Rich Text built from lines of plain parts, never from markup, every part made inert: what the
detail views (a message, a number's ledger, the keyword tester) show of text that came from
outside."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from smsdesk.domain.inert import make_inert

Part = str | tuple[str, str]  # plain text, or (text, style)


def inert_lines(lines: Iterable[Iterable[Part]]) -> Text:
    """Lines of parts as one Text. Nothing is parsed as markup (an inbound "[$x]" or "[/b]" is
    text, not a tag) and every part goes through make_inert (no raw ESC reaches the terminal)."""
    out = Text()
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        for part in line:
            text, style = (part, "") if isinstance(part, str) else part
            out.append(make_inert(text), style=style)
    return out
