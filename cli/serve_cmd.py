"""Server-side commands: serve (receiver + poller + outbox)."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal

import click

from smsdesk.cli.common import Context, fail, listen_or_fail, pass_context
from smsdesk.store.retention import MIN_DAYS


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--insecure-no-auth", is_flag=True,
              help="Accept webhooks without HTTP Basic auth (loopback addresses only, for local tests).")
@click.option("--poll-interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between inbox pulls for credentials in pull mode.")
@click.option("--delivery-url", default=None, metavar="URL",
              help="Public URL of this server's /infobip/delivery-reports, sent with each reply.")
@click.option("--no-send", is_flag=True,
              help="Receive and store only; another serve sends the replies (one sender per database).")
@click.option("--max-header-bytes", default=32768, show_default=True, type=click.IntRange(1024, 1 << 24),
              help="Largest request head (request line and headers); larger: 431, closed.")
@click.option("--max-body-bytes", default=1048576, show_default=True, type=click.IntRange(1024, 1 << 30),
              help="Largest webhook body; larger: 413.")
@click.option("--request-timeout", default=20.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds a request may take to arrive in full (head and body); slower: 408, closed.")
@click.option("--keep-alive-timeout", default=5, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds an idle keep-alive connection stays open.")
@click.option("--max-connections", default=1000, show_default=True, type=click.IntRange(2, 1_000_000),
              help="Open connections at most; past it idle ones are closed, least recently active first.")
@click.option("--logs-lag", default=30.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds after a send's answer was lost before Infobip's message logs are asked about its "
                   "replies (then 2x and 4x as long after it); only replies still missing are sent again.")
@click.option("--writer-only", is_flag=True,
              help="Send every webhook to the writer process, also when few are in progress (by default serve "
                   "commits those itself, without the hop); for comparison and diagnosis.")
@click.option("--retention-days", type=click.IntRange(MIN_DAYS, 36500), envvar="SMSDESK_RETENTION_DAYS", default=None,
              metavar="DAYS", help="Purge message texts, replies and delivery reports older than DAYS, at start and "
                                   "hourly, as `smsdesk purge` does (evidence of consent stays). Default: keep all.")
@click.option("--sender-share", default=0.1, show_default=True, type=click.FloatRange(0.01, 1.0),
              help="Share of the writer's time the outbox sender may take while inbound messages arrive (1: no "
                   "pause between claims; claims stay one request's worth meanwhile); when inbound is quiet for a "
                   "second it claims in full at once.")
@click.option("--writer-in-process", is_flag=True, hidden=True,
              help="Run the writer on a thread of serve instead of a child process (bench/ingest.py's A/B).")
@pass_context
def serve_cmd(ctx: Context, host: str, port: int, insecure_no_auth: bool, poll_interval: float,
              delivery_url: str | None, max_header_bytes: int, max_body_bytes: int, request_timeout: float,
              keep_alive_timeout: int, max_connections: int, no_send: bool, writer_only: bool, writer_in_process: bool,
              logs_lag: float, retention_days: int | None, sender_share: float) -> None:
    """Run the webhook receiver, the inbox poller and the outbox sender.

    Routes: POST /infobip/inbound, POST /infobip/delivery-reports, GET /healthz. The webhook
    routes require HTTP Basic auth from SMSDESK_WEBHOOK_USER and SMSDESK_WEBHOOK_PASSWORD.
    One serve per database sends replies; a second one refuses to start unless --no-send.
    """
    from smsdesk.engine.limits import HttpLimits
    from smsdesk.engine.receiver import BasicAuth
    from smsdesk.engine.service import ServeConfig, ServeConfigError, build_service_server
    from smsdesk.infobip.net import http_url
    from smsdesk.store.serve_locks import SenderLockHeld, ServedName

    user = os.environ.get("SMSDESK_WEBHOOK_USER", "")
    password = os.environ.get("SMSDESK_WEBHOOK_PASSWORD", "")
    auth = BasicAuth(user, password) if (user or password) else None
    # Before SQLite opens the file by this name: a second name of a file another serve runs on
    # (a hard link) would write a second WAL, and what is committed through one name is lost.
    served_name = ServedName(ctx.db_path)
    try:
        served_name.acquire()
    except SenderLockHeld as exc:
        fail(str(exc))
    ctx.open_db().close()  # create and migrate now, so a bad path is one clean error
    limits = HttpLimits(max_header_bytes=max_header_bytes, request_timeout=request_timeout,
                        keep_alive_timeout=keep_alive_timeout, max_connections=max_connections)
    config = ServeConfig(db_path=ctx.db_path, host=host, port=port, auth=auth, insecure_no_auth=insecure_no_auth,
                         poll_interval=poll_interval, delivery_url=delivery_url, limits=limits,
                         max_body_bytes=max_body_bytes, run_outbox=not no_send, direct_commits=not writer_only,
                         writer_in_process=writer_in_process, logs_lag=logs_lag,
                         retention_days=retention_days, sender_share=sender_share)
    try:
        served_name.acquire()  # the file exists now
        service, server = build_service_server(config)
        service.take_sender_lock()
    except (ServeConfigError, SenderLockHeld) as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise at this rate
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` dumps every thread's stack to stderr
    ensure_descriptors(max_connections)
    sock = listen_or_fail(host, port, "could not listen on {address}: {reason}")
    bound_port = sock.getsockname()[1]
    click.echo(f"smsdesk serve on {http_url(host, bound_port)} (database {ctx.db_path})", err=True)
    server.run(sockets=[sock])
    if not server.started:
        fail(f"could not listen on {host}:{bound_port}")


def ensure_descriptors(max_connections: int) -> None:
    """Room for the connection cap: past the descriptor limit every connection fails, /healthz too."""
    import resource

    wanted = max_connections + 256  # the database, the writer's socket, logs, the poller's and sender's clients
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < wanted:
            logging.getLogger("smsdesk.serve").warning(
                "open file limit %d is below --max-connections %d + 256: lower --max-connections or raise the "
                "limit (LimitNOFILE= in systemd)", raised, max_connections)


COMMANDS: list[click.Command] = [serve_cmd]
