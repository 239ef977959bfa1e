"""An open demo (issue 27, point 6): a credential made in the demo works against its simulator (any
API key the demo database holds is valid there), the simulated people text every credential's
inbound number with its own keywords, near misses included, and the CLI says which database it
reads. The real demo stack (simulator, serve, writer, traffic) on a real SQLite file, over loopback."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from smsdesk.domain.credential import Credential
from smsdesk.infobip.client import InfobipClient
from smsdesk.simulator.demo import COFFEE_NUMBER, demo_script, start_demo
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect
from tests.support.cli import run_main

DEALS_NUMBER = "+12025550123"


def count(db: Path, sql: str, *args: object) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


def wait_for(what: str, condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {seconds} s")


@pytest.mark.timeout(90)
def test_a_credential_made_in_the_demo_verifies_is_texted_and_its_replies_are_sent(tmp_path: Path) -> None:
    db_path = tmp_path / "demo.db"
    stack = start_demo(db_path, rate_per_second=20, seed=7)
    try:
        key = secrets.token_urlsafe(24)  # a key the simulator never saw: only the demo database holds it
        cred = Credential(name="Deals", sandbox="us", base_url=stack.simulator.url, api_key=key,
                          inbound_number=DEALS_NUMBER, inbound_keywords=["DEALS"],
                          custom_keyword_replies={"DEALS": "Deals: 20% off today."},
                          opt_out_keywords=["STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"])
        db = connect(db_path)
        create_credential(db, cred)
        db.close()

        async def verify() -> tuple[bool, bool]:
            async with InfobipClient(stack.simulator.url, key, max_attempts=1) as client:
                good = await client.verify()
            async with InfobipClient(stack.simulator.url, "not-in-the-demo-database", max_attempts=1) as client:
                bad = await client.verify()
            return good.ok, bad.ok

        assert asyncio.run(verify()) == (True, False)  # the demo's keys, and only those
        number = DEALS_NUMBER.removeprefix("+")
        wait_for("texts to the new credential's number", lambda: count(
            db_path, "SELECT COUNT(*) FROM messages WHERE to_number LIKE ?", f"%{number}") >= 5)
        wait_for("a DEALS reply sent through the simulator", lambda: count(
            db_path, "SELECT COUNT(*) FROM outbox WHERE text = 'Deals: 20% off today.' AND status IN "
                     "('sent', 'delivered')") >= 1)
        wait_for("a near miss in Review", lambda: count(db_path, "SELECT COUNT(*) FROM review_queue") >= 1)
        assert count(db_path, "SELECT COUNT(*) FROM outbox WHERE last_error LIKE '%401%'") == 0
    finally:
        stack.stop()


def test_every_credential_with_an_inbound_number_gets_its_own_keywords_and_near_misses() -> None:
    ours = Credential(name="Deals", sandbox="us", base_url="http://127.0.0.1:1", api_key="k" * 20,
                      inbound_number=DEALS_NUMBER, inbound_keywords=["DEALS"])
    none = Credential(name="No number", sandbox="x", base_url="http://127.0.0.1:1", api_key="k" * 20)
    script = demo_script([ours, none])
    to_ours = [texts for _, to, texts in script if to == DEALS_NUMBER.removeprefix("+")]
    said = {text for texts in to_ours for text in texts}
    assert {"DEALS", "STOP", "HELP", "STPO"} <= said
    assert any(to == COFFEE_NUMBER and "STPO" in texts for _, to, texts in script)  # the sample's near misses
    assert all(to for _, to, _ in script)  # a credential without a number is texted nothing


def test_a_read_only_command_names_the_default_database_it_reads(home: Path, tmp_path: Path) -> None:
    made = run_main("creds", "add", "--name", "Shop", "--base-url", "x.api.infobip.com", "--api-key", "k-0123456789")
    assert made.code == 0, made.err
    done = run_main("export", "consent")
    assert done.code == 0
    [default] = list((home / "data").rglob("smsdesk.db"))
    assert f"database {default} (the default" in done.err
    chosen = run_main("export", "consent", env={"SMSDESK_DB": str(default)})
    assert "database" not in chosen.err  # chosen by name: nothing to say
    absent = run_main("export", "consent", env={"SMSDESK_DB": str(tmp_path / "absent.db")})
    assert absent.code == 1 and "no such file" in absent.err and not (tmp_path / "absent.db").exists()


@pytest.mark.timeout(60)
def test_smsdesk_demo_prints_the_line_that_points_the_cli_at_it(tmp_path: Path) -> None:
    demo_db = tmp_path / "demo.db"
    done = run_main("demo", "--no-tui", "--seconds", "1", "--demo-db", str(demo_db))
    assert done.code == 0, done.err
    assert f"export SMSDESK_DB={demo_db.resolve()}" in done.err
