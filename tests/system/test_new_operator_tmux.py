"""The new operator's task (issue 27), finished in a real terminal (tmux at 80x24) against
`smsdesk demo`: add a credential with an inbound number, the US preset and a custom keyword DEALS
with its own reply; watch texts arrive in the log; decide a near miss in Review; then find every
number that opted out today (Profiles `changed:n since:<today>`) and export them, the review
decision among them, the same rows as `smsdesk export consent` run beside the demo."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.cli import SCRIPT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
DEALS_NUMBER = "+1 202 555 0143"
DEALS_REPLY = "DEALS: 20% off today"


def form_tab_order() -> list[str]:
    """The credential form's fields in focus order: the preset select opens the keyword group."""
    from smsdesk.tui.widgets.credential_form import GROUPS

    order: list[str] = []
    for group, specs in GROUPS:
        if group == "Keywords and replies":
            order.append("preset")
        order += [spec.name for spec in specs]
    return order


def query(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.mark.timeout(240)
def test_a_new_operator_finishes_the_task_at_80x24(tmp_path: Path) -> None:
    session = f"smsdesk-operator-{uuid.uuid4().hex[:8]}"
    demo_db = tmp_path / "demo.db"
    socket = f"-L{session}"

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", socket, *args], capture_output=True, text=True, timeout=10)

    def screen() -> str:
        return tmux("capture-pane", "-t", session, "-p").stdout

    def until(predicate: Callable[[str], bool], what: str, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        shown = ""
        while time.monotonic() < deadline:
            shown = screen()
            if predicate(shown):
                return shown
            time.sleep(0.3)
        raise AssertionError(f"waited for {what}; the screen shows:\n{shown}")

    def press(*keys: str, pause: float = 0.15) -> None:
        for key in keys:
            tmux("send-keys", "-t", session, key)
            time.sleep(pause)

    def type_text(text: str) -> None:
        tmux("send-keys", "-t", session, "-l", text)
        time.sleep(0.3)

    config = tmp_path / "tui.toml"
    config.write_text("")
    subprocess.run(["tmux", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    "-c", str(tmp_path),
                    f"env SMSDESK_CONFIG={config} {SCRIPT} demo --rate 6 --demo-db {demo_db}"], check=True, timeout=10)
    try:
        until(lambda s: "LIVE" in s, "the live log")
        # -- the credential: name, sandbox, a key, the US preset, an inbound number, DEALS and its reply
        press("1")
        until(lambda s: "Coffee Club" in s, "the credentials")
        press("n")
        until(lambda s: "New credential" in s, "the form")
        order = form_tab_order()
        at = "name"
        type_text("Deals US")

        def go(field: str) -> None:
            nonlocal at
            press(*["Tab"] * (order.index(field) - order.index(at)), pause=0.08)
            at = field

        go("sandbox")
        type_text("us")
        go("api_key")
        type_text("my-own-demo-key-0123456789")
        go("preset")
        press("Enter")
        until(lambda s: "us: " in s, "the presets listed")
        type_text("us")
        press("Enter")
        go("inbound_number")
        type_text(DEALS_NUMBER)
        go("inbound_keywords")
        type_text("DEALS")
        go("custom_keyword_replies")
        type_text(f"DEALS = {DEALS_REPLY}")
        until(lambda s: "valid" in s, "the form valid")
        press("F2")
        until(lambda s: "Deals US" in s and "New credential" not in s, "the credential saved and listed")
        [(opt_out, base_url)] = query(demo_db, "SELECT opt_out_keywords, base_url FROM credentials WHERE name = ?",
                                      "Deals US")
        assert "REVOKE" in opt_out and "OPT OUT" in opt_out  # the US preset
        assert base_url.startswith("http://127.0.0.1:")  # the demo's simulator, filled in for a new credential
        # -- texts arrive: the log shows the new number's traffic, DEALS answered with its own reply
        press("2")
        until(lambda s: "DEALS" in s, "a DEALS text in the live log", seconds=60)
        deadline = time.monotonic() + 60
        while not query(demo_db, "SELECT 1 FROM outbox WHERE text = ? AND status IN ('sent', 'delivered')",
                        DEALS_REPLY):
            assert time.monotonic() < deadline, "the DEALS reply was never sent"
            time.sleep(0.5)
        # -- a near miss decided in Review: opted out by the operator
        press("5")
        until(lambda s: "to review" in s, "a near miss to review", seconds=60)
        press("o")
        until(lambda s: "Opt out" in s and "(y)" in s, "asked first")
        press("y")
        until(lambda s: "ledger #" in s, "the decision recorded")
        [(decided,)] = query(demo_db, "SELECT number FROM consent_ledger WHERE operator != '' AND new = 'n'")
        # -- today's opt-outs, found and exported
        today = datetime.now(UTC).date().isoformat()
        press("3")
        until(lambda s: "profiles" in s, "Profiles")
        press("/")
        type_text(f"changed:n since:{today}")
        press("Enter")
        until(lambda s: "consent changes" in s, "the consent history")
        press("x")
        until(lambda s: "Consent history written" in s, "the export said")
        [written] = list(tmp_path.glob("smsdesk-consent-*.jsonl"))
        press("q")
    finally:
        tmux("kill-server")
    exported = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    assert exported and all(row["new"] == "n" and row["received_at"] >= today for row in exported)
    assert any(row["number"] == decided and row["cause"] == "operator" for row in exported)
    cli = subprocess.run([str(SCRIPT), "export", "consent", "--since", today, "--consent", "n"], capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                     "SMSDESK_DB": str(demo_db)})
    assert cli.returncode == 0, cli.stderr
    newest = max(row["ledger_id"] for row in exported)
    same_moment = [line for line in cli.stdout.splitlines() if json.loads(line)["ledger_id"] <= newest]
    assert same_moment == written.read_text(encoding="utf-8").splitlines()
