"""Impact preview: what edited keyword rules would have done to a credential's recent messages.

Pure: the rows come from store/queries.py (`impact_preview`). Each stored message is decided again with the edited
credential and the consent it had when it arrived (`consent_before`), and compared with the
action stored for it (what was done). Identical (text, consent) pairs are decided once, so the
usual traffic (the same few keywords again and again) costs far less than one decision per row;
bench/impact_preview.py measures the worst case, every text different.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from smsdesk.domain.credential import Credential
from smsdesk.domain.rules import Action, decide, keyword_index

DAYS = 30
EXAMPLES = 3  # per change


@dataclass
class Impact:
    messages: int = 0  # messages looked at
    since: str = ""
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (was, would be) -> count
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    def lines(self) -> list[str]:
        """"12 default -> opt-out", most frequent first."""
        return [f"{count} {was} -> {would}" for (was, would), count in self.changes.most_common()]


def label(action: str, keyword: str) -> str:
    """An outcome as the operator reads it: custom keywords by name ("custom DISCOUNT")."""
    return f"custom {keyword}" if action == Action.CUSTOM and keyword else action


def compare(rows: list[tuple[str, str, str, str]], edited: Credential) -> Impact:
    """The pure part: decide each (text, consent) again and count what would change."""
    index = keyword_index(edited)
    impact = Impact(messages=len(rows))
    decided: dict[tuple[str, str], str] = {}
    for text, consent, action, keyword in rows:
        key = (text, consent)
        would = decided.get(key)
        if would is None:
            d = decide(text, edited, consent, index)
            would = decided[key] = label(d.action, d.keyword)
        was = label(action, keyword)
        if would != was:
            change = (was, would)
            impact.changes[change] += 1
            shown = impact.examples.setdefault(change, [])
            if len(shown) < EXAMPLES and text not in shown:
                shown.append(text)
    return impact
