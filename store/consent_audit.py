"""Checking the consent ledger against the consent table: the evidence must explain the state.

For every (sandbox, number) the ledger is replayed in id order through the consent decider
(domain/consent_decider.py), the same function that decided each entry: every entry must say what
the decider makes of the same event on the state replayed so far (its effect, old and new), and
the state the replay ends in must be the consent row's value. A consent row without ledger
entries, or ledger entries without a consent row, are differences too. Reads only; one pass over
each table, streamed by number (memory does not grow with the ledger).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from smsdesk.domain.consent_decider import Cause, Consent, Effect, LedgerEffect, Wish, replay
from smsdesk.domain.inert import make_inert


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


def verify_consent(conn: sqlite3.Connection) -> ConsentReport:
    """Replay every number's ledger through the consent decider and compare. Never writes.

    Streamed by number: the ledger (in its index's order) and the consent table (in its key's
    order) are read side by side, one number at a time, so memory holds one number's entries and
    the differences found, however large the ledger."""
    report = ConsentReport()
    consents = iter(conn.execute("SELECT sandbox, number, consent FROM consent ORDER BY sandbox, number"))
    pending = next(consents, None)

    def consent_without_ledger(sandbox: str, number: str, consent: str) -> None:
        report.numbers += 1
        report.differences.append(Difference(
            sandbox, number, f"consent is {_label(consent)} but the ledger has no entries"))

    for key, ids, entries, nows in _ledgers(conn, report):
        while pending is not None and (pending[0], pending[1]) < key:
            consent_without_ledger(*pending)
            pending = next(consents, None)
        state, problems = replay(entries, nows)
        report.differences.extend(Difference(key[0], key[1], problem, ids[index]) for index, problem in problems)
        if pending is not None and (pending[0], pending[1]) == key:
            report.numbers += 1
            if pending[2] != state.value:
                report.differences.append(Difference(
                    key[0], key[1], f"consent is {_label(pending[2])} but the ledger ends at {_label(state.value)}"))
            pending = next(consents, None)
        elif state.value:  # a number whose ledger ends at '' may have a row saying so, or none (before 0.4)
            report.numbers += 1
            report.differences.append(Difference(
                key[0], key[1], f"the ledger ends at {_label(state.value)} but there is no consent row"))
    while pending is not None:
        consent_without_ledger(*pending)
        pending = next(consents, None)
    report.differences.sort(key=lambda d: (d.sandbox, d.number, d.ledger_id or 0))
    return report


def _ledgers(conn: sqlite3.Connection, report: ConsentReport) -> Iterator[
        tuple[tuple[str, str], list[int], list[LedgerEffect], list[str]]]:
    """Each number's ledger entries, in (sandbox, number) order: (key, ids, entries, their times)."""
    key: tuple[str, str] | None = None
    ids: list[int] = []
    entries: list[LedgerEffect] = []
    nows: list[str] = []
    for entry_id, sandbox, number, at, old, new, received_at, effect, wish, days, cause, operator, action in \
            conn.execute(_LEDGER):
        report.entries += 1
        if (sandbox, number) != key:
            if key is not None:
                yield key, ids, entries, nows
            key, ids, entries, nows = (sandbox, number), [], [], []
        ids.append(entry_id)
        entries.append(_entry(old, new, received_at, effect, wish, days, cause, operator, action))
        nows.append(at)
    if key is not None:
        yield key, ids, entries, nows


# Each entry with what replaying it needs; entries written before 0.4 have no wish or cause and
# are read from their effect, values and message (a confirmation took p to y).
_LEDGER = """SELECT l.id, l.sandbox, l.number, l.at, l.old, l.new, l.received_at, l.effect, l.wish, l.expiry_days,
    l.cause, l.operator, CASE WHEN l.wish = '' THEN (SELECT m.action FROM messages m WHERE m.id = l.message_row_id)
    END FROM consent_ledger l ORDER BY l.sandbox, l.number, l.id"""


def _entry(old: str, new: str, received_at: str, effect: str, wish: str, days: int, cause: str, operator: str,
           action: str | None) -> LedgerEffect:
    if not cause:  # written before 0.4
        cause = {"expired": Cause.EXPIRY, "dismissed": Cause.DISMISSAL}.get(effect, Cause.KEYWORD)
        if operator and cause == Cause.KEYWORD:
            cause = Cause.OPERATOR
        if not wish and effect in ("changed", "reaffirmed", "overruled"):
            wish = Wish.CONFIRM if action == "double-opt-in" else {"y": "y", "n": "n", "p": "p"}.get(new, "n")
    try:
        return LedgerEffect(Effect(effect), Consent(old), Consent(new), received_at, Cause(cause), Wish(wish) if wish
                            else "", int(days))
    except ValueError:  # a value edited by hand: replayed as an opt-out that the check then names
        return LedgerEffect(Effect.CHANGED, Consent.NONE, Consent.NO, received_at, Cause.KEYWORD, Wish.OPT_OUT)


def _label(value: str) -> str:
    return repr(str(value)) if value else "'' (none)"
