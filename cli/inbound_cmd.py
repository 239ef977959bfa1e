"""`smsdesk inbound ...`: inbound results serve could not read, kept raw (store/unreadable.py)."""

from __future__ import annotations

import click

from smsdesk.cli.common import Context, pass_context, print_json
from smsdesk.domain.inert import make_inert
from smsdesk.store.unreadable import count_unreadable, list_unreadable


@click.group("inbound")
def inbound() -> None:
    """Inbound messages as Infobip sent them."""


@inbound.command("unreadable")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True, metavar="N",
              help="At most N, the newest.")
@pass_context
def unreadable_cmd(ctx: Context, as_json: bool, limit: int) -> None:
    """Inbound results that could not be read, newest first: when, from where (forward: a
    webhook, pull: a pulled batch), why, and the result's JSON (its first 4,000 characters).

    Their readable neighbours were stored. A result whose only fault was its receivedAt was
    stored too, with its arrival time (the reason says so)."""
    conn = ctx.open_db(existing=True).conn
    rows = list_unreadable(conn, limit)
    if as_json:
        print_json([row.as_dict() for row in rows])  # controls escaped by print_json
        return
    if not rows:
        click.echo("no unreadable inbound results")
        return
    total = count_unreadable(conn)
    if total > len(rows):
        click.echo(f"the newest {len(rows)} of {total} (--limit N for more)")
    for row in rows:
        # the raw result and the reason quote what a sender or Infobip sent: never raw on a terminal
        click.echo(make_inert(f"#{row.id}  {row.at}  {row.source}  {row.reason}"))
        click.echo("    " + make_inert(row.raw))


COMMANDS: list[click.Command] = [inbound]
