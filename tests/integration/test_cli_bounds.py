"""The `smsdesk` command with hostile input: one line per error whatever a file holds, bounds on every
credential field named in the refusal, echoed values inert, private directories, keys out of ps.

Commands run through the console script's entry function in this process (`run_main`: the same
last-resort one-line errors); what needs a process of its own (a umask, `simulate` running until
a signal) runs the installed script.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import SCRIPT, run_main
from tests.support.store import record

RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def db(tmp_path: Path, home: Path) -> Path:
    return tmp_path / "smsdesk.db"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("content", [
    '[{"name": ' + "9" * 5000 + "}]",  # past Python's integer conversion limit
    "[" * 100_000 + "]" * 100_000,  # nested past the JSON parser's recursion limit
    '[{"name": "x", "inbound_keywords": ' + "[" * 900 + "]" * 900 + "}]",  # deep, but parsed: the model refuses
], ids=["huge-integer", "deep-array", "deep-field"])
def test_import_of_any_file_is_one_line(db: Path, tmp_path: Path, content: str) -> None:
    result = run_main("--db", str(db), "creds", "import", str(write(tmp_path / "c.json", content)))
    assert result.code == 1 and "Traceback" not in result.err, result.err
    lines = result.err.splitlines()
    assert lines and all(line.startswith("smsdesk: ") for line in lines), lines
    assert lines[-1].count("\n") == 0 and ("not a credential file" in lines[-1] or "nothing imported" in lines[-1])


def test_import_file_name_is_echoed_inert(db: Path, tmp_path: Path) -> None:
    evil = write(tmp_path / "evil\x1b[2J\u202egnp.json", "not json")
    result = run_main("--db", str(db), "creds", "import", str(evil))
    result.assert_user_error("not valid JSON", "\\x1b[2J", "\\u202e")
    assert not any(c in result.err for c in RAW)


@pytest.mark.parametrize("name", ["Shop\x1bX", "Shop\x00", "Shop\u202egnp.exe", "Sh\u200bop", "Shop\u2066x",
                                  "Shop\ufeff", "Shop\u00ad"])
def test_credential_names_must_be_printable(db: Path, tmp_path: Path, name: str) -> None:
    source = write(tmp_path / "c.json", json.dumps([record(1, name=name)]))
    result = run_main("--db", str(db), "creds", "import", str(source))
    assert result.code == 1 and "Traceback" not in result.err
    assert "record 0: name: must be printable characters only" in result.err, result.err
    assert not any(c in result.err for c in RAW)
    if "\x00" not in name:  # the command line cannot carry a NUL
        added = run_main("--db", str(db), "creds", "add", "--name", name, "--base-url", "x.api.infobip.com",
                           "--api-key-stdin", stdin="k-0123456789\n")
        added.assert_user_error("name: must be printable characters only")


@pytest.mark.parametrize(("field", "value", "says"), [
    ("api_key", "k" * 10_000_000, "api_key: 10000000 characters; an API key has at most 512"),
    ("principal_entity_id", "1" * 5_000_000, "principal_entity_id: 5000000 digits; a DLT id has at most 64"),
    ("content_template_id", "7" * 65, "content_template_id: 65 digits"),
    ("inbound_keywords", [f"K{i}" for i in range(200_000)], "inbound_keywords: 200000 keywords; at most 100"),
    ("opt_out_keywords", [f"S{i}" for i in range(101)], "opt_out_keywords: 101 keywords; at most 100"),
], ids=["key", "dlt-entity", "dlt-template", "keywords", "keywords-101"])
def test_credential_fields_are_bounded_and_the_refusal_names_the_field(db: Path, tmp_path: Path, field: str,
                                                                        value: object, says: str) -> None:
    extra = {"principal_entity_id": "1234567890123"} if field == "content_template_id" else {}
    source = write(tmp_path / "big.json", json.dumps([record(1, **extra, **{field: value})]))
    result = run_main("--db", str(db), "creds", "import", str(source))
    assert result.code == 1 and "Traceback" not in result.err
    assert says in result.err, result.err[:300]
    assert len(result.err) < 1000  # the value itself is never echoed
    assert run_main("--db", str(db), "creds", "list", "--json").json() == []


def test_bounds_still_allow_real_values(db: Path, tmp_path: Path) -> None:
    real = record(1, api_key="a" * 512, principal_entity_id="1" * 19, content_template_id="2" * 64,
                  inbound_keywords=[f"K{i}" for i in range(100)], name="Café Zürich 東京")
    result = run_main("--db", str(db), "creds", "import", str(write(tmp_path / "ok.json", json.dumps([real]))))
    result.assert_ok()


def test_database_directories_are_private_whatever_the_umask(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "a" / "b" / "c" / "smsdesk.db"
    done = subprocess.run([str(SCRIPT), "--db", str(db), "creds", "add", "--name", "Shop", "--base-url",
                           "x.api.infobip.com", "--api-key-stdin"], input="k-0123456789\n", capture_output=True,
                          text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert directory.stat().st_mode & 0o777 == 0o700, (directory, oct(directory.stat().st_mode))
    assert db.stat().st_mode & 0o777 == 0o600


def _simulate_banner(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.Popen([str(SCRIPT), "simulate", "--port", "0", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=os.environ | (env or {}))
    lines = []
    try:
        deadline = time.monotonic() + 20
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "accepting keys" in line or not line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        finally:  # a simulator that ignored the SIGINT must fail the test, not outlive it
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return "".join(lines)


def test_simulate_reads_keys_from_a_file_or_the_environment_and_warns_about_key(tmp_path: Path,
                                                                                 home: Path) -> None:
    keys = write(tmp_path / "keys", "file-key-000000000001\n\nfile-key-000000000002\n")
    from_file = _simulate_banner("--key-file", str(keys))
    assert "accepting keys: ••••0001, ••••0002" in from_file and "warning" not in from_file
    from_env = _simulate_banner(env={"SMSDESK_SIMULATOR_KEYS": "env-key-00000000000a env-key-00000000000b"})
    assert "accepting keys: ••••000a, ••••000b" in from_env and "warning" not in from_env
    on_command_line = _simulate_banner("--key", "argv-key-0000000000c")
    assert "warning: --key shows the key to anyone who can run ps" in on_command_line


OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
HOSTILE_FIELDS = [
    ("help_message", f"Help {OSC_CLIPBOARD}"), ("opt_out_message", "Bye \x1b]0;owned\x07"),
    ("default_reply_message", "\x1b[2J hi"), ("fuzzy_opt_out_message", "csi \x9b31m"),
    ("opt_out_keywords", ["STOP", "QUIT\x1b[2J"]), ("help_keywords", ["HELP\x07"]),
    ("custom_keyword_replies", {"DEAL": "10% \x1b]0;x\x07"}), ("callback_data", "cb\nline"),
    ("opt_in_message", "tab\there"),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE_FIELDS, ids=[f for f, _ in HOSTILE_FIELDS])
def test_import_refuses_control_characters_in_every_text_field(db: Path, tmp_path: Path, field: str,
                                                                value: object) -> None:
    record_ = {"name": "Shop", "base_url": "x.api.infobip.com", "api_key": "k" * 16, field: value}
    if field == "custom_keyword_replies":
        record_["inbound_keywords"] = ["DEAL"]
    done = run_main("--db", str(db), "creds", "import", str(write(tmp_path / "c.json", json.dumps([record_]))))
    assert done.code != 0
    assert field in done.err and "control or bidi characters" in done.err, done.err
    assert not any(raw in done.err for raw in RAW)
    assert run_main("--db", str(db), "creds", "list", "--json").out.strip() in ("[]", "")


def test_a_message_keeps_its_newlines_and_windows_line_ends(db: Path, tmp_path: Path) -> None:
    record_ = {"name": "Shop", "base_url": "x.api.infobip.com", "api_key": "k" * 16,
               "help_message": "Line one\r\nLine two\nLine three"}
    done = run_main("--db", str(db), "creds", "import", str(write(tmp_path / "c.json", json.dumps(record_))))
    assert done.code == 0, done.err
    shown = json.loads(run_main("--db", str(db), "creds", "show", "Shop", "--json").out)
    assert shown["help_message"] == "Line one\nLine two\nLine three"


def test_creds_edit_refuses_an_escape_in_a_message(db: Path, tmp_path: Path) -> None:
    record_ = {"name": "Shop", "base_url": "x.api.infobip.com", "api_key": "k" * 16}
    assert run_main("--db", str(db), "creds", "import", str(write(tmp_path / "c.json", json.dumps(record_)))).code == 0
    done = run_main("--db", str(db), "creds", "edit", "Shop", "--opt-out-message", f"Bye {OSC_CLIPBOARD}")
    assert done.code != 0 and "control or bidi characters" in done.err
    assert not any(raw in done.err for raw in RAW)
    shown = json.loads(run_main("--db", str(db), "creds", "show", "Shop", "--json").out)
    assert "\x1b" not in shown["opt_out_message"]


FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR"]


def test_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    import csv
    import io

    from smsdesk.simulator.sample_data import make_db, shop_credential
    from smsdesk.store.inbound import InboundMessage
    from tests.support.store import store_directly

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    texts = [*FORMULAS, "plain text", "a = b"]
    store_directly(db, [InboundMessage(f"f-{i}", "+41793026727", "+447491163443", text,
                                       f"2026-12-01T10:00:{i:02d}.000+00:00") for i, text in enumerate(texts)])
    done = run_main("--db", str(db), "export", "messages", "--format", "csv")
    assert done.code == 0, done.err
    rows = list(csv.DictReader(io.StringIO(done.out, newline="")))
    assert [row["text"] for row in rows] == ["'" + text for text in FORMULAS] + ["plain text", "a = b"]
    assert {row["from"] for row in rows} == {"'+41793026727"}  # a spreadsheet would read +4179... as a number


def test_json_output_escapes_bidi_controls(tmp_path: Path) -> None:
    from smsdesk.simulator.sample_data import make_db, shop_credential
    from smsdesk.store.inbound import InboundMessage
    from tests.support.store import store_directly

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store_directly(db, [InboundMessage("b-1", "+41793026727", "+447491163443", "Shop\u202egnp.exe",
                                       "2026-12-01T10:00:00.000+00:00")])
    done = run_main("--db", str(db), "export", "messages")
    assert done.code == 0, done.err
    assert "\u202e" not in done.out and "Shop\\u202egnp.exe" in done.out
    assert json.loads(done.out.splitlines()[0])["text"] == "Shop\u202egnp.exe"  # lossless


@pytest.mark.parametrize("args", [
    ["review", "resolve", "3", "--opt-out", "--dismiss"],
    ["review", "resolve", "3"],
    ["review", "resolve", "99999999999999999999999", "--dismiss"],
    ["review", "resolve", "0", "--dismiss"],
    ["inbound", "unreadable", "--limit", "99999999999999999999999"],
    ["creds", "add", "--name", "X", "--base-url", "x.api.infobip.com", "--api-key", "k1234567", "--api-key-stdin"],
], ids=["both-decisions", "no-decision", "id-overflow", "id-zero", "limit-overflow", "two-keys"])
def test_conflicting_flags_and_numbers_out_of_range_are_usage_errors(db: Path, args: list[str]) -> None:
    run_main("--db", str(db), "creds", "list")  # nothing there yet: creates nothing either
    done = run_main("--db", str(db), *args, stdin="k-from-stdin\n")
    assert done.code == 2, (done.code, done.err)
    assert "internal error" not in done.err and "Traceback" not in done.err


@pytest.mark.parametrize("args", [
    ["creds", "list"], ["creds", "show", "Shop"], ["creds", "export"], ["export", "messages"], ["consent", "verify"],
    ["review", "list"], ["inbound", "unreadable"], ["creds", "delete", "Shop", "--yes"],
    ["consent", "opt-out", "41793026727", "--sandbox", "prod", "--reason", "call"],
])
def test_read_only_commands_never_create_a_database_or_a_directory(tmp_path: Path, home: Path,
                                                                   args: list[str]) -> None:
    mistyped = tmp_path / "no" / "such" / "dir" / "smsdesk.db"
    done = run_main("--db", str(mistyped), *args)
    assert done.code == 1
    assert len(done.err.strip().splitlines()) == 1
    assert str(mistyped) in done.err and "no such file" in done.err
    assert not (tmp_path / "no").exists()
