"""`smsdesk consent verify` (replay the consent ledger against the consent table) and
`smsdesk consent expire` (end pending double opt-ins not confirmed in time)."""

from __future__ import annotations

import sys

import click

from smsdesk.cli.common import Context, pass_context, print_json
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import transaction
from smsdesk.store.expiry import expire_pending


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
    db = ctx.open_db()
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
    db = ctx.open_db()
    with transaction(db) as conn:
        count = expire_pending(conn)
    click.echo(f"{count} pending double opt-in{'' if count == 1 else 's'} expired")


COMMANDS: list[click.Command] = [consent]
