"""The outbox sender's share of the writer while webhooks arrive (engine/sender_pacing.py): a
table of cases on a clock the test moves."""

from __future__ import annotations

import pytest

from smsdesk.engine.sender_pacing import SenderPacing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("inbound_ago", "written", "since_claim", "share", "delay"), [
    (None, 0.05, 0.0, 0.1, 0.0),  # no webhook ever: the backlog drains at the writer's pace
    (2.0, 0.05, 0.0, 0.1, 0.0),  # the last webhook is older than quiet_after (1 s): as quiet
    (0.1, 0.05, 0.0, 0.1, 0.5),  # webhooks arriving: 50 ms of writes take a 500 ms round at 10%
    (0.1, 0.05, 0.2, 0.1, 0.3),  # ... of which 200 ms have passed
    (0.1, 0.05, 0.6, 0.1, 0.0),  # ... or all of it
    (0.1, 0.05, 0.0, 0.5, 0.1),  # at half the writer: a round twice the writes
    (0.1, 0.05, 0.0, 1.0, 0.05),  # share 1: the round is the writes themselves, nothing more
    (0.1, 0.0, 0.0, 0.1, 0.0),  # nothing written since the claim: nothing to wait for
    (1.0, 0.05, 0.0, 0.1, 0.5),  # exactly quiet_after ago still counts as arriving
])
def test_the_delay_before_the_next_claim(inbound_ago: float | None, written: float, since_claim: float, share: float,
                                         delay: float) -> None:
    clock = Clock()
    pacing = SenderPacing(share=share, clock=clock)
    pacing.start_round()
    pacing.note_write(written)
    if inbound_ago is not None:
        clock.now += 10
        pacing._round_started = clock.now  # the claim was just now
        clock.now += since_claim
        pacing._last_inbound = clock.now - inbound_ago
    else:
        clock.now += since_claim
    assert pacing.delay() == pytest.approx(delay)


def test_a_round_starts_afresh_and_negative_times_count_as_none() -> None:
    clock = Clock()
    pacing = SenderPacing(share=0.1, clock=clock)
    pacing.note_inbound()
    pacing.start_round()
    pacing.note_write(0.02)
    pacing.note_write(-5.0)  # a clock step backwards never earns the sender extra time
    assert pacing.delay() == pytest.approx(0.2)
    pacing.start_round()
    assert pacing.delay() == 0.0


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        SenderPacing(share=share)


def test_claims_are_one_request_while_webhooks_arrive_and_full_when_quiet() -> None:
    clock = Clock()
    pacing = SenderPacing(clock=clock)
    assert pacing.claim_size(800, 100) == 800
    pacing.note_inbound()
    assert pacing.claim_size(800, 100) == 100
    clock.now += 1.5
    assert pacing.claim_size(800, 100) == 800
