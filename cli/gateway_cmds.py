"""Commands that talk to Infobip (or the local simulator): `simulate`, `creds verify`, `send`.

Gateway modules (httpx, uvicorn, starlette) and phonenumbers are imported inside the commands so
`smsdesk creds list` and friends do not pay for them at start-up.

Exit statuses (README, "The command line"): 0 success, 1 a user-facing failure with one line on stderr
(bad key, unreachable host, rejected send, bad --to), 2 a usage error (click). API keys are never
printed: only the last four characters, as `creds list` shows them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from smsdesk.cli.common import Context, fail, listen_or_fail, pass_context, print_json
from smsdesk.domain import credential_records
from smsdesk.domain.inert import make_inert
from smsdesk.infobip.net import http_url
from smsdesk.store import credentials as repo
from smsdesk.store.errors import StoreError

if TYPE_CHECKING:
    from smsdesk.domain.credential import StoredCredential
    from smsdesk.infobip.client import SendResult, VerifyResult
    from smsdesk.infobip.errors import InfobipError

MAX_TEXT = 1600  # what the command accepts in one go (about ten concatenated GSM-7 parts)
DEFAULT_TIMEOUT = 15.0
WEBHOOK_USER_ENV = "SMSDESK_WEBHOOK_USER"  # the pair `serve` requires: forwarding to it just works
WEBHOOK_PASSWORD_ENV = "SMSDESK_WEBHOOK_PASSWORD"
SIMULATOR_KEYS_ENV = "SMSDESK_SIMULATOR_KEYS"  # keys for `simulate`, out of ps

_timeout_option = click.option(
    "--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=click.FloatRange(0.1, 300), metavar="SECONDS",
    help="Seconds to wait for Infobip's answer.")


def _load_credential(ctx: Context, name: str) -> StoredCredential:
    db = ctx.open_db(existing=True)
    try:
        return repo.get_credential(db, name)
    except StoreError as exc:
        fail(str(exc))
    finally:
        db.close()


# --------------------------------------------------------------------------- creds verify

@click.command("verify")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True,
              help="Print {name, outcome, message, balance, currency, status, forwarding, blocklist_queue} as JSON "
                   "(also on failure).")
@_timeout_option
@pass_context
def verify_cmd(ctx: Context, name: str, as_json: bool, timeout: float) -> None:
    """Check credential NAME's API key against Infobip (a balance read: no side effects), and
    where the inbound number's messages go (its inbound configuration, against the credential's
    inbound mode and SMSDESK_PUBLIC_URL), in one line.

    \b
    Exit 0: the key works (balance printed), or the key is valid but may not
            read the balance (403: an SMS-only key; a warning line on stderr).
    Exit 1: bad key (401), unreachable host, TLS failure, timeout or another
            HTTP error; the reason is one line on stderr.
    Outcomes in --json: ok, no_scope, bad_key, unreachable, tls, timeout, http_error.
    """
    from smsdesk.infobip.client import InfobipClient
    from smsdesk.usecases.infobip_side import ForwardingCheck, blocklist_status, check_forwarding, public_url

    cred = _load_credential(ctx, name)

    async def run() -> tuple[VerifyResult, ForwardingCheck | None]:
        # One attempt (verify's default): a person or a script is waiting for a yes or no.
        async with InfobipClient(cred.base_url, cred.api_key, timeout=timeout) as client:
            result = await client.verify()
            forwarding = await check_forwarding(client, cred, public_url()) if result.key_valid else None
            return result, forwarding

    result, forwarding = asyncio.run(run())
    db = ctx.open_db(existing=True)
    try:
        queued, _last = blocklist_status(db.conn, cred.id)
    finally:
        db.close()
    shown = make_inert(cred.name)
    if as_json:
        print_json({
            "name": cred.name, "outcome": result.outcome.value, "message": result.message,
            "balance": result.balance.balance if result.balance else None,
            "currency": result.balance.currency if result.balance else None,
            "status": result.status,
            "forwarding": None if forwarding is None else {
                "ok": forwarding.ok, "state": forwarding.state.value if forwarding.state else None,
                "line": forwarding.line},
            "blocklist_queue": queued,
        })
    elif result.ok and result.balance is not None:
        click.echo(f"{shown}: key works, balance {result.balance.balance:.2f} {result.balance.currency}")
    elif result.key_valid:
        click.echo(f"{shown}: key works")
    if forwarding is not None and not as_json:
        click.echo(f"{shown}: {forwarding.line}")
    if queued and not as_json:
        click.echo(f"{shown}: {queued} Blocklist push{'' if queued == 1 else 'es'} waiting "
                   "(smsdesk consent blocklist-queue)")
    if result.key_valid and not result.ok:
        # 403 on the balance proves the key authenticates: success, but say what was not checked.
        click.echo(f"smsdesk: warning: {shown}: {result.message}", err=True)
    if not result.key_valid:
        fail(f"{shown}: {result.message}")


# --------------------------------------------------------------------------- send

def _send_error_line(exc: InfobipError, our_id: str) -> str:
    from smsdesk.infobip.errors import ErrorKind

    if exc.kind in (ErrorKind.DROPPED, ErrorKind.TIMEOUT):
        # The request may have reached Infobip: say so, with the id its delivery report will carry.
        return f"send failed: {exc}; it may still have been accepted (our message id {our_id})"
    if exc.status == 401:
        return f"send failed: {exc} (check the credential's API key)"
    return f"send failed: {exc}"


@click.command("send")
@click.option("--cred", "cred_name", required=True, metavar="NAME", help="Credential to send with.")
@click.option("--to", "to", required=True, metavar="NUMBER", help="Destination, international format (+41793026727).")
@click.option("--text", "text", required=True, help=f"Message text, 1 to {MAX_TEXT} characters.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as a JSON object.")
@click.option("--override-opt-out", "override_opt_out", is_flag=True,
              help="Send even if the number opted out in the credential's sandbox (recorded in the audit).")
@_timeout_option
@pass_context
def send_cmd(ctx: Context, cred_name: str, to: str, text: str, as_json: bool, override_opt_out: bool,
             timeout: float) -> None:
    """Send one SMS with a credential (prints Infobip's message id).

    Uses the credential's sender (or inbound number), validity period, callback data and DLT ids.
    Prints Infobip's message id and status. One attempt, no automatic retry: a retried send
    could reach the person twice. On failure, exit 1 with Infobip's error and violations on one
    line of stderr.

    A number whose consent is n (opted out) in the credential's sandbox is refused, as Infobip
    refuses opted-out destinations; --override-opt-out sends anyway and records who did it in
    the audit (action send-override-opt-out).
    """
    from smsdesk.domain.phone import to_e164
    from smsdesk.infobip.client import InfobipClient, OutboundSms
    from smsdesk.infobip.errors import InfobipError
    from smsdesk.usecases.guarded_send import SendRefused, check_consent, record_override

    try:
        number = to_e164(to)
    except ValueError as exc:
        fail(f"to: {exc}")
    if not text.strip():
        fail("text: must not be empty")
    if len(text) > MAX_TEXT:
        fail(f"text: {len(text)} characters; at most {MAX_TEXT}")
    db = ctx.open_db(existing=True)
    try:
        try:
            cred = repo.get_credential(db, cred_name)
        except StoreError as exc:
            fail(str(exc))
        try:
            opted = check_consent(db.conn, cred.sandbox, number, override_opt_out)
        except SendRefused as exc:
            fail(make_inert(str(exc)))  # nothing leaves the machine
        shown = make_inert(cred.name)
        # Our own id, the same form the outbox uses: Infobip echoes it in the answer and in delivery reports.
        our_id = f"smsdesk-{uuid.uuid4().hex}"
        try:
            sms = OutboundSms.from_credential(cred, number, text, our_id)
        except ValueError as exc:
            if not cred.reply_sender:
                fail(f"sender: credential {shown} has no sender and no inbound number to send from")
            fail(f"{shown}: {exc}")
        if opted is not None:
            record_override(db, cred, opted, our_id, "cli")  # before the request leaves: never sent unaudited
            click.echo(make_inert(f"smsdesk: warning: sending to {number} although it opted out of sandbox "
                                  f"{opted.sandbox!r} on {opted.when} (--override-opt-out; audited)"), err=True)
    finally:
        db.close()

    async def run() -> SendResult:
        async with InfobipClient(cred.base_url, cred.api_key, timeout=timeout, max_attempts=1) as client:
            return await client.send([sms])

    try:
        result = asyncio.run(run())
    except InfobipError as exc:
        if as_json:
            print_json({"credential": cred.name, "to": number, "our_message_id": our_id, "error": {
                "kind": exc.kind.value, "status": exc.status, "code": exc.code, "text": exc.text,
                "violations": [{"property": p, "violation": v} for p, v in exc.violations]}})
        fail(make_inert(_send_error_line(exc, our_id)))
    if not result.messages:
        fail("send failed: Infobip accepted the request but returned no message")
    message = result.messages[0]
    if as_json:
        print_json({"credential": cred.name, "to": number, "our_message_id": our_id, "bulk_id": result.bulk_id,
                    "message_id": message.message_id, "status": message.status_group,
                    "status_name": message.status_name, "description": message.status_description})
        return
    click.echo(make_inert(f"sent to {number} with {cred.name}: message id {message.message_id}, "
                      f"status {message.status_group or '?'} ({message.status_name}: {message.status_description})"))


# --------------------------------------------------------------------------- simulate

def _check_url(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{option}: must be an http:// or https:// URL")
    return value


def _serves(base_url: str, host: str, port: int) -> bool:
    """Does a credential with this base URL reach a simulator bound to host:port?

    The simulator speaks plain http, and the credential model allows http only for local
    host names, so a credential matches when its port is ours and we listen on loopback (any
    loopback name resolves here) or on every interface.
    """
    from smsdesk.infobip.net import is_loopback

    parts = urlsplit(base_url)
    if parts.scheme != "http":
        return False
    try:
        cred_port = parts.port or 80
    except ValueError:
        return False
    return cred_port == port and (is_loopback(host) or host in ("0.0.0.0", "::", ""))


@contextmanager
def _graceful_signals(on_signal: Any) -> Iterator[list[int]]:
    """SIGINT/SIGTERM stop the server cleanly and the command exits 0.

    uvicorn installs its own handlers while it runs and, once shut down, re-raises the signal it
    caught against the handlers it found. Ours are those: so the re-raised SIGINT is not a
    KeyboardInterrupt (click would print "Aborted!" and exit 1) and SIGTERM does not kill us.
    """
    caught: list[int] = []

    def handler(sig: int, frame: FrameType | None) -> None:
        caught.append(sig)
        on_signal()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _keys_from_db(ctx: Context, host: str, port: int) -> list[tuple[str, str]]:
    if not ctx.db_path.exists():  # no database: no keys to serve (and none created here)
        return []
    db = ctx.open_db(existing=True)
    try:
        creds = repo.list_credentials(db.conn)
    finally:
        db.close()
    return [(c.name, c.api_key) for c in creds if _serves(c.base_url, host, port)]


def _masked(keys: list[str]) -> str:
    return ", ".join(credential_records.masked_key(k) for k in keys)


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback only unless --allow-public).")
@click.option("--port", default=9090, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--key", "keys", multiple=True, metavar="KEY", envvar=SIMULATOR_KEYS_ENV,
              help=f"Accept this API key (repeatable; visible in ps: prefer --key-file or env {SIMULATOR_KEYS_ENV}, "
                   "keys separated by spaces). Default: the keys of the credentials whose base URL points at "
                   "this simulator.")
@click.option("--key-file", type=click.File("r", encoding="utf-8"), default=None, metavar="FILE",
              help="Accept the API keys in FILE, one per line ('-': standard input).")
@click.option("--no-scope-key", "no_scope_keys", multiple=True, metavar="KEY",
              help="Accept this key for SMS but answer 403 on /account/1/balance (repeatable).")
@click.option("--forward-url", default=None, metavar="URL",
              help="POST inbound messages here (MO_JSON_2), e.g. http://127.0.0.1:8080/infobip/inbound; "
                   "without it they wait for GET /sms/1/inbox/reports.")
@click.option("--forward-user", envvar=WEBHOOK_USER_ENV, default=None, metavar="USER",
              help=f"HTTP Basic user for forwarded inbound and delivery reports (env {WEBHOOK_USER_ENV}).")
@click.option("--forward-password", envvar=WEBHOOK_PASSWORD_ENV, default=None, metavar="PASSWORD",
              help=f"HTTP Basic password (env {WEBHOOK_PASSWORD_ENV}; prefer the environment).")
@click.option("--dlr-url", default=None, metavar="URL",
              help="Delivery-report URL for messages sent without one.")
@click.option("--allow-public", is_flag=True,
              help="Allow a non-loopback --host. The /_sim control routes have no authentication.")
@pass_context
def simulate_cmd(ctx: Context, host: str, port: int, keys: tuple[str, ...], key_file: Any,
                 no_scope_keys: tuple[str, ...], forward_url: str | None, forward_user: str | None,
                 forward_password: str | None, dlr_url: str | None, allow_public: bool) -> None:
    """Run the local Infobip simulator (Ctrl-C stops it).

    Serves POST /sms/3/messages, GET /account/1/balance, GET /sms/1/inbox/reports and
    GET /sms/3/reports with `Authorization: App <key>`, plus unauthenticated /_sim control
    routes (queue inbound, deliver reports, inject faults) for tests and demos.
    """
    from smsdesk.infobip.net import is_loopback
    from smsdesk.simulator.http_api import SimulatorState, build_simulator_server

    keys_in_ps = bool(keys) and click.get_current_context().get_parameter_source("keys") == ParameterSource.COMMANDLINE
    if key_file is not None:
        keys = keys + tuple(line.strip() for line in key_file if line.strip())
    forward_url = _check_url("--forward-url", forward_url)
    dlr_url = _check_url("--dlr-url", dlr_url)
    if bool(forward_user) != bool(forward_password):
        missing = "--forward-password" if forward_user else "--forward-user"
        fail(f"{missing}: required with the other (or set {WEBHOOK_USER_ENV} and {WEBHOOK_PASSWORD_ENV})")
    auth = (forward_user, forward_password) if forward_user and forward_password else None

    state = SimulatorState(keys=set(keys), no_scope_keys=set(no_scope_keys), forward_url=forward_url,
                           forward_auth=auth, dlr_url=dlr_url)
    try:
        server = build_simulator_server(state, host, port, log_level="warning", allow_public=allow_public)
    except ValueError as exc:
        fail(f"host: {exc} (use --allow-public to bind it anyway)")
    sock = listen_or_fail(host, port, "port: cannot listen on {address}: {reason}")
    port = sock.getsockname()[1]

    # Keys are decided once the real port is known, so --port 0 with stored credentials is coherent.
    from_db: list[tuple[str, str]] = []
    if not keys:
        try:
            from_db = _keys_from_db(ctx, host, port)
        except click.ClickException:
            sock.close()
            raise
        state.keys |= {key for _, key in from_db}

    url = http_url(host, port)

    def say(line: str) -> None:  # the banner goes to stderr: stdout stays empty for scripts
        click.echo(make_inert(line), err=True)

    say(f"Infobip simulator on {url} (Ctrl-C to stop)")
    if keys_in_ps:  # after start-up checks: a user error stays one line
        say(f"warning: --key shows the key to anyone who can run ps; use --key-file or {SIMULATOR_KEYS_ENV}")
    if keys:
        say(f"accepting keys: {_masked(sorted(set(keys)))}")
    elif from_db:
        say("accepting the keys of credentials with base URL " + url + ": "
            + ", ".join(f"{name} ({credential_records.masked_key(key)})" for name, key in from_db))
    if no_scope_keys:
        say(f"accepting without balance scope (403 on /account/1/balance): {_masked(sorted(set(no_scope_keys)))}")
    if not state.keys:
        say(f"note: no API key is accepted, so every API request gets 401: no credential in {ctx.db_path} "
            f"has base URL {url}. Give --key KEY, or point a credential at {url} and restart.")
    if forward_url:
        how = f"with HTTP Basic user {forward_user}" if auth else "without authentication"
        say(f"forwarding inbound to {forward_url} {how}")
    if dlr_url:
        say(f"default delivery-report URL: {dlr_url}")
    if not is_loopback(host):
        say(f"warning: listening on {host}: anyone who can reach it can use the /_sim control routes")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook post is noise

    def stop() -> None:
        server.should_exit = True  # also covers a signal that lands before uvicorn's handlers exist

    try:
        with _graceful_signals(stop) as caught:
            server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        fail(f"port: could not serve on {host}:{port}")
    reason = {signal.SIGINT: " (interrupted)", signal.SIGTERM: " (terminated)"}.get(caught[0], "") if caught else ""
    say(f"simulator stopped{reason}")


# --------------------------------------------------------------------------- registration

COMMANDS: list[click.Command] = [simulate_cmd, send_cmd]


def register(root: click.Group) -> None:
    """Add `simulate` and `send` to the top-level group and `verify` to `creds`."""
    from smsdesk.cli import creds

    for command in COMMANDS:
        root.add_command(command)
    creds.creds.add_command(verify_cmd)
