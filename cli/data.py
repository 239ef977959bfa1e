"""`smsdesk export ...`: messages, profiles and consent as JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
import sys

import click

from cli.common import Context, pass_context
from store import queries

_COLUMNS = {
    "messages": ["id", "message_id", "received_at", "credential", "sandbox", "from", "to", "text", "action",
                 "keyword", "consent_before", "consent_after", "reply_text", "reply_status"],
    "profiles": ["sandbox", "number", "consent", "attributes", "first_seen", "last_seen"],
    "consent": ["sandbox", "number", "consent", "changed_at"],
}
_EXPORTS = {
    "messages": queries.iter_message_export,
    "profiles": queries.iter_profile_export,
    "consent": queries.iter_consent_export,
}


@click.command("export")
@click.argument("what", type=click.Choice(sorted(_EXPORTS)))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@pass_context
def export_cmd(ctx: Context, what: str, fmt: str) -> None:
    """Export messages, profiles or consent to standard output."""
    rows = _EXPORTS[what](ctx.open_db().conn)
    out = sys.stdout
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=_COLUMNS[what])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: queries.json_cell(v) for k, v in row.items()})


COMMANDS: list[click.Command] = [export_cmd]
