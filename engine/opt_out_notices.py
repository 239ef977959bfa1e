"""What `serve` has just acknowledged: the numbers whose STOP it committed, for the sender's last
word before a request leaves.

The sender's last look reads consent on a thread (never on the event loop); while it waits to
get back onto the loop, serve may commit a STOP for one of the request's numbers and answer 200.
The receiver notes every opt-out it stores here, on the loop, before its answer goes out; the
sender checks the notes made since its read, on the loop, just before the request leaves.

What passed that check is "departing" until Infobip has answered its request; a STOP for one of
those numbers waits for that answer (at most DEPARTURE_WAIT_S) before its 200, so the reply has
reached Infobip before the STOP is acknowledged, whatever the HTTP client awaits inside. Loop
thread only: no lock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Iterable

KEEP = 10_000  # notes kept; a request older than that many opt-outs is checked again whole
DEPARTURE_WAIT_S = 2.0  # a STOP's 200 waits at most this long for a reply to its number in flight


class OptOutNotices:
    def __init__(self, keep: int = KEEP) -> None:
        self._sequence = 0
        self._notes: deque[tuple[int, str]] = deque(maxlen=keep)
        self._departing: Counter[str] = Counter()  # number -> requests in flight with a reply to it
        self._departed = asyncio.Event()  # set (and replaced) whenever a request's answer came back

    @property
    def sequence(self) -> int:
        """Where the notes stand now: pass it to `since` later."""
        return self._sequence

    def note(self, numbers: Iterable[str]) -> None:
        for number in numbers:
            self._sequence += 1
            self._notes.append((self._sequence, number))

    def since(self, sequence: int) -> set[str] | None:
        """The numbers noted after `sequence`; None when notes since then were already dropped
        (then every number must be taken as noted)."""
        if sequence >= self._sequence:
            return set()
        if not self._notes or self._notes[0][0] > sequence + 1:
            return None
        return {number for at, number in self._notes if at > sequence}

    def depart(self, numbers: Iterable[str]) -> list[str]:
        """Replies to `numbers` are leaving (they passed the last word); hand the result to `arrived`."""
        leaving = list(numbers)
        self._departing.update(leaving)
        return leaving

    def arrived(self, leaving: list[str]) -> None:
        """Infobip answered (or the request failed): those replies are no longer in flight."""
        self._departing.subtract(leaving)
        self._departing = +self._departing  # drop the zeros
        self._departed.set()
        self._departed = asyncio.Event()

    async def wait_departed(self, numbers: Iterable[str], timeout: float = DEPARTURE_WAIT_S) -> bool:
        """Wait until no reply to `numbers` is in flight (True), or `timeout` passed (False)."""
        wanted = set(numbers)
        deadline = time.monotonic() + timeout
        while any(self._departing[number] > 0 for number in wanted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._departed.wait(), remaining)
            except TimeoutError:
                return False
        return True
