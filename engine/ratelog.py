"""Log lines for events a client can cause by the thousand: one line per kind and interval."""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """One line per kind of event at most every `interval` seconds, with the count it stands for."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def event(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        self._last[kind] = now
        more = self._unlogged.pop(kind, 0)
        self.logger.warning("%s%s", message, f" (and {more} more since the last such line)" if more else "")
