"""How much of the writer's time the outbox sender may take while webhooks are arriving.

Serve has one writer (or one write lock, for direct commits). A backlog of replies drains in
rounds of claims and records that each hold it for tens of milliseconds on a large file; left
alone they take whatever the writer has, and every webhook waits behind them. Infobip retries a
webhook that is slow to answer, and a STOP is only safe once stored: inbound comes first.

So while webhooks have arrived within the last `quiet_after` seconds, the sender's next claim
waits until its writes since the previous claim are at most `share` of the time that passed
(a 30 ms claim and 30 ms of records at share 0.1 take a round of 600 ms: about 1,300 replies a
second, far above what an SMS account sends), and a claim takes one request's worth of replies,
not eight, so no single claim holds the write lock long enough to stall a webhook's commit. When
inbound is quiet the sender claims at once, in full: a backlog after an outage drains at the
writer's full pace. Loop thread only: no lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SENDER_SHARE = 0.1
QUIET_AFTER_S = 1.0


class SenderPacing:
    def __init__(self, share: float = SENDER_SHARE, quiet_after: float = QUIET_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.quiet_after = quiet_after
        self.clock = clock
        self._last_inbound = float("-inf")
        self._round_started = clock()
        self._written = 0.0  # seconds the sender's writes took since its last claim
        self.waited = 0.0  # seconds claims were held back, in all (for the bench and the log)

    def note_inbound(self) -> None:
        """An inbound-message webhook arrived (the receiver calls this, whatever became of it;
        delivery reports and the inbox pull do not pace the sender)."""
        self._last_inbound = self.clock()

    def note_write(self, seconds: float) -> None:
        """One of the sender's writer jobs ran `seconds` in the writer (writer/jobs.py run_timed)."""
        self._written += max(0.0, seconds)

    def inbound_arriving(self) -> bool:
        return self.clock() - self._last_inbound <= self.quiet_after

    def claim_size(self, full: int, small: int) -> int:
        """How many replies the next claim takes: while webhooks arrive, `small` (one request's
        worth), so no claim or record holds the write lock long enough to stall a webhook's commit;
        else `full`."""
        return small if self.inbound_arriving() else full

    def delay(self) -> float:
        """How long the next claim should wait: 0 when inbound is quiet or the share allows it."""
        now = self.clock()
        if not self.inbound_arriving():
            return 0.0
        ready_at = self._round_started + self._written / self.share
        return max(0.0, ready_at - now)

    def start_round(self) -> None:
        """A claim is about to be submitted: the share is counted afresh from here."""
        self._round_started = self.clock()
        self._written = 0.0

    async def wait_turn(self) -> None:
        """Before a claim: wait out `delay()` (re-read after each sleep: inbound may have gone
        quiet meanwhile), then start the round."""
        while (pause := self.delay()) > 0:
            slept = min(pause, self.quiet_after)
            self.waited += slept
            await asyncio.sleep(slept)
        self.start_round()
