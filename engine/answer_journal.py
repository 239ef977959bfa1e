"""Infobip's answers, on disk the moment they arrive, until the database has them.

Between Infobip accepting a request and the writer recording that, a killed `serve` forgets the
answer. Appending the answer to this journal (fsynced) before the writer is asked to record it
shrinks that window to the journal write; the next sender replays the journal (recording is
idempotent) before it asks Infobip's message logs about what a dead sender left in flight.
docs/architecture.md, "The outbox".

The file is one record per line, each checking itself, so that a torn or damaged line is
skipped without hiding its neighbours:

    \\n<crc32 of the JSON, 8 hex digits> {"v": 2, "outcomes": [[our messageId, row id, status, ...], ...]}\\n

- every record starts with a newline of its own: one torn by a kill or a full disk (no newline
  at its end) cannot run into the next record;
- the checksum covers the JSON, so a line that still parses but was damaged is refused too;
- a write is complete or undone: the record is written whole (short writes continued, a write
  that makes no progress is an error), fsynced, and a failed one is cut off again;
- each outcome names the reply by its row id AND our messageId: a journal left beside this file
  by another database (a copy restored over it, a file moved in) matches no reply
  (`store/outbox.py: record_journaled`). Lines of smsdesk 0.3 (a bare JSON list, row ids only)
  are skipped for the same reason: their replies are looked up in Infobip's logs instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from pathlib import Path

from smsdesk.store.paths import beside_database, beside_database_name, write_all

log = logging.getLogger("smsdesk.outbox")
VERSION = 2


def encode(entries: list[tuple]) -> bytes:
    """One record: entries are (our messageId, *SendOutcome)."""
    body = json.dumps({"v": VERSION, "outcomes": [list(entry) for entry in entries]},
                      separators=(",", ":"), ensure_ascii=True).encode()
    return b"\n%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> list[tuple] | None:
    """The entries of one line, or None when it is torn, damaged or not ours."""
    crc, _, body = line.strip().partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(body):
            return None
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("outcomes"), list):
        return None
    entries = []
    for item in data["outcomes"]:
        if not (isinstance(item, list) and len(item) == 7 and isinstance(item[1], int)
                and all(isinstance(value, str) for value in (item[0], *item[2:6]))
                and isinstance(item[6], int | float)):
            return None
        entries.append(tuple(item))
    return entries




class AnswerJournal:
    def __init__(self, db_path: Path) -> None:
        self.path = beside_database(db_path, "-answers.journal")
        # Where smsdesk 0.2 wrote it when the database's name is a symlink: read (first) and cleared too.
        earlier = beside_database_name(db_path, "-answers.journal")
        self._paths = [self.path] if earlier is None else [earlier, self.path]
        self._written = True  # unknown at start: a dead sender may have left one
        self.skipped = 0  # lines the last read could not use

    def append(self, entries: list[tuple]) -> bool:
        """One record per answered request; entries are (our messageId, *SendOutcome). True once
        it is on disk; a failure is logged, never raised (the answer is still recorded in the
        database as usual, and a reply whose answer was not kept is looked up in Infobip's logs
        if the sender dies before recording it)."""
        data = encode(entries)
        self._written = True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("could not journal %d reply outcomes (%s)", len(entries), exc)
            return False
        try:
            start = os.fstat(fd).st_size
            try:
                write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                log.warning("could not journal %d reply outcomes (%s)", len(entries), exc)
                # No half record left behind (one sender writes here); if this fails too, it stays
                # torn: its checksum refuses it, and the next record's own newline ends it.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                return False
            if start == 0:
                _sync_directory(self.path.parent)  # a new file: its name must survive a crash too
            return True
        finally:
            os.close(fd)

    def read(self) -> list[tuple]:
        """Every journaled entry (our messageId, *SendOutcome); a torn, damaged or foreign line
        is skipped (counted in `skipped`), and the lines after it are read as usual."""
        entries: list[tuple] = []
        self.skipped = 0
        for path in self._paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:  # unreadable (another user's): its replies are looked up, not blocked
                log.error("cannot read the answer journal %s (%s); its replies are looked up in Infobip's "
                          "message logs", path, exc)
                continue
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                found = decode(line)
                if found is None:
                    self.skipped += 1
                    continue
                entries.extend(found)
        if self.skipped:
            log.warning("skipped %d torn or unreadable lines of the answer journal; their replies are looked up "
                        "in Infobip's message logs", self.skipped)
        return entries

    def clear(self) -> None:
        if not self._written:
            return  # nothing appended since the last clear: no file to remove every round
        self._written = False
        for path in self._paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not clear the answer journal %s (%s)", path, exc)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
