"""Which webhooks serve commits on its own event loop, and how those are grouped.

The writer process earns its hops when many webhooks are in progress: it commits while this
process parses the next ones. With few in progress there is little to overlap, and the two hops
(and the groups of one or two that few clients make) cost more than they save: at 1 to 4
connections serve was behind the bare receiver (bench/ingest.py). So, while the writer has
nothing in hand and /healthz's last check found nothing wrong, a webhook of a few results is
committed here (store/direct_commit.py):

- alone (the only request in progress): at once;
- with up to MAX_REQUESTS requests in progress: in a group, two turns of the loop later, so that
  the webhooks read meanwhile share the commit, as they would share the writer's.

Anything else goes to the writer: more requests in progress, a larger webhook (a commit here
stops the loop, so its size is bounded), a writer with jobs in hand, a declined commit.

/healthz's verdict holds for webhooks both ways: while its last check, or the last webhook the
writer answered 503, found a problem, webhooks go to the writer, which answers what /healthz
says; a stale verdict is checked again in the background, so direct commits resume by
themselves once the problem is gone, whether or not anyone polls /healthz.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sized
from typing import Any

from smsdesk.engine.health import StorageHealth
from smsdesk.store.direct_commit import DirectCommitter
from smsdesk.store.writer import Writer

MAX_REQUESTS = 4  # requests in progress up to which the loop commits
MAX_RESULTS = 10  # results in one webhook up to which the loop commits it
StoreRun = Callable[[sqlite3.Connection, list[Any]], list[Any]]


class DirectCommits:
    """`store(run, in_progress, rows)`: the outcomes of `run(conn, rows)` once committed on the loop,
    or None (the writer's turn)."""

    def __init__(self, committer: DirectCommitter, writer: Writer, health: StorageHealth, *,
                 max_requests: int = MAX_REQUESTS, max_results: int = MAX_RESULTS) -> None:
        self.committer = committer
        self._writer = writer
        self._health = health
        self._max_requests = max_requests
        self._max_results = max_results
        self._group: list[tuple[list[Any], asyncio.Future[list[Any] | None]]] = []
        self._group_run: StoreRun | None = None

    async def store(self, run: StoreRun, in_progress: Collection[Any] | None, rows: list[Any]) -> list[Any] | None:
        """`in_progress`: the server's requests in progress, this one included (None: unknown)."""
        if self._group:  # a group is forming on this loop: join it, up to its bound
            if run is self._group_run and len(rows) <= self._max_results and len(self._group) < self._max_requests:
                return await self._join(rows)
            return None
        if not self._eligible(in_progress, rows):
            return None
        if len(in_progress) <= 1:  # type: ignore[arg-type]  # alone: nobody to wait for
            return self.committer.try_commit(run, rows)
        self._group_run = run
        loop = asyncio.get_running_loop()
        # Two turns: the first lets the requests already read reach this point, the second those
        # whose bytes the loop reads in between.
        loop.call_soon(loop.call_soon, self._commit_group)
        return await self._join(rows)

    def _eligible(self, in_progress: Sized | None, rows: list[Any]) -> bool:
        return (in_progress is not None and len(in_progress) <= self._max_requests
                and len(rows) <= self._max_results and self._writer.idle and self._healthy())

    def _healthy(self) -> bool:
        """/healthz's last verdict is ok; if not, it is checked again (in the background) once stale."""
        if self._health.last_problem is None:
            return True
        self._health.recheck_soon()
        return False

    async def _join(self, rows: list[Any]) -> list[Any] | None:
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._group.append((rows, future))
        return await future

    def _commit_group(self) -> None:
        group, self._group = self._group, []
        run, self._group_run = self._group_run, None
        outcomes = None
        try:
            # One run over all the rows, as the writer merges its callers' (a messageId twice in
            # the group is stored once); if it fails, each webhook goes to the writer, which finds
            # whose it was.
            # /healthz may have found a problem since the group began: its webhooks get its answer.
            if run is not None and self._healthy():
                outcomes = self.committer.try_commit(run, [row for rows, _ in group for row in rows])
        finally:  # whatever happened, no webhook is left waiting: None sends it to the writer
            start = 0
            for rows, future in group:
                mine = None if outcomes is None else outcomes[start:start + len(rows)]
                start += len(rows)
                if not future.done():  # its request was cancelled: committed all the same, like a writer job
                    future.set_result(mine)
