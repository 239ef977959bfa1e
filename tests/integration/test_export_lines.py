"""`smsdesk export messages` has SQLite encode each line (store/queries.py iter_message_export_json):
what SQLite writes (json_object, spaced as json.dumps spaces it) must be the bytes of json.dumps
over the same rows (the TUI's export, write_jsonl), for any text a person can send: every control,
quote and backslash, DEL and C1, bidi controls, NUL, texts that look like the export's own keys,
the whole Basic Multilingual Plane in slices, and characters beyond it."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store.queries import MessageFilter, iter_message_export, iter_message_export_json
from smsdesk.usecases.exports import write_json_blocks, write_jsonl
from tests.support.live import inbound, store

SPECIAL = ["\x00nul", "quote \" back \\ slash", "\b\f\n\r\t\x0b\x1f", "\x7f del \x80 \x9b c1 \x9f",
           "\u202e bidi \u2066",
           "\u2028\u2029", "😀 emoji 𝄞", "\ufeff bom \ufffe", "", " ", "STOP", "<script>&amp;</script>",
           '{"id": 1, "text": "x"}', ',"text":,"reply_text":{"id":', '\\",\\"action\\":']
SLICES = ["".join(chr(c) for c in range(start, start + 512) if not 0xD800 <= c <= 0xDFFF)
          for start in range(0, 0x3000, 512)]


@pytest.fixture
def awkward_db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "x.db", shop_credential(), club_credential(default_reply_message=""))
    texts = SPECIAL + SLICES
    # Shop replies to each (o.* set); Club does not (o.* NULL through the LEFT JOIN).
    store(path, *(inbound(f"+4179302{i:04d}", "+" + (SHOP_NUMBER if i % 2 else CLUB_NUMBER), text,
                          message_id=f"awk-{i}") for i, text in enumerate(texts)))
    return path


def reference(path: Path, filters: MessageFilter | None = None) -> str:
    conn = sqlite3.connect(path)
    try:
        out = io.StringIO()
        write_jsonl(iter_message_export(conn, filters), out)
        return out.getvalue()
    finally:
        conn.close()


def test_the_cli_export_is_byte_for_byte_the_rows_json(awkward_db: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(awkward_db), "export", "messages"])
    assert result.exit_code == 0, result.output
    expected = reference(awkward_db)
    assert expected.count("\n") == len(SPECIAL) + len(SLICES)
    assert result.stdout == expected
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout and "\x9b" not in result.stdout


@pytest.mark.parametrize("filters", [MessageFilter(action="opt-out"), MessageFilter(text="\\"),
                                     MessageFilter(credential="club")], ids=repr)
def test_filtered_lines_match_too(awkward_db: Path, filters: MessageFilter) -> None:
    conn = sqlite3.connect(awkward_db)
    try:
        out = io.StringIO()
        write_json_blocks(iter_message_export_json(conn, filters), out)
    finally:
        conn.close()
    assert out.getvalue() == reference(awkward_db, filters)


def test_an_empty_database_exports_nothing(tmp_path: Path) -> None:
    path = make_db(tmp_path / "empty.db", shop_credential())
    result = CliRunner().invoke(cli, ["--db", str(path), "export", "messages"])
    assert result.exit_code == 0 and result.stdout == ""
