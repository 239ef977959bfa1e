"""`smsdesk review ...`: the near-miss opt-outs waiting for an operator (store/review.py), decided
through usecases/review.py."""

from __future__ import annotations

import click

from smsdesk.cli.common import Context, fail, pass_context, print_json
from smsdesk.domain.inert import make_inert
from smsdesk.store import review as queue
from smsdesk.store.errors import StoreError
from smsdesk.usecases.review import decide_review

_JSON_KEYS = ("id", "number", "sandbox", "credential", "text", "received_at", "status")


@click.group("review")
def review() -> None:
    """Near-miss opt-outs waiting for a decision (fuzzy opt-out review modes)."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--all", "show_all", is_flag=True, help="Resolved ones too.")
@click.option("--limit", type=click.IntRange(1, 10_000_000), default=1000, show_default=True,
              help="List at most this many (the oldest first).")
@pass_context
def list_cmd(ctx: Context, as_json: bool, show_all: bool, limit: int) -> None:
    """Unresolved near misses, oldest first. When there are more than --limit, a last line (on
    standard error with --json) says how many of how many were listed."""
    status = "" if show_all else "open"
    items, total = queue.review_page(ctx.open_db(existing=True).conn, status=status, limit=limit)
    part = (f"first {len(items):,} of {total:,} {'near misses' if show_all else 'open near misses'} listed, "
            "oldest first (--limit to list more)") if total > len(items) else ""
    if as_json:
        print_json([{k: item.as_dict()[k] for k in _JSON_KEYS} for item in items])
        if part:
            click.echo(part, err=True)
        return
    if not items:
        click.echo("nothing to review")
    for item in items:
        # the text is the sender's: never let it put escape sequences on a terminal
        click.echo(make_inert(f"#{item.id}  {item.received_at}  {item.sandbox} {item.number}  {item.credential}  "
                              f"{item.status}  {item.text[:60]!r}"))
    if part:
        click.echo(part)


@review.command("resolve")
@click.argument("review_id", metavar="ID", type=click.IntRange(1, 2**63 - 1))
@click.option("--opt-out", "opt_out", is_flag=True, help="Opt the number out (ledger: the operator, the message as "
              "cause).")
@click.option("--dismiss", is_flag=True, help="Not an opt-out: consent unchanged, recorded.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def resolve_cmd(ctx: Context, review_id: int, opt_out: bool, dismiss: bool, as_json: bool) -> None:
    """Decide review ID: --opt-out or --dismiss."""
    if opt_out == dismiss:  # neither, or both: a decision this consequential is never guessed
        raise click.UsageError("give exactly one of --opt-out or --dismiss")
    try:
        done = decide_review(ctx.open_db(existing=True), review_id, "opt-out" if opt_out else "dismiss")
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print_json({k: done.item.as_dict()[k] for k in _JSON_KEYS} | {"effect": done.effect,
                                                                      "ledger_id": done.ledger_id})
        return
    click.echo(make_inert(f"review #{review_id} {done.item.number}: {done.note} (ledger #{done.ledger_id}, "
                          f"{done.effect})"))


COMMANDS: list[click.Command] = [review]
