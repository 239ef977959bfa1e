"""`smsdesk demo`: the TUI on a fresh demo database with simulated Infobip traffic."""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import click

from smsdesk.cli.common import fail


@click.command("demo")
@click.option("--demo-db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to create the demo database (default: a fresh temporary directory). Must not exist.")
@click.option("--rate", default=1.5, show_default=True, type=click.FloatRange(0.05, 200),
              help="Simulated inbound messages per second.")
@click.option("--no-tui", is_flag=True, help="Run the demo back end only, until Ctrl+C (for scripts and tests).")
@click.option("--seconds", type=click.FloatRange(0.1, None), default=None,
              help="With --no-tui: stop after this many seconds.")
def demo_cmd(demo_db: Path | None, rate: float, no_tui: bool, seconds: float | None) -> None:
    """Open the TUI on a fresh demo database, with the built-in Infobip simulator, `serve`
    and simulated people texting opt-ins, STOPs, HELPs, keywords and chatter.

    Your real database is never touched. Nothing leaves this machine. The demo database is
    removed at the end, unless you name it with --demo-db; the line printed at the start
    (`export SMSDESK_DB=...`) points the CLI at it meanwhile. A credential made in the demo starts
    on the demo's simulator, which takes any API key the demo database holds, and the simulated
    people text every credential's inbound number.
    """
    if not no_tui:
        _check_settings()  # before anything is created: a bad file is one line, nothing left behind
    temporary: Path | None = None
    if demo_db is None:
        temporary = Path(tempfile.mkdtemp(prefix="smsdesk-demo-"))
        demo_db = temporary / "demo.db"
    elif demo_db.exists():
        fail(f"{demo_db}: already exists; the demo starts from a fresh database")
    try:
        _run(demo_db, rate, no_tui, seconds)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    if temporary is None:
        click.echo(f"demo database kept at {demo_db} (open it with: smsdesk --db {demo_db})", err=True)


def _check_settings() -> None:
    from textual.theme import BUILTIN_THEMES

    from smsdesk.tui.config import ConfigError, load_config

    try:
        load_config(themes=set(BUILTIN_THEMES), bindings=True)
    except ConfigError as exc:
        fail(str(exc))


def _run(demo_db: Path, rate: float, no_tui: bool, seconds: float | None) -> None:
    from smsdesk.simulator.demo import start_demo

    logging.getLogger("httpx").setLevel(logging.WARNING)
    stack = start_demo(demo_db, rate_per_second=rate)
    # The line that points the CLI at this demo: `smsdesk export` beside it must read this file,
    # not the database in the user's data directory.
    click.echo(f"demo database {demo_db}; in another terminal, point the CLI at it with:\n"
               f"  export SMSDESK_DB={shlex.quote(str(demo_db.resolve()))}", err=True)
    try:
        if no_tui:
            click.echo(f"demo running: database {demo_db}, receiver {stack.server.url}, "
                       f"simulator {stack.simulator.url} (Ctrl+C stops)", err=True)
            deadline = time.monotonic() + seconds if seconds else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            from smsdesk.tui.app import run_tui
            from smsdesk.tui.widgets.credential_form import NEW_CREDENTIAL_DEFAULTS

            # A credential made in the demo starts on its simulator (any key the demo holds is valid there).
            NEW_CREDENTIAL_DEFAULTS["base_url"] = stack.simulator.url
            run_tui(demo_db, initial_mode="log")
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


COMMANDS: list[click.Command] = [demo_cmd]
