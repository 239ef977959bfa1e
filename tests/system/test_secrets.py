"""Secrets stay secret: the real flows run, then every place smsdesk writes is searched for the API
key and the webhook password. The key may appear only in the credentials table's api_key column.

Also: the database file is created 0600 in a 0700 directory through every path that creates it.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.simulator.http_api import SimulatorState, SimulatorThread
from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, mo_body, mo_result
from tests.support.cli import SCRIPT
from tests.support.sim import closed_port

API_KEY = "Zq7SECRETkeyXx93f1e8d2c4b6a0Pp"  # distinctive: any occurrence is a leak
PULL_KEY = "Wv4SECRETpullKeyLm58a7b6c5d4e3"
WEBHOOK_USER = "infobip-hooks"
WEBHOOK_PASSWORD = "Hk2SECRETwebhookPw9871"
SECRETS = (API_KEY, PULL_KEY, WEBHOOK_PASSWORD)


def fragments(secret: str) -> list[str]:
    """The secret and the forms a leak could take: base64 of the auth header, a long slice."""
    return [secret, secret[4:-4], base64.b64encode(f"{WEBHOOK_USER}:{secret}".encode()).decode()]


def assert_clean(where: str, text: str) -> None:
    for secret in SECRETS:
        for fragment in fragments(secret):
            assert fragment not in text, f"{where} contains a secret ({secret[:6]}…)"


def smsdesk(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120,
                            umask=0)
    if ok:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMSDESK_")}
    return clean | {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    # The simulator knows neither of our keys: every call with them is an Infobip 401.
    with SimulatorThread(SimulatorState(keys={"some-other-key-000000000000"})) as sim:
        yield sim


def test_secrets_appear_only_in_the_api_key_column(tmp_path: Path, env: dict[str, str],
                                                   simulator: SimulatorThread) -> None:
    db = tmp_path / "data" / "smsdesk.db"
    outputs: dict[str, str] = {}

    def run(name: str, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        result = smsdesk(env, "--db", str(db), *args, stdin=stdin, ok=ok)
        outputs[f"{name} stdout"] = result.stdout
        outputs[f"{name} stderr"] = result.stderr
        return result

    # credentials created through the CLI, the key on stdin as the docs recommend
    run("add shop", "creds", "add", "--name", "Shop", "--base-url", simulator.url, "--inbound-number",
        "+" + SHOP_NUMBER, "--default-reply-message", "Thanks!", "--help-message", "Help here", "--api-key-stdin",
        stdin=API_KEY + "\n")
    run("add club", "creds", "add", "--name", "Club", "--base-url", simulator.url, "--inbound-number",
        "+" + CLUB_NUMBER, "--inbound-mode", "pull", "--api-key-stdin", "--json", stdin=PULL_KEY + "\n")
    run("edit shop", "creds", "edit", "Shop", "--sandbox", "shop", "--api-key-stdin", stdin=API_KEY + "\n")

    # serve with auth; its stderr (logs) to a file
    port = closed_port()
    serve_env = env | {"SMSDESK_WEBHOOK_USER": WEBHOOK_USER, "SMSDESK_WEBHOOK_PASSWORD": WEBHOOK_PASSWORD}
    log_path = tmp_path / "serve.log"
    out_path = tmp_path / "serve.out"
    with log_path.open("w") as log, out_path.open("w") as out:
        serve = subprocess.Popen([str(SCRIPT), "--db", str(db), "serve", "--port", str(port), "--poll-interval", "0.2"],
                                 stdout=out, stderr=log, env=serve_env, umask=0)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        responses = []
        for auth in [None, (WEBHOOK_USER, "wrong-" + WEBHOOK_PASSWORD[::-1]), ("nobody", WEBHOOK_PASSWORD)]:
            responses.append(httpx.post(url + "/infobip/inbound", json=mo_body(mo_result("STOP")), auth=auth))
        assert [r.status_code for r in responses] == [401, 401, 401]
        responses.append(httpx.post(url + "/infobip/inbound", content=b"{bad json", auth=(WEBHOOK_USER,
                                                                                          WEBHOOK_PASSWORD)))
        good = httpx.post(url + "/infobip/inbound", json=mo_body(mo_result("HELP", message_id="s-1"),
                                                                   mo_result("hello", message_id="s-2")),
                          auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
        assert good.status_code == 200 and good.json()["stored"] == 2
        for i, r in enumerate([*responses, good]):
            outputs[f"webhook response {i}"] = str(r.headers) + r.text
        # the outbox sends the two replies with the key Infobip refuses (401); the poller pulls for Club (401)
        conn = sqlite3.connect(db)
        deadline = time.monotonic() + 30
        while conn.execute("SELECT COUNT(*) FROM outbox WHERE last_error != ''").fetchone()[0] < 2:
            assert time.monotonic() < deadline, "the replies were never attempted"
            time.sleep(0.2)
        conn.close()
        time.sleep(0.5)  # a few poller rounds against the 401
    finally:
        serve.terminate()
        serve.wait(20)
    assert any(r.status == 401 for r in simulator.state.requests)  # Infobip really refused the key

    # errors from Infobip through the CLI: verify and send with the refused key
    verify = run("verify", "creds", "verify", "Shop", ok=False)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    run("verify json", "creds", "verify", "Shop", "--json", ok=False)
    send = run("send", "send", "--cred", "Shop", "--to", "+41793026727", "--text", "hi", ok=False)
    assert send.returncode == 1 and "Traceback" not in send.stderr
    run("send json", "send", "--cred", "Shop", "--to", "+41793026727", "--text", "hi", "--json", ok=False)

    # everything that reads or exports, without --with-secrets
    for args in (["creds", "list"], ["creds", "list", "--json"], ["creds", "show", "Shop"],
                 ["creds", "show", "Shop", "--json"], ["creds", "export"], ["consent", "verify"],
                 *(["export", what, "--format", fmt] for what in ("messages", "profiles", "consent")
                   for fmt in ("jsonl", "csv"))):
        run(" ".join(args), *args)

    outputs["serve log"] = log_path.read_text()
    outputs["serve stdout"] = out_path.read_text()
    assert "401" in outputs["serve log"] or "nauthori" in outputs["serve log"], outputs["serve log"]

    # the TUI's default view, as a screenshot
    outputs["tui screenshot"] = tui_screenshot(db)
    assert "Shop" in outputs["tui screenshot"]

    for where, text in outputs.items():
        assert_clean(where, text)

    # the database: only credentials.api_key may hold a key; the webhook password nowhere
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"audit", "outbox", "messages", "credentials"} <= set(tables)
        audit_rows = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        assert audit_rows == 3  # create, create, update
        keys = {r[0] for r in conn.execute("SELECT api_key FROM credentials")}
        assert keys == {API_KEY, PULL_KEY}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if (table, column) == ("credentials", "api_key"):
                        continue
                    assert_clean(f"{table}.{column}", str(value))
        last_errors = [r[0] for r in conn.execute("SELECT last_error FROM outbox")]
        assert all(last_errors), last_errors  # the 401s were recorded (without the key)
    finally:
        conn.close()
    # the raw file holds the key (it is the store of record) but never the webhook password
    for path in db.parent.iterdir():
        assert WEBHOOK_PASSWORD.encode() not in path.read_bytes(), path


def tui_screenshot(db: Path) -> str:
    import asyncio

    from smsdesk.tui.app import SmsDeskApp

    async def shoot() -> str:
        app = SmsDeskApp(db)
        async with app.run_test(size=(120, 30)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                svg = app.export_screenshot()
                if "Club" in svg:
                    return svg
            return app.export_screenshot()

    return asyncio.run(shoot())


# ---- file modes -------------------------------------------------------------------------------

def assert_private(db: Path) -> None:
    assert db.exists(), db
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700, oct(db.parent.stat().st_mode)
    for path in [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


def test_cli_db_option_in_a_new_directory(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "new" / "nested" / "smsdesk.db"
    smsdesk(env, "--db", str(db), "creds", "add", "--name", "A", "--base-url", "x.api.infobip.com",
            "--api-key-stdin", stdin="k-123456789\n")
    assert_private(db)


def test_env_db_in_a_new_directory(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "from-env" / "smsdesk.db"
    smsdesk(env | {"SMSDESK_DB": str(db)}, "creds", "add", "--name", "A", "--base-url", "x.api.infobip.com",
            "--api-key-stdin", stdin="k-123456789\n")
    assert_private(db)


def test_default_path_in_the_user_data_directory(tmp_path: Path, env: dict[str, str]) -> None:
    smsdesk(env, "creds", "add", "--name", "A", "--base-url", "x.api.infobip.com", "--api-key-stdin",
            stdin="k-123456789\n")
    found = list((tmp_path / "home").rglob("smsdesk.db"))
    assert len(found) == 1
    assert_private(found[0])


def test_serve_creates_a_private_database(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "served" / "smsdesk.db"
    port = closed_port()
    proc = subprocess.Popen([str(SCRIPT), "--db", str(db), "serve", "--insecure-no-auth", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, umask=0)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        response = httpx.post(f"http://127.0.0.1:{port}/infobip/inbound", json=mo_body(mo_result("STOP")))
        assert response.status_code == 200
        assert_private(db)  # while running: the WAL and shared-memory files exist now
    finally:
        proc.terminate()
        proc.wait(20)
    assert_private(db)


def test_demo_creates_a_private_database(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "demo-dir" / "demo.db"
    smsdesk(env, "demo", "--demo-db", str(db), "--no-tui", "--seconds", "1.5", "--rate", "20")
    assert_private(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] > 0  # the demo really wrote
    conn.close()
