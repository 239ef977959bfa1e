"""Impact preview (domain/impact.py): counts per action change and examples, pure over rows."""

from __future__ import annotations

from smsdesk.domain.credential import Credential
from smsdesk.domain.impact import compare


def cred(**overrides: object) -> Credential:
    return Credential.model_validate(dict(name="Shop", base_url="x.api.infobip.com", api_key="k",
                                          default_reply_message="Thanks", **overrides))


# what was done under the defaults: (text, consent_before, action, keyword)
ROWS = [
    ("opt out", "y", "default", ""), ("OPT OUT please", "y", "default", ""), ("opt out", "y", "default", ""),
    ("discount", "y", "default", ""), ("STOP", "y", "opt-out", "STOP"), ("hello", "y", "default", ""),
    ("stpo", "y", "default", ""),
]


def test_counts_each_change_and_keeps_examples() -> None:
    edited = cred(opt_out_keywords=["STOP", "OPT OUT"], inbound_keywords=["DISCOUNT"], fuzzy_opt_out="review")
    impact = compare(ROWS, edited)
    assert impact.messages == 7
    assert dict(impact.changes) == {("default", "opt-out"): 3, ("default", "custom DISCOUNT"): 1,
                                    ("default", "near-opt-out"): 1}
    assert impact.lines()[0] == "3 default -> opt-out"
    assert impact.examples[("default", "opt-out")] == ["opt out", "OPT OUT please"]


def test_unchanged_rules_change_nothing() -> None:
    assert compare(ROWS, cred()).changed == 0


def test_removing_a_keyword_shows_the_loss() -> None:
    impact = compare(ROWS, cred(opt_out_keywords=["QUIT"]))
    assert dict(impact.changes) == {("opt-out", "default"): 1}
