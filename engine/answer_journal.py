"""Infobip's answers, on disk the moment they arrive, until the database has them.

Between Infobip accepting a request and the writer recording that, a killed `serve` forgets the
answer and the next start sends those replies again. Appending the answer to this journal (one
JSON line, fsynced) before the writer is asked to record it shrinks that window to the journal
write; the next sender replays the journal (recording is idempotent) before it requeues what a
dead sender left `sending`. docs/architecture.md, "The outbox".
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from smsdesk.store.paths import beside_database, beside_database_name

log = logging.getLogger("smsdesk.outbox")


class AnswerJournal:
    def __init__(self, db_path: Path) -> None:
        self.path = beside_database(db_path, "-answers.journal")
        # Where smsdesk 0.2 wrote it when the database's name is a symlink: read (first) and cleared too.
        earlier = beside_database_name(db_path, "-answers.journal")
        self._paths = [self.path] if earlier is None else [earlier, self.path]
        self._written = True  # unknown at start: a dead sender may have left one

    def append(self, outcomes: list[tuple]) -> None:
        """One line per answered request; a failure to write is logged, never raised (the
        answer is still recorded in the database as usual)."""
        try:
            self._written = True
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (json.dumps(outcomes) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("could not journal %d reply outcomes (%s)", len(outcomes), exc)

    def read(self) -> list[tuple]:
        """Every journaled outcome; a torn last line (a kill mid-write) is skipped."""
        outcomes: list[tuple] = []
        for path in self._paths:
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            except OSError as exc:  # unreadable (another user's): its replies are sent again, not blocked
                log.error("cannot read the answer journal %s (%s); the replies it holds may be sent again",
                          path, exc)
                continue
            for line in text.splitlines():
                try:
                    outcomes.extend(tuple(item) for item in json.loads(line))
                except (ValueError, TypeError):
                    continue
        return outcomes

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
