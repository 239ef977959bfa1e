"""`smsdesk creds ...` end to end: exit statuses, one-line user errors, masked keys, import/export.

Most cases go through click's CliRunner (in process, fast, no mocks: the real command tree on a
real SQLite file); the contract that matters to scripts (exit status, exactly one stderr line, no
traceback, no secrets) is also checked on the console script's entry function (`run_main`, in
process) and on the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.domain.credential import Credential
from smsdesk.store import credentials as repo
from smsdesk.store.db import connect
from tests.support.cli import SCRIPT, CliRun, run_main, run_script, seed_records
from tests.support.store import full_record, give_legacy_name, record, secret_key

Run = CliRun


@pytest.fixture
def db_file(tmp_path: Path, home: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def invoke(db_file: Path) -> Iterator[Any]:
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None, db: Path | None = db_file, env: dict[str, str] | None = None) -> Run:
        argv = (["--db", str(db)] if db is not None else []) + list(args)
        result = runner.invoke(cli, argv, input=stdin, env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    yield run


def subprocess_run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Run:
    return run_script(*args, stdin=stdin, env=env)


def add(invoke: Any, n: int, *extra: str, **changes: Any) -> Run:
    data = record(n, **changes)
    result = invoke("creds", "add", "--name", data["name"], "--base-url", data["base_url"],
                    "--sandbox", data["sandbox"], "--inbound-number", data["inbound_number"],
                    "--api-key-stdin", *extra, stdin=data["api_key"] + "\n")
    return result


def stored(path: Path) -> list[repo.StoredCredential]:
    db = connect(path)
    try:
        return repo.list_credentials(db.conn)
    finally:
        db.close()


def seed(path: Path, *records: dict[str, Any]) -> None:
    seed_records(path, list(records))


# -- add, list, show ---------------------------------------------------------------------------


def test_add_then_list_and_show(invoke: Any, db_file: Path) -> None:
    result = add(invoke, 1)
    assert result.code == 0, result.err
    assert record(1)["name"] in result.out
    assert secret_key(1) not in result.out + result.err
    (cred,) = stored(db_file)
    assert cred.to_credential() == Credential.model_validate(record(1) | {"opt_out_message": ""})

    listed = invoke("creds", "list")
    assert listed.code == 0
    assert record(1)["name"] in listed.out and "https://xyz1.api.infobip.com" in listed.out
    assert secret_key(1) not in listed.out
    assert secret_key(1)[-4:] in listed.out  # the last four characters help tell keys apart

    shown = invoke("creds", "show", record(1)["name"].upper())
    assert shown.code == 0
    assert "inbound_number" in shown.out and record(1)["inbound_number"] in shown.out
    assert secret_key(1) not in shown.out + shown.err


def test_list_empty_database(invoke: Any, db_file: Path) -> None:
    missing = invoke("creds", "list")  # no database yet: said, and none created by a command that reads
    missing.assert_user_error("no such file")
    assert not db_file.exists()
    connect(db_file).close()
    result = invoke("creds", "list")
    assert result.code == 0
    assert "no credentials" in result.out
    assert invoke("creds", "list", "--json").json() == []
    assert invoke("creds", "export").json() == []


def test_list_json_is_the_public_interface(invoke: Any, db_file: Path) -> None:
    seed(db_file, full_record(2), record(1))
    items = invoke("creds", "list", "--json").json()
    assert [i["name"] for i in items] == [record(1)["name"], record(2)["name"]]
    assert all(list(i) == list(Credential.model_fields) for i in items)
    assert items[1]["inbound_keywords"] == full_record(2)["inbound_keywords"]  # lists stay JSON arrays
    assert all(secret_key(n) not in json.dumps(items) for n in (1, 2))


def test_show_json_and_with_secrets(invoke: Any, db_file: Path) -> None:
    seed(db_file, full_record(1))
    masked = invoke("creds", "show", record(1)["name"], "--json").json()
    assert masked["api_key"] != secret_key(1)
    assert masked["validity_period_hours"] == full_record(1)["validity_period_hours"]
    clear = invoke("creds", "show", record(1)["name"], "--json", "--with-secrets").json()
    assert clear["api_key"] == secret_key(1)
    assert {k: v for k, v in clear.items() if k != "api_key"} == {k: v for k, v in masked.items() if k != "api_key"}


def test_show_prints_warnings_on_stderr(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1, principal_entity_id="123"))
    result = invoke("creds", "show", record(1)["name"])
    assert result.code == 0
    assert "principal_entity_id" in result.err


def test_add_with_every_option_and_json(invoke: Any, db_file: Path) -> None:
    full = full_record(3)
    args = ["creds", "add", "--json", "--api-key-stdin"]
    for field, value in full.items():
        if field == "api_key":
            continue
        text = ",".join(value) if isinstance(value, list) else str(value)
        args += ["--" + field.replace("_", "-"), text]
    result = invoke(*args, stdin=full["api_key"])
    assert result.code == 0, result.err
    assert result.json()["name"] == full["name"]
    assert secret_key(3) not in result.out
    (cred,) = stored(db_file)
    assert cred.to_credential() == Credential.model_validate(full)


def test_add_key_from_environment(invoke: Any, db_file: Path) -> None:
    data = record(1)
    result = invoke("creds", "add", "--name", data["name"], "--base-url", data["base_url"],
                    env={"SMSDESK_API_KEY": data["api_key"]})
    assert result.code == 0, result.err
    assert stored(db_file)[0].api_key == data["api_key"]


@pytest.mark.parametrize(
    ("options", "fields"),
    [
        (["--base-url", "http://xyz.api.infobip.com"], ["base_url"]),
        (["--sandbox", "Not OK"], ["sandbox"]),
        (["--validity-period-hours", "49"], ["validity_period_hours"]),
        (["--validity-period-hours", "soon"], ["validity_period_hours"]),
        (["--inbound-number", "not-a-number"], ["inbound_number"]),
        (["--sender", "TwelveLetter"], ["sender"]),
        (["--help-keywords", "STOP"], ["help_keywords", "opt_out_keywords"]),
        (["--inbound-keywords", "x" * 20 + " " + "y" * 20], ["inbound_keywords"]),  # 41 characters
        (["--fuzzy-opt-out", "sometimes"], ["fuzzy_opt_out"]),
        (["--double-opt-in-expiry-days", "-1"], ["double_opt_in_expiry_days"]),
        (["--inbound-keywords", "QUIZ", "--custom-keyword-replies", '{"PIZZA": "x"}'], ["custom_keyword_replies"]),
        (["--content-template-id", "123456789012"], ["content_template_id"]),
        (["--principal-entity-id", "12ab"], ["principal_entity_id"]),
        (["--callback-data", "x" * 4001], ["callback_data"]),
        (["--opt-out-message", "x" * 1601], ["opt_out_message"]),
        (["--inbound-mode", "push"], ["inbound_mode"]),
        (["--name", "x" * 101], ["name"]),
        (["--sandbox", "Bad", "--base-url", "ftp://x"], ["sandbox", "base_url"]),
    ],
)
def test_add_invalid_names_the_field_and_writes_nothing(
    invoke: Any, db_file: Path, options: list[str], fields: list[str]
) -> None:
    result = invoke("creds", "add", "--name", "Shop", "--base-url", "xyz.api.infobip.com", "--api-key-stdin",
                    *options, stdin="abc123\n")
    result.assert_user_error(*fields)
    assert not db_file.exists() or stored(db_file) == []


@pytest.mark.parametrize("key", ["", "has space", "   "])
def test_add_bad_api_key(invoke: Any, db_file: Path, key: str) -> None:
    result = invoke("creds", "add", "--name", "Shop", "--base-url", "xyz.api.infobip.com", "--api-key-stdin",
                    stdin=key + "\n")
    result.assert_user_error("api_key")
    assert key.strip() == "" or key not in result.err


def test_add_without_key_when_not_interactive(invoke: Any) -> None:
    invoke("creds", "add", "--name", "Shop", "--base-url", "xyz.api.infobip.com", stdin="").assert_user_error(
        "api_key")


def test_add_duplicate_name_and_number(invoke: Any, db_file: Path) -> None:
    assert add(invoke, 1).code == 0
    add(invoke, 2, name=record(1)["name"].lower()).assert_user_error("name", record(1)["name"])
    add(invoke, 3, inbound_number=record(1)["inbound_number"]).assert_user_error(
        "inbound_number", repr(record(1)["name"]))
    assert [c.name for c in stored(db_file)] == [record(1)["name"]]


# -- edit, delete ------------------------------------------------------------------------------


def test_edit_changes_only_the_given_fields(invoke: Any, db_file: Path) -> None:
    seed(db_file, full_record(1))
    (before,) = stored(db_file)
    result = invoke("creds", "edit", before.name.lower(), "--help-keywords", "AIDE, INFO", "--validity-period-hours",
                    "6", "--json")
    assert result.code == 0, result.err
    assert result.json()["help_keywords"] == ["AIDE", "INFO"]
    (after,) = stored(db_file)
    assert after.version == before.version + 1
    assert (after.help_keywords, after.validity_period_hours) == (["AIDE", "INFO"], 6)
    unchanged = set(Credential.model_fields) - {"help_keywords", "validity_period_hours"}
    assert all(getattr(after, f) == getattr(before, f) for f in unchanged)


def test_edit_rename_and_new_key(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1))
    result = invoke("creds", "edit", record(1)["name"], "--rename", "Renamed", "--api-key-stdin",
                    stdin=secret_key(7) + "\n")
    assert result.code == 0, result.err
    assert secret_key(7) not in result.out + result.err
    (after,) = stored(db_file)
    assert (after.name, after.api_key) == ("Renamed", secret_key(7))


def test_edit_can_clear_a_field(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1))
    assert invoke("creds", "edit", record(1)["name"], "--inbound-number", "").code == 0
    assert stored(db_file)[0].inbound_number == ""


def test_edit_errors(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1), record(2))
    name = record(1)["name"]
    invoke("creds", "edit", "nobody", "--sandbox", "x").assert_user_error("nobody")
    invoke("creds", "edit", name).assert_user_error("nothing to change")
    invoke("creds", "edit", name, "--sandbox", "BAD").assert_user_error("sandbox")
    invoke("creds", "edit", name, "--rename", record(2)["name"].upper()).assert_user_error("name")
    invoke("creds", "edit", name, "--inbound-number", record(2)["inbound_number"]).assert_user_error(
        "inbound_number", repr(record(2)["name"]))
    invoke("creds", "edit", name, "--content-template-id", "123456789012").assert_user_error("content_template_id")
    assert [c.version for c in stored(db_file)] == [1, 1]


def test_delete(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1), record(2))
    result = invoke("creds", "delete", record(1)["name"].upper(), "--yes")
    assert result.code == 0, result.err
    assert [c.name for c in stored(db_file)] == [record(2)["name"]]


def test_delete_errors(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1))
    invoke("creds", "delete", "nobody", "--yes").assert_user_error("nobody")
    invoke("creds", "delete", record(1)["name"], stdin="y\n").assert_user_error("--yes")
    assert len(stored(db_file)) == 1


# -- import ------------------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_import_file_and_single_object(invoke: Any, db_file: Path, tmp_path: Path) -> None:
    many = write_json(tmp_path / "many.json", [record(1), full_record(2)])
    result = invoke("creds", "import", str(many))
    assert result.code == 0, result.err
    assert "2" in result.out
    one = write_json(tmp_path / "one.json", record(3))
    assert invoke("creds", "import", str(one)).code == 0
    assert [c.name for c in stored(db_file)] == [record(n)["name"] for n in (1, 2, 3)]


def test_import_from_stdin(invoke: Any, db_file: Path) -> None:
    result = invoke("creds", "import", "-", stdin=json.dumps([record(1)]))
    assert result.code == 0, result.err
    assert [c.name for c in stored(db_file)] == [record(1)["name"]]


def test_import_reports_every_bad_record_and_writes_nothing(invoke: Any, db_file: Path, tmp_path: Path) -> None:
    bad = write_json(tmp_path / "bad.json", [
        record(0), record(1, base_url="http://evil.example"), record(2), record(3, name="", sandbox="X"),
        record(4, name=record(0)["name"].upper()), 17])
    result = invoke("creds", "import", str(bad))
    assert result.code == 1
    lines = result.err.splitlines()
    assert all(line.startswith(f"smsdesk: {bad}: ") for line in lines)
    assert "Traceback" not in result.err
    for index, field in [(1, "base_url"), (3, "name"), (3, "sandbox"), (4, "name"), (5, "record")]:
        assert any(f"record {index}: {field}:" in line for line in lines), (index, field, lines)
    assert "nothing imported" in lines[-1]
    assert len(lines) == 6  # five problems and the summary
    assert secret_key(1) not in result.err
    assert not db_file.exists() or stored(db_file) == []


def test_import_existing_name_needs_replace(invoke: Any, db_file: Path, tmp_path: Path) -> None:
    seed(db_file, record(1))
    file = write_json(tmp_path / "in.json", [record(2), record(1, sandbox="replaced")])
    result = invoke("creds", "import", str(file))
    assert result.code == 1
    assert "record 1: name:" in result.err and "--replace" in result.err
    assert [c.name for c in stored(db_file)] == [record(1)["name"]]

    result = invoke("creds", "import", "--replace", str(file))
    assert result.code == 0, result.err
    assert [(c.name, c.sandbox) for c in stored(db_file)] == [(record(1)["name"], "replaced"),
                                                              (record(2)["name"], record(2)["sandbox"])]


@pytest.mark.parametrize(
    ("content", "mention"),
    [
        (b"[{\"name\": ", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "cannot read"),
        (b"{'single': 'quotes'}", "not valid JSON"),
    ],
)
def test_import_unreadable_file(invoke: Any, tmp_path: Path, content: bytes, mention: str) -> None:
    file = tmp_path / "broken.json"
    file.write_bytes(content)
    invoke("creds", "import", str(file)).assert_user_error(str(file), mention)


def test_import_missing_file_and_directory(invoke: Any, tmp_path: Path) -> None:
    invoke("creds", "import", str(tmp_path / "absent.json")).assert_user_error("absent.json")
    invoke("creds", "import", str(tmp_path)).assert_user_error(str(tmp_path))


# -- export ------------------------------------------------------------------------------------


def test_export_masks_keys_unless_asked(invoke: Any, db_file: Path) -> None:
    seed(db_file, record(1), full_record(2))
    masked = invoke("creds", "export")
    assert masked.code == 0
    assert all(secret_key(n) not in masked.out for n in (1, 2))
    assert [i["name"] for i in masked.json()] == [record(1)["name"], record(2)["name"]]
    clear = invoke("creds", "export", "--with-secrets").json()
    assert [i["api_key"] for i in clear] == [secret_key(1), secret_key(2)]


def test_masked_export_does_not_overwrite_keys_on_reimport(invoke: Any, db_file: Path, tmp_path: Path) -> None:
    seed(db_file, record(1))
    file = tmp_path / "masked.json"
    file.write_text(invoke("creds", "export").out)
    result = invoke("creds", "import", "--replace", str(file))
    assert result.code == 1
    assert "api_key" in result.err
    assert stored(db_file)[0].api_key == secret_key(1)


def test_export_import_round_trip(invoke: Any, db_file: Path, tmp_path: Path) -> None:
    seed(db_file, full_record(1), record(2), record(3, inbound_number="", sandbox="prod"))
    exported = invoke("creds", "export", "--with-secrets")
    file = tmp_path / "export.json"
    file.write_text(exported.out)
    fresh = tmp_path / "fresh.db"
    assert invoke("creds", "import", str(file), db=fresh).code == 0
    assert invoke("creds", "export", "--with-secrets", db=fresh).out == exported.out
    assert [c.to_credential() for c in stored(fresh)] == [c.to_credential() for c in stored(db_file)]


# -- database selection and database errors ----------------------------------------------------


def test_env_selects_the_database_and_option_wins(invoke: Any, tmp_path: Path) -> None:
    from_env, from_option = tmp_path / "env.db", tmp_path / "option.db"
    seed(from_env, record(1))
    seed(from_option, record(2))
    env = {"SMSDESK_DB": str(from_env)}
    assert record(1)["name"] in invoke("creds", "list", db=None, env=env).out
    assert record(2)["name"] in invoke("creds", "list", db=from_option, env=env).out


def test_default_database_is_private_in_user_data_dir(invoke: Any, home: Path) -> None:
    assert invoke("creds", "add", "--name", "Shop", "--base-url", "x.api.infobip.com", "--api-key", "k-0123456789",
                  db=None).code == 0
    made = list((home / "data").rglob("*.db"))
    assert len(made) == 1
    assert stat.S_IMODE(made[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(made[0].parent.stat().st_mode) == 0o700


def test_database_path_errors(invoke: Any, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 50)
    invoke("creds", "list", db=text).assert_user_error(str(text))
    os.chmod(tmp_path, 0o755)
    invoke("creds", "list", db=tmp_path).assert_user_error(str(tmp_path))
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # --db DIR must not chmod the directory
    null_mode = Path("/dev/null").stat().st_mode
    invoke("creds", "list", db=Path("/dev/null")).assert_user_error("/dev/null")
    assert Path("/dev/null").stat().st_mode == null_mode
    invoke("creds", "list", db=text / "below.db").assert_user_error(str(text / "below.db"))
    assert text.read_text() == "not a database at all\n" * 50


def test_foreign_sqlite_database(invoke: Any, tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    invoke("creds", "list", db=other).assert_user_error(str(other), "not an smsdesk database")


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["creds", "bogus"],
        ["creds", "show"],
        ["creds", "delete"],
        ["creds", "import"],
        ["creds", "list", "--nope"],
        ["creds", "add", "--base-url", "x.api.infobip.com"],  # --name missing
        ["creds", "add", "--name", "Shop"],  # --base-url missing
        ["--db"],
    ],
)
def test_usage_errors(invoke: Any, args: list[str]) -> None:
    invoke(*args, db=None).assert_usage_error()


# -- the console script: installed, in a subprocess; or its entry function where only output counts


@pytest.fixture
def script_env(home: Path, db_file: Path) -> dict[str, str]:
    if not SCRIPT.exists():
        pytest.fail(f"the smsdesk console script is not installed at {SCRIPT} (pip install -e .)")
    return {"SMSDESK_DB": str(db_file)}


def test_script_lifecycle_never_shows_a_key(script_env: dict[str, str], db_file: Path, tmp_path: Path) -> None:
    data = record(1)
    added = subprocess_run("creds", "add", "--name", data["name"], "--base-url", data["base_url"],
                           "--inbound-number", data["inbound_number"], "--api-key-stdin",
                           stdin=data["api_key"] + "\n", env=script_env)
    assert added.code == 0, added.err
    for args in (["creds", "list"], ["creds", "list", "--json"], ["creds", "show", data["name"]],
                 ["creds", "show", data["name"], "--json"], ["creds", "export"]):
        result = run_main(*args, env=script_env)  # what is printed: no process of its own needed
        assert result.code == 0, (args, result.err)
        assert data["api_key"] not in result.out + result.err, args
        assert data["name"] in result.out
    clear = run_main("creds", "export", "--with-secrets", env=script_env)
    assert json.loads(clear.out)[0]["api_key"] == data["api_key"]

    deleted = subprocess_run("creds", "delete", data["name"], "--yes", env=script_env)
    assert deleted.code == 0
    assert stored(db_file) == []


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["creds", "show", "nobody"], "nobody"),
        (["creds", "delete", "nobody", "--yes"], "nobody"),
        (["creds", "import", "{tmp}/absent.json"], "absent.json"),
        (["creds", "import", "{tmp}"], "{tmp}"),
        (["creds", "import", "{tmp}/broken.json"], "broken.json"),
        (["creds", "add", "--name", "Shop", "--base-url", "http://xyz.api.infobip.com", "--api-key", "k"], "base_url"),
        (["--db", "{tmp}/broken.json", "creds", "list"], "broken.json"),
        (["--db", "{tmp}", "creds", "list"], "{tmp}"),
    ],
)
def test_script_user_errors_are_one_line(script_env: dict[str, str], tmp_path: Path, args: list[str],
                                         mention: str) -> None:
    (tmp_path / "broken.json").write_text("[{")
    if "SMSDESK_DB" in script_env:
        connect(script_env["SMSDESK_DB"]).close()  # an empty database: the errors are about the arguments
    result = run_main(*[a.format(tmp=tmp_path) for a in args], env=script_env)
    result.assert_user_error(mention.format(tmp=tmp_path))
    assert result.out == ""


def test_script_duplicate_name_and_number(script_env: dict[str, str], db_file: Path) -> None:
    seed(db_file, record(1))
    twin = subprocess_run("creds", "add", "--name", record(1)["name"].upper(), "--base-url", "x.api.infobip.com",
                          "--api-key-stdin", stdin="k\n", env=script_env)
    twin.assert_user_error("name")
    number = subprocess_run("creds", "add", "--name", "Other", "--base-url", "x.api.infobip.com",
                            "--inbound-number", record(1)["inbound_number"], "--api-key-stdin", stdin="k\n",
                            env=script_env)
    number.assert_user_error("inbound_number", repr(record(1)["name"]))


def test_script_usage_error_is_status_2(script_env: dict[str, str]) -> None:
    subprocess_run("creds", "frobnicate", env=script_env).assert_usage_error()


def test_script_bad_import_lists_each_record(script_env: dict[str, str], db_file: Path, tmp_path: Path) -> None:
    file = write_json(tmp_path / "in.json", [record(1), record(2, api_key="two words"), record(3, sandbox="UP")])
    result = subprocess_run("creds", "import", str(file), env=script_env)
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "record 1: api_key:" in result.err and "record 2: sandbox:" in result.err
    assert "two words" not in result.err
    assert not db_file.exists() or stored(db_file) == []


def test_script_export_import_round_trip(script_env: dict[str, str], db_file: Path, tmp_path: Path) -> None:
    seed(db_file, full_record(1), record(2))
    exported = subprocess_run("creds", "export", "--with-secrets", env=script_env)
    assert exported.code == 0
    fresh = tmp_path / "fresh.db"
    imported = subprocess_run("--db", str(fresh), "creds", "import", "-", stdin=exported.out, env=script_env)
    assert imported.code == 0, imported.err
    again = subprocess_run("--db", str(fresh), "creds", "export", "--with-secrets", env=script_env)
    assert json.loads(again.out) == json.loads(exported.out)
    assert [c.to_credential() for c in stored(fresh)] == [c.to_credential() for c in stored(db_file)]


def test_text_output_never_replays_escape_sequences(invoke: Any, db_file: Path) -> None:
    hostile = "Evil\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x9b31m"
    seed(db_file, record(1, name="Evil", help_message="line one\nline two"))
    give_legacy_name(db_file, "Evil", hostile)  # names are checked on input now; older rows may hold this
    conn = sqlite3.connect(db_file)  # so are messages: an older row may hold an escape there too
    with conn:
        conn.execute("UPDATE credentials SET help_message = help_message || ?", ("\x1b[5m",))
    conn.close()
    outputs = [invoke("creds", "list"), invoke("creds", "show", hostile), invoke("creds", "delete", hostile, "--yes")]
    for result in outputs:
        assert result.code == 0, result.err
        assert "Evil" in result.out
        assert not any(c in result.out + result.err for c in "\x1b\x07\x9b"), result.out
