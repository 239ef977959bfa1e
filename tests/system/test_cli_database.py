"""Every CLI command closes what it opens, and an SQLite error is one line with exit status 1."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.simulator.sample_data import make_db, shop_credential
from tests.support.cli import run_script

LOCKED = "database is locked (another process holds it); retry\n"


@contextmanager
def locked(path: Path, *, readers_too: bool) -> Iterator[None]:
    """Another connection holds the write lock; with `readers_too`, readers are kept out as well
    (EXCLUSIVE locking mode in WAL), so the command fails opening the file, else mid-command."""
    conn = sqlite3.connect(path, isolation_level=None)
    if readers_too:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE credentials SET version = version")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def open_descriptors(path: Path) -> int:
    """Descriptors of this process open on the database file or its WAL."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(path))
    return count


@pytest.mark.parametrize("args", [
    ("creds", "list"), ("creds", "list", "--json"), ("creds", "show", "Shop"), ("export", "messages"),
    ("consent", "verify"),
])
def test_commands_close_the_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    before = open_descriptors(db)
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    assert open_descriptors(db) == before


@pytest.mark.parametrize(("args", "readers_too"), [
    (("creds", "list"), True),  # refused at open
    (("creds", "delete", "Shop", "--yes"), False),  # mid-command
])
def test_a_database_locked_by_another_process_is_one_line(tmp_path: Path, args: tuple[str, ...],
                                                         readers_too: bool) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    with locked(db, readers_too=readers_too):
        done = run_script("--db", str(db), *args, timeout=60)
    assert (done.code, done.out) == (1, "")
    assert done.err.startswith("smsdesk: ") and done.err.endswith(LOCKED), done.err
    assert done.err.count("\n") == 1 and "Traceback" not in done.err
