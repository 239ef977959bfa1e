"""The operator's questions: who opted out between two times, how and why; and one number's
evidence record with a digest that checks a copy. Real SQLite file, the real rules and the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.consent_history import digest_of
from smsdesk.store.inbound import InboundMessage
from tests.support.cli import run_main
from tests.support.store import rows, store_directly

SHOP = "+447491163443"
ALICE, BOB, CAROL, DAN = "+41790000001", "+41790000002", "+41790000003", "+41790000004"


def arrive(db: Path, number: str, text: str, at: str) -> None:
    store_directly(db, [InboundMessage(f"{number}-{at}", number, SHOP, text, at)], arrived_at=at)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    arrive(path, ALICE, "START", "2026-01-13T09:00:00.000+00:00")
    arrive(path, ALICE, "STOP", "2026-01-14T10:00:00.000+00:00")  # yesterday
    arrive(path, BOB, "START", "2026-01-14T11:00:00.000+00:00")
    arrive(path, BOB, "STOP please", "2026-01-15T08:00:00.000+00:00")  # today, by its first word
    arrive(path, CAROL, "START", "2026-01-15T08:30:00.000+00:00")
    arrive(path, CAROL, "STOP", "2026-01-15T09:00:00.000+00:00")
    arrive(path, CAROL, "START", "2026-01-15T09:30:00.000+00:00")  # opted back in: not out at the end
    arrive(path, DAN, "stpo", "2026-01-15T07:00:00.000+00:00")  # a near miss, for the review queue
    [(review_id,)] = rows(path, "SELECT id FROM review_queue")
    assert run_main("--db", str(path), "review", "resolve", str(review_id), "--opt-out").code == 0
    done = run_main("--db", str(path), "consent", "opt-out", ALICE, "--sandbox", "prod", "--reason", "called support")
    assert done.code == 0, done.err
    return path


def test_who_opted_out_in_a_window_how_and_why(db: Path) -> None:
    done = run_main("--db", str(db), "export", "consent", "--since", "2026-01-15", "--until", "2026-01-15T09:15",
                    "--consent", "n")
    assert done.code == 0, done.err
    changes = [json.loads(line) for line in done.out.splitlines()]
    assert [(c["number"], c["effect"], c["cause"], c["text"]) for c in changes] == [
        (BOB, "changed", "keyword", "STOP please"), (CAROL, "changed", "keyword", "STOP")]
    assert all(c["received_at"].startswith("2026-01-15") for c in changes)


def test_operator_decisions_are_in_the_history_with_who_and_why(db: Path) -> None:
    done = run_main("--db", str(db), "export", "consent", "--consent", "n", "--format", "csv")
    assert done.code == 0, done.err
    table = list(csv.DictReader(io.StringIO(done.out, newline="")))
    by_operator = [(r["number"], r["effect"], r["cause"]) for r in table if r["cause"] == "operator"]
    assert sorted(by_operator) == [("'" + ALICE, "reaffirmed", "operator"), ("'" + DAN, "changed", "operator")]
    alice = next(r for r in table if r["number"] == "'" + ALICE and r["cause"] == "operator")
    assert alice["reason"].endswith("called support") and alice["operator"]


def test_history_options_need_export_consent_and_a_real_time(db: Path) -> None:
    assert run_main("--db", str(db), "export", "messages", "--since", "2026-01-15").code == 2
    bad = run_main("--db", str(db), "export", "consent", "--since", "yesterday")
    assert bad.code == 2 and "a date or time" in bad.err


def test_the_evidence_record_of_a_number_and_its_digest(db: Path) -> None:
    done = run_main("--db", str(db), "consent", "evidence", ALICE, "--json")
    assert done.code == 0, done.err
    record = json.loads(done.out)
    assert record["consent"]["value"] == "n"
    assert [(e["effect"], e["cause"]) for e in record["ledger"]] == [
        ("changed", "keyword"), ("changed", "keyword"), ("reaffirmed", "operator")]
    assert record["ledger"][0]["text"] == "START" and record["ledger"][0]["message_received_at"]
    assert [r["kind"] for r in record["replies"]] == ["opt-in", "opt-out"]
    assert all(r["our_message_id"].startswith("smsdesk-") for r in record["replies"])
    assert record["digest"] == "sha256:" + digest_of(record)
    tampered = json.loads(done.out)
    tampered["ledger"][1]["new"] = "y"
    assert digest_of(tampered) != record["digest"].removeprefix("sha256:")
    again = json.loads(run_main("--db", str(db), "consent", "evidence", ALICE, "--json").out)
    assert again == record  # the same record, the same digest
    text = run_main("--db", str(db), "consent", "evidence", ALICE.removeprefix("+"))
    assert text.code == 0 and "consent n since" in text.out and record["digest"] in text.out


def test_evidence_of_an_unknown_number_is_one_line(db: Path) -> None:
    done = run_main("--db", str(db), "consent", "evidence", "+41799999999")
    assert done.code == 1 and "no consent record or profile for +41799999999" in done.err
    done = run_main("--db", str(db), "consent", "evidence", ALICE, "--sandbox", "dev")
    assert done.code == 1 and "in sandbox 'dev'" in done.err
