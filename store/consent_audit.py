"""Checking the consent ledger against the consent table: the evidence must explain the state.

For every (sandbox, number) the ledger is replayed in id order. A `changed` entry's `old` must
be the consent replayed so far (the first one's `old` must be '', "never expressed") and its
`new` differs; the last one's `new` must be the consent row's value. Consent follows receivedAt
(docs/architecture.md, "Consent by time"): the latest wish is the newest consent keyword, so a
`changed` or `reaffirmed` entry may not be older than the wish in force before it, and an
`overruled` entry must be older than it and must have changed nothing. A `dismissed` entry (an
operator's review decision that a near miss was no opt-out) must repeat the consent in force and
moves nothing. An `expired` entry (a double opt-in not confirmed in time) must take a pending
`p` back to '' or `n`, and is a change like `changed`; a number whose ledger ends at '' has no
consent row. A consent row without ledger entries, or ledger entries without a consent row, are
differences too. Reads only; one pass over each table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from smsdesk.store.rules import Consent
from smsdesk.store.text import make_inert

VALID = frozenset({Consent.YES, Consent.NO, Consent.PENDING})


@dataclass(frozen=True)
class Difference:
    sandbox: str
    number: str
    problem: str
    ledger_id: int | None = None

    def __str__(self) -> str:
        where = f" (ledger #{self.ledger_id})" if self.ledger_id is not None else ""
        # numbers are stored as received when they are not E.164: keep a tty safe from them
        return make_inert(f"{self.sandbox or '-'} {self.number}{where}: {self.problem}")


@dataclass
class ConsentReport:
    numbers: int = 0  # distinct (sandbox, number) pairs seen in either table
    entries: int = 0  # ledger rows replayed
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok, "numbers": self.numbers, "ledger_entries": self.entries,
            "differences": [{"sandbox": d.sandbox, "number": d.number, "ledger_id": d.ledger_id,
                             "problem": d.problem} for d in self.differences],
        }


def _label(value: str) -> str:
    return repr(value) if value else "'' (none)"


def verify_consent(conn: sqlite3.Connection) -> ConsentReport:
    """Replay every number's ledger and compare it with the consent table. Never writes."""
    report = ConsentReport()
    current = {(s, n): c for s, n, c in conn.execute("SELECT sandbox, number, consent FROM consent")}
    replayed: dict[tuple[str, str], str] = {}
    latest_at: dict[tuple[str, str], str] = {}  # receivedAt of the wish in force
    for entry_id, sandbox, number, old, new, received_at, effect in conn.execute(
            "SELECT id, sandbox, number, old, new, received_at, effect FROM consent_ledger "
            "ORDER BY sandbox, number, id"):
        report.entries += 1
        key = (sandbox, number)
        expected_old = replayed.get(key, "")
        in_force_since = latest_at.get(key, "")
        if effect == "dismissed":
            if not old == new == expected_old:
                report.differences.append(Difference(
                    sandbox, number, f"dismissed with {_label(old)} to {_label(new)}, but consent was "
                    f"{_label(expected_old)}", entry_id))
            continue
        if effect == "overruled":
            if old != expected_old:
                report.differences.append(Difference(
                    sandbox, number, f"overruled, but its old is {_label(old)} while consent was "
                    f"{_label(expected_old)}", entry_id))
            if received_at >= in_force_since:
                report.differences.append(Difference(
                    sandbox, number, f"overruled, but received at {received_at or '?'}, not before the wish "
                    f"in force (received at {in_force_since or 'never'})", entry_id))
            continue
        if received_at < in_force_since:
            report.differences.append(Difference(
                sandbox, number, f"{effect} by a message received at {received_at}, before the wish it "
                f"overturned (received at {in_force_since})", entry_id))
        latest_at[key] = received_at
        if effect == "reaffirmed":
            if not old == new == expected_old:
                report.differences.append(Difference(
                    sandbox, number, f"reaffirmed {_label(new)}, but consent was {_label(expected_old)}", entry_id))
            continue
        if old != expected_old:
            what = "the first entry" if key not in replayed else "the previous entry's new"
            report.differences.append(Difference(
                sandbox, number, f"chain broken: old is {_label(old)} but {what} is {_label(expected_old)}",
                entry_id))
        if effect == "expired":
            if old != Consent.PENDING or new not in (Consent.NONE, Consent.NO):
                report.differences.append(Difference(
                    sandbox, number, f"expired from {_label(old)} to {_label(new)}; only p expires, to '' or n",
                    entry_id))
        elif new not in VALID:
            report.differences.append(Difference(sandbox, number, f"new is {_label(new)}, not y, n or p",
                                                 entry_id))
        if new == old:
            report.differences.append(Difference(sandbox, number, f"records no change ({_label(old)} to itself)",
                                                 entry_id))
        replayed[key] = new
    # An expiry back to '' (never expressed) leaves no consent row: nothing to compare.
    replayed = {key: value for key, value in replayed.items() if value or key in current}
    keys = sorted(set(current) | set(replayed))
    report.numbers = len(keys)
    for key in keys:
        sandbox, number = key
        if key not in replayed:
            report.differences.append(Difference(
                sandbox, number, f"consent is {_label(current[key])} but the ledger has no entries"))
        elif key not in current:
            report.differences.append(Difference(
                sandbox, number, f"the ledger ends at {_label(replayed[key])} but there is no consent row"))
        elif current[key] != replayed[key]:
            report.differences.append(Difference(
                sandbox, number,
                f"consent is {_label(current[key])} but the ledger ends at {_label(replayed[key])}"))
    report.differences.sort(key=lambda d: (d.sandbox, d.number, d.ledger_id or 0))
    return report
