"""`smsdesk export ...`: messages, profiles and consent as JSON Lines or CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import Any

import click

from smsdesk.cli.common import Context, json_text, pass_context
from smsdesk.store import queries
from smsdesk.store.text import make_inert

_COLUMNS = {
    "messages": ["id", "message_id", "received_at", "credential", "sandbox", "from", "to", "text", "action",
                 "keyword", "consent_before", "consent_after", "reply_text", "reply_status", "reply_reason"],
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
    """Export messages, profiles or consent to standard output.

    JSON Lines escape control characters (lossless). CSV cells are written verbatim, except on a
    terminal, where control characters are shown as visible escapes such as \\x1b.
    """
    rows = _EXPORTS[what](ctx.open_db(existing=True).conn)
    out = sys.stdout
    if fmt == "jsonl":
        for row in rows:
            out.write(json_text(row) + "\n")  # control characters escaped: lossless and inert
        return
    # CSV has no escapes: cells are written verbatim to a file or pipe (the data, exactly), but made
    # inert when standard output is a terminal, as `ls` does with names, so an inbound text with an
    # escape sequence cannot drive the operator's terminal.
    cell = make_inert if out.isatty() else str
    writer = csv.DictWriter(out, fieldnames=_COLUMNS[what])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(queries.json_cell(v), cell) for k, v in row.items()})


# What Excel, LibreOffice and Google Sheets take for the start of a formula (OWASP, "CSV
# Injection"): `=HYPERLINK(...)` in an inbound text would run when the export is opened.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """A cell a spreadsheet would evaluate, made plain text with a leading apostrophe (a number
    such as +41793026727 too: a spreadsheet would otherwise drop its +)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_cell(value: Any, cell: Callable[[str], str]) -> Any:
    return cell(neutralise_formula(value)) if isinstance(value, str) else value


COMMANDS: list[click.Command] = [export_cmd]
