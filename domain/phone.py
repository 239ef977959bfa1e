"""Phone number normalisation to E.164 with the phonenumbers library."""

from __future__ import annotations

import re

import phonenumbers

_ALPHANUMERIC_SENDER = re.compile(r"^[A-Za-z0-9 .&_-]{1,11}$")


def to_e164(raw: str) -> str:
    """Normalise a number to E.164. Infobip sends digits without '+', so those are international.

    Raises ValueError with a user-facing reason.
    """
    text = raw.strip()
    if not text:
        raise ValueError("a phone number is required")
    if any(c.isalpha() for c in text):  # phonenumbers would read "1-800-FLOWERS" as digits
        raise ValueError(f"a phone number has no letters ({raw!r})")
    if not text.startswith("+"):
        text = text.removeprefix("00")
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number in international format ({raw!r})") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"not a possible international phone number ({raw!r})")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def to_e164_or_none(raw: str) -> str | None:
    try:
        return to_e164(raw)
    except ValueError:
        return None


def stored_number(raw: str) -> str:
    """A number as it is stored for a person (messages, consent, profiles), from what Infobip sends.

    Infobip sends international digits without '+': that is E.164 once the '+' is added.
    Only other spellings go through phonenumbers (ten times the cost of everything else on the
    ingest path); text that is no number at all (an alphanumeric sender) is kept as received,
    so nothing is dropped.
    """
    if raw.isascii() and raw.isdigit() and 7 <= len(raw) <= 15 and raw[0] != "0":
        return "+" + raw
    return to_e164_or_none(raw) or raw


def consent_number(e164: str) -> str:
    """The key a destination's consent is stored under: the number as Infobip would send it back
    in an inbound message from that person (its international digits), stored as inbound
    numbers are (`stored_number`)."""
    return stored_number(infobip_digits(e164))


def normalize_sender(raw: str) -> str:
    """A sender is a phone number (E.164) or an alphanumeric id of up to 11 characters."""
    text = raw.strip()
    if any(c.isalpha() for c in text):
        if not _ALPHANUMERIC_SENDER.match(text):
            raise ValueError(
                "an alphanumeric sender is 1 to 11 letters, digits, spaces or . & _ -"
            )
        return text
    return to_e164(text)


def infobip_digits(e164: str) -> str:
    """Infobip's examples use international digits without '+'."""
    return e164.removeprefix("+")
