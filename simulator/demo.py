"""`smsdesk demo`: a fresh database, the Infobip simulator and `serve` in this process, and
simulated people texting, so a newcomer sees everything work without an Infobip account.

Everything runs on loopback. The simulator forwards inbound messages to the receiver with HTTP
Basic auth exactly as Infobip would, replies go back through the real outbox sender, and
delivery reports flow back to the receiver.
"""

from __future__ import annotations

import random
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from smsdesk.domain.credential import Credential
from smsdesk.engine.receiver import BasicAuth
from smsdesk.engine.service import ServeConfig, ServerThread
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.credentials import create_credential
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


class TrafficGenerator:
    """Simulated people texting the demo numbers at a gentle, irregular rate."""

    def __init__(self, state: SimulatorState, *, rate_per_second: float = 1.5, people: int = 40,
                 seed: int | None = None) -> None:
        self.state = state
        self.rate = rate_per_second
        self.random = random.Random(seed)
        self.people = [f"4479{self.random.randrange(10**7, 10**8)}" for _ in range(people)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smsdesk-demo-traffic", daemon=True)
        self.sent = 0

    def start(self) -> TrafficGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def text_once(self) -> None:
        weights = [w for w, _, _ in SCRIPT]
        _, to, texts = self.random.choices(SCRIPT, weights=weights)[0]
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
        traffic = TrafficGenerator(state, rate_per_second=rate_per_second, seed=seed).start()
    except BaseException:
        simulator.stop()
        raise
    return DemoStack(db_path, simulator, server, traffic)
