"""Command palette entries for the credentials screen: every key action, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, help, action name on the screen)
CREDENTIAL_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("New credential", "Create a credential", "new"),
    ("Edit credential", "Edit the selected credential", "edit"),
    ("Delete credential", "Delete the selected credential (asks first)", "delete"),
    ("Copy credential to another sandbox", "Duplicate the selected credential", "duplicate"),
    ("Reveal or hide API keys", "Toggle showing API keys in full", "reveal"),
    ("Verify credential", "Check the selected API key with Infobip and show the balance", "verify"),
    ("Send test SMS", "Send one SMS with the selected credential's sender and options", "test_send"),
    ("Filter credentials", "Show only credentials matching some text", "filter"),
    ("Reload credentials", "Read the credentials again from the database", "reload"),
)


class CredentialCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        screen = self.screen
        found = []
        for title, help_text, action in CREDENTIAL_COMMANDS:
            method = getattr(screen, f"action_{action}", None)
            if method is not None:
                found.append((title, help_text, method))
        return found

    async def discover(self) -> Hits:
        for title, help_text, method in self._commands():
            yield DiscoveryHit(title, method, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, method in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), method, help=help_text)
