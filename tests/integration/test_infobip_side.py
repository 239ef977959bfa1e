"""Issue 29: the Infobip side of a credential, against the real simulator over loopback.

The number's inbound configuration (`creds verify` says where its messages go, `creds connect`
sets it), Infobip's Blocklist as a second lock (the queue filled with the consent change, drained
by serve's task, unknown outcomes read back), `consent reconcile`, and keys without a scope.
The simulator's endpoints are checked first, as a client sees them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsdesk.domain.consent_decider import KeywordEvent, Wish, decide
from smsdesk.engine.blocklist_sync import BlocklistSync
from smsdesk.infobip.client import InfobipClient
from smsdesk.infobip.errors import InfobipError
from smsdesk.simulator.http_api import FaultKind, SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import Gate
from smsdesk.store.consent_store import ConsentWrite, load_state, write_consent
from smsdesk.store.db import connect, transaction, utcnow
from smsdesk.store.operator_opt_out import opt_out_number
from smsdesk.writer.thread_writer import GroupCommitWriter
from tests.support.cli import CliRun, run_main
from tests.support.sim import GOOD_KEY, SMS_ONLY_KEY

DESK = "https://desk.example.com"
WEBHOOK_USER, WEBHOOK_PASSWORD = "infobip", "correct-horse-battery"
SHOP = "+" + SHOP_NUMBER
ALICE, BOB, CAROL, DAN = "+41793026727", "+41793026728", "+41793026729", "+41793026730"
BLOCKLIST = "/platform/1/blocklists"
CONFIGS = "/resource-management/1/inbound-message-configurations"


class Run(CliRun):
    secrets = (GOOD_KEY, SMS_ONLY_KEY, WEBHOOK_PASSWORD, "old-secret-pw")


def smsdesk(*args: str) -> Run:
    return run_main(*args, result=Run)


@pytest.fixture
def db_file(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side.db"
    monkeypatch.setenv("SMSDESK_DB", str(path))
    monkeypatch.setenv("SMSDESK_PUBLIC_URL", DESK)
    monkeypatch.setenv("SMSDESK_WEBHOOK_USER", WEBHOOK_USER)
    monkeypatch.setenv("SMSDESK_WEBHOOK_PASSWORD", WEBHOOK_PASSWORD)
    return path


def shop(db_file: Path, sim: SimulatorThread, **overrides: Any) -> Path:
    return make_db(db_file, shop_credential(sim.url, api_key=GOOD_KEY, **overrides))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def with_client(sim: SimulatorThread, call: Any, key: str = GOOD_KEY) -> Any:
    async with InfobipClient(sim.url, key, max_attempts=1) as client:
        return await call(client)


def queue_rows(path: Path) -> list[tuple[str, str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT number, action, status, attempts FROM blocklist_queue ORDER BY id").fetchall()
    finally:
        conn.close()


def blocked_numbers(sim: SimulatorThread, key: str = GOOD_KEY) -> list[str]:
    return sorted(r.destination for r in sim.state.blocked(key))


def posts_taken(sim: SimulatorThread, method: str = "POST") -> int:
    """Blocklist writes the simulator took (accepted and applied), lost answers included."""
    with sim.state.lock:
        return sum(1 for m, *_ in sim.state.blocklist_writes if m == method)


# --------------------------------------------------------------------------- the simulator's endpoints


def test_inbound_configuration_is_kept_per_account_and_number(sim: SimulatorThread) -> None:
    sim.state.keys.add("other-account-key-000000000000")
    assert run(with_client(sim, lambda c: c.inbound_configurations(SHOP))) == []
    saved = run(with_client(sim, lambda c: c.set_forwarding(SHOP, "https://a.example/infobip/inbound")))
    assert (saved.forwarding_type, saved.url, saved.format) == ("HTTP_FORWARD", "https://a.example/infobip/inbound",
                                                                "MO_JSON_2")
    again = run(with_client(sim, lambda c: c.set_forwarding(SHOP, "https://b.example/x")))
    assert again.configuration_key == saved.configuration_key  # the same configuration, updated
    (config,) = run(with_client(sim, lambda c: c.inbound_configurations(SHOP)))
    assert config.url == "https://b.example/x"
    assert run(with_client(sim, lambda c: c.inbound_configurations(SHOP), key="other-account-key-000000000000")) == []
    pulled = run(with_client(sim, lambda c: c.set_pull(SHOP)))
    assert (pulled.forwarding_type, pulled.url) == ("PULL", "")


def test_inbound_configuration_errors_have_infobips_shapes(sim: SimulatorThread) -> None:
    auth = {"Authorization": f"App {GOOD_KEY}"}
    bad = httpx.post(sim.url + CONFIGS, headers=auth, json={"channel": "SMS", "number": "447491163443",
                                                            "forwarding": {"type": "HTTP_FORWARD"}})
    assert bad.status_code == 400
    problems = bad.json()["requestError"]["serviceException"]["validationErrors"]
    assert problems == {"forwarding.url": ["must not be empty"]}
    no_channel = httpx.get(sim.url + CONFIGS, headers=auth, params={"number": "447491163443"})
    assert no_channel.status_code == 400 and "channel" in no_channel.text
    unknown_key = httpx.get(sim.url + CONFIGS, headers={"Authorization": "App nope"},
                            params={"number": "1", "channel": "SMS"})
    assert unknown_key.status_code == 401
    assert unknown_key.json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"


def test_blocklist_pages_filters_deduplicates_and_deletes(sim: SimulatorThread) -> None:
    for n in range(5):
        sim.state.block(GOOD_KEY, SHOP_NUMBER, f"4179000000{n}", source_type="MO" if n == 0 else "CUSTOM")
    sim.state.block(GOOD_KEY, "OtherBrand", "41790000000")
    page, pages = run(with_client(sim, lambda c: c.blocklist_page(sender=SHOP, size=2, page=1)))
    assert pages == 3 and [e.destination for e in page] == ["41790000002", "41790000003"]
    everything = run(with_client(sim, lambda c: c.blocklist(sender=SHOP)))
    assert len(everything) == 5 and everything[0].source_type == "MO" and everything[0].channel == "SMS"
    assert everything[0].created_date  # Infobip's field names: sender, destination, sourceType, createdDate
    one = run(with_client(sim, lambda c: c.blocklist(sender=SHOP, destination="+41790000001")))
    assert [e.destination for e in one] == ["41790000001"]
    run(with_client(sim, lambda c: c.block(SHOP, "+41790000001")))  # a duplicate is left out
    assert len(sim.state.blocked(GOOD_KEY, sender=SHOP_NUMBER)) == 5
    run(with_client(sim, lambda c: c.unblock(SHOP, "+41790000001")))
    assert "41790000001" not in [r.destination for r in sim.state.blocked(GOOD_KEY, sender=SHOP_NUMBER)]
    assert len(sim.state.blocked(GOOD_KEY, sender="OtherBrand")) == 1  # another sender's block stays
    too_big = httpx.get(sim.url + BLOCKLIST, headers={"Authorization": f"App {GOOD_KEY}"}, params={"size": 1001})
    assert too_big.status_code == 400
    assert too_big.json()["requestError"]["serviceException"]["validationErrors"]["size"] == [
        "must be less than or equal to 1000"]
    empty = httpx.post(sim.url + BLOCKLIST, headers={"Authorization": f"App {GOOD_KEY}"}, json={"blocklist": [
        {"destinations": [], "channel": "FAX"}]})
    assert empty.status_code == 400
    assert set(empty.json()["requestError"]["serviceException"]["validationErrors"]) == {
        "blocklist[0].destinations", "blocklist[0].channel"}


def test_the_simulators_faults_and_missing_scopes_apply_to_these_endpoints(sim: SimulatorThread) -> None:
    sim.state.inject(FaultKind.SERVER_ERROR, 1, path_prefix=BLOCKLIST)
    with pytest.raises(InfobipError) as failed:
        run(with_client(sim, lambda c: c.block(SHOP, ALICE)))
    assert failed.value.status == 500 and failed.value.retryable
    assert blocked_numbers(sim) == []
    sim.state.remove_scope(GOOD_KEY, "numbers:manage")
    with pytest.raises(InfobipError) as forbidden:
        run(with_client(sim, lambda c: c.inbound_configurations(SHOP)))
    assert forbidden.value.status == 403 and forbidden.value.code == "FORBIDDEN"
    assert run(with_client(sim, lambda c: c.balance())).balance == sim.state.balance  # other rights unaffected
    run(with_client(sim, lambda c: c.block(SHOP, ALICE)))
    assert blocked_numbers(sim) == ["41793026727"]


# --------------------------------------------------------------------------- forwarding: verify and connect


def test_a_misconfigured_number_is_reported_and_connect_fixes_it(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim)
    sim.state.set_inbound_config(GOOD_KEY, SHOP_NUMBER, {
        "type": "HTTP_FORWARD", "url": "https://old:old-secret-pw@old.example.com/hook?token=t0k",
        "format": "MO_JSON_2"})
    before = smsdesk("creds", "verify", "Shop")
    before.assert_ok()
    first, second = before.out.splitlines()
    assert first == "Shop: key works, balance 47.79 EUR"
    assert second.startswith("Shop: ✗ inbound forwards elsewhere: https://old.example.com/hook?… in MO_JSON_2")
    assert "t0k" not in before.out and "old:" not in before.out

    refused = smsdesk("creds", "connect", "Shop")  # not a terminal, no --yes: nothing changes
    refused.assert_user_error("--yes")
    assert sim.state.inbound_config(GOOD_KEY, SHOP_NUMBER)[0]["forwarding"]["url"].startswith("https://old:")

    done = smsdesk("creds", "connect", "Shop", "--yes")
    done.assert_ok()
    assert "now: ✗ inbound forwards elsewhere" in done.out
    assert f"change: {SHOP} to forward to {DESK}/infobip/inbound in MO_JSON_2" in done.out
    (config,) = sim.state.inbound_config(GOOD_KEY, SHOP_NUMBER)
    assert config["forwarding"] == {"type": "HTTP_FORWARD", "format": "MO_JSON_2",
                                    "url": f"https://{WEBHOOK_USER}:{WEBHOOK_PASSWORD}@desk.example.com/infobip/inbound"}
    conn = sqlite3.connect(db_file)
    audit = conn.execute("SELECT action, os_user, credential_name, fields FROM audit WHERE action = 'connect-inbound'"
                         ).fetchall()
    conn.close()
    assert len(audit) == 1 and audit[0][2] == "Shop" and audit[0][1] and json.loads(audit[0][3]) == [
        "inbound_forwarding"]
    after = smsdesk("creds", "verify", "Shop", "--json")
    after.assert_ok()
    forwarding = after.json()["forwarding"]
    assert forwarding["ok"] is True and forwarding["state"] == "here"
    assert forwarding["line"] == f"✓ inbound forwards to this desk ({DESK}/infobip/inbound in MO_JSON_2)"


def test_connect_makes_inbound_reach_a_running_serve(db_file: Path, sim: SimulatorThread,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The end of "why does nothing arrive": after connect, the simulator forwards to serve."""
    from tests.support.serve import running_serve, wait_until

    shop(db_file, sim)
    with running_serve(db_file) as server:
        monkeypatch.setenv("SMSDESK_PUBLIC_URL", server.url)
        smsdesk("creds", "connect", "Shop", "--yes").assert_ok()
        sim.state.queue_inbound("41793026727", SHOP_NUMBER, "hello desk")

        def stored() -> bool:
            conn = sqlite3.connect(db_file)
            try:
                return conn.execute("SELECT COUNT(*) FROM messages WHERE text = 'hello desk'").fetchone()[0] == 1
            finally:
                conn.close()

        assert wait_until(stored, 10)
    assert all(post.ok for post in sim.state.webhook_posts)


def test_forwarding_is_judged_against_the_credentials_inbound_mode(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim, inbound_mode="pull")
    smsdesk("creds", "add", "--name", "Fwd", "--base-url", sim.url, "--api-key", GOOD_KEY,
            "--inbound-number", "+447491163444").assert_ok()
    sim.state.set_inbound_config(GOOD_KEY, SHOP_NUMBER, {"type": "PULL"})
    sim.state.set_inbound_config(GOOD_KEY, "447491163444", {"type": "PULL"})
    pull = smsdesk("creds", "verify", "Shop")
    assert "Shop: ✓ inbound is set for pull" in pull.out
    forward = smsdesk("creds", "verify", "Fwd")
    assert "Fwd: ✗ inbound is set for pull; nothing reaches serve" in forward.out
    nothing = smsdesk("creds", "connect", "Shop", "--yes")  # pull mode: connect sets pull
    nothing.assert_ok()
    assert "to set for pull" in nothing.out


def test_connect_without_a_public_url_says_which_setting(db_file: Path, sim: SimulatorThread,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    shop(db_file, sim)
    monkeypatch.delenv("SMSDESK_PUBLIC_URL")
    smsdesk("creds", "connect", "Shop", "--yes").assert_user_error("SMSDESK_PUBLIC_URL")
    assert sim.state.inbound_config(GOOD_KEY, SHOP_NUMBER) == []
    sim.state.set_inbound_config(GOOD_KEY, SHOP_NUMBER, {"type": "HTTP_FORWARD", "url": "https://x.example/in"})
    verify = smsdesk("creds", "verify", "Shop")
    assert "set SMSDESK_PUBLIC_URL to tell whether that is this desk" in verify.out


def test_a_key_without_the_numbers_scope_gets_one_line_and_the_balance(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim)
    sim.state.remove_scope(GOOD_KEY, "numbers:manage")
    verify = smsdesk("creds", "verify", "Shop")
    verify.assert_ok()
    assert verify.out.splitlines() == [
        "Shop: key works, balance 47.79 EUR",
        "Shop: the API key lacks the scope numbers:manage needed to read the inbound configuration"]
    connect = smsdesk("creds", "connect", "Shop", "--yes")
    connect.assert_user_error("the API key lacks the scope numbers:manage needed to set the inbound configuration")


# --------------------------------------------------------------------------- the setting


def test_blocklist_sync_is_a_credential_field_everywhere(db_file: Path, sim: SimulatorThread, tmp_path: Path) -> None:
    shop(db_file, sim)
    smsdesk("creds", "edit", "Shop", "--blocklist-sync", "sometimes").assert_user_error("blocklist_sync")
    smsdesk("creds", "edit", "Shop", "--blocklist-sync", "two-way").assert_ok()
    exported = smsdesk("creds", "export", "--with-secrets")
    (record,) = exported.json()
    assert record["blocklist_sync"] == "two-way"
    record.pop("blocklist_sync")  # a file from before the field still imports, with the default
    old_file = tmp_path / "old.json"
    old_file.write_text(json.dumps([record | {"name": "Shop2", "inbound_number": "+447491163499"}]))
    smsdesk("creds", "import", str(old_file)).assert_ok()
    assert smsdesk("creds", "show", "Shop2", "--json").json()["blocklist_sync"] == "off"


# --------------------------------------------------------------------------- the queue


@pytest.fixture
def writer(db_file: Path, sim: SimulatorThread) -> Iterator[GroupCommitWriter]:
    shop(db_file, sim, blocklist_sync="push")
    w = GroupCommitWriter(db_file).start()
    w.wait_ready()
    yield w
    w.stop()


def drain(db_file: Path, writer: GroupCommitWriter, rounds: int = 1) -> BlocklistSync:
    sync = BlocklistSync(db_file, writer, backoff_base=0.0)

    async def go() -> None:
        try:
            await sync._write(sync_reset)
            for _ in range(rounds):
                await sync.run_once()
        finally:
            await sync.aclose()

    asyncio.run(go())
    return sync


def sync_reset(conn: sqlite3.Connection) -> int:
    from smsdesk.store.blocklist_queue import reset_in_flight

    return reset_in_flight(conn, utcnow())


def opt(db_file: Path, number: str, wish: Wish, at: str | None = None) -> None:
    """A keyword's consent change, written as the pipeline writes it (write_consent)."""
    db = connect(db_file)
    try:
        with transaction(db) as conn:
            now = utcnow()
            outcome = decide(load_state(conn, "prod", number), KeywordEvent(wish, at or now), now)
            write_consent(conn, [ConsentWrite("prod", number, outcome)], now)
    finally:
        db.close()


def test_the_push_is_committed_with_the_opt_out_and_only_for_syncing_credentials(db_file: Path,
                                                                                 writer: GroupCommitWriter) -> None:
    smsdesk("creds", "add", "--name", "Dev", "--base-url", "https://x.api.infobip.com", "--api-key", GOOD_KEY,
            "--sandbox", "dev", "--inbound-number", "+447491163445", "--blocklist-sync", "push").assert_ok()
    smsdesk("creds", "add", "--name", "Quiet", "--base-url", "https://x.api.infobip.com", "--api-key", GOOD_KEY,
            "--inbound-number", "+447491163446").assert_ok()  # prod, but off
    db = connect(db_file)
    with pytest.raises(RuntimeError), transaction(db) as conn:  # a consent change rolled back: no push either
        outcome = decide(load_state(conn, "prod", ALICE), KeywordEvent(Wish.OPT_OUT, utcnow()), utcnow())
        write_consent(conn, [ConsentWrite("prod", ALICE, outcome)], utcnow())
        raise RuntimeError("the webhook's transaction failed")
    db.close()
    assert queue_rows(db_file) == []
    opt_out_number(connect(db_file), "prod", ALICE, "phone call", by="tester")
    assert queue_rows(db_file) == [(ALICE, "block", "queued", 0)]  # Shop only: Dev is another sandbox, Quiet off
    opt_out_number(connect(db_file), "prod", ALICE, "again", by="tester")  # reaffirmed: consent did not move
    assert len(queue_rows(db_file)) == 1


def test_an_opt_out_reaches_the_blocklist_once_through_a_500_and_a_lost_answer(
        db_file: Path, sim: SimulatorThread, writer: GroupCommitWriter) -> None:
    opt_out_number(connect(db_file), "prod", ALICE, "phone call", by="tester")
    sim.state.inject(FaultKind.SERVER_ERROR, 1, path_prefix=BLOCKLIST)
    drain(db_file, writer)
    assert queue_rows(db_file) == [(ALICE, "block", "queued", 1)] and blocked_numbers(sim) == []
    # The next POST takes effect at Infobip, and its answer is lost.
    sim.state.inject(FaultKind.DROP, 1, process=True, path_prefix=BLOCKLIST)
    drain(db_file, writer)
    assert queue_rows(db_file) == [(ALICE, "block", "unknown", 2)]
    assert blocked_numbers(sim) == ["41793026727"] and posts_taken(sim) == 1
    drain(db_file, writer)  # read back (GET), found: done, not sent again
    assert queue_rows(db_file) == [(ALICE, "block", "done", 3)]
    assert posts_taken(sim) == 1 and blocked_numbers(sim) == ["41793026727"]
    gets = [r for r in sim.state.requests if r.path == BLOCKLIST and r.method == "GET"]
    assert len(gets) == 1 and gets[0].status == 200


def test_a_lost_answer_whose_post_did_not_take_effect_is_sent_again(db_file: Path, sim: SimulatorThread,
                                                                     writer: GroupCommitWriter) -> None:
    opt_out_number(connect(db_file), "prod", BOB, "letter", by="tester")
    sim.state.inject(FaultKind.DROP, 1, path_prefix=BLOCKLIST)  # dropped before Infobip took it
    drain(db_file, writer)
    assert queue_rows(db_file) == [(BOB, "block", "unknown", 1)] and blocked_numbers(sim) == []
    drain(db_file, writer)
    assert queue_rows(db_file)[0][2] == "done" and blocked_numbers(sim) == ["41793026728"] and posts_taken(sim) == 1


def test_an_opt_in_unblocks_and_a_newer_wish_supersedes_one_not_sent(db_file: Path, sim: SimulatorThread,
                                                                      writer: GroupCommitWriter) -> None:
    opt(db_file, CAROL, Wish.OPT_OUT)
    drain(db_file, writer)
    assert blocked_numbers(sim) == ["41793026729"]
    opt(db_file, CAROL, Wish.OPT_IN)
    drain(db_file, writer)
    assert blocked_numbers(sim) == [] and posts_taken(sim, "DELETE") == 1
    opt(db_file, DAN, Wish.OPT_OUT)
    opt(db_file, DAN, Wish.OPT_IN)  # before serve pushed the block: only the newest wish goes
    drain(db_file, writer)
    assert [r for r in queue_rows(db_file) if r[0] == DAN] == [(DAN, "block", "superseded", 0),
                                                               (DAN, "unblock", "done", 1)]
    assert posts_taken(sim) == 1  # Carol's block only


def test_a_block_waits_for_the_opt_outs_confirmation(db_file: Path, sim: SimulatorThread,
                                                     writer: GroupCommitWriter) -> None:
    """Infobip checks the Blocklist before sending: the confirmation of the STOP goes first."""
    from tests.support.live import inbound, store

    store(db_file, inbound(ALICE, SHOP, "STOP"))
    assert queue_rows(db_file) == [(ALICE, "block", "queued", 0)]
    drain(db_file, writer)
    assert queue_rows(db_file) == [(ALICE, "block", "queued", 0)] and posts_taken(sim) == 0
    conn = sqlite3.connect(db_file)
    conn.execute("UPDATE outbox SET status = 'sent' WHERE to_number = ?", (ALICE,))
    conn.commit()
    conn.close()
    drain(db_file, writer)
    assert queue_rows(db_file) == [(ALICE, "block", "done", 1)] and posts_taken(sim) == 1


def test_the_queue_waits_while_the_key_lacks_the_blocklist_scope(db_file: Path, sim: SimulatorThread,
                                                                 writer: GroupCommitWriter) -> None:
    sim.state.remove_scope(GOOD_KEY, "blocklist:manage")
    opt_out_number(connect(db_file), "prod", ALICE, "phone call", by="tester")
    drain(db_file, writer)
    listing = smsdesk("consent", "blocklist-queue")
    listing.assert_ok()
    assert "queued, 1 attempt: the API key lacks the scope blocklist:manage needed to change the Blocklist" in \
        listing.out
    verify = smsdesk("creds", "verify", "Shop")
    assert "Shop: 1 Blocklist push waiting (smsdesk consent blocklist-queue)" in verify.out
    sim.state.missing_scopes.clear()  # the operator gave the key its right
    drain(db_file, writer)
    assert queue_rows(db_file) == [(ALICE, "block", "done", 2)] and blocked_numbers(sim) == ["41793026727"]


def test_a_refused_push_is_kept_visible_and_not_retried(db_file: Path, sim: SimulatorThread,
                                                        writer: GroupCommitWriter) -> None:
    conn = sqlite3.connect(db_file)  # a sender Infobip refuses (longer than 255 characters)
    conn.execute("INSERT INTO blocklist_queue (credential_id, sandbox, number, sender, action, queued_ts, created_at, "
                 "updated_at) VALUES (1, 'prod', ?, ?, 'block', 0, 'x', 'x')", (ALICE, "9" * 300))
    conn.commit()
    conn.close()
    drain(db_file, writer, rounds=2)
    assert queue_rows(db_file) == [(ALICE, "block", "refused", 1)]
    listed = smsdesk("consent", "blocklist-queue", "--json").json()
    assert listed[0]["status"] == "refused" and "HTTP 400" in listed[0]["last_error"]


# --------------------------------------------------------------------------- reconcile


def reconcile_json(*args: str) -> list[dict[str, Any]]:
    done = smsdesk("consent", "reconcile", "--json", *args)
    done.assert_ok()
    return done.json()  # type: ignore[no-any-return]


def ledger(db_file: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute("SELECT number, new, cause, effect FROM consent_ledger ORDER BY id").fetchall()
    finally:
        conn.close()


def test_reconcile_lists_both_ways_and_apply_is_idempotent(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim)  # off while Bob opts out here: that opt-out was never pushed
    opt_out_number(connect(db_file), "prod", BOB, "phone call", by="tester")
    smsdesk("creds", "edit", "Shop", "--blocklist-sync", "two-way").assert_ok()
    sim.state.block(GOOD_KEY, SHOP_NUMBER, "41793026727", source_type="MO")  # Alice: blocked there only
    sim.state.block(GOOD_KEY, SHOP_NUMBER, "41793026729", source_type="URL_OPT_OUT",
                    created_date="2026-01-01T10:00:00.000+0000")
    opt(db_file, CAROL, Wish.OPT_IN, at="2026-02-01T10:00:00.000+00:00")  # Carol: opted in here after her block
    sim.state.block(GOOD_KEY, "OtherBrand", "41793026730")  # another sender's list: not this credential's
    queue_rows_before = queue_rows(db_file)

    (report,) = reconcile_json()
    kinds = {d["number"]: (d["kind"], d["source_type"], d["consent_here"]) for d in report["differences"]}
    assert kinds == {ALICE: ("blocked-there", "MO", ""), BOB: ("opted-out-here", None, "n"),
                     CAROL: ("opted-in-here-after", "URL_OPT_OUT", "y")}
    assert report["applied"] is False and len(ledger(db_file)) == 2  # listing changes nothing
    text = smsdesk("consent", "reconcile")
    assert f"  {ALICE}: blocked there, not opted out here; here none (sourceType MO" in text.out

    (applied,) = reconcile_json("--apply")
    assert (applied["brought_here"], applied["pushed"], applied["queued"]) == (1, 2, 0)
    assert ledger(db_file)[-1][:3] == (ALICE, "n", "infobip-blocklist")
    assert blocked_numbers(sim) == ["41793026727", "41793026728", "41793026730"]  # Bob blocked, Carol unblocked
    writes, entries = len(sim.state.blocklist_writes), len(ledger(db_file))

    (second,) = reconcile_json("--apply")
    assert second["differences"] == [] and (second["brought_here"], second["pushed"]) == (0, 0)
    assert len(sim.state.blocklist_writes) == writes and len(ledger(db_file)) == entries
    assert queue_rows(db_file)[len(queue_rows_before):] == [(ALICE, "block", "done", 0)]  # not pushed: it is there
    smsdesk("consent", "verify").assert_ok()  # the ledger replays through the one decider
    conn = sqlite3.connect(db_file)
    row = conn.execute("SELECT applied, blocked_there, opted_out_here, opted_in_after, brought_here, pushed, error "
                       "FROM blocklist_reconcile").fetchone()
    conn.close()
    assert row == (1, 0, 0, 0, 0, 0, "")  # the last reconcile, for the TUI


def test_push_only_lists_blocks_there_but_does_not_bring_them_here(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim, blocklist_sync="push")
    sim.state.block(GOOD_KEY, SHOP_NUMBER, "41793026727", source_type="CAMPAIGN")
    (applied,) = reconcile_json("--apply")
    assert applied["brought_here"] == 0 and "push only" in applied["left"][0]
    assert ledger(db_file) == []


def test_reconcile_without_the_blocklist_scope_says_so_in_one_line(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim, blocklist_sync="two-way")
    sim.state.remove_scope(GOOD_KEY, "blocklist:manage")
    done = smsdesk("consent", "reconcile", "--apply")
    assert done.code == 1
    assert done.out.splitlines() == [f"Shop (sandbox prod, sender {SHOP}): the API key lacks the scope "
                                     "blocklist:manage needed to read the Blocklist"]
    verify = smsdesk("creds", "verify", "Shop")
    verify.assert_ok()  # the rest works as before
    assert verify.out.startswith("Shop: key works, balance 47.79 EUR")


def test_reconcile_refuses_when_no_credential_syncs(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim)
    smsdesk("consent", "reconcile").assert_user_error("blocklist_sync")
    smsdesk("creds", "edit", "Shop", "--blocklist-sync", "push").assert_ok()
    smsdesk("consent", "reconcile", "--sandbox", "nope").assert_user_error("sandbox 'nope'")


def test_a_gate_holds_the_blocklist_answer(sim: SimulatorThread) -> None:
    """The simulator's gate applies to the Blocklist too (the serve tests hold a push with it)."""
    gate = Gate()
    sim.state.inject(FaultKind.SLOW, 1, gate=gate, path_prefix=BLOCKLIST)

    async def go() -> None:
        async with InfobipClient(sim.url, GOOD_KEY, max_attempts=1) as client:
            task = asyncio.create_task(client.block(SHOP, ALICE))
            await asyncio.to_thread(gate.arrived.wait, 5)
            assert not task.done() and blocked_numbers(sim) == ["41793026727"]
            gate.release()
            await task

    run(go())


# --------------------------------------------------------------------------- serve: an outage delays nothing


def stop_webhook(server_url: str, sender: str, text: str = "STOP") -> int:
    from smsdesk.simulator.sample_data import mo_body, mo_result
    from tests.support.serve import WEBHOOK_PASSWORD as PASSWORD
    from tests.support.serve import WEBHOOK_USER as USER

    answer = httpx.post(server_url + "/infobip/inbound", json=mo_body(mo_result(text, sender=sender.lstrip("+"))),
                        auth=(USER, PASSWORD), timeout=10)
    return answer.status_code


def sent_to(sim: SimulatorThread, number: str) -> list[str]:
    return [m["text"] for m in sim.state.snapshot_sent() if m["to"] == number.lstrip("+")]


def test_a_blocklist_outage_delays_no_stop_and_no_confirmation(db_file: Path, sim: SimulatorThread) -> None:
    """A Blocklist that hangs, then answers 500, then is back: each STOP is answered 200 and its
    confirmation sent meanwhile, as without sync; the pushes catch up afterwards, once each."""
    from tests.support.serve import running_serve, wait_until

    shop(db_file, sim, blocklist_sync="push")
    gate = Gate()
    sim.state.inject(FaultKind.SLOW, 1, gate=gate, path_prefix=BLOCKLIST)  # the Blocklist hangs
    with running_serve(db_file, run_outbox=True) as server:
        opt_out_number(connect(db_file), "prod", BOB, "phone call", by="tester")
        assert gate.arrived.wait(10)  # serve's Blocklist task is stuck on Bob's block
        assert stop_webhook(server.url, ALICE) == 200
        assert wait_until(lambda: sent_to(sim, ALICE) == ["Shop: unsubscribed."], 10)
        assert not gate.released and posts_taken(sim) == 1  # still hanging: Alice's reply did not wait for it

        fault = sim.state.inject(FaultKind.SERVER_ERROR, duration=60, path_prefix=BLOCKLIST)  # then 500s
        gate.release()
        assert wait_until(lambda: fault.fired >= 1, 10)  # Alice's block was tried, and failed
        assert stop_webhook(server.url, CAROL) == 200
        assert wait_until(lambda: sent_to(sim, CAROL) == ["Shop: unsubscribed."], 10)
        assert dict((n, s) for n, _a, s, _t in queue_rows(db_file))[ALICE] in ("queued", "sending")

        sim.state.clear_faults()  # back: the queue catches up, once each
        assert wait_until(lambda: all(s == "done" for _n, _a, s, _t in queue_rows(db_file)), 30), queue_rows(db_file)
    assert blocked_numbers(sim) == ["41793026727", "41793026728", "41793026729"]
    assert posts_taken(sim) == 3


@pytest.mark.parametrize("public", ["desk.example.com", "ftp://desk.example.com", "https://"])
def test_connect_refuses_a_public_url_that_is_no_url(db_file: Path, sim: SimulatorThread,
                                                     monkeypatch: pytest.MonkeyPatch, public: str) -> None:
    shop(db_file, sim)
    monkeypatch.setenv("SMSDESK_PUBLIC_URL", public)
    smsdesk("creds", "connect", "Shop", "--yes").assert_user_error("SMSDESK_PUBLIC_URL must be an https:// URL")
    assert sim.state.inbound_config(GOOD_KEY, SHOP_NUMBER) == []


def test_connect_without_an_inbound_number_or_credential(db_file: Path, sim: SimulatorThread) -> None:
    shop(db_file, sim, inbound_number="")
    smsdesk("creds", "connect", "Shop", "--yes").assert_user_error("no inbound number")
    smsdesk("creds", "connect", "Nobody", "--yes").assert_user_error("Nobody")
