"""`smsdesk creds verify`, `smsdesk send` and `smsdesk simulate` against the real simulator.

The simulator runs in this process (SimulatorThread, real HTTP over loopback). Commands run
through the console script's entry function in this process (`smsdesk`, tests/support/cli.py:
same command tree, same one-line errors, no Python start-up per run); a few run as the installed
console script in a subprocess (`script`), so exit statuses, the one-line stderr contract and
signal handling are also checked as a script sees them, and long-running commands (serve,
simulate) always run in a process of their own. No HTTP is mocked: the few answers the simulator
cannot give (a 400 with violations past our own validation) come from a tiny real HTTP server.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.simulator.http_api import FaultKind, SimulatorThread
from tests.support.cli import SCRIPT, CliRun, run_main, run_script, seed_records
from tests.support.live import BOB, inbound, store
from tests.support.sim import BAD_KEY, GOOD_KEY, SMS_ONLY_KEY, closed_port

SECRETS = (GOOD_KEY, SMS_ONLY_KEY, BAD_KEY)
TO = "+41793026727"


class Run(CliRun):
    secrets = SECRETS


@pytest.fixture
def db_file(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database named by SMSDESK_DB, in an isolated home (conftest `home`)."""
    path = tmp_path / "gateway.db"
    monkeypatch.setenv("SMSDESK_DB", str(path))
    return path


def seed(path: Path, **credentials: dict[str, Any]) -> None:
    """Store credentials by name; each record gives at least base_url and api_key."""
    seed_records(path, [{"name": name} | record for name, record in credentials.items()])


def invoke(*args: str) -> Run:
    """In process (fast) for cases that fail before any I/O; the database comes from SMSDESK_DB."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def smsdesk(*args: str) -> Run:
    """The command through the console script's entry function, in this process."""
    return run_main(*args, result=Run)


def script(*args: str, timeout: float = 60) -> Run:
    """The installed console script in a subprocess."""
    return run_script(*args, timeout=timeout, result=Run)


@pytest.fixture
def creds(db_file: Path, sim: SimulatorThread) -> SimulatorThread:
    """Credentials pointing at the in-process simulator: good, sms-only, bad key; full sending options."""
    seed(db_file,
         good={"base_url": sim.url, "api_key": GOOD_KEY, "sender": "BrandCo", "validity_period_hours": 12,
               "callback_data": '{"campaign": "spring"}', "principal_entity_id": "1702157864390060348",
               "content_template_id": "1107160000000000001", "inbound_number": "+447491163443"},
         smsonly={"base_url": sim.url, "api_key": SMS_ONLY_KEY, "inbound_number": "+447491163444"},
         wrongkey={"base_url": sim.url, "api_key": BAD_KEY, "sender": "BrandCo"},
         nosender={"base_url": sim.url, "api_key": GOOD_KEY})
    return sim


# --------------------------------------------------------------------------- creds verify


def test_verify_ok_prints_balance(creds: SimulatorThread) -> None:
    run = script("creds", "verify", "good")
    run.assert_ok()
    # and where the inbound number's messages go (tests/integration/test_infobip_side.py: the other cases)
    assert run.out == ("good: key works, balance 47.79 EUR\ngood: ✗ inbound is not configured at Infobip (the "
                       "account's subscriptions apply); nothing reaches serve: run `smsdesk creds connect`\n")
    assert run.err == ""
    assert creds.state.count_requests("/account/1/balance", "GET") == 1


def test_verify_json_ok(creds: SimulatorThread) -> None:
    run = smsdesk("creds", "verify", "GOOD", "--json")  # names are case-insensitive
    run.assert_ok()
    assert run.json() | {"forwarding": None} == {
        "name": "good", "outcome": "ok", "message": "key works: balance 47.79 EUR", "balance": 47.79,
        "currency": "EUR", "status": 200, "forwarding": None, "blocklist_queue": 0}
    assert run.json()["forwarding"]["ok"] is False and run.json()["forwarding"]["state"] == "none"


def test_verify_bad_key_is_one_line_exit_1(creds: SimulatorThread) -> None:
    run = script("creds", "verify", "wrongkey")
    run.assert_user_error("wrongkey", "401", "API key")
    assert run.out == ""


def test_verify_bad_key_json_still_prints_the_object(creds: SimulatorThread) -> None:
    run = smsdesk("creds", "verify", "wrongkey", "--json")
    run.assert_user_error("wrongkey")
    assert run.json() | {"message": ""} == {"name": "wrongkey", "outcome": "bad_key", "message": "",
                                            "balance": None, "currency": None, "status": 401,
                                            "forwarding": None, "blocklist_queue": 0}  # a bad key: not asked


def test_verify_403_scope_is_success_with_a_warning(creds: SimulatorThread) -> None:
    run = smsdesk("creds", "verify", "smsonly")
    run.assert_ok()
    assert run.out.splitlines()[0] == "smsonly: key works"
    assert run.out.splitlines()[1].startswith("smsonly: ✗ inbound is not configured at Infobip")
    assert run.err.count("\n") == 1 and run.err.startswith("smsdesk: warning: smsonly: key valid")
    assert "403" in run.err

    data = smsdesk("creds", "verify", "smsonly", "--json")
    data.assert_ok()
    assert data.json()["outcome"] == "no_scope" and data.json()["status"] == 403
    assert data.json()["balance"] is None


def test_verify_unreachable(db_file: Path) -> None:
    seed(db_file, gone={"base_url": f"http://127.0.0.1:{closed_port()}", "api_key": GOOD_KEY})
    run = smsdesk("creds", "verify", "gone")
    run.assert_user_error("gone", "cannot reach 127.0.0.1", "connection refused")


def test_verify_tls_failure(creds: SimulatorThread, db_file: Path) -> None:
    # https to a plain-http listener: a real handshake failure, not a simulated one.
    seed(db_file, tls={"base_url": f"https://127.0.0.1:{creds.port}", "api_key": GOOD_KEY})
    run = smsdesk("creds", "verify", "tls", "--json")
    run.assert_user_error("tls", "secure connection")
    assert run.json()["outcome"] == "tls"


def test_verify_timeout(creds: SimulatorThread) -> None:
    creds.state.inject(FaultKind.SLOW, delay=2.0)
    started = time.monotonic()
    run = smsdesk("creds", "verify", "good", "--timeout", "0.3")
    run.assert_user_error("good", "did not answer in time")
    assert time.monotonic() - started < 10


def test_verify_server_error(creds: SimulatorThread) -> None:
    creds.state.inject(FaultKind.SERVER_ERROR, status=503)
    run = smsdesk("creds", "verify", "good", "--json")
    run.assert_user_error("good", "503")
    assert run.json()["outcome"] == "http_error" and run.json()["status"] == 503
    assert creds.state.count_requests("/account/1/balance") == 1  # one attempt: a person is waiting


def test_verify_unknown_credential(creds: SimulatorThread) -> None:
    run = smsdesk("creds", "verify", "nobody")
    run.assert_user_error("nobody")
    assert creds.state.count_requests() == 0


# --------------------------------------------------------------------------- send


def test_send_ok_carries_the_credential_options(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "Spring sale: 20% off")
    run.assert_ok()
    (sent,) = creds.state.snapshot_sent()
    assert sent["to"] == "41793026727"  # Infobip's wire form, from E.164
    assert sent["sender"] == "BrandCo"
    assert sent["text"] == "Spring sale: 20% off"
    assert sent["callback_data"] == '{"campaign": "spring"}'
    assert sent["options"] == {
        "validityPeriod": {"amount": 12, "timeUnit": "HOURS"},
        "regional": {"indiaDlt": {"principalEntityId": "1702157864390060348",
                                  "contentTemplateId": "1107160000000000001"}},
    }
    assert sent["message_id"].startswith("smsdesk-")  # our own id travelled with the message
    assert f"message id {sent['message_id']}" in run.out
    assert "PENDING" in run.out and TO in run.out


def test_send_uses_inbound_number_when_no_sender(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "smsonly", "--to", "0041 79 302 67 27", "--text", "hi")  # 00 prefix, spaces
    run.assert_ok()
    (sent,) = creds.state.snapshot_sent()
    assert sent["sender"] == "447491163444" and sent["to"] == "41793026727"
    assert "options" not in sent or sent["options"] == {"validityPeriod": {"amount": 48, "timeUnit": "HOURS"}}


def test_send_json(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "hello", "--json")
    run.assert_ok()
    data = run.json()
    (sent,) = creds.state.snapshot_sent()
    assert data["message_id"] == sent["message_id"] == data["our_message_id"]
    assert data["bulk_id"] == sent["bulk_id"]
    assert data | {"message_id": "", "our_message_id": "", "bulk_id": ""} == {
        "credential": "good", "to": TO, "our_message_id": "", "bulk_id": "", "message_id": "",
        "status": "PENDING", "status_name": "PENDING_ACCEPTED", "description": "Message sent to next instance"}


@pytest.mark.parametrize("number", ["12", "+1 555", "call-me", "", "+99912345678"])
def test_send_bad_number(creds: SimulatorThread, number: str) -> None:
    run = invoke("send", "--cred", "good", "--to", number, "--text", "hello")
    run.assert_user_error("to: ")
    assert creds.state.count_requests() == 0


@pytest.mark.parametrize("text", ["", "   ", "x" * 1601])
def test_send_bad_text(creds: SimulatorThread, text: str) -> None:
    run = invoke("send", "--cred", "good", "--to", TO, "--text", text)
    run.assert_user_error("text: ")
    assert creds.state.count_requests() == 0


def test_send_longest_text_is_accepted(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "y" * 1600)
    run.assert_ok()
    assert creds.state.snapshot_sent()[0]["text"] == "y" * 1600


def test_send_unknown_credential(creds: SimulatorThread) -> None:
    smsdesk("send", "--cred", "nobody", "--to", TO, "--text", "hi").assert_user_error("nobody")


def test_send_bad_key(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "wrongkey", "--to", TO, "--text", "hi")
    run.assert_user_error("send failed", "HTTP 401", "API key")
    assert creds.state.snapshot_sent() == []


def test_send_without_sender_or_inbound_number(creds: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "nosender", "--to", TO, "--text", "hi")
    run.assert_user_error("sender: ", "nosender")
    assert creds.state.count_requests() == 0


# ---- consent: an opted-out number is refused unless overridden, and the override is audited


@pytest.fixture
def opted_out(creds: SimulatorThread, db_file: Path) -> SimulatorThread:
    """TO texted STOP to `good` (sandbox prod) and BOB texted YES, through the real inbound
    pipeline; `devshop` is the same account in sandbox dev, where TO never said anything."""
    seed(db_file, devshop={"base_url": creds.url, "api_key": GOOD_KEY, "sender": "BrandCo", "sandbox": "dev"})
    store(db_file, inbound(TO, "+447491163443", "STOP", "2026-03-04T05:06:07.000+00:00"),
          inbound(BOB, "+447491163443", "YES"))
    return creds


def override_audits(db_file: Path) -> list[tuple[str, str, dict[str, Any]]]:
    conn = sqlite3.connect(db_file)
    try:
        return [(user, name, json.loads(fields)) for user, name, fields in conn.execute(
            "SELECT os_user, credential_name, fields FROM audit WHERE action = 'send-override-opt-out' ORDER BY id")]
    finally:
        conn.close()


@pytest.mark.parametrize("spelling", [TO, "0041 79 302 67 27", "41793026727"])
def test_send_to_an_opted_out_number_is_refused(opted_out: SimulatorThread, db_file: Path, spelling: str) -> None:
    run = smsdesk("send", "--cred", "good", "--to", spelling, "--text", "Spring sale")
    run.assert_user_error()
    assert run.err == (f"smsdesk: refused: {TO} opted out of sandbox 'prod' on 2026-03-04 05:06 UTC; "
                       "pass --override-opt-out to send anyway\n")
    assert opted_out.state.count_requests() == 0  # nothing reached Infobip
    assert override_audits(db_file) == []


def test_send_override_opt_out_sends_and_is_audited(opted_out: SimulatorThread, db_file: Path) -> None:
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "Your order shipped", "--override-opt-out")
    run.assert_ok()
    (sent,) = opted_out.state.snapshot_sent()
    assert sent["to"] == "41793026727" and sent["text"] == "Your order shipped"
    assert run.err.count("\n") == 1 and run.err.startswith(f"smsdesk: warning: sending to {TO} although it opted out")
    [(user, name, fields)] = override_audits(db_file)
    assert name == "good" and user
    assert fields == {"to": TO, "sandbox": "prod", "opted_out_at": "2026-03-04T05:06:07.000+00:00",
                      "our_message_id": sent["message_id"], "via": "cli"}
    assert "Your order shipped" not in json.dumps(fields)


def test_send_override_is_audited_before_the_request_even_when_infobip_fails(opted_out: SimulatorThread,
                                                                              db_file: Path) -> None:
    """README: recorded in the audit table "before the request leaves": a send Infobip refuses
    (500) has reached Infobip's door all the same, and the record of the override stays."""
    opted_out.state.inject("500", None, duration=30, path_prefix="/sms/3/messages")
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "Your order shipped", "--override-opt-out")
    assert run.code == 1, run.err
    assert opted_out.state.count_requests("/sms/3/messages") >= 1 and opted_out.state.snapshot_sent() == []
    [(_, name, fields)] = override_audits(db_file)
    assert name == "good" and fields["to"] == TO and fields["our_message_id"]


def test_send_override_that_cannot_be_audited_is_not_sent(opted_out: SimulatorThread, db_file: Path) -> None:
    """Another process holds the write lock past the busy timeout: the audit cannot be written,
    so the send is refused and nothing reaches Infobip."""
    holder = sqlite3.connect(db_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "Your order shipped", "--override-opt-out")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert run.code == 1 and run.err.startswith("smsdesk: "), run.err
    assert opted_out.state.count_requests("/sms/3/messages") == 0
    assert override_audits(db_file) == []


@pytest.mark.parametrize(("cred", "number"), [("good", BOB), ("good", "+41793026729"), ("devshop", TO)],
                         ids=["consent-y", "consent-none", "opted-out-in-another-sandbox"])
def test_send_to_a_number_not_opted_out_goes_out_without_audit(opted_out: SimulatorThread, db_file: Path,
                                                               cred: str, number: str) -> None:
    smsdesk("send", "--cred", cred, "--to", number, "--text", "hi").assert_ok()
    assert len(opted_out.state.snapshot_sent()) == 1
    # the flag on a number that needs none sends just the same, and records nothing
    run = smsdesk("send", "--cred", cred, "--to", number, "--text", "hi", "--override-opt-out")
    run.assert_ok()
    assert run.err == "" and len(opted_out.state.snapshot_sent()) == 2
    assert override_audits(db_file) == []


def test_send_bad_number_keeps_its_error_with_the_override(opted_out: SimulatorThread) -> None:
    run = smsdesk("send", "--cred", "good", "--to", "call-me", "--text", "hi", "--override-opt-out")
    run.assert_user_error("to: a phone number has no letters")
    assert opted_out.state.count_requests() == 0


@pytest.mark.parametrize("status", [400, 500, 503])
def test_send_error_answer_is_one_line_and_not_retried(creds: SimulatorThread, status: int) -> None:
    creds.state.inject(FaultKind.SERVER_ERROR, status=status)
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "hi")
    run.assert_user_error("send failed", f"HTTP {status}")
    # One attempt: a retried send could reach the person twice.
    assert creds.state.count_requests("/sms/3/messages") == 1
    assert creds.state.snapshot_sent() == []


def test_send_throttled_json(creds: SimulatorThread) -> None:
    creds.state.inject(FaultKind.THROTTLE, retry_after=1)
    run = script("send", "--cred", "good", "--to", TO, "--text", "hi", "--json")
    run.assert_user_error("HTTP 429")
    data = run.json()
    assert data["error"]["status"] == 429 and data["error"]["code"] == "E429"
    assert data["our_message_id"].startswith("smsdesk-") and "message_id" not in data


def test_send_dropped_connection_says_it_may_have_been_sent(creds: SimulatorThread) -> None:
    creds.state.inject(FaultKind.DROP, process=True)  # accepted at "Infobip", answer lost
    run = smsdesk("send", "--cred", "good", "--to", TO, "--text", "hi")
    (sent,) = creds.state.snapshot_sent()
    run.assert_user_error("may still have been accepted", sent["message_id"])


class _Canned(BaseHTTPRequestHandler):
    """Infobip's documented 400 for /sms/3/messages, with violations."""

    def do_POST(self) -> None:  # the name http.server dispatches to
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({
            "errorCode": "E400", "description": "Request cannot be processed.",
            "action": "Check the syntax, violations and adjust the request.",
            "violations": [{"property": "messages[0].sender", "violation": "sender is not registered"},
                           {"property": "messages[0].destinations[0].to", "violation": "number is blocked"}],
            "resources": []}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def canned_400(db_file: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    seed(db_file, strict={"base_url": url, "api_key": GOOD_KEY, "sender": "BrandCo"})
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_send_400_violations_on_one_line(canned_400: str) -> None:
    run = smsdesk("send", "--cred", "strict", "--to", TO, "--text", "hi")
    run.assert_user_error("HTTP 400 E400", "messages[0].sender: sender is not registered",
                          "messages[0].destinations[0].to: number is blocked")

    data = smsdesk("send", "--cred", "strict", "--to", TO, "--text", "hi", "--json")
    data.assert_user_error("HTTP 400")
    assert data.json()["error"]["violations"] == [
        {"property": "messages[0].sender", "violation": "sender is not registered"},
        {"property": "messages[0].destinations[0].to", "violation": "number is blocked"}]


def test_send_in_process_with_clirunner(creds: SimulatorThread, db_file: Path) -> None:
    """The same command tree in process (as the TUI's tests drive it): stdout and stderr apart."""
    result = CliRunner().invoke(cli, ["--db", str(db_file), "send", "--cred", "good", "--to", TO, "--text", "hi"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert len(creds.state.snapshot_sent()) == 1


# --------------------------------------------------------------------------- simulate


class SimProcess:
    """`smsdesk simulate` (or another long-running command) in a subprocess; stderr is read line by
    line on a thread."""

    def __init__(self, *args: str, command: str = "simulate") -> None:
        self.proc = subprocess.Popen([str(SCRIPT), command, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no stderr line starting {prefix!r}; got {self.err}") from None
            if line is None:
                raise AssertionError(f"exited {self.proc.wait()} before {prefix!r}; stderr {self.err}")
            self.err.append(line)
            if line.startswith(prefix):
                return line

    def url(self) -> str:
        return self.wait_for("Infobip simulator on ").split()[3]

    def stop(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self._reader.join(5)
        while (line := self.lines.get_nowait() if not self.lines.empty() else None) is not None:
            self.err.append(line)
        out = self.proc.stdout.read() if self.proc.stdout else ""
        return code, out, "".join(self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def spawn() -> Iterator[Any]:
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        started.append(SimProcess(*args))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def test_serve_on_port_0_names_the_port_it_got_and_stops_on_sigterm(db_file: Path) -> None:
    serve = SimProcess("--insecure-no-auth", "--port", "0", command="serve")
    try:
        banner = serve.wait_for("smsdesk serve on ")
        url = banner.split()[3]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        port = int(url.rsplit(":", 1)[1])
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        # A second serve on the same port (receive-only, so the one-sender lock is not what stops
        # it): one clean line, status 1, nothing half-started.
        taken = script("serve", "--insecure-no-auth", "--no-send", "--port", str(port), timeout=30)
        taken.assert_user_error(f"could not listen on 127.0.0.1:{port}")
        code, _, err = serve.stop(signal.SIGTERM)
        # uvicorn re-raises SIGTERM once shut down: the shell sees 143 (see SuccessExitStatus in README).
        assert code in (0, -signal.SIGTERM) and "Traceback" not in err
    finally:
        serve.kill()


def balance_status(url: str, key: str) -> int:
    return httpx.get(f"{url}/account/1/balance", headers={"Authorization": f"App {key}"}, timeout=5).status_code


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_simulate_accepts_given_keys_and_stops_cleanly(db_file: Path, spawn: Any, sig: int) -> None:
    sim = spawn("--port", "0", "--key", GOOD_KEY, "--no-scope-key", SMS_ONLY_KEY)
    url = sim.url()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert balance_status(url, GOOD_KEY) == 200
    assert httpx.get(f"{url}/account/1/balance", headers={"Authorization": f"App {GOOD_KEY}"}).json() == {
        "balance": 47.79, "currency": "EUR"}
    assert balance_status(url, BAD_KEY) == 401
    assert balance_status(url, SMS_ONLY_KEY) == 403
    code, out, err = sim.stop(sig)
    assert code in (0, 130), err
    assert "Traceback" not in err and out == ""
    assert "simulator stopped" in err
    assert f"accepting keys: ••••{GOOD_KEY[-4:]}" in err and f"••••{SMS_ONLY_KEY[-4:]}" in err
    assert GOOD_KEY not in err and SMS_ONLY_KEY not in err


def test_simulate_defaults_to_the_keys_of_credentials_pointing_at_it(db_file: Path, spawn: Any) -> None:
    port = closed_port()
    seed(db_file, local={"base_url": f"http://localhost:{port}", "api_key": GOOD_KEY},
         elsewhere={"base_url": f"http://127.0.0.1:{closed_port()}", "api_key": BAD_KEY},
         real={"base_url": "xyz.api.infobip.com", "api_key": SMS_ONLY_KEY})
    sim = spawn("--port", str(port))
    url = sim.url()
    banner = sim.wait_for("accepting the keys of credentials")
    assert f"local (••••{GOOD_KEY[-4:]})" in banner and "elsewhere" not in banner and "real" not in banner
    assert balance_status(url, GOOD_KEY) == 200
    assert balance_status(url, BAD_KEY) == 401
    assert balance_status(url, SMS_ONLY_KEY) == 401
    code, _, err = sim.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in err
    for key in SECRETS:
        assert key not in err


def test_simulate_without_any_key_says_so(db_file: Path, spawn: Any) -> None:
    sim = spawn("--port", "0")
    url = sim.url()
    note = sim.wait_for("note: ")
    assert "401" in note and "--key" in note and str(db_file) in note
    assert balance_status(url, GOOD_KEY) == 401
    code, _, _ = sim.stop(signal.SIGINT)
    assert code in (0, 130)


def test_simulate_forwards_inbound_with_basic_auth_from_env(db_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                            spawn: Any) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SMSDESK_WEBHOOK_USER", "infobip")
        monkeypatch.setenv("SMSDESK_WEBHOOK_PASSWORD", "hook-password-123")
        sim = spawn("--port", "0", "--key", GOOD_KEY,
                    "--forward-url", f"http://127.0.0.1:{hook.server_address[1]}/infobip/inbound")
        url = sim.url()
        httpx.post(f"{url}/_sim/inbound", json={"from": "41793026727", "to": "447491163443", "text": "STOP"})
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        code, _, err = sim.stop(signal.SIGTERM)
    finally:
        hook.shutdown()
        hook.server_close()
    (post,) = received
    assert post["path"] == "/infobip/inbound" and post["body"]["results"][0]["text"] == "STOP"
    assert post["auth"] == "Basic aW5mb2JpcDpob29rLXBhc3N3b3JkLTEyMw=="  # infobip:hook-password-123
    assert "hook-password-123" not in err and "with HTTP Basic user infobip" in err
    assert code == 0


@pytest.mark.parametrize(("args", "mention"), [
    (["--host", "0.0.0.0"], "host: "),
    (["--host", "192.0.2.10"], "refusing to bind"),
    (["--forward-url", "ftp://example.com/x"], "--forward-url"),
    (["--dlr-url", "not a url"], "--dlr-url"),
    (["--forward-url", "http://127.0.0.1:8080/x", "--forward-user", "u"], "--forward-password"),
])
def test_simulate_user_errors(db_file: Path, args: list[str], mention: str) -> None:
    invoke("simulate", "--port", "0", "--key", GOOD_KEY, *args).assert_user_error(mention)


def test_simulate_refuses_public_host_as_a_script_sees_it(db_file: Path) -> None:
    script("simulate", "--host", "0.0.0.0", "--key", GOOD_KEY, timeout=20).assert_user_error(
        "host: ", "--allow-public")


def test_simulate_busy_port(db_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # A subprocess: were the busy port missed, the simulator would serve until the timeout.
        run = script("simulate", "--port", str(port), "--key", GOOD_KEY, timeout=20)
    run.assert_user_error("port: ", str(port))


def test_simulate_bad_port_is_usage_error(db_file: Path) -> None:
    run = smsdesk("simulate", "--port", "70000")
    assert run.code == 2 and "Traceback" not in run.err


# --------------------------------------------------------------------------- help


def test_help_lists_the_commands() -> None:
    top = CliRunner().invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in ("simulate", "send"):
        assert f"  {name} " in top.output
    sub = CliRunner().invoke(cli, ["creds", "--help"])
    assert "  verify " in sub.output

