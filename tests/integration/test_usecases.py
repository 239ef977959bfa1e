"""The use cases both front ends call (usecases/), on a real SQLite file: credential changes,
the guarded send with the simulator over loopback, review and consent decisions, and exports
written as the same bytes by the TUI and the CLI."""

from __future__ import annotations

import asyncio
import getpass
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from smsdesk.domain.credential import Credential
from smsdesk.infobip.client import InfobipClient, OutboundSms
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.credentials import get_credential
from smsdesk.store.db import connect
from smsdesk.store.errors import ConflictError, NotFoundError
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.queries import MessageFilter, consent_ledger
from smsdesk.store.review import list_reviews
from smsdesk.tui.adapters import export_evidence, export_messages
from smsdesk.usecases.consent import opt_out_by_operator
from smsdesk.usecases.credentials import (
    import_credential_records,
    load_credential,
    remove_credential,
    save_credential,
)
from smsdesk.usecases.exports import inert_json, write_jsonl
from smsdesk.usecases.guarded_send import SendRefused, check_consent, record_override
from smsdesk.usecases.review import decide_review
from tests.support.cli import run_main
from tests.support.live import inbound, store
from tests.support.sim import GOOD_KEY
from tests.support.store import record, store_directly

ME = getpass.getuser()
SHOP_INBOUND = "+447491163443"
OPTED_OUT = "+41793026727"
NEVER_ASKED = "+41793026729"


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    handle = connect(tmp_path / "smsdesk.db")
    yield handle
    handle.close()


def audit(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    return [tuple(row) for row in db.conn.execute("SELECT action, os_user, credential_name FROM audit ORDER BY id")]


# -- credentials: create, edit, copy, delete, import -------------------------------------------

def test_credential_changes_are_audited_with_the_os_user(db: sqlite_utils.Database) -> None:
    created = save_credential(db, Credential.model_validate(record(1)))
    edited = save_credential(db, created.to_credential().model_copy(update={"sender": "Shop"}), created)
    copy = save_credential(db, edited.to_credential().model_copy(update={"name": "copy", "inbound_number": ""}))
    assert (edited.version, edited.sender, copy.sender) == (2, "Shop", "Shop")
    assert remove_credential(db, copy.id, copy.version) == 0
    assert import_credential_records(db, [record(2)]) == [record(2)["name"]]
    assert audit(db) == [("create", ME, created.name), ("update", ME, created.name), ("create", ME, "copy"),
                         ("delete", ME, "copy"), ("create", ME, record(2)["name"])]


def test_an_edit_over_a_stale_version_conflicts_unless_forced(db: sqlite_utils.Database) -> None:
    stale = save_credential(db, Credential.model_validate(record(1)))
    save_credential(db, stale.to_credential().model_copy(update={"sender": "Theirs"}), stale)
    mine = stale.to_credential().model_copy(update={"sender": "Mine"})
    with pytest.raises(ConflictError):
        save_credential(db, mine, stale)
    assert save_credential(db, mine, stale, force=True).sender == "Mine"
    with pytest.raises(ConflictError):
        remove_credential(db, stale.id, stale.version)


def test_a_credential_deleted_meanwhile_is_not_found(db: sqlite_utils.Database) -> None:
    gone = save_credential(db, Credential.model_validate(record(1)))
    remove_credential(db, gone.id, gone.version)
    with pytest.raises(NotFoundError, match="deleted meanwhile"):
        load_credential(db.conn, gone.id)
    with pytest.raises(NotFoundError, match="deleted meanwhile"):
        save_credential(db, gone.to_credential(), gone, force=True)


# -- the guarded send -----------------------------------------------------------------------------

def shop_with_an_opt_out(path: Path, base_url: str) -> None:
    make_db(path, shop_credential(base_url, api_key=GOOD_KEY, sender="Shop", sandbox="prod"))
    store(path, inbound(OPTED_OUT, SHOP_INBOUND, "STOP", "2026-03-04T05:06:07.000+00:00"))


def send(base_url: str, sms: OutboundSms) -> str:
    async def run() -> str:
        async with InfobipClient(base_url, GOOD_KEY, max_attempts=1) as client:
            return (await client.send([sms])).messages[0].status_group
    return asyncio.run(run())


def test_a_send_to_an_opted_out_number_is_refused_then_audited_and_sent(tmp_path: Path,
                                                                        sim: SimulatorThread) -> None:
    path = tmp_path / "smsdesk.db"
    shop_with_an_opt_out(path, sim.url)
    db = connect(path)
    try:
        cred = get_credential(db, "Shop")
        assert check_consent(db.conn, cred.sandbox, NEVER_ASKED, False) is None
        with pytest.raises(SendRefused) as refused:
            check_consent(db.conn, cred.sandbox, OPTED_OUT, False)
        assert str(refused.value).startswith(f"refused: {OPTED_OUT} opted out of sandbox 'prod' on 2026-03-04 05:06")
        assert audit(db) == [("create", "smsdesk", "Shop")]  # the sample data's; a refusal writes nothing

        opted = check_consent(db.conn, cred.sandbox, OPTED_OUT, True)
        assert opted is not None and opted.number == OPTED_OUT
        sms = OutboundSms.from_credential(cred, OPTED_OUT, "hello", "smsdesk-ours-1")
        record_override(db, cred, opted, "smsdesk-ours-1", "cli")  # before the request leaves
        assert send(sim.url, sms) == "PENDING"
        [(fields,)] = db.conn.execute("SELECT fields FROM audit WHERE action = 'send-override-opt-out' "
                                      f"AND os_user = '{ME}'").fetchall()
        assert json.loads(fields) == {"to": OPTED_OUT, "sandbox": "prod", "opted_out_at": opted.since,
                                      "our_message_id": "smsdesk-ours-1", "via": "cli"}
        assert [m.to for m in sim.state.sent] == [OPTED_OUT.lstrip("+")]
    finally:
        db.close()


# -- review and consent decisions -------------------------------------------------------------------

def test_review_and_operator_opt_out_name_the_os_user(tmp_path: Path) -> None:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    store(path, inbound(OPTED_OUT, SHOP_INBOUND, "STPO"), inbound(NEVER_ASKED, SHOP_INBOUND, "stopp"))
    db = connect(path)
    try:
        first, second = list_reviews(db.conn)
        assert decide_review(db, first.id, "dismiss").item.resolved_by == ME
        assert decide_review(db, second.id, "opt-out").effect == "changed"
        done = opt_out_by_operator(db, second.sandbox, OPTED_OUT, "phone call")
        assert done.effect == "changed"
        operators = [e["operator"] for n in (OPTED_OUT, NEVER_ASKED) for e in consent_ledger(db.conn, "prod", n)
                     if e["operator"]]
        assert operators == [ME, ME, ME]
    finally:
        db.close()


# -- exports: one writer, the same bytes from both front ends ------------------------------------

HOSTILE = ("Shop\u202egnp.exe", "esc \x1b[2J and \x9b31m", "del \x7f", "Grüezi 💥", "line\nbreak", "isolate \u2066x")


def test_inert_json_escapes_what_could_drive_a_terminal_and_loses_nothing() -> None:
    for text in (*HOSTILE, "lone \ud800"):
        line = inert_json({"text": text})
        assert not any(c in line for c in "\x1b\x9b\x7f\u202e\u2066\n\ud800"), line
        assert json.loads(line) == {"text": text}
    assert inert_json({"text": "Grüezi 💥"}) == '{"text": "Grüezi 💥"}'  # readable, not \\u escapes


def test_the_tui_export_and_the_cli_export_are_the_same_bytes(tmp_path: Path) -> None:
    path = make_db(tmp_path / "smsdesk.db", shop_credential())
    store_directly(path, [InboundMessage(f"m-{i}", OPTED_OUT, SHOP_INBOUND, text, f"2026-12-01T10:00:{i:02d}.000+00:00")
                          for i, text in enumerate((*HOSTILE, "STOP"))])
    conn = sqlite3.connect(path)
    try:
        assert export_messages(conn, MessageFilter(), tmp_path / "tui.jsonl") == len(HOSTILE) + 1
        export_evidence(conn, "prod", OPTED_OUT, tmp_path / "evidence.json")
    finally:
        conn.close()
    tui_bytes = (tmp_path / "tui.jsonl").read_bytes()
    cli = run_main("--db", str(path), "export", "messages")
    assert cli.code == 0, cli.err
    assert tui_bytes == cli.out.encode("utf-8")
    assert [json.loads(line)["text"] for line in tui_bytes.decode().splitlines()] == [*HOSTILE, "STOP"]
    evidence = run_main("--db", str(path), "consent", "evidence", OPTED_OUT, "--json")
    assert (tmp_path / "evidence.json").read_bytes() == evidence.out.encode("utf-8")


def test_write_jsonl_counts_its_lines(tmp_path: Path) -> None:
    with open(tmp_path / "out.jsonl", "w", encoding="utf-8") as out:
        assert write_jsonl(iter([{"a": 1}, {"b": "\u202e"}]), out) == 2
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == '{"a": 1}\n{"b": "\\u202e"}\n'
