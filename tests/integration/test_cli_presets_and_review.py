"""The CLI of keyword engine 2: presets, the new credential options, `smsdesk review`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from smsdesk.cli.main import cli
from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages

BASE = ["--base-url", "xyz.api.infobip.com", "--api-key", "key-000000001"]


def smsdesk(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def show(db: Path, name: str) -> dict:
    result = smsdesk(db, "creds", "show", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_preset_us_fills_the_lists(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    assert smsdesk(db, "creds", "add", "--name", "A", *BASE, "--preset", "us").exit_code == 0
    data = show(db, "A")
    assert {"REVOKE", "OPT OUT", "OPTOUT", "STOPALL", "STOP", "QUIT"} <= set(data["opt_out_keywords"])
    assert data["help_keywords"] == ["HELP", "INFO"]


def test_preset_then_explicit_option_wins_and_edit_applies_a_preset(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    result = smsdesk(db, "creds", "add", "--name", "A", *BASE, "--preset", "fr", "--help-keywords", "AIDE")
    assert result.exit_code == 0, result.output
    data = show(db, "A")
    assert "ARRÊT" in data["opt_out_keywords"] and data["help_keywords"] == ["AIDE"]
    assert smsdesk(db, "creds", "edit", "A", "--preset", "de").exit_code == 0
    assert "ABMELDEN" in show(db, "A")["opt_out_keywords"]
    assert smsdesk(db, "creds", "edit", "A", "--preset", "xx").exit_code == 2  # a usage error names the choices


def test_new_fields_round_trip_through_options_and_export(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    result = smsdesk(db, "creds", "add", "--name", "A", *BASE, "--inbound-keywords", "DISCOUNT,BLACK FRIDAY",
                     "--custom-keyword-replies", '{"discount": "10% off", "BLACK FRIDAY": "Doors open at 8"}',
                     "--fuzzy-opt-out", "reply+review", "--fuzzy-opt-out-message", "Text STOP to leave.",
                     "--double-opt-in-expiry-days", "7", "--opt-out-keywords", "STOP,OPT   OUT")
    assert result.exit_code == 0, result.output
    data = show(db, "A")
    assert data["custom_keyword_replies"] == {"DISCOUNT": "10% off", "BLACK FRIDAY": "Doors open at 8"}
    assert (data["fuzzy_opt_out"], data["fuzzy_opt_out_message"], data["double_opt_in_expiry_days"]) == (
        "reply+review", "Text STOP to leave.", 7)
    assert data["opt_out_keywords"] == ["STOP", "OPT OUT"]
    exported = smsdesk(db, "creds", "export", "--with-secrets").stdout
    other = tmp_path / "e.db"
    (tmp_path / "x.json").write_text(exported)
    assert smsdesk(other, "creds", "import", str(tmp_path / "x.json")).exit_code == 0
    assert show(other, "A") == data


def test_an_old_export_without_the_new_fields_imports_with_defaults(tmp_path: Path) -> None:
    old = {"name": "Old", "base_url": "xyz.api.infobip.com", "api_key": "key-000000001",
           "inbound_keywords": ["PIZZA"], "opt_out_keywords": ["STOP"]}
    (tmp_path / "old.json").write_text(json.dumps([old]))
    db = tmp_path / "d.db"
    assert smsdesk(db, "creds", "import", str(tmp_path / "old.json")).exit_code == 0
    data = show(db, "Old")
    assert (data["custom_keyword_replies"], data["fuzzy_opt_out"], data["double_opt_in_expiry_days"]) == ({}, "off", 30)


def test_review_list_and_resolve(tmp_path: Path) -> None:
    path = make_db(tmp_path / "d.db", shop_credential(fuzzy_opt_out="review"))
    db = connect(path)
    with transaction(db) as conn:
        store_messages(conn, RouteTable(), [
            InboundMessage("a", "+41793026727", "+447491163443", "START", "2026-11-26T10:00:00.000+00:00"),
            InboundMessage("b", "+41793026727", "+447491163443", "STPO", "2026-11-26T10:01:00.000+00:00"),
            InboundMessage("c", "+41793026728", "+447491163443", "remove me", "2026-11-26T09:00:00.000+00:00")])
    db.close()
    listed = json.loads(smsdesk(path, "review", "list", "--json").stdout)
    assert [(r["number"], r["text"], r["status"]) for r in listed] == [
        ("+41793026728", "remove me", "open"), ("+41793026727", "STPO", "open")]
    assert set(listed[0]) == {"id", "number", "sandbox", "credential", "text", "received_at", "status"}
    result = smsdesk(path, "review", "resolve", str(listed[1]["id"]), "--opt-out")
    assert result.exit_code == 0 and "opted out" in result.stdout, result.output
    result = smsdesk(path, "review", "resolve", str(listed[0]["id"]), "--dismiss")
    assert result.exit_code == 0 and "dismissed" in result.stdout
    assert json.loads(smsdesk(path, "review", "list", "--json").stdout) == []
    assert smsdesk(path, "review", "resolve", str(listed[0]["id"]), "--opt-out").exit_code == 1  # already resolved
    assert smsdesk(path, "review", "resolve", "1").exit_code == 2  # no decision given: a usage error
    verify = smsdesk(path, "consent", "verify")
    assert verify.exit_code == 0, verify.output
    ledger = smsdesk(path, "export", "consent", "--format", "jsonl")
    assert ledger.exit_code == 0
