"""The consent decider: a table of cases, and properties over delivery orders.

The property that matters: the same wishes delivered in any order end in the same consent, and
every ledger the decider writes on the way is one that its own replay (what `consent verify`
runs) accepts.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.consent_decider import (
    NO_CONSENT,
    Consent,
    ConsentState,
    Dismissal,
    Effect,
    ExpiryCheck,
    KeywordEvent,
    OperatorOptOut,
    Wish,
    decide,
    expires_at,
    fold,
    replay,
    trusted_time,
)

NOW = "2026-12-06T12:00:00.000+00:00"


def t(hour: int, minute: int = 0, day: int = 6) -> str:
    return f"2026-12-{day:02d}T{hour:02d}:{minute:02d}:00.000+00:00"


def run(events: list[KeywordEvent | OperatorOptOut | Dismissal | ExpiryCheck],
        state: ConsentState = NO_CONSENT) -> tuple[ConsentState, list[tuple[str, str, str]]]:
    """Each event arrives at its own time, or later (the clock never goes back)."""
    entries = []
    clock = ""
    for event in events:
        clock = max(clock, event.at)
        outcome = decide(state, event, clock)
        state = outcome.state
        entries += [(str(e.effect), str(e.old), str(e.new)) for e in outcome.entries]
    return state, entries


YES, NO, PENDING, CONFIRM = Wish.OPT_IN, Wish.OPT_OUT, Wish.PENDING, Wish.CONFIRM

# (name, events in arrival order, consent after, ledger entries (effect, old, new))
CASES = [
    ("first opt-in", [KeywordEvent(YES, t(9))], "y", [("changed", "", "y")]),
    ("opt-out after opt-in", [KeywordEvent(YES, t(9)), KeywordEvent(NO, t(10))], "n",
     [("changed", "", "y"), ("changed", "y", "n")]),
    ("older opt-in after a newer opt-out is overruled",
     [KeywordEvent(NO, t(10)), KeywordEvent(YES, t(9))], "n", [("changed", "", "n"), ("overruled", "n", "y")]),
    ("older opt-out after a newer opt-in is overruled",
     [KeywordEvent(YES, t(10)), KeywordEvent(NO, t(9))], "y", [("changed", "", "y"), ("overruled", "y", "n")]),
    ("a repeated opt-out is reaffirmed", [KeywordEvent(NO, t(9)), KeywordEvent(NO, t(10))], "n",
     [("changed", "", "n"), ("reaffirmed", "n", "n")]),
    ("an older opt-out delivered after a newer one is reaffirmed too (its confirmation goes)",
     [KeywordEvent(NO, t(10)), KeywordEvent(NO, t(9))], "n", [("changed", "", "n"), ("reaffirmed", "n", "n")]),
    ("equal times go to the opt-out, opt-out first",
     [KeywordEvent(NO, t(9)), KeywordEvent(YES, t(9))], "n", [("changed", "", "n"), ("overruled", "n", "y")]),
    ("equal times go to the opt-out, opt-in first",
     [KeywordEvent(YES, t(9)), KeywordEvent(NO, t(9))], "n", [("changed", "", "y"), ("changed", "y", "n")]),
    ("double opt-in: pending, then confirmed",
     [KeywordEvent(PENDING, t(9), 1), KeywordEvent(CONFIRM, t(10))], "y",
     [("changed", "", "p"), ("changed", "p", "y")]),
    ("a confirmation with nothing pending changes nothing", [KeywordEvent(CONFIRM, t(9))], "",
     [("overruled", "", "y")]),
    ("a confirmation delivered before its opt-in counts when the opt-in arrives",
     [KeywordEvent(CONFIRM, t(10)), KeywordEvent(PENDING, t(9), 1)], "y",
     [("overruled", "", "y"), ("changed", "", "y")]),
    ("an opt-in while confirmed keeps it", [KeywordEvent(YES, t(8)), KeywordEvent(PENDING, t(9), 1)], "y",
     [("changed", "", "y"), ("reaffirmed", "y", "y")]),
    ("a late opt-out between the opt-in and its confirmation wins",
     [KeywordEvent(PENDING, t(9), 1), KeywordEvent(CONFIRM, t(11)), KeywordEvent(NO, t(10))], "n",
     [("changed", "", "p"), ("changed", "p", "y"), ("changed", "y", "n")]),
    ("a pending opt-in expires back to the opt-out before it",
     [KeywordEvent(NO, t(8)), KeywordEvent(PENDING, t(9), 1), ExpiryCheck(t(10, day=7))], "n",
     [("changed", "", "n"), ("changed", "n", "p"), ("expired", "p", "n")]),
    ("a confirmation after the window does not count",
     [KeywordEvent(PENDING, t(9), 1), KeywordEvent(CONFIRM, t(10, day=7))], "",
     [("changed", "", "p"), ("expired", "p", ""), ("overruled", "", "y")]),
    ("a confirmation sent inside the window counts even after the sweep",
     [KeywordEvent(PENDING, t(9), 1), ExpiryCheck(t(10, day=7)), KeywordEvent(CONFIRM, t(8, day=7))], "y",
     [("changed", "", "p"), ("expired", "p", ""), ("changed", "", "y")]),
    ("a STOP sent before the expiry counts after the sweep",
     [KeywordEvent(PENDING, t(9), 1), ExpiryCheck(t(10, day=7)), KeywordEvent(NO, t(8, day=7))], "n",
     [("changed", "", "p"), ("expired", "p", ""), ("changed", "", "n")]),
    ("the sweep before the expiry does nothing", [KeywordEvent(PENDING, t(9), 1), ExpiryCheck(t(10))], "p",
     [("changed", "", "p")]),
    ("zero days never expire", [KeywordEvent(PENDING, t(9), 0), ExpiryCheck(t(9, day=30))], "p",
     [("changed", "", "p")]),
    ("an operator's opt-out always applies, over a future-dated opt-in",
     [KeywordEvent(YES, "2099-01-01T00:00:00.000+00:00"), OperatorOptOut(t(11))], "n",
     [("changed", "", "y"), ("changed", "y", "n")]),
    ("after an operator's opt-out a newer opt-in applies",
     [KeywordEvent(YES, "2099-01-01T00:00:00.000+00:00"), OperatorOptOut(t(10)), KeywordEvent(YES, t(11))], "y",
     [("changed", "", "y"), ("changed", "y", "n"), ("changed", "n", "y")]),
    ("an operator's opt-out of an opted-out number is reaffirmed",
     [KeywordEvent(NO, t(9)), OperatorOptOut(t(10))], "n", [("changed", "", "n"), ("reaffirmed", "n", "n")]),
    ("a dismissal changes nothing", [KeywordEvent(YES, t(9)), Dismissal(t(10))], "y",
     [("changed", "", "y"), ("dismissed", "y", "y")]),
]


@pytest.mark.parametrize(("name", "events", "consent", "ledger"), CASES, ids=[case[0] for case in CASES])
def test_consent_cases(name: str, events: list, consent: str, ledger: list) -> None:
    state, entries = run(events)
    assert (state.value, entries) == (consent, ledger)


def test_a_pending_opt_in_expires_on_arrival_of_the_next_message() -> None:
    state, _ = run([KeywordEvent(PENDING, t(9), 1)])
    outcome = decide(state, KeywordEvent(YES, t(12, day=8)), t(12, day=8))
    assert [(e.effect, e.old, e.new, e.at) for e in outcome.entries] == [
        (Effect.EXPIRED, "p", "", expires_at(t(9), 1)), (Effect.CHANGED, "", "y", t(12, day=8))]


def test_the_days_are_those_of_the_opt_in_not_of_a_later_message() -> None:
    state, _ = run([KeywordEvent(PENDING, t(9), 1)])
    later = decide(state, KeywordEvent(CONFIRM, t(10, day=8), 30), t(10, day=8))
    assert later.state.value == Consent.NONE  # the 1-day window, not the later message's 30


@pytest.mark.parametrize(("received", "arrived", "decided"), [
    (t(11), t(12), t(11)),  # the past: as given
    (t(12, 4), t(12), t(12, 4)),  # within the skew
    (t(12, 6), t(12), t(12)),  # beyond it: the arrival time
    ("2099-01-01T00:00:00.000+00:00", t(12), t(12)),
])
def test_trusted_time(received: str, arrived: str, decided: str) -> None:
    assert trusted_time(received, arrived) == decided


def test_replay_accepts_what_decide_wrote_and_names_a_forged_entry() -> None:
    events = [KeywordEvent(NO, t(10)), KeywordEvent(YES, t(9)), OperatorOptOut(t(11))]
    state, written, nows = NO_CONSENT, [], []
    for event in events:
        outcome = decide(state, event, NOW)
        state = outcome.state
        written += outcome.entries
        nows += [NOW] * len(outcome.entries)
    assert replay(written, nows)[1] == []
    forged = [*written]
    forged[1] = type(forged[1])(Effect.CHANGED, Consent.NO, Consent.YES, forged[1].at, forged[1].cause,
                                forged[1].wish)
    _, problems = replay(forged, nows)
    assert [index for index, _ in problems] == [1]
    assert "the rules make it overruled" in problems[0][1]


# --- delivery orders -------------------------------------------------------------------------

WISHES = st.sampled_from([YES, NO, PENDING, CONFIRM])
TIMES = st.integers(min_value=0, max_value=40)  # hours from a start, ties likely


def at_hour(hours: int) -> str:
    return f"2026-12-{1 + hours // 24:02d}T{hours % 24:02d}:00:00.000+00:00"


events_strategy = st.lists(st.tuples(WISHES, TIMES, st.sampled_from([0, 1])), min_size=1, max_size=7)


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.randoms(use_true_random=False), st.integers(min_value=0, max_value=60))
def test_any_delivery_order_ends_in_the_same_consent(raw: list, rnd, sweep_hour: int) -> None:
    events = [KeywordEvent(wish, at_hour(hour), days) for wish, hour, days in raw]
    end = at_hour(100)
    expected = fold(tuple(decide(NO_CONSENT, e, end).state.history[0] for e in events), end).value
    order = list(events)
    rnd.shuffle(order)
    # Sweeps run between arrivals at any time; the messages arrive after their own time.
    sweep = ExpiryCheck(at_hour(max(sweep_hour, max(h for _, h, _ in raw))))
    position = rnd.randrange(len(order) + 1)
    arrivals: list = [*order[:position], sweep, *order[position:], ExpiryCheck(end)]
    state, written, nows = NO_CONSENT, [], []
    clock = at_hour(0)
    for event in arrivals:
        clock = max(clock, event.at)
        outcome = decide(state, event, clock)
        state = outcome.state
        written += outcome.entries
        nows += [clock] * len(outcome.entries)
    assert state.value == expected
    assert replay(written, nows)[1] == []


def test_every_order_of_a_small_mix_agrees() -> None:
    """Exhaustively: a double opt-in, its confirmation, an opt-out between them and a repeat."""
    events = [KeywordEvent(PENDING, t(9), 1), KeywordEvent(CONFIRM, t(11)), KeywordEvent(NO, t(10)),
              KeywordEvent(YES, t(8))]
    finals = {run(list(order))[0].value for order in itertools.permutations(events)}
    assert finals == {"n"}


def test_in_force_folds_only_when_a_pending_window_ended() -> None:
    from smsdesk.domain.consent_decider import in_force

    pending, _ = run([KeywordEvent(PENDING, t(9), 1)])
    assert in_force(pending, t(10)) == Consent.PENDING
    assert in_force(pending, t(10, day=7)) == Consent.NONE  # past the one-day window
    assert in_force(pending, t(10, day=7)) == fold(pending.history, t(10, day=7)).value
    opted_in, _ = run([KeywordEvent(YES, t(9))])
    assert in_force(opted_in, t(10, day=30)) == Consent.YES
