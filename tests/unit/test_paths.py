"""The files that belong to a database are found by the file, not by the name it was opened by."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from smsdesk.engine.answer_journal import AnswerJournal, encode
from smsdesk.engine.poller import PulledBatch, Spool, spool_dir
from smsdesk.store.paths import beside_database_name
from smsdesk.store.serve_locks import SenderLock, SenderLockHeld


def test_a_symlink_a_relative_name_and_the_file_share_the_lock_journal_and_spool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "data" / "smsdesk.db"
    real.parent.mkdir()
    real.write_bytes(b"")
    (tmp_path / "desk.db").symlink_to(real)
    monkeypatch.chdir(real.parent)
    names = [real, tmp_path / "desk.db", Path("smsdesk.db"), Path("../desk.db")]
    assert {SenderLock(name).path for name in names} == {real.with_name("smsdesk.db-sender.lock")}
    assert {AnswerJournal(name).path for name in names} == {real.with_name("smsdesk.db-answers.journal")}
    assert {spool_dir(name) for name in names} == {real.with_name("smsdesk.db.pulled")}


def test_the_lock_is_exclusive_across_names(tmp_path: Path) -> None:
    real = tmp_path / "smsdesk.db"
    real.write_bytes(b"")
    os.symlink(real, tmp_path / "other.db")
    first, second = SenderLock(real), SenderLock(tmp_path / "other.db")
    first.acquire()
    try:
        with pytest.raises(SenderLockHeld, match=f"pid {os.getpid()}"):
            second.acquire()
    finally:
        first.release()
        second.release()


# --- what smsdesk 0.2 left beside a symlink's name ----------------------------------------------


def test_the_earlier_place_is_only_beside_a_symlink_to_the_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "data" / "smsdesk.db"
    real.parent.mkdir()
    real.write_bytes(b"")
    (tmp_path / "desk.db").symlink_to(real)
    (tmp_path / "link").symlink_to(real.parent, target_is_directory=True)
    monkeypatch.chdir(real.parent)
    for same_place in (real, Path("smsdesk.db"), tmp_path / "link" / "smsdesk.db"):
        assert beside_database_name(same_place, "-sender.lock") is None
    assert beside_database_name(tmp_path / "desk.db", "-sender.lock") == tmp_path / "desk.db-sender.lock"


def test_a_lock_taken_by_smsdesk_0_2_beside_the_symlink_refuses_this_sender(tmp_path: Path) -> None:
    real = tmp_path / "smsdesk.db"
    real.write_bytes(b"")
    (tmp_path / "desk.db").symlink_to(real)
    fd = os.open(tmp_path / "desk.db-sender.lock", os.O_RDWR | os.O_CREAT, 0o600)  # 0.2's lock, by the name
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242\n")
        with pytest.raises(SenderLockHeld, match="pid 4242"):
            SenderLock(tmp_path / "desk.db").acquire()
    finally:
        os.close(fd)
    lock = SenderLock(tmp_path / "desk.db")
    lock.acquire()  # both places, released together
    try:
        with pytest.raises(SenderLockHeld):
            SenderLock(real).acquire()
    finally:
        lock.release()
    SenderLock(real).acquire()


def test_a_journal_and_a_spool_left_beside_the_symlink_are_read(tmp_path: Path) -> None:
    real = tmp_path / "smsdesk.db"
    real.write_bytes(b"")
    name = tmp_path / "desk.db"
    name.symlink_to(real)
    # A line of 0.3 (row ids alone: cannot be matched to this database's replies, skipped) and one
    # that names its reply by id and messageId, as the journal is written now.
    (tmp_path / "desk.db-answers.journal").write_bytes(
        json.dumps([[1, "sent", "ib-1", "PENDING_ACCEPTED", "", 0.0]]).encode() + b"\n"
        + encode([("ours-1", 1, "sent", "ib-1", "PENDING_ACCEPTED", "", 0.0)]))
    journal = AnswerJournal(name)
    journal.append([("ours-2", 2, "sent", "ib-2", "PENDING_ACCEPTED", "", 0.0)])
    assert [outcome[:2] for outcome in journal.read()] == [("ours-1", 1), ("ours-2", 2)]
    assert journal.skipped == 1
    journal.clear()
    assert not (tmp_path / "desk.db-answers.journal").exists() and not journal.path.exists()

    earlier = tmp_path / "desk.db.pulled"
    earlier.mkdir()
    body = {"kind": "inbox", "credential_id": 1, "credential": "Shop", "results": [{"messageId": "stop-1"}]}
    (earlier / "00000000000000000001-1-000000-inbox.json").write_text(json.dumps(body))
    spool = Spool(spool_dir(name), beside_database_name(name, ".pulled"))
    spool.write(PulledBatch("inbox", 1, "Shop", [{"messageId": "later"}]))
    loaded = spool.load()
    assert [batch.results[0]["messageId"] for batch in loaded] == ["stop-1", "later"]  # oldest first
    for batch in loaded:
        spool.remove(batch)
    assert list(earlier.iterdir()) == [] and list(spool_dir(name).iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="needs root and chattr")
def test_a_symlink_in_a_directory_that_cannot_be_written_still_starts_a_sender(tmp_path: Path) -> None:
    """0.2's lock beside the symlink is created only where it can be: a symlink in a directory
    nobody may write (immutable, even for root) must not stop serve from starting."""
    real = tmp_path / "data" / "smsdesk.db"
    real.parent.mkdir()
    real.write_bytes(b"")
    config = tmp_path / "etc"
    config.mkdir()
    (config / "smsdesk.db").symlink_to(real)
    if subprocess.run(["chattr", "+i", str(config)], capture_output=True).returncode != 0:
        pytest.skip("file system without the immutable attribute")
    try:
        lock = SenderLock(config / "smsdesk.db")
        lock.acquire()
        assert lock.held and not (config / "smsdesk.db-sender.lock").exists()
        lock.release()
    finally:
        subprocess.run(["chattr", "-i", str(config)], check=True)


def test_an_unreadable_earlier_journal_is_skipped_not_raised(tmp_path: Path) -> None:
    real = tmp_path / "smsdesk.db"
    real.write_bytes(b"")
    (tmp_path / "desk.db").symlink_to(real)
    (tmp_path / "desk.db-answers.journal").mkdir()  # cannot be read as a file
    journal = AnswerJournal(tmp_path / "desk.db")
    journal.append([("ours-2", 2, "sent", "ib-2", "PENDING_ACCEPTED", "", 0.0)])
    assert [outcome[1] for outcome in journal.read()] == [2]
