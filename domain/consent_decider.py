"""The one consent decider: every change of consent, and the check that verifies it, goes through
`decide`. Pure functions over plain values; it imports nothing of ours, reads and writes nothing.

A number's consent is a function of its consent *wishes* (opt-in, double opt-in, confirmation,
opt-out; docs/architecture.md, "Consent by time"), folded in the order of their time, not the order
in which they arrived:

- an opt-in makes `y`; an opt-out `n`; both replace whatever came before (hard wishes);
- an opt-in that needs a double opt-in makes `p` (pending) unless the number is already `y`,
  and expires after its credential's days back to the consent before it;
- a confirmation makes a pending number `y` if it falls inside the window, and nothing otherwise;
- at one and the same time the opt-out is folded last, so it wins;
- an operator's opt-out (review queue, phone, email) is a hard wish at the operator's time that
  also drops any wish timed after it: it always applies.

The state keeps the wishes since the newest hard one (earlier ones cannot matter), so a wish that
arrives late is folded into its place, and any delivery order of the same wishes ends in the same
consent. The fold is what verification replays (store/consent_audit.py), so rule and check cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# How far ahead of the receiver's clock a receivedAt may be and still be believed. Beyond it the
# message is decided at its arrival time instead (stored as given, flagged): one future-dated
# opt-in must not outrank every opt-out after it.
CLOCK_SKEW = timedelta(minutes=5)
# A hostile number could send thousands of confirmations; the oldest soft wishes beyond this are
# dropped from its history (only then can late delivery order matter).
MAX_HISTORY = 64


class Consent(StrEnum):
    """XDM consent values; NONE means none expressed (never, or a double opt-in that expired)."""

    YES = "y"
    NO = "n"
    PENDING = "p"
    NONE = ""


class Wish(StrEnum):
    """What a consent event asks for."""

    OPT_IN = "y"
    OPT_OUT = "n"
    PENDING = "p"  # an opt-in that waits for a double opt-in confirmation
    CONFIRM = "c"  # a double opt-in confirmation keyword


class Effect(StrEnum):
    """The ledger's word for what an event did."""

    CHANGED = "changed"  # consent moved
    REAFFIRMED = "reaffirmed"  # a wish repeating the consent in force (a second STOP: its confirmation goes)
    OVERRULED = "overruled"  # kept as evidence, moved nothing against it (a newer wish stands, or unmatched)
    DISMISSED = "dismissed"  # an operator decided a near miss was no opt-out
    EXPIRED = "expired"  # a pending double opt-in not confirmed in time


class Cause(StrEnum):
    KEYWORD = "keyword"
    OPERATOR = "operator"
    EXPIRY = "expiry"
    DISMISSAL = "dismissal"
    INFOBIP_BLOCKLIST = "infobip-blocklist"  # a block found on Infobip's Blocklist, brought here by an operator


# Fold order at one and the same time: the opt-out last, so it wins a tie.
_RANK = {Wish.PENDING: 0, Wish.CONFIRM: 1, Wish.OPT_IN: 2, Wish.OPT_OUT: 3}
_HARD = frozenset({Wish.OPT_IN, Wish.OPT_OUT})
# What a wish would make of consent if it applied (the ledger's `new` for an overruled entry).
_WISHED = {Wish.OPT_IN: Consent.YES, Wish.OPT_OUT: Consent.NO, Wish.PENDING: Consent.PENDING,
           Wish.CONFIRM: Consent.YES}


@dataclass(frozen=True, slots=True)
class TimedWish:
    """One consent wish in a number's history."""

    wish: Wish
    at: str  # ISO-8601 UTC: the time it is decided by
    days: int = 0  # PENDING: the double opt-in expiry of the credential it came through (0: never)
    by_operator: bool = False

    def order(self) -> tuple[str, int, int, bool]:
        """A total order, so that the fold cannot depend on the order of arrival."""
        return self.at, _RANK[self.wish], self.days, self.by_operator


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The consent in force and the wishes it follows from."""

    value: Consent = Consent.NONE
    since: str = ""  # when `value` took effect: its wish's time, or the moment a pending opt-in expired
    cause: str = ""  # a Cause, or '' for never expressed
    expires_at: str = ""  # PENDING only: when it expires ('' never)
    history: tuple[TimedWish, ...] = ()


NO_CONSENT = ConsentState()


@dataclass(frozen=True, slots=True)
class KeywordEvent:
    """A keyword message that states a wish, at its (trusted) time."""

    wish: Wish
    at: str
    days: int = 0


@dataclass(frozen=True, slots=True)
class OperatorOptOut:
    """An operator records an opt-out (review queue, a call, an email, a block found on Infobip's
    Blocklist) at the operator's time; `cause` names where it came from in the ledger."""

    at: str
    cause: Cause = Cause.OPERATOR


@dataclass(frozen=True, slots=True)
class Dismissal:
    """An operator decides a near miss was no opt-out: recorded, nothing moves."""

    at: str


@dataclass(frozen=True, slots=True)
class ExpiryCheck:
    """The sweep: has a pending double opt-in expired by `at`?"""

    at: str


ConsentEvent = KeywordEvent | OperatorOptOut | Dismissal | ExpiryCheck


@dataclass(frozen=True, slots=True)
class LedgerEffect:
    """One ledger entry: what an event did, in the ledger's columns."""

    effect: Effect
    old: Consent
    new: Consent  # the consent after it; for OVERRULED, the consent the wish asked for
    at: str  # the ledger's received_at: the event's time (an expiry: the moment it expired)
    cause: Cause
    wish: str = ""  # a Wish, or '' for expiries and dismissals
    days: int = 0


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    state: ConsentState
    entries: tuple[LedgerEffect, ...]

    @property
    def last(self) -> LedgerEffect | None:
        return self.entries[-1] if self.entries else None

    @property
    def applied(self) -> bool:
        """The event's own entry moved or reaffirmed consent (its reply may go)."""
        last = self.last
        return last is not None and last.effect in (Effect.CHANGED, Effect.REAFFIRMED)

    @property
    def opts_out(self) -> bool:
        """Queued replies to the number must be cancelled: it is opted out by this event."""
        return self.applied and self.state.value == Consent.NO


def trusted_time(received_at: str, arrived_at: str) -> str:
    """The time a message is decided by: its receivedAt, unless that is more than CLOCK_SKEW ahead
    of the receiver's clock at arrival; then the arrival time. Both ISO-8601 UTC."""
    try:
        limit = (_parse(arrived_at) + CLOCK_SKEW).isoformat(timespec="milliseconds")
    except ValueError:
        return received_at
    return arrived_at if received_at > limit else received_at


def expires_at(pending_since: str, days: int) -> str:
    """When a double opt-in pending since `pending_since` expires; '' for never (0 days, or a time
    that does not parse)."""
    if days <= 0 or not pending_since:
        return ""
    try:
        moment = _parse(pending_since) + timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return moment.isoformat(timespec="milliseconds")


def fold(history: tuple[TimedWish, ...] | list[TimedWish], now: str) -> ConsentState:
    """The consent that `history` makes at `now` (expiries up to `now` applied)."""
    value, since, cause, ends = Consent.NONE, "", "", ""
    prior = Consent.NONE  # what a pending opt-in falls back to when it expires
    for item in sorted(history, key=TimedWish.order):
        if value == Consent.PENDING and ends and item.at >= ends:
            value, since, cause, ends = prior, ends, Cause.EXPIRY, ""
        kind = Cause.OPERATOR if item.by_operator else Cause.KEYWORD
        if item.wish in _HARD:
            value, since, cause, ends = _WISHED[item.wish], item.at, kind, ""
        elif item.wish == Wish.PENDING:
            if value == Consent.YES:
                since = item.at  # already confirmed: asking again keeps it, and moves its time
            else:
                if value != Consent.PENDING:
                    prior = value
                value, since, cause, ends = Consent.PENDING, item.at, kind, expires_at(item.at, item.days)
        elif item.wish == Wish.CONFIRM and value == Consent.PENDING:
            value, since, cause, ends = Consent.YES, item.at, kind, ""
    if value == Consent.PENDING and ends and now >= ends:
        value, since, cause, ends = prior, ends, Cause.EXPIRY, ""
    return ConsentState(value, since, cause, ends, tuple(history))


def in_force(state: ConsentState, now: str) -> Consent:
    """The consent in force at `now`: the stored value, unless a pending opt-in's window ended
    (then the fold says what it fell back to). No fold for the messages of a number that is not
    pending: this runs for every inbound message."""
    if state.value == Consent.PENDING and state.expires_at and now >= state.expires_at:
        return fold(state.history, now).value
    return state.value


def decide(state: ConsentState, event: ConsentEvent, now: str) -> ConsentOutcome:
    """The new consent and the ledger entries for `event` arriving at `now`.

    A pending opt-in that expired before `now` and has not been recorded as expired yet is
    recorded first (an `expired` entry), so each entry's `old` is the consent it found.
    """
    entries: list[LedgerEffect] = []
    current = fold(state.history, now)
    if state.value == Consent.PENDING and current.value != Consent.PENDING:
        entries.append(LedgerEffect(Effect.EXPIRED, Consent.PENDING, current.value, current.since, Cause.EXPIRY))
    before = current.value
    if isinstance(event, ExpiryCheck):
        return ConsentOutcome(current, tuple(entries))
    if isinstance(event, Dismissal):
        entries.append(LedgerEffect(Effect.DISMISSED, before, before, event.at, Cause.DISMISSAL))
        return ConsentOutcome(current, tuple(entries))
    if isinstance(event, OperatorOptOut):
        after = fold((TimedWish(Wish.OPT_OUT, event.at, by_operator=True),), now)
        effect = Effect.CHANGED if before != Consent.NO else Effect.REAFFIRMED
        entries.append(LedgerEffect(effect, before, after.value, event.at, event.cause, Wish.OPT_OUT))
        return ConsentOutcome(after, tuple(entries))
    wish = TimedWish(event.wish, event.at, event.days if event.wish == Wish.PENDING else 0)
    after = fold(_pruned((*current.history, wish)), now)
    if after.value != before:
        entry = LedgerEffect(Effect.CHANGED, before, after.value, wish.at, Cause.KEYWORD, wish.wish, wish.days)
    elif _repeats(wish.wish, after.value):  # older or not: it agrees, and its reply may go
        entry = LedgerEffect(Effect.REAFFIRMED, before, after.value, wish.at, Cause.KEYWORD, wish.wish, wish.days)
    else:
        entry = LedgerEffect(Effect.OVERRULED, before, _WISHED[wish.wish], wish.at, Cause.KEYWORD, wish.wish,
                             wish.days)
    entries.append(entry)
    return ConsentOutcome(after, tuple(entries))


def replay(entries: list[LedgerEffect], nows: list[str]) -> tuple[ConsentState, list[tuple[int, str]]]:
    """Replay a number's ledger through `decide`: the state it ends in and, per entry index, how
    it differs from what `decide` makes of the same event. Used by verification."""
    state = NO_CONSENT
    problems: list[tuple[int, str]] = []
    for index, (entry, now) in enumerate(zip(entries, nows, strict=True)):
        outcome = decide(state, event_of(entry), now)
        made = outcome.entries[-1] if outcome.entries else None
        if made is None:
            problems.append((index, f"{entry.effect} recorded, but nothing had expired by {now}"))
        elif len(outcome.entries) > 1:
            problems.append((index, f"a pending opt-in expired at {outcome.entries[0].at} before this entry, "
                                    "and the ledger has no expired entry for it"))
        elif (made.effect, made.old, made.new) != (entry.effect, entry.old, entry.new):
            problems.append((index, f"{entry.effect} {_label(entry.old)} to {_label(entry.new)}, but the rules make "
                                    f"it {made.effect} {_label(made.old)} to {_label(made.new)}"))
        state = outcome.state
    return state, problems


def event_of(entry: LedgerEffect) -> ConsentEvent:
    """The event a ledger entry records."""
    if entry.effect == Effect.EXPIRED:
        return ExpiryCheck(entry.at)
    if entry.effect == Effect.DISMISSED:
        return Dismissal(entry.at)
    if entry.cause in (Cause.OPERATOR, Cause.INFOBIP_BLOCKLIST):
        return OperatorOptOut(entry.at, entry.cause)
    return KeywordEvent(Wish(entry.wish), entry.at, entry.days)


def state_of(value: Consent, since: str, days: int = 0) -> ConsentState:
    """The state of a consent row written before histories were kept: one wish, its value."""
    wish = {Consent.YES: Wish.OPT_IN, Consent.NO: Wish.OPT_OUT, Consent.PENDING: Wish.PENDING}.get(value)
    if wish is None:
        return NO_CONSENT
    return fold((TimedWish(wish, since, days),), since)


def _repeats(wish: Wish, value: Consent) -> bool:
    if wish == Wish.PENDING:
        return value in (Consent.PENDING, Consent.YES)
    return wish != Wish.CONFIRM and _WISHED[wish] == value


def _pruned(history: tuple[TimedWish, ...]) -> tuple[TimedWish, ...]:
    """The wishes from the newest hard one on (nothing before it can matter), at most MAX_HISTORY."""
    ordered = sorted(history, key=TimedWish.order)
    start = max((i for i, item in enumerate(ordered) if item.wish in _HARD), default=0)
    kept = ordered[start:]
    if len(kept) > MAX_HISTORY:
        kept = kept[:1] + kept[-(MAX_HISTORY - 1):] if kept[0].wish in _HARD else kept[-MAX_HISTORY:]
    return tuple(kept)


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _label(value: str) -> str:
    return repr(str(value)) if value else "'' (none)"
