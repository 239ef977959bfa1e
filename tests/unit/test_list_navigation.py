"""Every list of the TUI moves with the same keys under the same keymap names (list.*)."""

from __future__ import annotations

from textual.binding import Binding

from smsdesk.tui.keymap_check import binding_scopes
from smsdesk.tui.screens.profiles import ProfilesScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from smsdesk.tui.widgets.list_navigation import LIST_BINDINGS, ListNavigation
from smsdesk.tui.widgets.message_log import MessageLog

LIST_IDS = {binding.id for binding in LIST_BINDINGS}


def test_the_four_lists_share_one_namespace() -> None:
    for cls in (CredentialsTable, MessageLog, ProfilesScreen, ReviewScreen):
        assert issubclass(cls, ListNavigation), cls
        own = {b.id for b in cls.__dict__["BINDINGS"] if isinstance(b, Binding)}
        assert own >= LIST_IDS, cls


def test_no_list_moves_under_a_name_of_its_own() -> None:
    moves = {"up", "down", "pageup", "pagedown", "top", "bottom"}
    for scope, bindings in binding_scopes().items():
        for binding_id, _, _ in bindings:
            prefix, _, name = binding_id.rpartition(".")
            assert name not in moves or prefix == "list", (scope, binding_id)
