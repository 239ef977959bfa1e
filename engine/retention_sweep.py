"""Retention inside `serve`: the purge of store/retention.py, one chunk per writer job.

Each chunk is a job of its own, so the writer commits it with whatever webhooks are waiting and
no job holds the write lock for long; a webhook waits at most one chunk (a few milliseconds).
"""

from __future__ import annotations

import asyncio
import logging

from smsdesk.store.retention import PurgeCounts, Walk, cutoff_for, give_space_back, optimize, purge_chunk
from smsdesk.writer.jobs import Writer, job

log = logging.getLogger("smsdesk.retention")

SWEEP_EVERY_S = 3600.0


async def sweep_once(writer: Writer, days: int) -> PurgeCounts:
    """One whole purge through the writer: every chunk, then the free pages, then statistics."""
    walk = Walk(cutoff_for(days))
    total = PurgeCounts()
    while not walk.done:
        walk, step = await asyncio.wrap_future(writer.submit(job(purge_chunk, walk)))
        total.add(step)
    while True:  # the small tables' rest, more than a chunk's worth
        walk, step = await asyncio.wrap_future(writer.submit(job(purge_chunk, walk)))
        total.add(step)
        if not step.removed:
            break
    while await asyncio.wrap_future(writer.submit(job(give_space_back))):
        pass
    await asyncio.wrap_future(writer.submit(job(optimize)))
    return total


async def run_sweeps(writer: Writer, days: int, every: float = SWEEP_EVERY_S) -> None:
    """At start, then every `every` seconds, until cancelled."""
    while True:
        try:
            counts = await sweep_once(writer, days)
            if counts.removed:
                log.info("retention (%d days): removed %d messages, %d replies, %d delivery reports; kept %d old "
                         "messages as evidence", days, counts.messages, counts.replies, counts.delivery_reports,
                         counts.kept_as_evidence)
        except Exception as exc:  # the writer restarting, the file locked: the next round tries again
            log.warning("retention sweep not finished: %s", exc)
        await asyncio.sleep(every)
