"""`smsdesk consent verify` (replay the consent ledger against the consent table),
`smsdesk consent expire` (end pending double opt-ins not confirmed in time) and
`smsdesk consent opt-out` (an opt-out that reached the operator by phone, email or letter),
`smsdesk consent reconcile` (Infobip's Blocklist against consent here) and
`smsdesk consent blocklist-queue` (the Blocklist pushes waiting for serve)."""

from __future__ import annotations

import sys
from typing import Any

import click

from smsdesk.cli.common import Context, fail, pass_context, print_json
from smsdesk.domain.inert import make_inert
from smsdesk.domain.phone import consent_number, to_e164
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.consent_history import evidence, sandboxes_of
from smsdesk.store.db import transaction
from smsdesk.store.expiry import expire_pending
from smsdesk.usecases.consent import opt_out_by_operator


@click.group("consent")
def consent() -> None:
    """Check the consent records (the compliance evidence)."""


@consent.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@pass_context
def verify_cmd(ctx: Context, as_json: bool) -> None:
    """Replay every number's consent ledger and compare it with its current consent.

    Prints one line per difference and exits 1 if there is any; exits 0 otherwise.
    """
    db = ctx.open_db(existing=True)
    try:
        report = verify_consent(db.conn)
    finally:
        db.close()
    if as_json:
        print_json(report.as_dict())
    else:
        for difference in report.differences:
            click.echo(str(difference))
        if report.ok:
            click.echo(f"{report.numbers} numbers verified ({report.entries} ledger entries)")
        else:
            click.echo(f"smsdesk: {len(report.differences)} difference(s) in {report.numbers} numbers", err=True)
    if not report.ok:
        sys.exit(1)


@consent.command("expire")
@pass_context
def expire_cmd(ctx: Context) -> None:
    """Expire pending double opt-ins not confirmed in time (serve does this every few minutes).

    Each goes back to the consent it had before, with an `expired` ledger entry.
    """
    db = ctx.open_db(existing=True)
    with transaction(db) as conn:
        count = expire_pending(conn)
    click.echo(f"{count} pending double opt-in{'' if count == 1 else 's'} expired")


@consent.command("opt-out")
@click.argument("number")
@click.option("--sandbox", required=True, help="The sandbox whose consent it is (a credential's sandbox).")
@click.option("--reason", required=True, help="How the opt-out reached you, for the ledger (e.g. 'phone call').")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@pass_context
def opt_out_cmd(ctx: Context, number: str, sandbox: str, reason: str, as_json: bool) -> None:
    """Opt NUMBER out of a sandbox: a revocation that came by phone, email or any other means.

    Always applied, at your time, whatever times the number's messages claimed; the replies
    queued for the number are cancelled; the ledger records your OS user and the reason. No
    confirmation SMS is queued (the number did not text).
    """
    try:
        done = opt_out_by_operator(ctx.open_db(existing=True), sandbox, number, reason)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print_json({"sandbox": done.sandbox, "number": done.number, "effect": done.effect, "before": done.before,
                    "ledger_id": done.ledger_id, "cancelled_replies": done.cancelled})
        return
    click.echo(make_inert(f"{done.sandbox} {done.number}: {done.note} (ledger #{done.ledger_id})"))


@consent.command("evidence")
@click.argument("number")
@click.option("--sandbox", default="", help="The sandbox (needed when the number is in several).")
@click.option("--json", "as_json", is_flag=True, help="The record as one JSON object (what to hand over).")
@pass_context
def evidence_cmd(ctx: Context, number: str, sandbox: str, as_json: bool) -> None:
    """The evidence record of NUMBER: every consent change with its cause (the message and its
    receivedAt, or the operator and the reason, or an expiry), every reply with its messageIds
    and delivery reports, in order, and a SHA-256 digest over the record to check a copy later."""
    try:
        e164 = consent_number(to_e164(number))
    except ValueError as exc:
        fail(str(exc))
    conn = ctx.open_db(existing=True).conn
    found = sandboxes_of(conn, e164)
    if (sandbox and sandbox not in found) or not found:
        fail(f"no consent record or profile for {e164}" + (f" in sandbox {sandbox!r}" if sandbox else ""))
    if not sandbox:
        if len(found) > 1:
            fail(f"{e164} is in several sandboxes ({', '.join(found)}): give --sandbox")
        sandbox = found[0]
    record = evidence(conn, sandbox, e164)
    if as_json:
        print_json(record)
        return
    for line in evidence_lines(record):
        click.echo(make_inert(line))


@consent.command("reconcile")
@click.option("--sandbox", default=None, help="Only the credentials of this sandbox.")
@click.option("--apply", "apply_", is_flag=True,
              help="Bring them together: blocks there become opt-outs here (two-way credentials), opt-outs "
                   "here are blocked there, opt-ins here after a block unblock it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per credential, in an array.")
@click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(0.1, 300), metavar="SECONDS")
@pass_context
def reconcile_cmd(ctx: Context, sandbox: str | None, apply_: bool, as_json: bool, timeout: float) -> None:
    """Compare Infobip's Blocklist (each credential's sender, SMS) with the consent here, both ways,
    for every credential whose blocklist_sync is push or two-way. Exits 1 when a Blocklist could
    not be read; differences alone exit 0."""
    import asyncio

    from smsdesk.infobip.client import InfobipClient
    from smsdesk.store.credentials import list_credentials
    from smsdesk.usecases.infobip_side import ReconcileResult, reconcilable, reconcile

    db = ctx.open_db(existing=True)
    creds = reconcilable(list_credentials(db.conn), sandbox)
    if not creds:
        fail("no credential with blocklist_sync push or two-way" + (f" in sandbox {sandbox!r}" if sandbox else "")
             + ": set one with `smsdesk creds edit NAME --blocklist-sync two-way`")

    async def run() -> list[ReconcileResult]:
        results = []
        for cred in creds:
            async with InfobipClient(cred.base_url, cred.api_key, timeout=timeout, max_attempts=1) as client:
                results.append(await reconcile(db, client, cred, apply=apply_))
        return results

    results = asyncio.run(run())
    if as_json:
        print_json([{
            "credential": r.credential.name, "sandbox": r.credential.sandbox, "sender": r.credential.reply_sender,
            "error": r.error or None, "applied": r.applied,
            "differences": [{"kind": str(d.kind), "number": d.number, "consent_here": d.consent_here,
                             "source_type": d.source_type or None, "blocked_at": d.blocked_at or None}
                            for d in r.differences],
            "brought_here": r.brought_here, "pushed": r.pushed, "queued": r.queued, "left": r.left,
            "waiting_in_queue": r.waiting,
        } for r in results])
    else:
        for r in results:
            for line in reconcile_lines(r):
                click.echo(make_inert(line))
    if any(r.error for r in results):
        sys.exit(1)


_KIND_WORDS = {"blocked-there": "blocked there, not opted out here",
               "opted-out-here": "opted out here, not blocked there",
               "opted-in-here-after": "blocked there, opted in here after the block"}


def reconcile_lines(r: Any) -> list[str]:
    head = f"{r.credential.name} (sandbox {r.credential.sandbox}, sender {r.credential.reply_sender})"
    if r.error:
        return [f"{head}: {r.error}"]
    lines = [f"{head}: {len(r.differences)} difference{'' if len(r.differences) == 1 else 's'}"]
    for d in r.differences:
        source = f" (sourceType {d.source_type}, since {d.blocked_at})" if d.source_type else ""
        lines.append(f"  {d.number}: {_KIND_WORDS[str(d.kind)]}; here {d.consent_here or 'none'}{source}")
    if r.applied:
        lines.append(f"  applied: {r.brought_here} opted out here (cause infobip-blocklist), {r.pushed} pushed "
                     f"there, {r.queued} queued for serve")
    lines.extend(f"  left: {note}" for note in r.left)
    if r.waiting:
        lines.append(f"  {r.waiting} number{'' if r.waiting == 1 else 's'} left to the queue: a push waits for serve "
                     "(smsdesk consent blocklist-queue)")
    return lines


@consent.command("blocklist-queue")
@click.option("--all", "everything", is_flag=True, help="Also the pushes done and superseded.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def blocklist_queue_cmd(ctx: Context, everything: bool, as_json: bool) -> None:
    """The Blocklist pushes (a block per opt-out, an unblock per opt-in after one) waiting for
    serve, being sent, with a lost answer, or refused by Infobip; newest first."""
    from smsdesk.store.blocklist_queue import list_pushes

    pushes = list_pushes(ctx.open_db(existing=True).conn, everything=everything)
    if as_json:
        print_json([{"id": p.id, "credential_id": p.credential_id, "sandbox": p.sandbox, "number": p.number,
                     "sender": p.sender, "action": p.action, "status": p.status, "attempts": p.attempts,
                     "last_error": p.last_error, "queued_at": p.created_at} for p in pushes])
        return
    if not pushes:
        click.echo("no Blocklist push waiting")
    for p in pushes:
        error = f": {p.last_error}" if p.last_error else ""
        click.echo(make_inert(f"#{p.id} {p.created_at[:19]} {p.action} {p.number} for {p.sender} "
                              f"(sandbox {p.sandbox}) {p.status}, {p.attempts} attempt{'' if p.attempts == 1 else 's'}"
                              f"{error}"))


def evidence_lines(record: dict[str, Any]) -> list[str]:
    current = record["consent"] or {"value": "", "since": "", "cause": ""}
    lines = [f"{record['number']} in sandbox {record['sandbox']}: consent {current['value'] or 'none'} since "
             f"{current['since'] or '-'} ({current['cause'] or 'never expressed'})", "", "consent ledger:"]
    for e in record["ledger"]:
        cause = (f"message {e['message_id']} received {e['message_received_at']}: {e['text'][:60]!r}"
                 if e["message_id"] else f"{e['cause']} {e['operator']}".strip())
        lines.append(f"  #{e['ledger_id']} {e['received_at']} {e['old'] or 'none'} -> {e['new'] or 'none'} "
                     f"{e['effect']}: {cause}; {e['reason']}")
    lines += ["", "replies:"]
    for r in record["replies"]:
        reports = ", ".join(f"{d['group']} {d['done_at'] or d['received_at']}" for d in r["delivery_reports"])
        lines.append(f"  #{r['reply_id']} {r['queued_at']} {r['kind']} {r['status']} ours {r['our_message_id']} "
                     f"infobip {r['infobip_message_id'] or '-'}" + (f"; reports: {reports}" if reports else ""))
    lines += ["", f"digest {record['digest']} (SHA-256 of the --json record's canonical form without it)"]
    return lines


COMMANDS: list[click.Command] = [consent]
