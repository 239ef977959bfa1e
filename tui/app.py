"""The smsdesk Textual app: a small shell that hosts one screen per mode.

Each top-level view is a Textual *mode* with its own screen stack, reached with a single key
(1 credentials, 2 inbound log, 3 profiles, 4 keyword tester). A new view is one entry in
`SmsDeskApp.VIEWS` plus its screen class; screens are imported lazily so startup only pays for
the credentials screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from smsdesk.tui.textual_private import mark_styled_already

# How long the first frame may wait for the first view's data (see SmsDeskApp.on_load).
FIRST_READ_WAIT = 0.25


@runtime_checkable
class FirstReadAware(Protocol):
    async def wait_for_first_read(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class View:
    mode: str
    key: str
    title: str
    factory: Callable[[SmsDeskApp], Screen]


def _credentials(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.credentials import CredentialsScreen

    return _styled_already(app, CredentialsScreen(app.db_path, poll_seconds=app.poll_seconds))


def _styled_already(app: SmsDeskApp, screen: Screen) -> Screen:
    """The credentials screen, the first thing an operator waits for, brings no CSS of its own:
    spare it Textual's stylesheet refresh (tui/textual_private.py)."""
    if not screen.CSS and not screen.CSS_PATH:
        mark_styled_already(screen, app)
    return screen


def _log(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.log import LogScreen

    return LogScreen(app.db_path)


def _profiles(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.profiles import ProfilesScreen

    return ProfilesScreen(app.db_path)


def _tester(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.tester import TesterScreen

    return TesterScreen(app.db_path)


class SmsDeskApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "smsdesk"
    VIEWS: tuple[View, ...] = (
        View("credentials", "1", "Credentials", _credentials),
        View("log", "2", "Inbound log", _log),
        View("profiles", "3", "Profiles", _profiles),
        View("tester", "4", "Keyword tester", _tester),
    )
    DEFAULT_MODE = "credentials"
    BINDINGS = [
        Binding("q", "quit_app", "Quit", id="app.quit"),
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        *(Binding(v.key, f"view('{v.mode}')", v.title, show=False, id=f"app.view.{v.mode}") for v in VIEWS),
    ]

    def __init__(self, db_path: Path, *, poll_seconds: float = 0.5, keymap: Mapping[str, str] | None = None,
                 initial_mode: str | None = None) -> None:
        if initial_mode is not None:
            self.DEFAULT_MODE = initial_mode  # e.g. the demo opens on the live log; read by App.__init__
        super().__init__()
        self.db_path = Path(db_path)
        self.poll_seconds = poll_seconds
        self._initial_keymap = dict(keymap or {})
        self._early_screens: dict[str, Screen] = {}
        for view in self.VIEWS:
            self.add_mode(view.mode, self._factory(view))

    def _factory(self, view: View) -> Callable[[], Screen]:
        def make() -> Screen:
            early = self._early_screens.pop(view.mode, None)
            return early if early is not None else view.factory(self)

        return make

    async def on_load(self) -> None:
        # Build the first view before Textual composes it, and let its first read finish (up to
        # FIRST_READ_WAIT) while the event loop idles: the first frame then shows the data,
        # instead of an empty screen repainted when the rows arrive.
        view = next(v for v in self.VIEWS if v.mode == self.DEFAULT_MODE)
        screen = self._early_screens[view.mode] = view.factory(self)
        if isinstance(screen, FirstReadAware):
            await screen.wait_for_first_read(FIRST_READ_WAIT)

    def on_mount(self) -> None:
        if self._initial_keymap:
            # Binding ids (e.g. "credentials.delete": "x") let users remap keys without code.
            self.set_keymap(self._initial_keymap)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A bare `q` or digit must never throw away a half-filled form or dialog.
        return not (action in ("quit_app", "view") and isinstance(self.screen, ModalScreen))

    def action_quit_app(self) -> None:
        self.exit()

    def action_view(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_help(self) -> None:
        from smsdesk.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        # One line per binding id (so "f1" and "?" share a line), only the bindings this app
        # defines: widget internals such as the table's cursor keys would drown the list.
        by_id: dict[str, tuple[list[str], str]] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.id is None or binding.id.startswith("app.view.") or not binding.description:
                continue
            keys_shown, _ = by_id.setdefault(binding.id, ([], binding.description))
            keys_shown.append(self.get_key_display(binding))
        keys = [(" / ".join(shown), description) for shown, description in by_id.values()]
        keys.extend(getattr(self.screen, "HELP_EXTRA", ()))
        for view in self.VIEWS:
            keys.append((view.key, view.title))
        self.push_screen(HelpScreen(self.screen.__class__.__name__.removesuffix("Screen"), keys))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for view in self.VIEWS:
            yield SystemCommand(f"Go to {view.title}", f"Switch to the {view.title.lower()} view ({view.key})",
                                lambda mode=view.mode: self.switch_mode(mode))
        yield SystemCommand("Help", "Show the keys of this screen (F1)", self.action_help)


def run_tui(db_path: Path, *, initial_mode: str | None = None) -> None:
    """Entry point for the `smsdesk` command: open the TUI on this database file."""
    SmsDeskApp(db_path, initial_mode=initial_mode).run()
