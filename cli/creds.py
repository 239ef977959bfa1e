"""`smsdesk creds ...`: manage Infobip API credentials from scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from pydantic import ValidationError

from smsdesk.cli.common import Context, fail, pass_context, print_json
from smsdesk.domain import credential_records
from smsdesk.domain.credential import KEYWORD_LISTS, Credential, StoredCredential, field_errors, missing_fcc_words
from smsdesk.domain.inert import make_inert
from smsdesk.domain.presets import PRESETS
from smsdesk.store import credentials as repo
from smsdesk.store.errors import StoreError
from smsdesk.usecases.credentials import import_credential_records, remove_credential, save_credential

_EDITABLE = [f for f in Credential.model_fields if f != "api_key"]


_HELP = {
    "custom_keyword_replies": 'JSON object: custom keyword -> reply text, e.g. \'{"DISCOUNT": "10% off"}\'',
    "fuzzy_opt_out": "near-miss opt-outs: off, reply, review or reply+review",
    "fuzzy_opt_out_message": "the reply to a near miss in the reply modes",
    "double_opt_in_expiry_days": "days a double opt-in stays pending (0: never expires)",
    "blocklist_sync": "Infobip's Blocklist: off, push (opt-outs here block there) or two-way (reconcile also "
                      "brings blocks there here)",
}


def _field_options(required: bool) -> Any:
    """One --option per credential field; keyword lists take comma-separated text."""

    def decorate(func: Any) -> Any:
        for name in reversed(_EDITABLE):
            flag = "--" + name.replace("_", "-")
            help_text = _HELP.get(name, "comma-separated keywords" if name in KEYWORD_LISTS else None)
            param = name
            if name == "name" and not required:
                flag, param, help_text = "--rename", "new_name", "new name"
            func = click.option(flag, param, help=help_text,
                                required=required and name in ("name", "base_url"))(func)
        func = click.option("--preset", type=click.Choice(list(PRESETS), case_sensitive=False), default=None,
                            help="Fill the opt-in, opt-out and help lists from a preset; options given "
                                 "alongside win.")(func)
        func = click.option("--api-key-stdin", is_flag=True,
                            help="Read the API key from standard input (keeps it out of ps).")(func)
        func = click.option("--api-key", "api_key", envvar="SMSDESK_API_KEY", default=None,
                            help="API key (or env SMSDESK_API_KEY; prefer --api-key-stdin).")(func)
        return func

    return decorate


def _collect(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("new_name") is not None:
        options = options | {"name": options["new_name"]}
    values = {k: v for k, v in options.items() if v is not None and k in Credential.model_fields}
    if options.get("preset"):
        values = PRESETS[options["preset"].lower()].fields() | values  # options given alongside win
    if options.get("api_key_stdin"):
        context = click.get_current_context(silent=True)
        if context is not None and context.get_parameter_source("api_key") == ParameterSource.COMMANDLINE:
            raise click.UsageError("give the API key once: --api-key or --api-key-stdin, not both")
        values["api_key"] = sys.stdin.readline().strip()
    return values


def _validate(data: dict[str, Any]) -> Credential:
    try:
        return Credential.model_validate(data)
    except ValidationError as exc:
        fail("; ".join(f"{f}: {m}" for f, m in field_errors(exc).items()))


def _summary(cred: repo.StoredCredential) -> str:
    # names come from users and imported files: never let them put escape sequences on a terminal
    key = credential_records.masked_key(cred.api_key)
    return make_inert(f"{cred.name}  sandbox={cred.sandbox}  {cred.base_url}  key={key}"
                      f"  inbound={cred.inbound_number or '-'}  mode={cred.inbound_mode}")


@click.group()
def creds() -> None:
    """List, show, add, edit, delete, import and export credentials."""


@creds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (keys masked).")
@pass_context
def list_cmd(ctx: Context, as_json: bool) -> None:
    """List credentials."""
    items = repo.list_credentials(ctx.open_db(existing=True).conn)
    if as_json:
        print_json([credential_records.public_dict(c) for c in items])
        return
    if not items:
        click.echo("no credentials yet: add one with `smsdesk creds add` or the TUI")
    for cred in items:
        click.echo(_summary(cred))


@creds.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.option("--with-secrets", is_flag=True, help="Include the API key in clear.")
@pass_context
def show_cmd(ctx: Context, name: str, as_json: bool, with_secrets: bool) -> None:
    """Show one credential."""
    try:
        cred = repo.get_credential(ctx.open_db(existing=True), name)
    except StoreError as exc:
        fail(str(exc))
    data = credential_records.public_dict(cred, with_secrets=with_secrets)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else (
            json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value)
        click.echo(make_inert(f"{key:24} {shown}"))
    for key, warning in cred.warnings().items():
        click.echo(f"warning: {key}: {warning}", err=True)


@creds.command("add")
@_field_options(required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def add_cmd(ctx: Context, as_json: bool, **options: Any) -> None:
    """Add a credential (unset fields take Journey Optimizer's defaults)."""
    data = _collect(options)
    if "api_key" not in data:
        if sys.stdin.isatty():
            data["api_key"] = click.prompt("API key", hide_input=True)
        else:
            fail("api_key: required (use --api-key-stdin or SMSDESK_API_KEY)")
    cred = _validate(data)
    if "opt_out_keywords" not in data and missing_fcc_words(cred.inbound_number, cred.opt_out_keywords):
        # The law's words by default where the law applies: a +1 number gets the us preset's list.
        cred = cred.model_copy(update={"opt_out_keywords": list(PRESETS["us"].opt_out_keywords)})
        click.echo("note: a +1 number: the opt-out keywords are the us preset's (the FCC's words included)", err=True)
    _save_and_show(lambda: save_credential(ctx.open_db(), cred), "added", as_json)


@creds.command("edit")
@click.argument("target", metavar="NAME")
@_field_options(required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def edit_cmd(ctx: Context, target: str, as_json: bool, **options: Any) -> None:
    """Change fields of credential NAME (only the options given)."""
    db = ctx.open_db(existing=True)
    try:
        current = repo.get_credential(db, target)
    except StoreError as exc:
        fail(str(exc))
    changes = _collect(options)
    if not changes:
        fail("nothing to change: give at least one field option (see --help)")
    merged = current.to_credential().model_dump(mode="json") | changes
    cred = _validate(merged)
    _save_and_show(lambda: save_credential(db, cred, current), "saved", as_json)


def _save_and_show(save: Callable[[], StoredCredential], verb: str, as_json: bool) -> None:
    """Run the store call; print the credential (JSON, or one masked summary line)."""
    try:
        stored = save()
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print_json(credential_records.public_dict(stored))
    else:
        click.echo(f"{verb} {_summary(stored)}")
    for key, warning in stored.warnings().items():  # advice on stderr, whatever the output format
        click.echo(f"warning: {key}: {warning}", err=True)


@creds.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def delete_cmd(ctx: Context, name: str, yes: bool) -> None:
    """Delete credential NAME."""
    db = ctx.open_db(existing=True)
    try:
        cred = repo.get_credential(db, name)
    except StoreError as exc:
        fail(str(exc))
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to delete without --yes when not interactive")
        click.confirm(f"Delete credential {cred.name!r}?", abort=True)
    try:
        cancelled = remove_credential(db, cred.id, cred.version)
    except StoreError as exc:
        fail(str(exc))
    note = f" ({cancelled} queued {'reply' if cancelled == 1 else 'replies'} cancelled)" if cancelled else ""
    click.echo(make_inert(f"deleted {cred.name}{note}"))


@creds.command("connect")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--timeout", default=15.0, show_default=True, type=click.FloatRange(0.1, 300), metavar="SECONDS",
              help="Seconds to wait for Infobip's answer.")
@pass_context
def connect_cmd(ctx: Context, name: str, yes: bool, timeout: float) -> None:
    """Set NAME's inbound number at Infobip to forward to this desk (SMSDESK_PUBLIC_URL +
    /infobip/inbound, MO_JSON_2, with the webhook's Basic auth), or to pull for a credential in
    pull mode. Shows the change first; audited with your OS user."""
    import asyncio

    from smsdesk.infobip.client import InfobipClient
    from smsdesk.infobip.errors import InfobipError
    from smsdesk.usecases.infobip_side import check_forwarding, connect_forwarding, forwarding_target, public_url

    db = ctx.open_db(existing=True)
    try:
        cred = repo.get_credential(db, name)
    except StoreError as exc:
        fail(str(exc))
    shown = make_inert(cred.name)
    if not cred.inbound_number:
        fail(f"{shown}: no inbound number: nothing to connect (set --inbound-number first)")
    try:
        target = forwarding_target(cred, public_url())
    except ValueError as exc:
        fail(f"{shown}: {exc}")

    async def current() -> str:
        async with InfobipClient(cred.base_url, cred.api_key, timeout=timeout, max_attempts=1) as client:
            return (await check_forwarding(client, cred, public_url())).line

    click.echo(f"{shown}: now: {asyncio.run(current())}")
    click.echo(make_inert(f"{shown}: change: {cred.inbound_number} to {target.describe()}"))
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to change the number's inbound configuration without --yes when not interactive")
        click.confirm("Change it at Infobip?", abort=True)

    async def connect() -> None:
        async with InfobipClient(cred.base_url, cred.api_key, timeout=timeout, max_attempts=1) as client:
            await connect_forwarding(db, client, cred, target)

    try:
        asyncio.run(connect())
    except InfobipError as exc:
        from smsdesk.infobip.client import INBOUND_CONFIG_SCOPE, missing_scope

        line = missing_scope(exc, INBOUND_CONFIG_SCOPE, "set the inbound configuration")
        fail(make_inert(f"{shown}: not changed: {line or exc}"))
    click.echo(make_inert(f"{shown}: connected: {cred.inbound_number} set to {target.describe()}"))


@creds.command("import")
@click.argument("file", type=click.Path(allow_dash=True, path_type=Path))
@click.option("--replace", is_flag=True, help="Update credentials whose names already exist.")
@pass_context
def import_cmd(ctx: Context, file: Path, replace: bool) -> None:
    """Import credentials from a JSON array (or one object); all or nothing."""
    shown = make_inert(str(file))  # a file name is the user's input too: no escape sequence reaches the tty
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{shown}: cannot read: {make_inert(getattr(exc, 'strerror', None) or str(exc))}")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{shown}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    except ValueError:  # an integer beyond Python's 4,300-digit conversion limit
        fail(f"{shown}: not a credential file (a number too long to read)")
    except RecursionError:  # arrays nested thousands deep: valid JSON, but no credential
        fail(f"{shown}: not a credential file (nested too deeply)")
    records = payload if isinstance(payload, list) else [payload]
    try:
        written = import_credential_records(ctx.open_db(), records, replace=replace)
    except repo.ImportRejected as exc:
        for problem in exc.problems:
            click.echo(f"smsdesk: {shown}: {problem}", err=True)
        fail(f"{shown}: nothing imported ({len(exc.problems)} problem(s))")
    except RecursionError:
        fail(f"{shown}: nothing imported (a value is nested too deeply)")
    click.echo(f"imported {len(written)} credential(s) from {shown}")


@creds.command("export")
@click.option("--with-secrets", is_flag=True, help="Include API keys in clear (handle with care).")
@pass_context
def export_cmd(ctx: Context, with_secrets: bool) -> None:
    """Print every credential as a JSON array (keys masked unless --with-secrets)."""
    items = repo.list_credentials(ctx.open_db(existing=True).conn)
    print_json([credential_records.public_dict(c, with_secrets=with_secrets) for c in items])
