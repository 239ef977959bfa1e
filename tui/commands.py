"""The command palette's entries for the current screen: every binding it has (its own, the focused
widget's, the app's), by name, built from the bindings themselves, so a key added to a screen is in
the palette too and a remapped key shows under its new name.

A binding is offered by its description ("Sort", "Export", "Live"); some read better with a longer
title and a line of help (TITLES, by binding id). The views themselves are the app's system
commands ("Go to Profiles").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

# Binding id -> (title, help) where the binding's own description is too short to find by.
TITLES: dict[str, tuple[str, str]] = {
    "credentials.new": ("New credential", "Create a credential"),
    "credentials.edit": ("Edit credential", "Edit the selected credential"),
    "credentials.delete": ("Delete credential", "Delete the selected credential (asks first)"),
    "credentials.duplicate": ("Copy credential to another sandbox", "Duplicate the selected credential"),
    "credentials.reveal": ("Reveal or hide API keys", "Toggle showing API keys in full"),
    "credentials.verify": ("Verify credential", "Check the selected API key with Infobip and show the balance"),
    "credentials.test_send": ("Send test SMS", "Send one SMS with the selected credential's sender and options"),
    "credentials.filter": ("Filter credentials", "Show only credentials matching some text"),
    "credentials.reload": ("Reload credentials", "Read the credentials again from the database"),
    "log.export": ("Export the log", "Write the messages the filter shows to a JSON Lines file here"),
    "log.live": ("Live: back to the newest messages", "Follow new messages as they arrive"),
    "profiles.export": ("Export the consent history",
                        "Write the ledger's changes for what the list shows to a JSON Lines file here"),
    "review.filter": ("Filter the review queue", "Show only near misses matching some text"),
}
# Kept out of the palette: the views are system commands already, and a cursor key by name is no help.
_LEFT_OUT = ("app.view.", "list.")


@dataclass(frozen=True)
class ScreenCommand:
    title: str
    help: str
    run: Callable[[], Any]


def screen_commands(screen: Any) -> list[ScreenCommand]:
    """One command per enabled binding id of `screen` (as the key bar and F1 see them)."""
    app = screen.app
    found: dict[str, ScreenCommand] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if (not active.enabled or not binding.id or not binding.description or binding.id in found
                or binding.id.startswith(_LEFT_OUT)):
            continue
        title, help_text = TITLES.get(binding.id, (binding.description, ""))
        key = app.get_key_display(binding)
        # Run as the key would: the action on the node that bound it, after the palette has closed.
        run = partial(app.call_later, app.run_action, binding.action, active.node)
        found[binding.id] = ScreenCommand(title, f"{help_text}  ({key})" if help_text else f"key {key}", run)
    return list(found.values())


class ScreenCommands(Provider):
    async def discover(self) -> Hits:
        for command in screen_commands(self.screen):
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in screen_commands(self.screen):
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)


CredentialCommands = ScreenCommands  # the credentials screen's name for it
