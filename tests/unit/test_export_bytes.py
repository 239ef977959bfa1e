"""The fast JSON Lines writers (usecases/exports.py) write the bytes json.dumps did, escapes included.

The reference is what exports wrote before they were made fast: json.dumps(ensure_ascii=False) of
each row, then the terminal-driving characters escaped (inert_json), one line each.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from smsdesk.usecases.exports import write_json_blocks, write_jsonl

RAW = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
AWKWARD = ["", "plain", 'quote " and \\ backslash', "line\nbreak\ttab\r", "\x1b[31mred\x1b[0m", "del \x7f c1 \x9b",
           "Shop\u202egnp.exe", "\u2066isolate\u2069", "lone \ud800 surrogate", "emoji 😀 accents éà", "\x00 nul",
           "\u2028 line separator \u2029"]


def reference(rows: list[dict[str, Any]]) -> str:
    return "".join(RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(row, ensure_ascii=False)) + "\n"
                   for row in rows)


def rows_of(texts: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "text": text, "reply": None if i % 2 else text[::-1], "flag": i % 3 == 0,
             "score": i / 7, "attributes": {"K": {"count": i, "name": text}}} for i, text in enumerate(texts)]


def written(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """What write_jsonl writes, and write_json_blocks of the rows' plain json.dumps (its escaping)."""
    as_dicts, as_lines = io.StringIO(), io.StringIO()
    assert write_jsonl(rows, as_dicts) == len(rows)
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    blocks = ["".join(lines[i:i + 7]) for i in range(0, len(lines), 7)]
    assert write_json_blocks(blocks, as_lines) == len(rows)
    return as_dicts.getvalue(), as_lines.getvalue()


def test_awkward_texts_are_written_as_before() -> None:
    rows = rows_of(AWKWARD)
    assert written(rows) == (reference(rows), reference(rows))
    assert "\x1b" not in written(rows)[0] and "\u202e" not in written(rows)[0]


def test_more_rows_than_one_chunk() -> None:
    rows = rows_of(AWKWARD * 400)  # 4,800 rows: several chunks, an escape in each
    assert written(rows) == (reference(rows), reference(rows))


def test_no_rows() -> None:
    assert written([]) == ("", "")


@given(st.lists(st.text(), max_size=20))
def test_any_text(texts: list[str]) -> None:
    rows = rows_of(texts)
    assert written(rows) == (reference(rows), reference(rows))



def test_an_ascii_block_with_only_del_is_escaped() -> None:
    rows = rows_of(["plain ascii \x7f and nothing else"])
    assert "\x7f" not in written(rows)[1]
    assert written(rows) == (reference(rows), reference(rows))
