"""Sample credentials, inbound bodies and a database made from them: for the demo, tests and benchmarks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smsdesk.domain.credential import Credential
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect

SHOP_NUMBER = "447491163443"
CLUB_NUMBER = "385921004026"
_ids = itertools.count(1)


def shop_credential(base_url: str = "https://x.api.infobip.com", **overrides: Any) -> Credential:
    data: dict[str, Any] = dict(
        name="Shop", sandbox="prod", base_url=base_url, api_key="shop-key-0001", inbound_number=SHOP_NUMBER,
        opt_in_message="Welcome to Shop. Reply STOP to end.", opt_out_message="Shop: unsubscribed.",
        help_message="Shop help: shop.example", default_reply_message="Shop: thanks!",
        inbound_keywords=["DISCOUNT"], validity_period_hours=12, callback_data="shop-cb",
        principal_entity_id="1702157864390060348", content_template_id="1107160000000000001",
    )
    data.update(overrides)
    return Credential.model_validate(data)


def club_credential(base_url: str = "https://x.api.infobip.com", **overrides: Any) -> Credential:
    data: dict[str, Any] = dict(
        name="Club", sandbox="dev", base_url=base_url, api_key="club-key-0002", inbound_number=CLUB_NUMBER,
        sender="ClubInfo", opt_in_message="Reply CONFIRM to join Club.", double_opt_in_keywords=["CONFIRM"],
        double_opt_in_message="Club: confirmed.", opt_out_message="Club: bye.", inbound_mode="forward",
    )
    data.update(overrides)
    return Credential.model_validate(data)


def make_db(path: Path, *creds: Credential) -> Path:
    db = connect(path)
    for cred in creds:
        create_credential(db, cred)
    db.close()
    return path


_RECEIVED_BASE = datetime(2026, 11, 26, 10, tzinfo=UTC)
_received = itertools.count()


def _next_received_at() -> str:
    """Each sample message a millisecond after the one before, as a person's texts are: consent
    follows receivedAt, and equal times would go to the opt-out whatever the order of sending."""
    moment = _RECEIVED_BASE + timedelta(milliseconds=next(_received))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def mo_result(text: str, sender: str = "41793026727", to: str = SHOP_NUMBER, message_id: str | None = None,
              **extra: Any) -> dict[str, Any]:
    return {"messageId": message_id or f"mo-{next(_ids)}", "from": sender, "to": to, "text": text,
            "cleanText": text, "keyword": "", "receivedAt": _next_received_at(), "smsCount": 1,
            "price": {"pricePerMessage": 0, "currency": "EUR"}, **extra}


def mo_body(*results: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(results), "messageCount": len(results), "pendingMessageCount": 0}
