"""`smsdesk consent verify`: a database written by the real pipeline verifies; tampering is reported."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.simulator.sample_data import CLUB_NUMBER, club_credential, make_db, mo_body, mo_result, shop_credential
from smsdesk.store.consent_audit import verify_consent
from tests.support.cli import run_script
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import copy_db

ALICE, BOB, CAROL = "41793026727", "41793026728", "41793026729"

# (sender, to, text): opt-ins, opt-outs, double opt-in, help, chatter, across two sandboxes
TRAFFIC = [
    (ALICE, None, "START"), (ALICE, None, "STOP"), (ALICE, None, "stop."), (ALICE, None, "YES"),
    (BOB, None, "HELP"), (BOB, None, "hello"), (BOB, None, "STOP please"),
    (CAROL, CLUB_NUMBER, "START"), (CAROL, CLUB_NUMBER, "CONFIRM"), (CAROL, CLUB_NUMBER, "QUIT"),
    (ALICE, CLUB_NUMBER, "SUBSCRIBE"),
]


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database whose consent and ledger were written only by `serve` receiving webhooks; built
    once (a serve and its writer process), each test tampers with a copy (`pipeline_db`)."""
    path = make_db(tmp_path_factory.mktemp("pipeline") / "smsdesk.db", shop_credential(), club_credential())
    with running_serve(path) as server:
        for i, (sender, to, text) in enumerate(TRAFFIC):
            result = mo_result(text, sender=sender, message_id=f"cv-{i}", **({"to": to} if to else {}))
            response = httpx.post(server.url + "/infobip/inbound", json=mo_body(result),
                                  auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
            assert response.status_code == 200, response.text
    return path


@pytest.fixture
def pipeline_db(pipeline_template: Path, tmp_path: Path) -> Path:
    return copy_db(pipeline_template, tmp_path / "smsdesk.db")


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db), "consent", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


def tamper(db: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(db)
    with conn:
        changed = conn.execute(sql, params).rowcount
    conn.close()
    assert changed >= 1, sql  # a tamper that touches nothing would make the test pass vacuously


def ledger(db: Path, sandbox: str, number: str) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(db)
    try:
        # the changes only: "stop." after "STOP" is kept too, as a reaffirmation of the opt-out
        return conn.execute("SELECT id, old, new FROM consent_ledger WHERE sandbox = ? AND number = ? "
                            "AND effect = 'changed' ORDER BY id", (sandbox, number)).fetchall()
    finally:
        conn.close()


def test_pipeline_database_verifies(pipeline_db: Path) -> None:
    # the fixture really produced history worth checking: chains of several entries, both sandboxes
    assert [(o, n) for _, o, n in ledger(pipeline_db, "prod", "+" + ALICE)] == [("", "y"), ("y", "n"), ("n", "y")]
    assert [(o, n) for _, o, n in ledger(pipeline_db, "dev", "+" + CAROL)] == [("", "p"), ("p", "y"), ("y", "n")]
    code, out, err = run(pipeline_db)
    assert (code, err) == (0, "")
    assert out == "4 numbers verified (9 ledger entries)\n"
    code, out, _ = run(pipeline_db, "--json")
    assert code == 0
    assert json.loads(out) == {"ok": True, "numbers": 4, "ledger_entries": 9, "differences": []}


def test_empty_database_verifies(tmp_path: Path) -> None:
    code, out, _ = run(make_db(tmp_path / "empty.db"))
    assert (code, out) == (0, "0 numbers verified (0 ledger entries)\n")


def test_consent_updated_behind_the_ledgers_back(pipeline_db: Path) -> None:
    tamper(pipeline_db, "UPDATE consent SET consent = 'y' WHERE sandbox = 'prod' AND number = ?", "+" + BOB)
    code, out, err = run(pipeline_db)
    assert code == 1
    assert out == f"prod +{BOB}: consent is 'y' but the ledger ends at 'n'\n"
    assert "1 difference(s)" in err and "Traceback" not in err


def test_deleted_ledger_row_breaks_the_chain(pipeline_db: Path) -> None:
    entries = ledger(pipeline_db, "prod", "+" + ALICE)
    tamper(pipeline_db, "DELETE FROM consent_ledger WHERE id = ?", entries[1][0])
    code, out, _ = run(pipeline_db)
    assert code == 1
    reaffirmed = entries[1][0] + 1  # "stop." after the deleted STOP now finds a consent that was 'y'
    # replayed through the decider, it is the opt-out; the entries after it agree again
    assert out == (f"prod +{ALICE} (ledger #{reaffirmed}): reaffirmed 'n' to 'n', "
                   "but the rules make it changed 'y' to 'n'\n")


def test_deleted_only_ledger_row_leaves_an_unexplained_consent(pipeline_db: Path) -> None:
    tamper(pipeline_db, "DELETE FROM consent_ledger WHERE sandbox = 'prod' AND number = ?", "+" + BOB)
    code, out, _ = run(pipeline_db)
    assert code == 1
    assert out == f"prod +{BOB}: consent is 'n' but the ledger has no entries\n"


def test_deleted_last_ledger_row_disagrees_with_consent(pipeline_db: Path) -> None:
    last = ledger(pipeline_db, "dev", "+" + CAROL)[-1][0]
    tamper(pipeline_db, "DELETE FROM consent_ledger WHERE id = ?", last)
    code, out, _ = run(pipeline_db)
    assert code == 1
    assert out == f"dev +{CAROL}: consent is 'n' but the ledger ends at 'y'\n"


def test_broken_chain_and_bad_first_entry(pipeline_db: Path) -> None:
    entries = ledger(pipeline_db, "dev", "+" + CAROL)
    tamper(pipeline_db, "UPDATE consent_ledger SET old = 'n' WHERE id = ?", entries[1][0])
    bob_first = ledger(pipeline_db, "prod", "+" + BOB)[0][0]
    tamper(pipeline_db, "UPDATE consent_ledger SET old = 'y' WHERE id = ?", bob_first)
    code, out, _ = run(pipeline_db)
    assert code == 1
    assert out.splitlines() == [
        f"dev +{CAROL} (ledger #{entries[1][0]}): changed 'n' to 'y', but the rules make it changed 'p' to 'y'",
        f"prod +{BOB} (ledger #{bob_first}): changed 'y' to 'n', but the rules make it changed '' (none) to 'n'",
    ]


def test_orphans_on_either_side_and_json_output(pipeline_db: Path) -> None:
    tamper(pipeline_db, "DELETE FROM consent WHERE sandbox = 'dev' AND number = ?", "+" + ALICE)
    tamper(pipeline_db, "INSERT INTO consent (sandbox, number, consent, changed_at) VALUES ('prod', '+1555', 'y', 'x')")
    code, out, _ = run(pipeline_db, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["numbers"] == 5
    assert [(d["sandbox"], d["number"], d["problem"]) for d in report["differences"]] == [
        ("dev", "+" + ALICE, "the ledger ends at 'p' but there is no consent row"),
        ("prod", "+1555", "consent is 'y' but the ledger has no entries"),
    ]


def test_every_difference_is_reported_not_just_the_first(pipeline_db: Path) -> None:
    tamper(pipeline_db, "UPDATE consent SET consent = 'p'")
    code, out, _ = run(pipeline_db)
    assert code == 1
    # every number not already pending now disagrees, each on its own line
    assert out.splitlines() == [
        f"dev +{CAROL}: consent is 'p' but the ledger ends at 'n'",
        f"prod +{ALICE}: consent is 'p' but the ledger ends at 'y'",
        f"prod +{BOB}: consent is 'p' but the ledger ends at 'n'",
    ]


def test_hostile_number_is_printed_inert(pipeline_db: Path) -> None:
    tamper(pipeline_db, "INSERT INTO consent (sandbox, number, consent, changed_at) "
                        "VALUES ('prod', 'x' || char(27) || '[2J' || char(155), 'y', 'x')")
    code, out, _ = run(pipeline_db)
    assert code == 1
    assert "\x1b" not in out and "\x9b" not in out and "x\\x1b[2J\\x9b" in out


def test_console_script_exit_statuses(pipeline_db: Path) -> None:
    clean = run_script("--db", str(pipeline_db), "consent", "verify")
    assert (clean.code, clean.out) == (0, "4 numbers verified (9 ledger entries)\n")
    tamper(pipeline_db, "UPDATE consent SET consent = 'y' WHERE number = ?", "+" + BOB)
    dirty = run_script("--db", str(pipeline_db), "consent", "verify")
    assert dirty.code == 1 and "Traceback" not in dirty.err
    assert dirty.out.count("\n") == 1


def test_verify_is_read_only(pipeline_db: Path) -> None:
    before = pipeline_db.read_bytes()
    conn = sqlite3.connect(f"file:{pipeline_db}?mode=ro", uri=True)
    try:
        assert verify_consent(conn).ok
    finally:
        conn.close()
    assert pipeline_db.read_bytes() == before
