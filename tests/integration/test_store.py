"""The SQLite store on real files: CRUD, uniqueness, optimistic concurrency, audit, migrations,
file modes, WAL, change detection and all-or-nothing import."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from smsdesk.domain import credential_records
from smsdesk.domain.credential import Credential
from smsdesk.store import credentials as repo
from smsdesk.store.db import apply_migrations, connect, data_version, schema_version, transaction
from smsdesk.store.errors import ConflictError, DuplicateError, NotFoundError
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.store.queries import MessageFilter, page_messages
from smsdesk.store.schema import LATEST_VERSION, MIGRATIONS
from smsdesk.usecases.credentials import remove_credential, save_credential
from tests.support.store import create_old_credential, full_record, record, secret_key


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def db(path: Path) -> Iterator[sqlite_utils.Database]:
    database = connect(path)
    yield database
    database.close()


@pytest.fixture
def other(path: Path, db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A second connection to the same file: another TUI session or process."""
    database = connect(path)
    yield database
    database.close()


def cred(n: int, **changes: object) -> Credential:
    return Credential.model_validate(record(n, **changes))


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def audit_rows(db: sqlite_utils.Database) -> list[dict[str, object]]:
    return [dict(r) for r in db.query("SELECT * FROM audit ORDER BY id")]


# -- CRUD --------------------------------------------------------------------------------------


def test_create_then_read_back_every_field(db: sqlite_utils.Database) -> None:
    wanted = Credential.model_validate(full_record(1))
    stored = repo.create_credential(db, wanted)
    assert stored.version == 1
    assert stored.id > 0
    assert stored.created_at == stored.updated_at
    datetime.fromisoformat(stored.created_at)
    assert stored.to_credential() == wanted
    assert repo.get_credential(db, wanted.name).to_credential() == wanted
    assert repo.get_credential_by_id(db, stored.id) == stored


def test_get_by_name_ignores_case(db: sqlite_utils.Database) -> None:
    repo.create_credential(db, cred(1, name="Shop UK"))
    assert repo.get_credential(db, "shop uk").name == "Shop UK"
    assert repo.get_credential(db, "SHOP UK").name == "Shop UK"


@pytest.mark.parametrize("missing", ["nobody", "", "Shop UK "])
def test_get_unknown_name(db: sqlite_utils.Database, missing: str) -> None:
    repo.create_credential(db, cred(1, name="Shop UK"))
    with pytest.raises(NotFoundError, match="no credential named"):
        repo.get_credential(db, missing)


def test_get_unknown_id(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError):
        repo.get_credential_by_id(db, 12345)


def test_list_sorted_by_name_ignoring_case(db: sqlite_utils.Database) -> None:
    for n, name in enumerate(["beta", "Alpha", "gamma", "Delta"]):
        repo.create_credential(db, cred(n, name=name))
    assert [c.name for c in repo.list_credentials(db.conn)] == ["Alpha", "beta", "Delta", "gamma"]


def test_list_empty(db: sqlite_utils.Database) -> None:
    assert repo.list_credentials(db.conn) == []


@pytest.mark.parametrize(("first", "clash"), [("Shop UK", "Shop UK"), ("Shop UK", "shop uk"), ("Shop UK", "SHOP UK"),
                                              ("Shop UK", "sHoP uK"), ("Straße", "STRASSE")])
def test_name_unique_ignoring_case(db: sqlite_utils.Database, first: str, clash: str) -> None:
    repo.create_credential(db, cred(1, name=first))
    with pytest.raises(DuplicateError) as caught:
        repo.create_credential(db, cred(2, name=clash))
    assert caught.value.field == "name"
    assert repr(first) in caught.value.message
    assert len(repo.list_credentials(db.conn)) == 1


def test_similar_names_are_distinct(db: sqlite_utils.Database) -> None:
    for n, name in enumerate(["Shop UK", "Shop UK2", "Shop-UK"]):
        repo.create_credential(db, cred(n, name=name))
    assert len(repo.list_credentials(db.conn)) == 3


def test_inbound_number_unique_names_the_other_credential(db: sqlite_utils.Database) -> None:
    first = repo.create_credential(db, cred(1, name="Owner"))
    with pytest.raises(DuplicateError) as caught:
        # a different spelling of the same number normalises to the same E.164
        repo.create_credential(db, cred(2, inbound_number=first.inbound_number.removeprefix("+")))
    assert caught.value.field == "inbound_number"
    assert "'Owner'" in caught.value.message
    assert first.inbound_number in caught.value.message


def test_inbound_number_taken_on_update(db: sqlite_utils.Database) -> None:
    owner = repo.create_credential(db, cred(1, name="Owner"))
    second = repo.create_credential(db, cred(2))
    with pytest.raises(DuplicateError) as caught:
        repo.update_credential(db, second.id, cred(2, inbound_number=owner.inbound_number), second.version)
    assert caught.value.field == "inbound_number"
    assert "'Owner'" in caught.value.message
    assert repo.get_credential_by_id(db, second.id) == second


def test_many_credentials_without_inbound_number(db: sqlite_utils.Database) -> None:
    for n in range(3):
        repo.create_credential(db, cred(n, inbound_number=""))
    assert len(repo.list_credentials(db.conn)) == 3


def test_update_bumps_version_and_keeps_id(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1))
    saved = repo.update_credential(db, stored.id, cred(1, sandbox="changed", validity_period_hours=6), stored.version)
    assert saved.id == stored.id
    assert saved.version == stored.version + 1
    assert (saved.sandbox, saved.validity_period_hours) == ("changed", 6)
    assert saved.created_at == stored.created_at
    assert saved.updated_at >= stored.updated_at


def test_rename_to_other_case_of_own_name(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1, name="shop"))
    saved = repo.update_credential(db, stored.id, cred(1, name="SHOP"), stored.version)
    assert saved.name == "SHOP"
    assert repo.get_credential(db, "shop").id == stored.id


def test_rename_onto_another_name_is_a_duplicate(db: sqlite_utils.Database) -> None:
    repo.create_credential(db, cred(1, name="Taken"))
    second = repo.create_credential(db, cred(2))
    with pytest.raises(DuplicateError) as caught:
        repo.update_credential(db, second.id, cred(2, name="taken"), second.version)
    assert caught.value.field == "name"


def test_update_without_changes_keeps_version(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1))
    again = repo.update_credential(db, stored.id, stored.to_credential(), stored.version)
    assert again.version == stored.version
    assert [r["action"] for r in audit_rows(db)] == ["create"]


def test_save_over_a_newer_version_conflicts(db: sqlite_utils.Database, other: sqlite_utils.Database) -> None:
    mine = repo.create_credential(db, cred(1))
    theirs = repo.get_credential(other, mine.name)
    repo.update_credential(other, theirs.id, cred(1, help_message="theirs"), theirs.version)
    with pytest.raises(ConflictError, match="changed by someone else"):
        repo.update_credential(db, mine.id, cred(1, help_message="mine"), mine.version)
    assert repo.get_credential(db, mine.name).help_message == "theirs"


def test_save_over_a_deleted_credential_conflicts(db: sqlite_utils.Database, other: sqlite_utils.Database) -> None:
    mine = repo.create_credential(db, cred(1))
    repo.delete_credential(other, mine.id, mine.version)
    with pytest.raises(ConflictError, match="deleted"):
        repo.update_credential(db, mine.id, cred(1, help_message="mine"), mine.version)
    assert repo.list_credentials(db.conn) == []


def test_delete(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1))
    kept = repo.create_credential(db, cred(2))
    repo.delete_credential(db, stored.id, stored.version)
    assert repo.list_credentials(db.conn) == [kept]
    with pytest.raises(NotFoundError):
        repo.get_credential(db, stored.name)


def test_delete_frees_name_and_number(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1))
    repo.delete_credential(db, stored.id)
    assert repo.create_credential(db, cred(1)).name == stored.name


def test_delete_stale_version_conflicts(db: sqlite_utils.Database, other: sqlite_utils.Database) -> None:
    mine = repo.create_credential(db, cred(1))
    theirs = repo.get_credential(other, mine.name)
    repo.update_credential(other, theirs.id, cred(1, help_message="theirs"), theirs.version)
    with pytest.raises(ConflictError, match="changed by someone else"):
        repo.delete_credential(db, mine.id, mine.version)
    assert repo.get_credential(db, mine.name).help_message == "theirs"


def test_delete_missing(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError):
        repo.delete_credential(db, 999)


# -- audit -------------------------------------------------------------------------------------


def test_audit_records_create_update_delete(db: sqlite_utils.Database) -> None:
    """An operator's changes (usecases/credentials.py) name the OS user in the audit."""
    before = datetime.now(UTC)
    stored = save_credential(db, cred(1))
    saved = save_credential(db, cred(1, api_key=secret_key(99), help_message="new"), stored)
    remove_credential(db, saved.id, saved.version)
    rows = audit_rows(db)
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    assert {r["credential_id"] for r in rows} == {stored.id}
    assert {r["credential_name"] for r in rows} == {stored.name}
    assert {r["os_user"] for r in rows} == {getpass.getuser()}
    for row in rows:
        at = datetime.fromisoformat(str(row["at"]))
        assert at.tzinfo is not None
        assert before.replace(microsecond=0) <= at <= datetime.now(UTC)
    assert set(json.loads(str(rows[0]["fields"]))) == set(Credential.model_fields)
    assert json.loads(str(rows[1]["fields"])) == ["api_key", "help_message"]
    assert json.loads(str(rows[2]["fields"])) == []


def test_the_audit_names_whoever_the_store_is_told(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1), by="alice")
    repo.update_credential(db, stored.id, cred(1, help_message="new"), stored.version, by="bob")
    repo.import_credentials(db, [record(5)], by="carol")
    repo.delete_credential(db, stored.id, by="dave")
    repo.create_credential(db, cred(2))  # sample data, benchmarks: no person asked
    assert [(r["action"], r["os_user"]) for r in audit_rows(db)] == [
        ("create", "alice"), ("update", "bob"), ("create", "carol"), ("delete", "dave"),
        ("create", repo.UNATTENDED)]


def test_audit_never_holds_a_secret(db: sqlite_utils.Database, path: Path) -> None:
    first, second, third = secret_key(1), secret_key(2), secret_key(3)
    stored = repo.create_credential(db, cred(1, api_key=first))
    stored = repo.update_credential(db, stored.id, cred(1, api_key=second), stored.version)
    stored = repo.update_credential(db, stored.id, cred(1, api_key=third, name=f"renamed {stored.name}"),
                                    stored.version)
    repo.import_credentials(db, [record(5)])
    repo.delete_credential(db, stored.id, stored.version)
    rows = audit_rows(db)
    assert len(rows) == 5
    for row in rows:
        for column, value in row.items():
            for key in (first, second, third, secret_key(5)):
                assert key not in str(value), f"api key leaked into audit.{column}"
                assert key[-8:] not in str(value), f"part of an api key leaked into audit.{column}"


# -- schema, migrations ------------------------------------------------------------------------


def test_fresh_database_is_at_latest_version(db: sqlite_utils.Database) -> None:
    assert schema_version(db) == LATEST_VERSION
    versions = [r["version"] for r in db.query("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]


def test_migration_from_v1_keeps_data(path: Path) -> None:
    old = connect(path, upto=1)
    assert schema_version(old) == 1
    assert "messages" not in old.table_names()
    cred = Credential.model_validate(full_record(1))
    # Written as smsdesk 1 wrote it: only the columns version 1 had (the fields of migration 6 are newer).
    repo._audit(old.conn, "create", create_old_credential(old, cred), cred.name, (), "smsdesk")
    old.conn.commit()
    old.close()

    new = connect(path)
    try:
        assert schema_version(new) == LATEST_VERSION > 1
        assert {"messages", "consent", "outbox", "review_queue"} <= set(new.table_names())
        [stored] = repo.list_credentials(new.conn)
        # the fields added later take their defaults
        assert stored.to_credential() == cred
        assert [r["action"] for r in audit_rows(new)] == ["create"]
        # and the upgraded database works for writes
        repo.update_credential(new, stored.id, stored.to_credential().model_copy(update={"sandbox": "x"}),
                               stored.version)
    finally:
        new.close()


def test_migration_to_v3_counts_the_stored_traffic(path: Path) -> None:
    """Messages stored before the traffic table existed are in its counts after the upgrade."""
    old = connect(path, upto=2)
    old.conn.executemany(
        "INSERT INTO messages (message_id, received_at, stored_at, from_number, to_number, text, normalized, action) "
        "VALUES (?, '', ?, '+41790000001', '+447491163443', 'x', 'X', ?)",
        [("a", "2026-11-27T10:15:01.000+00:00", "opt-out"), ("b", "2026-11-27T10:15:59.999+00:00", "opt-out"),
         ("c", "2026-11-27T10:16:00.000+00:00", "opt-out"), ("d", "2026-11-27T10:15:30.000+00:00", "default")])
    old.close()
    new = connect(path)
    try:
        assert sorted(new.conn.execute("SELECT minute, action, count FROM traffic")) == [
            ("2026-11-27T10:15", "default", 1), ("2026-11-27T10:15", "opt-out", 2), ("2026-11-27T10:16", "opt-out", 1)]
        assert "messages_stored_at" not in {ix.name for ix in new["messages"].indexes}
    finally:
        new.close()


def test_migration_to_v8_drops_the_index_no_query_used(path: Path) -> None:
    old = connect(path, upto=7)
    old.conn.execute(
        "INSERT INTO messages (message_id, received_at, stored_at, credential, from_number, to_number, text, "
        "normalized, action) VALUES ('a', '', '', 'Shop', '+41790000001', '+447491163443', 'x', 'X', 'default')")
    assert "messages_credential" in {ix.name for ix in old["messages"].indexes}
    old.close()
    new = connect(path, upto=17)
    try:
        assert "messages_credential" not in {ix.name for ix in new["messages"].indexes}
    finally:
        new.close()
    latest = connect(path)  # schema 18 creates it again: `cred:` reads each name's range of it
    try:
        assert "messages_credential" in {ix.name for ix in latest["messages"].indexes}
        assert [m.credential for m in page_messages(latest.conn, filters=MessageFilter(credential="sh"))] == ["Shop"]
    finally:
        latest.close()


def test_migrating_again_is_a_no_op(db: sqlite_utils.Database) -> None:
    rows = list(db.query("SELECT * FROM schema_version"))
    assert apply_migrations(db) == LATEST_VERSION
    assert list(db.query("SELECT * FROM schema_version")) == rows


def test_database_from_a_newer_smsdesk_is_refused(path: Path, db: sqlite_utils.Database) -> None:
    db.execute("INSERT INTO schema_version VALUES (?, 'future', 'x')", [LATEST_VERSION + 1])
    with pytest.raises(RuntimeError, match="newer"):
        connect(path)


def test_sqlite_file_of_another_program_is_left_alone(path: Path) -> None:
    foreign = sqlite3.connect(path)
    foreign.execute("CREATE TABLE notes (body TEXT)")
    foreign.commit()
    foreign.close()
    with pytest.raises(RuntimeError, match="not an smsdesk database"):
        connect(path)
    check = sqlite3.connect(path)
    assert [r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    check.close()


def test_not_a_database_file(path: Path) -> None:
    path.write_text("hello, I am a text file\n" * 10)
    with pytest.raises(sqlite3.DatabaseError):
        connect(path)


def test_wal_and_full_sync(path: Path, db: sqlite_utils.Database) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(path)  # WAL is a property of the file, not of our connection
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


# -- file and directory modes ------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask: the modes must not rely on the user's umask being strict."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_new_file_0600_in_new_dir_0700(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "made" / "by" / "smsdesk" / "data.db"
    database = connect(path)
    try:
        repo.create_credential(database, cred(1))  # a write: -wal and -shm exist now
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        sides = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in sides)
        assert [mode(p) for p in sides] == [0o600, 0o600]
    finally:
        database.close()


def test_existing_loose_file_is_tightened(path: Path, open_umask: None) -> None:
    connect(path).close()
    os.chmod(path, 0o644)
    connect(path).close()
    assert mode(path) == 0o600


@pytest.mark.parametrize("target", ["directory", "/dev/null"])
def test_a_path_that_is_no_regular_file_is_refused_untouched(tmp_path: Path, target: str) -> None:
    path = Path(target) if target.startswith("/") else tmp_path / target
    if not path.exists():
        path.mkdir(mode=0o755)
    before = path.stat()
    with pytest.raises(OSError, match="not a regular file"):
        connect(path)
    after = path.stat()
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)


def test_existing_directory_is_left_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    connect(tmp_path / "x.db").close()
    assert mode(tmp_path) == 0o755


# -- change detection --------------------------------------------------------------------------


def test_data_version_changes_when_another_connection_commits(
    db: sqlite_utils.Database, other: sqlite_utils.Database
) -> None:
    seen = data_version(db)
    assert data_version(db) == seen  # nothing happened
    repo.create_credential(other, cred(1))
    changed = data_version(db)
    assert changed != seen
    assert data_version(db) == changed
    repo.create_credential(db, cred(2))  # our own commit is not news to us
    assert data_version(db) == changed
    assert [c.name for c in repo.list_credentials(db.conn)] == [record(1)["name"], record(2)["name"]]


# -- import ------------------------------------------------------------------------------------


def names(db: sqlite_utils.Database) -> list[str]:
    return [c.name for c in repo.list_credentials(db.conn)]


def test_import_writes_every_record(db: sqlite_utils.Database) -> None:
    written = repo.import_credentials(db, [record(1), full_record(2), record(3)])
    assert written == [record(n)["name"] for n in (1, 2, 3)]
    assert names(db) == written
    assert repo.get_credential(db, full_record(2)["name"]).to_credential() == Credential.model_validate(
        full_record(2))


def test_import_nothing(db: sqlite_utils.Database) -> None:
    assert repo.import_credentials(db, []) == []
    assert names(db) == []


def test_import_one_bad_record_writes_nothing(db: sqlite_utils.Database) -> None:
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [record(1), record(2, base_url="http://evil.example"), record(3)])
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "base_url")]
    assert names(db) == []
    assert audit_rows(db) == []


def test_import_reports_every_bad_record(db: sqlite_utils.Database) -> None:
    records = [
        record(0, api_key="has space"),
        record(1),
        "not an object",
        record(3, sandbox="Bad", validity_period_hours=99),
        record(4, content_template_id="123456789012"),
        record(5, opt_in_keywords=["STOP"]),
        None,
    ]
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, records)
    assert sorted((p.index, p.field) for p in caught.value.problems) == [
        (0, "api_key"), (2, "record"), (3, "sandbox"), (3, "validity_period_hours"),
        (4, "content_template_id"), (5, "opt_out_keywords"), (6, "record"),
    ]
    assert "has space" not in str(caught.value)
    assert names(db) == []


def test_import_duplicate_names_inside_the_file(db: sqlite_utils.Database) -> None:
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [record(1, name="Twin"), record(2), record(3, name="TWIN")])
    problems = caught.value.problems
    assert [(p.index, p.field) for p in problems] == [(2, "name")]
    assert "record 0" in problems[0].message
    assert names(db) == []


def test_import_duplicate_numbers_inside_the_file(db: sqlite_utils.Database) -> None:
    number = record(1)["inbound_number"]
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [record(1), record(2, inbound_number=number.removeprefix("+"))])
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "inbound_number")]
    assert names(db) == []


def test_import_existing_name_without_replace(db: sqlite_utils.Database) -> None:
    existing = repo.create_credential(db, cred(1))
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [record(2), record(1, name=existing.name.upper(), sandbox="other"), record(3)])
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "name")]
    assert "--replace" in caught.value.problems[0].message
    assert repo.list_credentials(db.conn) == [existing]  # record 2, inserted before the clash, rolled back
    assert [r["action"] for r in audit_rows(db)] == ["create"]


def test_import_number_of_an_existing_credential(db: sqlite_utils.Database) -> None:
    owner = repo.create_credential(db, cred(1, name="Owner"))
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [record(2), record(3, inbound_number=owner.inbound_number)])
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "inbound_number")]
    assert "'Owner'" in caught.value.problems[0].message
    assert repo.list_credentials(db.conn) == [owner]


def test_import_replace_updates_and_inserts(db: sqlite_utils.Database) -> None:
    existing = repo.create_credential(db, cred(1))
    untouched = repo.create_credential(db, cred(2))
    written = repo.import_credentials(db, [record(1, sandbox="replaced"), record(3)], replace=True)
    assert written == [record(1)["name"], record(3)["name"]]
    updated = repo.get_credential(db, existing.name)
    assert (updated.id, updated.version, updated.sandbox) == (existing.id, existing.version + 1, "replaced")
    assert repo.get_credential(db, untouched.name) == untouched
    assert names(db) == [record(n)["name"] for n in (1, 2, 3)]


def test_import_replace_replaces_whole_record(db: sqlite_utils.Database) -> None:
    existing = repo.create_credential(db, Credential.model_validate(full_record(1)))
    repo.import_credentials(db, [record(1)], replace=True)
    updated = repo.get_credential(db, existing.name)
    assert updated.to_credential() == cred(1)  # fields absent from the file go back to defaults
    assert updated.opt_in_keywords != existing.opt_in_keywords


def test_import_replace_identical_keeps_version(db: sqlite_utils.Database) -> None:
    existing = repo.create_credential(db, cred(1))
    repo.import_credentials(db, [record(1)], replace=True)
    assert repo.get_credential(db, existing.name).version == existing.version


def test_import_replace_is_still_all_or_nothing(db: sqlite_utils.Database) -> None:
    first = repo.create_credential(db, cred(1))
    owner = repo.create_credential(db, cred(2, name="Owner"))
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(
            db, [record(1, sandbox="replaced"), record(3, inbound_number=owner.inbound_number)], replace=True)
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, "inbound_number")]
    assert repo.list_credentials(db.conn) == [owner, first]


def test_import_replace_still_rejects_duplicates_inside_the_file(db: sqlite_utils.Database) -> None:
    existing = repo.create_credential(db, cred(1))
    with pytest.raises(repo.ImportRejected):
        repo.import_credentials(db, [record(1, sandbox="a"), record(9, name=existing.name)], replace=True)
    assert repo.list_credentials(db.conn) == [existing]


# -- public dicts and the export round trip ----------------------------------------------------


def test_public_dict_masks_the_key(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, Credential.model_validate(full_record(1)))
    public = credential_records.public_dict(stored)
    assert list(public) == list(Credential.model_fields)
    assert stored.api_key not in str(public)
    assert public["api_key"].endswith(stored.api_key[-4:])
    assert credential_records.public_dict(stored, with_secrets=True)["api_key"] == stored.api_key


@pytest.mark.parametrize("key", ["k", "12345678", "exactly8"])
def test_short_keys_are_masked_completely(key: str) -> None:
    assert key[-1] not in credential_records.masked_key(key)


def test_masked_export_cannot_be_imported_over_real_keys(db: sqlite_utils.Database) -> None:
    stored = repo.create_credential(db, cred(1))
    with pytest.raises(repo.ImportRejected) as caught:
        repo.import_credentials(db, [credential_records.public_dict(stored)], replace=True)
    assert [p.field for p in caught.value.problems] == ["api_key"]
    assert repo.get_credential(db, stored.name).api_key == stored.api_key


def test_export_with_secrets_round_trips(db: sqlite_utils.Database, tmp_path: Path) -> None:
    repo.import_credentials(db, [full_record(1), record(2), record(3, inbound_number="", sender="")])
    exported = [credential_records.public_dict(c, with_secrets=True) for c in repo.list_credentials(db.conn)]
    fresh = connect(tmp_path / "fresh.db")
    try:
        repo.import_credentials(fresh, exported)
        imported = repo.list_credentials(fresh.conn)
        assert [credential_records.public_dict(c, with_secrets=True) for c in imported] == exported
    finally:
        fresh.close()


def credentials_version(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("SELECT version FROM credentials_version").fetchone()[0])


def test_migration_to_v10_counts_every_change_of_a_credential(path: Path) -> None:
    old = connect(path, upto=9)
    # A credential row of that schema (the model has fields it did not have yet, e.g. blocklist_sync).
    old.execute("INSERT INTO credentials (name, name_key, provider, sandbox, base_url, api_key, opt_in_keywords, "
                "opt_out_keywords, help_keywords, double_opt_in_keywords, inbound_keywords, created_at, updated_at) "
                "VALUES ('Old', 'old', 'infobip', 'prod', 'https://old.example.com', 'k', '[]', '[]', '[]', '[]', "
                "'[]', '2026-01-01T00:00:00.000+00:00', '2026-01-01T00:00:00.000+00:00')")
    old.close()
    db = connect(path)
    try:
        assert credentials_version(db) == 0
        created = repo.create_credential(db, cred(2))
        assert credentials_version(db) == 1
        repo.update_credential(db, created.id, cred(2, sender="NewSender"), created.version)
        assert credentials_version(db) == 2
        repo.delete_credential(db, created.id)
        assert credentials_version(db) == 3
    finally:
        db.close()


def test_the_route_table_sees_a_credential_changed_by_another_connection(
        db: sqlite_utils.Database, other: sqlite_utils.Database) -> None:
    number = cred(1).inbound_number
    assert number
    repo.create_credential(db, cred(1))
    routes = RouteTable()

    def action_of(message_id: str) -> str:
        with transaction(db) as conn:
            outcome, = store_messages(conn, routes, [InboundMessage(message_id, "+41790000001", number, "hello",
                                                                    "2026-11-30T10:00:00.000+00:00")])
        return str(outcome.action)

    assert action_of("before") != "unrouted"
    stored = repo.list_credentials(other.conn)[0]
    # Another process moves the programme to another number.
    repo.update_credential(other, stored.id, cred(1, inbound_number="+447491100000"), stored.version)
    assert action_of("after") == "unrouted"
    # With the version row deleted by hand nothing tells a change: the table is read every time.
    other.conn.execute("DELETE FROM credentials_version")
    moved = repo.list_credentials(other.conn)[0]
    repo.update_credential(other, moved.id, cred(1), moved.version)  # back to its number
    assert action_of("back") != "unrouted"


def test_migration_to_v11_leaves_default_out_of_the_action_index(path: Path) -> None:
    old = connect(path, upto=10)
    old.conn.executemany(
        "INSERT INTO messages (message_id, received_at, stored_at, from_number, to_number, text, normalized, action) "
        "VALUES (?, '', '', '+41790000001', '+447491163443', 'x', 'X', ?)",
        [("a", "default"), ("b", "opt-out"), ("c", "default"), ("d", "help")])
    old.close()
    new = connect(path)
    try:
        (sql,) = new.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_action'").fetchone()
        assert "WHERE action <> 'default'" in sql
        assert new.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for action, expected in (("opt-out", ["b"]), ("default", ["c", "a"]), ("help", ["d"])):
            assert [m.message_id for m in page_messages(new.conn, filters=MessageFilter(action=action))] == expected
    finally:
        new.close()
