"""The smsdesk Textual app: a small shell that hosts one screen per mode.

Each top-level view is a Textual *mode* with its own screen stack, reached with a single key
(1 credentials, 2 inbound log, 3 profiles, 4 keyword tester, 5 review queue). A new view is one entry in
`SmsDeskApp.VIEWS` plus its screen class; screens are imported lazily so startup only pays for
the credentials screen.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.filter import LineFilter
from textual.screen import ModalScreen, Screen
from textual.worker import Worker

from smsdesk.domain.inert import make_inert
from smsdesk.store.pull_losses import recent_pull_loss
from smsdesk.tui.commands import ScreenCommands
from smsdesk.tui.contrast_filter import ReadableFilter
from smsdesk.tui.data import DatabaseChanged, DataService, HeartbeatSeen
from smsdesk.tui.key_hints import key_name, with_keys
from smsdesk.tui.protocols import FindsNumber, HasHelpNotes, HasHelpTitle, HasProblemLine, ShowsData
from smsdesk.tui.screens.view import VIEW_KEYS
from smsdesk.tui.textual_private import mark_styled_already
from smsdesk.tui.workers import describe_error

# How long the first frame may wait for the first view's data (see SmsDeskApp.on_load).
FIRST_READ_WAIT = 0.25
# The one timer of the app: how often it asks the database whether another process committed.
POLL_SECONDS = 0.25
CLOCK_SECONDS = 60.0  # views with time buckets (the traffic strip) redraw this often regardless
FUNCTION_KEY = re.compile(r"f\d{1,2}")
PROBLEM_MIN_SECONDS = 3.0  # a problem stays in the status line at least this long


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

    return _styled_already(app, CredentialsScreen(app.data))


def _styled_already(app: SmsDeskApp, screen: Screen) -> Screen:
    """The credentials screen, the first thing an operator waits for, brings no CSS of its own:
    spare it Textual's stylesheet refresh (tui/textual_private.py)."""
    if not screen.CSS and not screen.CSS_PATH:
        mark_styled_already(screen, app)
    return screen


def _log(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.log import LogScreen

    return LogScreen(app.data)


def _profiles(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.profiles import ProfilesScreen

    return ProfilesScreen(app.data)


def _review(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.review import ReviewScreen

    return ReviewScreen(app.data)


def _tester(app: SmsDeskApp) -> Screen:
    from smsdesk.tui.screens.tester import TesterScreen

    return TesterScreen(app.data)


class SmsDeskApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "smsdesk"
    COMMANDS = App.COMMANDS | {ScreenCommands}  # every binding of the current screen, by name
    VIEWS: tuple[View, ...] = tuple(View(mode, key, title, factory) for (mode, key, title), factory in zip(
        VIEW_KEYS, (_credentials, _log, _profiles, _tester, _review), strict=True))
    DEFAULT_MODE = "credentials"
    BINDINGS = [
        Binding("q", "quit_app", "Quit", id="app.quit"),
        Binding("f1,question_mark", "help", "Help", id="app.help", key_display="F1"),
        *(Binding(v.key, f"view('{v.mode}')", v.title, show=False, id=f"app.view.{v.mode}") for v in VIEWS),
    ]

    def __init__(self, db_path: Path, *, poll_seconds: float = POLL_SECONDS, keymap: Mapping[str, str] | None = None,
                 initial_mode: str | None = None, theme: str | None = None,
                 busy_timeout: float | None = None) -> None:
        if initial_mode is not None:
            self.DEFAULT_MODE = initial_mode  # e.g. the demo opens on the live log; read by App.__init__
        # A 16-colour theme from the settings is known before Textual picks its colour filters:
        # under NO_COLOR it must strip colours (NoColor), not grey them as if they were RGB
        # (Monochrome turns the terminal's default colours into black on black).
        super().__init__(ansi_color=True if theme is not None and _is_ansi_theme(theme) else None)
        self.db_path = Path(db_path)  # F1 names it: which database this TUI is on
        self.data = DataService(self.db_path, busy_timeout=busy_timeout)
        self.poll_seconds = poll_seconds
        self._initial_keymap = dict(keymap or {})
        if self._initial_keymap:
            # Binding ids (e.g. "credentials.delete": "x") let users remap keys without code. Set
            # before any screen is built, so the first hints already name the remapped keys.
            self.set_keymap(self._initial_keymap)
        self._initial_theme = theme
        self._readable_filter: tuple[tuple[int, bool], ReadableFilter] | None = None
        self._early_screens: dict[str, Screen] = {}
        self._probing = False
        self._retry_due = False
        self._problem_since = 0.0
        # A standing problem the data itself shows (a pull answer lost at Infobip: store/pull_losses.py),
        # under the tab line whenever no passing problem is: read when the data changes and each minute.
        self.notice = ""
        self._last_clock = 0.0
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
        # The probe's baseline first: a commit after it and before or during the first read is a
        # change the next probe reports; the baseline itself is none (each first read ran twice).
        # A locked file holds the baseline back as long as the lock lasts: the first frame waits for
        # it no longer than for the first read (then says "loading…"), and no tick probes meanwhile.
        self._probing = True
        baseline = asyncio.ensure_future(self.data.probe())
        baseline.add_done_callback(self._baseline_taken)
        await asyncio.wait({baseline}, timeout=FIRST_READ_WAIT)
        view = next(v for v in self.VIEWS if v.mode == self.DEFAULT_MODE)
        screen = self._early_screens[view.mode] = view.factory(self)
        if isinstance(screen, FirstReadAware):
            await screen.wait_for_first_read(FIRST_READ_WAIT)

    def _baseline_taken(self, baseline: asyncio.Future[bool]) -> None:
        self._probing = False
        if baseline.cancelled() or baseline.exception() is not None:
            self._retry_due = True  # a locked or unreadable file: the first tick says so and retries

    def on_mount(self) -> None:
        if self._initial_theme:
            self.theme = self._initial_theme
        self._last_clock = time.monotonic()
        self.set_interval(self.poll_seconds, self._tick)

    def on_unmount(self) -> None:
        self.data.close()

    def get_key_display(self, binding: Binding) -> str:
        # F2, not f2: as F1 is shown, in the key bar and in every hint that names a key.
        shown = super().get_key_display(binding)
        return shown.upper() if FUNCTION_KEY.fullmatch(shown) else shown

    def get_line_filters(self) -> Sequence[LineFilter]:
        # Last, after Textual's own (NO_COLOR's greys included): every pair drawn reads at 4.5:1
        # whatever the theme (tui/contrast_filter.py).
        key = (id(self.ansi_theme), self.native_ansi_color)
        if self._readable_filter is None or self._readable_filter[0] != key:
            self._readable_filter = (key, ReadableFilter(self.ansi_theme, self.native_ansi_color))
        return [*super().get_line_filters(), self._readable_filter[1]]

    # ---- the one data timer ---------------------------------------------------------------------
    def _tick(self) -> None:
        if not self._probing:
            self._probing = True
            self._probe()

    @work(group="app-probe", exit_on_error=False)
    async def _probe(self) -> None:
        try:
            try:
                changed = await self.data.probe()
            except sqlite3.Error as exc:
                changed = False
                self._show_problem(describe_error(exc))
                self._retry_due = True
            now = time.monotonic()
            clock = now - self._last_clock >= CLOCK_SECONDS
            if clock:
                self._last_clock = now
            retry, self._retry_due = self._retry_due, False
            if retry and not changed:
                # A read failed since: every view reads again, now or when it is next shown (a
                # view away from the screen compares versions on ScreenResume).
                self.data.invalidate()
            if changed or clock:
                await self._read_notice()
            if changed or retry or clock:
                message = DatabaseChanged(self.data.version, retry=retry and not changed, clock=clock and not changed)
                for screen in self._data_screens():
                    screen.post_message(message)
            elif self.data.heartbeat_moved:
                # Only the receiver's heartbeat moved (serve commits one every 30 s): nothing a
                # view shows changed, so nothing is read; the empty log takes the time from here.
                beat = HeartbeatSeen(self.data.heartbeat)
                for screen in self._data_screens():
                    screen.post_message(beat)
            if not (changed or retry or clock) and self._problem_since and not self.data.failing \
                    and now - self._problem_since >= PROBLEM_MIN_SECONDS:
                self._clear_problem()
        finally:
            self._probing = False

    def _data_screens(self) -> list[Screen]:
        """The screens of the current mode that show data: the view and anything open over it."""
        return [screen for screen in self.screen_stack if isinstance(screen, ShowsData)]

    # ---- the one worker-failure handler ---------------------------------------------------------
    def report_worker_error(self, worker: Worker[object], node: DOMNode) -> None:
        """A worker failed (its widget or screen forwarded the failure): say so, retry, go on."""
        self._show_problem(describe_error(worker.error))
        self._retry_due = True
        if isinstance(self.screen, ModalScreen):
            self.notify(describe_error(worker.error), severity="error", markup=False)

    def _show_problem(self, text: str) -> None:
        self._problem_since = time.monotonic()
        for screen in self.screen_stack:
            if isinstance(screen, HasProblemLine):
                screen.show_problem(f"{text} (retrying)")

    def _clear_problem(self) -> None:
        self._problem_since = 0.0
        for screen in self.screen_stack:
            if isinstance(screen, HasProblemLine) and screen.problem:
                screen.clear_problem()
        self._show_notice()

    async def _read_notice(self) -> None:
        try:
            loss = await self.data.read(recent_pull_loss)
        except sqlite3.Error:
            return  # the reads of the views report it; the next change tries again
        notice = make_inert(loss.describe()) if loss is not None else ""
        if notice == self.notice:
            return
        self.notice = notice
        if not self._problem_since:  # a passing problem shows first; the notice returns after it
            if notice:
                self._show_notice()
            else:
                for screen in self.screen_stack:
                    if isinstance(screen, HasProblemLine):
                        screen.clear_problem()

    def _show_notice(self) -> None:
        if not self.notice:
            return
        for screen in self.screen_stack:
            if isinstance(screen, HasProblemLine):
                screen.show_problem(self.notice)

    # ---- keys -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A bare `q` or digit must never throw away a half-filled form or dialog; a dialog that only
        # shows something binds the view keys itself (VIEW_BINDINGS) and stays on its view's stack.
        if action not in ("quit_app", "view") or not isinstance(self.screen, ModalScreen):
            return True
        return action == "view" and any(b.id and b.id.startswith("app.view.") for b in self.screen.BINDINGS
                                         if isinstance(b, Binding))

    def action_quit_app(self) -> None:
        self.exit()

    def action_view(self, mode: str) -> None:
        self.switch_mode(mode)

    def show_profile(self, sandbox: str, number: str) -> None:
        """From a message to its number's profile: the profiles view, filtered, ledger open."""

        async def go() -> None:
            await self.switch_mode("profiles")
            if isinstance(self.screen, FindsNumber):
                self.screen.show_number(sandbox, number)

        self.run_worker(go(), group="app-navigate", exit_on_error=False)

    def action_help(self) -> None:
        from smsdesk.tui.screens.help import HelpScreen, help_keys

        if isinstance(self.screen, HelpScreen):
            return
        screen = self.screen
        keys = help_keys(self, screen)
        if not isinstance(screen, ModalScreen):
            keys.extend((key_name(screen, f"app.view.{view.mode}"), f"go to {view.title}") for view in self.VIEWS)
        notes = tuple((with_keys(screen, heading), with_keys(screen, text))  # keys as mapped now
                      for heading, text in (screen.HELP_NOTES if isinstance(screen, HasHelpNotes) else ()))
        where = str(self.db_path.resolve())
        notes = (*notes, ("Database", ""), ("file", make_inert(where)),
                 ("the CLI", make_inert(f"--db, or: export SMSDESK_DB={shlex.quote(where)}")))
        title = (screen.HELP_TITLE if isinstance(screen, HasHelpTitle) else "") \
            or screen.__class__.__name__.removesuffix("Screen")
        self.push_screen(HelpScreen(title, keys, notes))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for view in self.VIEWS:
            key = key_name(screen, f"app.view.{view.mode}")
            yield SystemCommand(f"Go to {view.title}", f"Switch to the {view.title.lower()} view ({key})",
                                lambda mode=view.mode: self.switch_mode(mode))
        yield SystemCommand("Help", f"Show the keys of this screen ({key_name(screen, 'app.help')})", self.action_help)


def _is_ansi_theme(name: str) -> bool:
    from textual.theme import BUILTIN_THEMES

    theme = BUILTIN_THEMES.get(name)
    return theme is not None and theme.ansi


def run_tui(db_path: Path, *, initial_mode: str | None = None) -> None:
    """Entry point for the `smsdesk` command: open the TUI on this database file, with the
    user's keymap and theme (tui/config.py). Raises tui.config.ConfigError for a bad file."""
    from textual.theme import BUILTIN_THEMES

    from smsdesk.tui.config import load_config
    from smsdesk.tui.terminal_colours import theme_for_terminal

    config = load_config(themes=set(BUILTIN_THEMES), bindings=True)
    SmsDeskApp(db_path, initial_mode=initial_mode, keymap=config.keymap,
               theme=theme_for_terminal(config.theme)).run()  # an ANSI theme on 16 colours
