"""Talking to Infobip from the TUI: a client tuned for a person waiting, and error wording.

Imported only by the verify and test-SMS dialogs, so httpx and the gateway package cost nothing
at startup. Network calls run in async (non-thread) workers: they are I/O the event loop can wait
on, unlike SQLite calls, which block and therefore go to thread workers.
"""

from __future__ import annotations

from smsdesk.domain.credential import Credential
from smsdesk.domain.inert import make_inert
from smsdesk.infobip.client import InfobipClient
from smsdesk.infobip.errors import InfobipError

# Someone is watching a spinner: give up sooner than the server-side defaults (15 s, 4 tries).
TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0


def interactive_client(cred: Credential, *, max_attempts: int = 1) -> InfobipClient:
    return InfobipClient(cred.base_url, cred.api_key, timeout=TIMEOUT_SECONDS,
                         connect_timeout=CONNECT_TIMEOUT_SECONDS, max_attempts=max_attempts,
                         max_retry_seconds=TIMEOUT_SECONDS)


def error_lines(exc: InfobipError) -> list[str]:
    """One headline and one line per violation, inert (Infobip's text is not ours to trust).

    InfobipError never carries the API key (infobip/errors.py builds messages from the status,
    Infobip's own text and the host only), so these lines are safe to show.
    """
    head = f"HTTP {exc.status}" if exc.status is not None else exc.kind.value
    if exc.code:
        head += f" {exc.code}"
    lines = [make_inert(f"{head}: {exc.text}" if exc.text else head)]
    lines.extend(make_inert(f"  • {prop}: {violation}" if prop else f"  • {violation}")
                 for prop, violation in exc.violations)
    if exc.action:
        lines.append(make_inert(exc.action))
    return lines
