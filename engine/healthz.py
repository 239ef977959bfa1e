"""What /healthz answers: 200 when a webhook would be stored now, 503 with the reason otherwise.

Checked on each request (at most once per FRESH_S; concurrent requests share one check):
  - the writer process runs and has the database open ("writer down" otherwise; no job is sent);
  - a writer job (store/storage_check.py, check_storage) gets the write lock within the busy timeout
    ("database locked"), can write ("database not writable") and has room to grow ("disk full");
  - the check answers within CHECK_TIMEOUT_S ("storage not answering").
The job stores nothing. It runs in the same writer as the webhooks, so it sees what they would.

Details that do not decide the status are added to the body, never to the status: `pull` (the
poller's last pull answer that was lost or could not be read, engine/poller.py) says that
messages Infobip's read-once inbox held may be gone; webhooks are stored all the same, so the
answer stays 200 for a load balancer.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable

from smsdesk.store.errors import StorageTrouble, classify
from smsdesk.store.storage_check import check_storage
from smsdesk.writer.jobs import Writer, WriterStopped, job

FRESH_S = 0.25  # a flood of /healthz costs at most four writer jobs a second
CHECK_TIMEOUT_S = 5.0  # longer than the writer's busy timeout (2 s), so a lock is reported as such
log = logging.getLogger("smsdesk.health")
# A detail of /healthz: (its key, a function returning its text, or None when there is nothing to say).
HealthDetail = tuple[str, Callable[[], str | None]]


def health_answer(problem: str | None, details: Iterable[HealthDetail] = ()) -> tuple[dict[str, str], int]:
    """/healthz's body and status: 503 with the storage problem, else 200 "ok"; the details that
    have something to say are added to the body whatever the status."""
    body = {"status": problem or "ok"}
    for key, detail in details:
        try:
            text = detail()
        except Exception as exc:  # a detail must never break the health check
            text = f"unknown ({type(exc).__name__})"
        if text:
            body[key] = text
    return body, 503 if problem else 200


def storage_problem(exc: BaseException) -> str:
    """The short reason /healthz gives for an exception a webhook's write met."""
    return (classify(exc) or StorageTrouble.OTHER).line


class StorageHealth:
    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._checked_at = -FRESH_S
        self._problem: str | None = None
        self._running: asyncio.Future[str | None] | None = None

    @property
    def last_problem(self) -> str | None:
        """What the last check (or `note_failure`) found; None: fine, or not checked yet."""
        return self._problem

    def note_failure(self, exc: BaseException) -> None:
        """A webhook's write failed for want of storage: /healthz says so until its next check,
        and direct commits stop (writer/direct_commits.py), so the next webhook is told the same."""
        self._problem = storage_problem(exc)
        self._checked_at = time.monotonic()

    def recheck_soon(self) -> None:
        """Check again in the background if the verdict is older than FRESH_S: with nobody polling
        /healthz, a problem that went away must not keep direct commits off for good."""
        if time.monotonic() - self._checked_at >= FRESH_S and (self._running is None or self._running.done()):
            self._running = asyncio.ensure_future(self._check())

    async def problem(self) -> str | None:
        """None if a webhook would be stored now, else the reason it would get 503."""
        if not self.writer.alive:
            return "writer down"
        if time.monotonic() - self._checked_at < FRESH_S:
            return self._problem
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._running)

    async def _check(self) -> str | None:
        try:
            future = self.writer.submit(job(check_storage))
            await asyncio.wait_for(asyncio.wrap_future(future), CHECK_TIMEOUT_S)
            problem = None
        except TimeoutError:
            problem = "storage not answering"
        except (sqlite3.Error, OSError, WriterStopped) as exc:
            problem = storage_problem(exc)
        except Exception as exc:  # e.g. an exception the writer could only send back as its name
            log.warning("health check failed: %s", exc.__class__.__name__)
            problem = "storage error"
        if problem != self._problem:  # one line per change, not per probe
            if problem:
                log.warning("health: %s", problem)
            else:
                log.info("health: ok again")
        self._problem = problem
        self._checked_at = time.monotonic()
        return problem
