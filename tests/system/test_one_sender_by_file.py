"""One sender by the database file itself (issue 24, point 4), and one name per served file.

Before, the exclusion was a flock on `<db>-sender.lock`: delete that file and a second `serve`
started and sent again the first one's replies in flight; reach the database through a hard link
and two senders ran with two WALs (40 acknowledged webhooks were lost). Now the lock is on the
database file (store/serve_locks.py). Real `smsdesk serve` processes on real files.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store import serve_locks as sender_lock_module
from smsdesk.store.serve_locks import DatabaseServedByAnotherName, SenderLock, SenderLockHeld, ServedName
from tests.support.cli import SCRIPT
from tests.support.serve_process import LiveServe

pytestmark = pytest.mark.skipif(not sender_lock_module._OFD, reason="needs Linux's open-file-description locks")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path, home: Path) -> Path:
    return make_db(tmp_path / "data" / "smsdesk.db", shop_credential())


@pytest.fixture
def first(db: Path, tmp_path: Path) -> Iterator[LiveServe]:
    server = LiveServe(db, tmp_path / "first.log")
    try:
        yield server
    finally:
        server.stop()


def serve_once(name: Path | str, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A second `smsdesk serve` that should refuse to start (killed after 20 s if it does start)."""
    env = {key: value for key, value in os.environ.items() if key != "SMSDESK_DB"}
    return subprocess.run([str(SCRIPT), "--db", str(name), "serve", "--port", "0", "--insecure-no-auth", *extra],
                          capture_output=True, text=True, timeout=20, cwd=cwd, env=env)


def refused_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines  # one clear line, no traceback
    return lines[0]


def test_deleting_the_lock_file_does_not_let_a_second_sender_start(db: Path, first: LiveServe) -> None:
    lock_file = db.with_name("smsdesk.db-sender.lock")
    assert lock_file.exists()
    lock_file.unlink()
    line = refused_line(serve_once(db))
    assert line == ("smsdesk: another smsdesk serve is sending replies from this database; stop it, or start "
                    "this one with --no-send to only receive")


@pytest.mark.parametrize("extra", [(), ("--no-send",)], ids=["sender", "receiver only"])
def test_a_hard_link_to_a_served_database_is_refused(db: Path, first: LiveServe, tmp_path: Path,
                                                    extra: tuple[str, ...]) -> None:
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    for link in (db.with_name("second-name.db"), other_dir / "smsdesk.db"):
        os.link(db, link)
        line = refused_line(serve_once(link, *extra))
        assert line.startswith(f"smsdesk: {link} is a second name of a database file that another smsdesk serve "
                               "runs on by another name")
        assert not Path(f"{link}-wal").exists()  # SQLite never opened it by that name
    # The same name (and a symlink to it, which SQLite follows) is no second name: a receiver starts.
    os.symlink(db, tmp_path / "desk.db")
    receiver = LiveServe(tmp_path / "desk.db", tmp_path / "receiver.log", "--no-send")
    receiver.stop()


def test_a_killed_sender_lets_the_next_one_start(db: Path, tmp_path: Path) -> None:
    first = LiveServe(db, tmp_path / "first.log")
    try:
        assert "another smsdesk serve (pid" in refused_line(serve_once(db))
        writer = first.writer_pid()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    second = LiveServe(db, tmp_path / "second.log")  # waits for its /healthz: it started
    try:
        assert second.writer_pid() not in (None, writer)
        link = db.with_name("hard-link.db")
        os.link(db, link)
        assert "second name of a database file" in refused_line(serve_once(link))
    finally:
        second.stop()
    # Nothing is left holding the file: a sender by the other name starts now.
    third = LiveServe(link, tmp_path / "third.log")
    third.stop()


# ---- the locks and SQLite's own ------------------------------------------------------------------

PENDING_BYTE = 0x40000000
SHARED_FIRST, SHARED_SIZE = PENDING_BYTE + 2, 510

GETLK_SCRIPT = textwrap.dedent("""
    import fcntl, os, struct, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    request = struct.pack("@hhqqi", fcntl.F_WRLCK, 0, int(sys.argv[2]), int(sys.argv[3]), 0).ljust(64, b"\\0")
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    print("free" if struct.unpack_from("@hhqqi", answer)[0] == fcntl.F_UNLCK else "held")
""")


def sqlite_shared_lock_seen_from_outside(db: Path) -> str:
    """Whether another process sees a lock on SQLite's SHARED range of the database file."""
    return subprocess.run([sys.executable, "-c", GETLK_SCRIPT, str(db), str(SHARED_FIRST), str(SHARED_SIZE)],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_locks_leave_sqlites_own_alone(db: Path) -> None:
    """The sender's and the name's locks lie far past SQLite's lock bytes: SQLite in another
    process reads and writes as usual. And giving the locks back never closes a descriptor of
    the file while SQLite has it open here: that would drop SQLite's own locks in this process."""
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM credentials").fetchone()  # a read transaction: SQLite's SHARED lock
        assert sqlite_shared_lock_seen_from_outside(db) == "held"
        lock = SenderLock(db)
        lock.acquire()
        script = textwrap.dedent("""
            import sqlite3, sys
            conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS outside (n INTEGER)")
            conn.execute("INSERT INTO outside VALUES (1)")
            conn.execute("COMMIT")
            print(conn.execute("SELECT COUNT(*) FROM outside").fetchone()[0])
        """)
        written = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=20)
        assert written.stdout.strip() == "1", written.stderr
        lock.release()
        assert sqlite_shared_lock_seen_from_outside(db) == "held"  # still ours: nothing was closed under SQLite
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert sqlite_shared_lock_seen_from_outside(db) == "free"
    lock = SenderLock(db)
    lock.acquire()  # the descriptor kept above is used again, or closed now that nothing else has the file
    lock.release()


def test_in_one_process_the_locks_behave_as_across_processes(db: Path, tmp_path: Path) -> None:
    first = SenderLock(db)
    first.acquire()
    try:
        with pytest.raises(SenderLockHeld, match=rf"pid {os.getpid()}\)"):
            SenderLock(db).acquire()
        db.with_name("smsdesk.db-sender.lock").unlink()
        with pytest.raises(SenderLockHeld, match=r"^another smsdesk serve is sending"):
            SenderLock(db).acquire()
        link = tmp_path / "linked.db"
        os.link(db, link)
        with pytest.raises(DatabaseServedByAnotherName):
            ServedName(link).acquire()
        receiver = ServedName(db)  # the same name: many receivers may serve it
        receiver.acquire()
        receiver.release()
    finally:
        first.release()
    again = ServedName(link)  # nobody serves the file by the first name now
    again.acquire()
    try:
        with pytest.raises(DatabaseServedByAnotherName):
            SenderLock(db).acquire()
    finally:
        again.release()
