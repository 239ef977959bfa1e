"""The one writer of exported JSON: `smsdesk export ... --format jsonl`, the TUI's log export, and
every JSON the CLI prints (a number's evidence record among them), so the same rows are the same
bytes whichever front end wrote them.

Readable UTF-8 with every character that could drive or reorder a terminal escaped. json.dumps
(ensure_ascii=False) escapes the C0 controls (ESC becomes \\u001b) but writes DEL and the C1
controls raw, and a lone U+009B is a CSI to many terminals; bidi embeddings, overrides and
isolates reorder what a terminal shows ("Shop\\u202egnp.exe" reads "Shopexe.png"); a lone
surrogate cannot be written as UTF-8 at all. Escaping those too is lossless: the same JSON value.
(ensure_ascii=True is inert as well, but writes every accent and emoji of a message as escapes.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring  # json's own string encoder (C), as dumps uses it
from typing import Any, TextIO

_RAW_CONTROLS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(ensure_ascii=False), built once
_CHUNK = 2000  # lines per write: one call into the file object per chunk, not per line


def _escape_raw(text: str) -> str:
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def inert_json(data: Any, **options: Any) -> str:
    """JSON with every control, bidi control and lone surrogate escaped: the same data, inert on a terminal."""
    return _escape_raw(json.dumps(data, ensure_ascii=False, **options))


def _value(value: Any) -> str:
    """One value as json.dumps(ensure_ascii=False) writes it: the common types directly."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    return _ENCODE(value)  # bool, float, nested objects: json itself


def _line(heads: Sequence[str], values: Iterable[Any]) -> str:
    """`{"key": value, ...}` byte for byte as json.dumps(ensure_ascii=False) writes a flat dict."""
    return "{" + ", ".join([head + _value(value) for head, value in zip(heads, values, strict=True)]) + "}"


def _write_chunk(chunk: list[str], out: TextIO) -> int:
    if not chunk:
        return 0
    text = "\n".join(chunk) + "\n"
    out.write(_escape_raw(text) if _needs_escapes(text) else text)
    written = len(chunk)
    chunk.clear()
    return written


def write_json_blocks(blocks: Iterable[str], out: TextIO) -> int:
    """Blocks of JSON Lines already encoded as json.dumps(ensure_ascii=False) writes them
    (store/queries.py iter_message_export_json), made inert as `write_jsonl` makes its own; how
    many lines were written."""
    count = 0
    for block in blocks:
        out.write(_escape_raw(block) if _needs_escapes(block) else block)
        count += block.count("\n")
    return count


def _needs_escapes(text: str) -> bool:
    # An ASCII string (CPython knows it without reading it) can hold DEL alone of the characters
    # escaped; one search for a byte instead of the class over every character.
    return "\x7f" in text if text.isascii() else _RAW_CONTROLS.search(text) is not None


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One inert JSON object per line; how many lines were written."""
    heads: dict[str, str] = {}
    count = 0
    chunk: list[str] = []
    for row in rows:
        for key in row.keys() - heads.keys():
            heads[key] = encode_basestring(key) + ": "
        chunk.append(_line([heads[key] for key in row], row.values()))
        if len(chunk) == _CHUNK:
            count += _write_chunk(chunk, out)
    return count + _write_chunk(chunk, out)
