"""What smsdesk makes of the Infobip side of a credential: whether the number's inbound
configuration sends its messages to this desk, and how Infobip's Blocklist and the consent here
differ. Pure functions over plain values (the client's answers are passed in, not fetched here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from smsdesk.domain.inert import make_inert

INBOUND_PATH = "/infobip/inbound"  # serve's webhook for inbound messages (engine/receiver.py)
MO_FORMAT = "MO_JSON_2"


class ForwardingState(StrEnum):
    HERE = "here"  # forwards to this desk's URL in MO_JSON_2
    HERE_OTHER_FORMAT = "here-other-format"
    ELSEWHERE = "elsewhere"
    PULL = "pull"
    NONE = "none"  # no configuration for the number
    OTHER = "other"  # another action (mail, SMPP, no action...)


class InboundConfig(Protocol):
    keyword: str
    forwarding_type: str
    url: str
    format: str


@dataclass(frozen=True, slots=True)
class ForwardingVerdict:
    state: ForwardingState
    ok: bool  # matches the credential's inbound mode
    line: str  # one line for the operator, inert, without any credentials of the URL


def inbound_url(public_url: str) -> str:
    """The URL Infobip should forward to, from SMSDESK_PUBLIC_URL (the desk's public base URL;
    one that already ends in /infobip/inbound is taken as it is)."""
    base = public_url.strip().rstrip("/")
    return base if base.endswith(INBOUND_PATH) else base + INBOUND_PATH


def shown_url(url: str) -> str:
    """`url` as it may be shown: no user name or password, no query (it may carry a token), inert."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        safe = urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))
    except ValueError:
        safe = "(a URL that cannot be read)"
    return make_inert(safe)


def same_endpoint(a: str, b: str) -> bool:
    """Same scheme, host, port and path, whatever the credentials or a trailing slash."""
    try:
        pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
        return ((pa.scheme.lower(), (pa.hostname or "").lower(), pa.port, pa.path.rstrip("/"))
                == (pb.scheme.lower(), (pb.hostname or "").lower(), pb.port, pb.path.rstrip("/")))
    except ValueError:
        return False


def forwarding_verdict(configs: Iterable[InboundConfig], mode: str, public_url: str) -> ForwardingVerdict:
    """Where the number's keyword-less inbound configuration sends its messages, against the
    credential's inbound `mode` ("forward" or "pull") and this desk's public URL ('' unknown)."""
    found = list(configs)
    main = next((c for c in found if not c.keyword), found[0] if found else None)
    expected = inbound_url(public_url) if public_url else ""
    if main is None or not main.forwarding_type:
        state, where = ForwardingState.NONE, "inbound is not configured at Infobip (the account's subscriptions apply)"
    elif main.forwarding_type == "PULL":
        state, where = ForwardingState.PULL, "inbound is set for pull"
    elif main.forwarding_type == "HTTP_FORWARD":
        shown = f"{shown_url(main.url)} in {make_inert(main.format or MO_FORMAT)}"
        if expected and same_endpoint(main.url, expected):
            here_format = (main.format or MO_FORMAT) == MO_FORMAT
            state = ForwardingState.HERE if here_format else ForwardingState.HERE_OTHER_FORMAT
            where = f"inbound forwards to this desk ({shown})"
        else:
            state, where = ForwardingState.ELSEWHERE, f"inbound forwards elsewhere: {shown}"
    else:
        state, where = ForwardingState.OTHER, f"inbound goes to a {make_inert(main.forwarding_type)} action"
    if mode == "pull":
        ok = state is ForwardingState.PULL
        advice = "" if ok else "; the credential pulls, so it may find nothing"
    else:
        ok = state is ForwardingState.HERE
        if ok:
            advice = ""
        elif state is ForwardingState.HERE_OTHER_FORMAT:
            advice = f"; serve reads {MO_FORMAT} only: run `smsdesk creds connect`"
        elif not expected and state is ForwardingState.ELSEWHERE:
            advice = "; set SMSDESK_PUBLIC_URL to tell whether that is this desk"
        else:
            advice = "; nothing reaches serve: run `smsdesk creds connect`"
    return ForwardingVerdict(state, ok, ("✓ " if ok else "✗ ") + where + advice)


# --------------------------------------------------------------------------- the Blocklist


class BlockRecord(Protocol):
    destination: str
    source_type: str
    created_date: str


class DifferenceKind(StrEnum):
    BLOCKED_THERE = "blocked-there"  # blocked at Infobip, not opted out here
    OPTED_OUT_HERE = "opted-out-here"  # opted out here, not blocked at Infobip
    OPTED_IN_AFTER = "opted-in-here-after"  # blocked there, but opted in here after the block


@dataclass(frozen=True, slots=True)
class Difference:
    kind: DifferenceKind
    number: str  # E.164
    consent_here: str  # y, n, p or '' (none)
    source_type: str = ""  # Infobip's sourceType of the block, when there is one
    blocked_at: str = ""


def _moment(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:  # Infobip's other form: 2019-11-09T16:00:00.000+0000
            parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def blocklist_differences(blocks: Iterable[tuple[str, BlockRecord]], consent: Mapping[str, tuple[str, str]],
                          waiting: Iterable[str] = ()) -> list[Difference]:
    """Both ways: numbers blocked there (`blocks`: (E.164, record)) that are not opted out here,
    and numbers opted out here (`consent`: E.164 -> (value, since)) that are not blocked there.

    A number opted in here after its block (both times known) is the person's newer wish: it is
    its own kind (the block should go). Numbers in `waiting` (a change already queued for the
    Blocklist) are left out: the queue is bringing them together.
    """
    skip = set(waiting)
    blocked: dict[str, BlockRecord] = {}
    for number, record in blocks:
        blocked.setdefault(number, record)
    found: list[Difference] = []
    for number, record in sorted(blocked.items()):
        value, since = consent.get(number, ("", ""))
        if number in skip or value == "n":
            continue
        block_time, here_time = _moment(record.created_date), _moment(since) if since else None
        newer_here = value in ("y", "p") and block_time is not None and here_time is not None and here_time > block_time
        kind = DifferenceKind.OPTED_IN_AFTER if newer_here else DifferenceKind.BLOCKED_THERE
        found.append(Difference(kind, number, value, record.source_type, record.created_date))
    for number, (value, _since) in sorted(consent.items()):
        if value == "n" and number not in blocked and number not in skip:
            found.append(Difference(DifferenceKind.OPTED_OUT_HERE, number, value))
    return found
