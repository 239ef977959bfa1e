"""`smsdesk purge`: the retention policy run by hand (store/retention.py says what stays)."""

from __future__ import annotations

import click

from smsdesk.cli.common import Context, pass_context, print_json
from smsdesk.store.retention import MIN_DAYS, PurgeCounts, purge, vacuum_incrementally


@click.command("purge")
@click.option("--older-than", "days", type=click.IntRange(MIN_DAYS, 36500), required=True, metavar="DAYS",
              help="Remove message texts, replies and delivery reports stored more than DAYS days ago.")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--vacuum", is_flag=True,
              help="Also convert the file to incremental auto-vacuum (one full VACUUM: it holds the write lock "
                   "while it copies the file; stop serve first) so that later purges give space back.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def purge_cmd(ctx: Context, days: int, dry_run: bool, vacuum: bool, as_json: bool) -> None:
    """Remove what is older than the retention period, in small transactions (serve keeps
    answering meanwhile).

    Kept whatever their age: every consent ledger entry and the message that caused it (with its
    text), the confirmation sent for it and its delivery reports, replies not settled yet and
    their messages, open review items, and the newest message and reply. Consent, profiles,
    traffic counts, credentials and their audit are not touched: `smsdesk consent verify` still
    passes afterwards."""
    if dry_run and vacuum:
        raise click.UsageError("--vacuum changes the file: it cannot be part of a --dry-run")
    db = ctx.open_db(existing=True)
    cutoff, counts = purge(db, days, dry_run=dry_run)
    converted = vacuum_incrementally(db.conn) if vacuum else False
    if as_json:
        print_json({"cutoff": cutoff, "dry_run": dry_run, **counts_dict(counts), "vacuum_converted": converted})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb}, stored before {cutoff}: {counts.messages} messages, {counts.replies} replies, "
               f"{counts.delivery_reports} delivery reports, {counts.unreadable} unreadable results, "
               f"{counts.pull_losses} lost-pull records")
    click.echo(f"kept as evidence of consent (or still in use): {counts.kept_as_evidence} old messages")
    if converted:
        click.echo("the file now gives free space back after each purge (incremental auto-vacuum)")


def counts_dict(counts: PurgeCounts) -> dict[str, int]:
    return {"messages": counts.messages, "replies": counts.replies, "delivery_reports": counts.delivery_reports,
            "unreadable": counts.unreadable, "pull_losses": counts.pull_losses,
            "kept_as_evidence": counts.kept_as_evidence}


COMMANDS: list[click.Command] = [purge_cmd]
