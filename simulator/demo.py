"""`smsdesk demo`: a fresh database, the Infobip simulator and `serve` in this process, and
simulated people texting, so a newcomer sees everything work without an Infobip account.

Everything runs on loopback. The simulator forwards inbound messages to the receiver with HTTP
Basic auth exactly as Infobip would, replies go back through the real outbox sender, and
delivery reports flow back to the receiver.

An open room: any API key a credential in the demo database holds is valid at its simulator (a
credential made in the demo verifies and sends), and the simulated people text every credential's
inbound number with that credential's own keywords, chatter and near misses (for Review).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smsdesk.domain.credential import Credential, FuzzyMode, StoredCredential
from smsdesk.engine.receiver import BasicAuth
from smsdesk.engine.service import ServeConfig, ServerThread
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.credentials import create_credential, list_credentials
from smsdesk.store.db import connect

COFFEE_NUMBER = "447491163443"
PIZZA_NUMBER = "385921004026"
UNROUTED_NUMBER = "4915112345678"

# What people text, with how often; each line is (weight, to, texts).
SCRIPT: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (6, COFFEE_NUMBER, ("YES", "Start", "subscribe")),
    (5, COFFEE_NUMBER, ("LATTE", "latte!", "Menu")),
    (3, COFFEE_NUMBER, ("STOP", "Stop please", "stop.")),
    (2, COFFEE_NUMBER, ("HELP", "help?")),
    (5, COFFEE_NUMBER, ("what time do you open?", "thanks!", "Is the terrace open today?", "👍")),
    (2, COFFEE_NUMBER, ("STPO", "please stop texting me", "stopp")),  # near misses: Review (view 5)
    (4, PIZZA_NUMBER, ("YES", "subscribe")),
    (4, PIZZA_NUMBER, ("CONFIRM",)),
    (3, PIZZA_NUMBER, ("DEAL", "deal")),
    (1, PIZZA_NUMBER, ("STOP",)),
    (2, PIZZA_NUMBER, ("can I order for 8pm?", "Ｈｅｌｌｏ")),
    (1, UNROUTED_NUMBER, ("wrong number?",)),
)


def demo_credentials(simulator_url: str) -> list[Credential]:
    return [
        Credential(
            name="Coffee Club", sandbox="prod", base_url=simulator_url, api_key=secrets.token_urlsafe(24),
            inbound_number=COFFEE_NUMBER, sender="CoffeeClub",
            opt_in_message="Welcome to Coffee Club! Weekly offers. Reply STOP to end, HELP for help.",
            opt_out_message="Coffee Club: you are unsubscribed. Reply START to rejoin.",
            help_message="Coffee Club help: coffee.example/help or call 020 7946 0000. Reply STOP to end.",
            inbound_keywords=["LATTE", "MENU"], default_reply_message="Thanks! A barista will answer soon.",
            fuzzy_opt_out=FuzzyMode.REPLY_REVIEW,
            validity_period_hours=24, callback_data="demo-coffee",
        ),
        Credential(
            name="Pizza Promo", sandbox="dev", base_url=simulator_url, api_key=secrets.token_urlsafe(24),
            inbound_number=PIZZA_NUMBER, opt_in_message="Pizza Promo: reply CONFIRM to get our deals.",
            double_opt_in_keywords=["CONFIRM"], double_opt_in_message="Pizza Promo: confirmed, deals coming!",
            opt_out_message="Pizza Promo: unsubscribed.", help_message="Pizza Promo help: pizza.example",
            inbound_keywords=["DEAL"], principal_entity_id="1702157864390060348",
            content_template_id="1107160000000000001",
        ),
    ]


ScriptLine = tuple[int, str, tuple[str, ...]]
SAMPLE_NUMBERS = frozenset({COFFEE_NUMBER, PIZZA_NUMBER})
CHATTER = ("hi, is this the right number?", "thanks!", "when do you open?", "ok")
NEAR_MISSES = ("STPO", "please stop texting me", "stopp")
CREDENTIALS_EVERY = 2.0  # seconds between reads of the demo database's credentials


def script_for(cred: Credential) -> tuple[ScriptLine, ...]:
    """What people text a credential made in the demo: its own keywords (opt-in, custom, help,
    opt-out), chatter for the default reply and near misses for Review, to its inbound number."""
    to = cred.inbound_number.removeprefix("+")
    lines: list[ScriptLine] = []
    for weight, words in ((5, cred.opt_in_keywords), (5, cred.inbound_keywords), (2, cred.help_keywords),
                          (3, cred.opt_out_keywords), (2, cred.double_opt_in_keywords)):
        if words:
            lines.append((weight, to, tuple(words[:4])))
    lines += [(3, to, CHATTER), (2, to, NEAR_MISSES)]
    return tuple(lines)


def demo_script(creds: Iterable[Credential]) -> tuple[ScriptLine, ...]:
    """SCRIPT for the sample numbers, and `script_for` each other credential with an inbound number."""
    found = list(SCRIPT)
    seen = set(SAMPLE_NUMBERS)
    for cred in creds:
        number = cred.inbound_number.removeprefix("+")
        if number and number not in seen:
            seen.add(number)
            found += script_for(cred)
    return tuple(found)


def read_credentials(db_path: Path) -> list[StoredCredential]:
    """The demo database's credentials, on a short read-only connection of this thread's own."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
    try:
        return list_credentials(conn)
    finally:
        conn.close()


class DemoKeys(set[str]):
    """The simulator's valid keys in the demo: its own, and any API key the demo database holds,
    so a credential created in the demo verifies and sends. Read again (at most once a second) when
    a key is not known yet."""

    def __init__(self, db_path: Path, keys: Iterable[str] = ()) -> None:
        super().__init__(keys)
        self.db_path = db_path
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        if super().__contains__(key):
            return True
        with self._lock:
            if time.monotonic() - self._read_at < 1.0:
                return False
            self._read_at = time.monotonic()
            try:
                self.update(c.api_key for c in read_credentials(self.db_path))
            except sqlite3.Error:
                return False
        return super().__contains__(key)


class TrafficGenerator:
    """Simulated people texting the demo numbers at a gentle, irregular rate: the sample numbers
    (SCRIPT) and, when `db_path` is given, every other credential's inbound number (`script_for`)."""

    def __init__(self, state: SimulatorState, *, rate_per_second: float = 1.5, people: int = 40,
                 seed: int | None = None, db_path: Path | None = None) -> None:
        self.state = state
        self.rate = rate_per_second
        self.random = random.Random(seed)
        self.people = [f"4479{self.random.randrange(10**7, 10**8)}" for _ in range(people)]
        self.db_path = db_path
        self.script: tuple[ScriptLine, ...] = SCRIPT
        self._script_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smsdesk-demo-traffic", daemon=True)
        self.sent = 0

    def start(self) -> TrafficGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _current_script(self) -> tuple[ScriptLine, ...]:
        if self.db_path is not None and time.monotonic() - self._script_at >= CREDENTIALS_EVERY:
            self._script_at = time.monotonic()
            with contextlib.suppress(sqlite3.Error):  # busy: the last script until the next read
                self.script = demo_script(read_credentials(self.db_path))
        return self.script

    def text_once(self) -> None:
        script = self._current_script()
        weights = [w for w, _, _ in script]
        _, to, texts = self.random.choices(script, weights=weights)[0]
        self.state.queue_inbound(self.random.choice(self.people), to, self.random.choice(texts))
        self.sent += 1
        if self.sent % 5 == 0:
            self.state.deliver()  # handsets confirm what was sent so far

    def _run(self) -> None:
        while not self._stop.wait(self.random.expovariate(self.rate)):
            self.text_once()


@dataclass
class DemoStack:
    db_path: Path
    simulator: SimulatorThread
    server: ServerThread
    traffic: TrafficGenerator

    def stop(self) -> None:
        self.traffic.stop()
        self.server.__exit__(None, None, None)
        self.simulator.stop()


def start_demo(db_path: Path, *, rate_per_second: float = 1.5, seed: int | None = None) -> DemoStack:
    """Create the demo database and start simulator, serve and traffic. Call `.stop()` when done."""
    state = SimulatorState(webhook_retry_base=1.0)
    state.keys = DemoKeys(db_path, state.keys)
    simulator = SimulatorThread(state).start()
    try:
        db = connect(db_path)
        for cred in demo_credentials(simulator.url):
            create_credential(db, cred)
            state.keys.add(cred.api_key)
        db.close()
        # A random password per run: the demo receiver is protected like a real one.
        auth = BasicAuth("infobip", secrets.token_urlsafe(18))
        # The writer process logs to a file: the TUI owns this terminal.
        server = ServerThread(ServeConfig(db_path=db_path, host="127.0.0.1", port=0, auth=auth,
                                          outbox_interval=0.2, poll_interval=2.0,
                                          writer_log=db_path.with_name("writer.log"))).__enter__()
        state.forward_url = server.url + "/infobip/inbound"
        state.forward_auth = (auth.user, auth.password)
        state.dlr_url = server.url + "/infobip/delivery-reports"
        traffic = TrafficGenerator(state, rate_per_second=rate_per_second, seed=seed, db_path=db_path).start()
    except BaseException:
        simulator.stop()
        raise
    return DemoStack(db_path, simulator, server, traffic)
