"""The files that belong to a database are found by the file, not by the name it was opened by."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smsdesk.engine.answer_journal import AnswerJournal
from smsdesk.engine.poller import spool_dir
from smsdesk.store.sender_lock import SenderLock, SenderLockHeld


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
