"""What `serve` has just acknowledged: the numbers whose STOP it committed, for the sender's last
word before a request leaves.

The sender's last look reads consent on a thread (never on the event loop); while it waits to
get back onto the loop, serve may commit a STOP for one of the request's numbers and answer 200.
The receiver notes every opt-out it stores here, on the loop, before its answer goes out; the
sender checks the notes made since its read, on the loop, just before the request leaves. So no
reply that a STOP forbids leaves after that STOP's 200 (what the request then waits for inside
the HTTP client is the one window left). Loop thread only: no lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

KEEP = 10_000  # notes kept; a request older than that many opt-outs is checked again whole


class OptOutNotices:
    def __init__(self, keep: int = KEEP) -> None:
        self._sequence = 0
        self._notes: deque[tuple[int, str]] = deque(maxlen=keep)

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
