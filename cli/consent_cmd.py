"""`smsdesk consent verify` (replay the consent ledger against the consent table),
`smsdesk consent expire` (end pending double opt-ins not confirmed in time) and
`smsdesk consent opt-out` (an opt-out that reached the operator by phone, email or letter)."""

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
