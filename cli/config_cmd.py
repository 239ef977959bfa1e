"""`smsdesk config path|example|check`: where the TUI's settings file is, and what it may say."""

from __future__ import annotations

import click

from smsdesk.cli.common import fail
from smsdesk.domain.inert import make_inert


@click.group("config")
def config() -> None:
    """The terminal UI's settings file (theme and keymap, TOML)."""


@config.command("path")
def config_path_cmd() -> None:
    """Print where the settings file is read from (it need not exist)."""
    from smsdesk.tui.config import config_path

    click.echo(str(config_path()))


@config.command("example")
def config_example_cmd() -> None:
    """Print a commented example file: `smsdesk config example > "$(smsdesk config path)"`."""
    from smsdesk.tui.config import EXAMPLE

    click.echo(EXAMPLE, nl=False)


@config.command("check")
def config_check_cmd() -> None:
    """Read the settings file and say whether smsdesk understands it."""
    from textual.theme import BUILTIN_THEMES

    from smsdesk.tui.config import ConfigError, config_path, load_config

    try:
        found = load_config(themes=set(BUILTIN_THEMES), bindings=True)
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            click.echo(make_inert(f"smsdesk: {problem}"), err=True)
        fail(exc.problems[-1])
    if found.path is None:
        click.echo(f"no settings file at {config_path()}: defaults apply")
    else:
        click.echo(f"{found.path}: ok (theme {found.theme or 'default'}, {len(found.keymap)} keys remapped)")


COMMANDS = (config,)
