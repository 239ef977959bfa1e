"""Text from outside (SMS, credential fields, config, file names) made inert before it reaches a
terminal: control characters, bidi controls and lone surrogates shown as visible escapes."""

from __future__ import annotations


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


def make_inert_keeping_lines(text: str) -> str:
    """`make_inert` line by line: a multi-line message stays multi-line (an editor shows it), every
    other control character is made visible."""
    return "\n".join(make_inert(line) for line in text.split("\n"))
