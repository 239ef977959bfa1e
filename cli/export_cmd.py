"""`smsdesk export ...`: messages, profiles and consent as JSON Lines or CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from smsdesk.cli.common import Context, pass_context
from smsdesk.domain.inert import make_inert
from smsdesk.store import queries
from smsdesk.store.consent_history import HISTORY_COLUMNS, consent_changes
from smsdesk.usecases.exports import write_json_blocks, write_jsonl

_COLUMNS = {
    "messages": list(queries.MESSAGE_EXPORT_KEYS),
    "profiles": ["sandbox", "number", "consent", "attributes", "first_seen", "last_seen"],
    "consent": ["sandbox", "number", "consent", "changed_at"],
}
_EXPORTS = {
    "messages": queries.iter_message_export,
    "profiles": queries.iter_profile_export,
    "consent": queries.iter_consent_export,
}


def _moment(_ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """A date or a time (ISO-8601, UTC unless it says otherwise) as the ledger's UTC text."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("a date or time such as 2026-12-06 or 2026-12-06T09:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@click.command("export")
@click.argument("what", type=click.Choice(sorted(_EXPORTS)))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--since", callback=_moment, help="consent: the history of changes from this time (UTC unless given).")
@click.option("--until", callback=_moment, help="consent: ... up to (not including) this time.")
@click.option("--consent", "consent_value", type=click.Choice(["y", "n", "p", "none"]),
              help="consent: only changes that ended at this consent.")
@click.option("--sandbox", default="", help="consent: only this sandbox.")
@pass_context
def export_cmd(ctx: Context, what: str, fmt: str, since: str, until: str, consent_value: str | None,
               sandbox: str) -> None:
    """Export messages, profiles or consent to standard output.

    `consent` with --since, --until, --consent or --sandbox exports the history instead of the
    current consent: every change in that window with how and why (the message and its text, or
    the operator and the reason, or an expiry), e.g. who opted out today:
    `smsdesk export consent --since 2026-12-06 --consent n`.

    JSON Lines escape control characters (lossless). CSV cells are written verbatim, except on a
    terminal, where control characters are shown as visible escapes such as \\x1b.
    """
    history = bool(since or until or consent_value or sandbox)
    if history and what != "consent":
        raise click.UsageError("--since, --until, --consent and --sandbox go with `export consent`")
    conn = ctx.open_db(existing=True).conn
    if history:
        columns = list(HISTORY_COLUMNS)
        rows = consent_changes(conn, since=since, until=until, sandbox=sandbox,
                               consent=None if consent_value is None else consent_value.replace("none", ""))
    else:
        columns, rows = _COLUMNS[what], _EXPORTS[what](conn)
    out = sys.stdout
    if fmt == "jsonl" and what == "messages" and not history:
        # Lines JSON-encoded by SQLite: the same bytes as write_jsonl of the rows, at SQLite's pace.
        write_json_blocks(queries.iter_message_export_json(conn), out)
        return
    if fmt == "jsonl":
        write_jsonl(rows, out)  # control characters escaped: lossless and inert, as the TUI's export
        return
    # CSV has no escapes: cells are written verbatim to a file or pipe (the data, exactly), but made
    # inert when standard output is a terminal, as `ls` does with names, so an inbound text with an
    # escape sequence cannot drive the operator's terminal.
    cell = make_inert if out.isatty() else str
    writer = csv.DictWriter(out, fieldnames=columns)
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
