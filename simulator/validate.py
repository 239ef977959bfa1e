"""Validation of POST /sms/3/messages bodies, as the Infobip simulator applies it.

Returns (property, violation) pairs in Infobip's property-path style
("messages[0].destinations[0].to") so the client's error parsing meets realistic input.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

TIME_UNITS = ("SECONDS", "MINUTES", "HOURS")
MAX_TO = 64
MAX_MESSAGE_ID = 200
MAX_CALLBACK_DATA = 4000

Violations = list[tuple[str, str]]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_send(body: Any) -> Violations:
    found: Violations = []
    if not isinstance(body, dict):
        return [("", "request body must be a JSON object")]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [("messages", "must not be empty")]
    for i, message in enumerate(messages):
        found.extend(_validate_message(f"messages[{i}]", message))
    return found


def _validate_message(where: str, message: Any) -> Violations:
    if not isinstance(message, dict):
        return [(where, "must be an object")]
    found: Violations = []
    if not _is_text(message.get("sender")):
        found.append((f"{where}.sender", "must not be blank"))
    destinations = message.get("destinations")
    if not isinstance(destinations, list) or not destinations:
        found.append((f"{where}.destinations", "must not be empty"))
    else:
        for j, dest in enumerate(destinations):
            found.extend(_validate_destination(f"{where}.destinations[{j}]", dest))
    content = message.get("content")
    if not isinstance(content, dict):
        found.append((f"{where}.content", "must not be null"))
    elif not isinstance(content.get("text"), str) or not content["text"]:
        found.append((f"{where}.content.text", "must not be blank"))
    found.extend(_validate_options(f"{where}.options", message.get("options")))
    found.extend(_validate_webhooks(f"{where}.webhooks", message.get("webhooks")))
    return found


def _validate_destination(where: str, dest: Any) -> Violations:
    if not isinstance(dest, dict):
        return [(where, "must be an object")]
    found: Violations = []
    to = dest.get("to")
    if not _is_text(to):
        found.append((f"{where}.to", "must not be blank"))
    elif len(to) > MAX_TO:
        found.append((f"{where}.to", f"size must be between 0 and {MAX_TO}"))
    message_id = dest.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID):
        found.append((f"{where}.messageId", f"size must be between 0 and {MAX_MESSAGE_ID}"))
    return found


def _validate_options(where: str, options: Any) -> Violations:
    if options is None:
        return []
    if not isinstance(options, dict):
        return [(where, "must be an object")]
    found: Violations = []
    validity = options.get("validityPeriod")
    if validity is not None:
        if not isinstance(validity, dict):
            found.append((f"{where}.validityPeriod", "must be an object"))
        else:
            amount = validity.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                found.append((f"{where}.validityPeriod.amount", "must be a positive integer"))
            unit = validity.get("timeUnit", "MINUTES")
            if unit not in TIME_UNITS:
                found.append((f"{where}.validityPeriod.timeUnit", "must be one of SECONDS, MINUTES, HOURS"))
    regional = options.get("regional")
    if regional is not None:
        if not isinstance(regional, dict):
            found.append((f"{where}.regional", "must be an object"))
        elif "indiaDlt" in regional:
            dlt = regional["indiaDlt"]
            if not isinstance(dlt, dict) or not _is_text(dlt.get("principalEntityId")):
                found.append((f"{where}.regional.indiaDlt.principalEntityId", "must not be blank"))
            elif "contentTemplateId" in dlt and not isinstance(dlt["contentTemplateId"], str):
                found.append((f"{where}.regional.indiaDlt.contentTemplateId", "must be a string"))
    return found


def _validate_webhooks(where: str, webhooks: Any) -> Violations:
    if webhooks is None:
        return []
    if not isinstance(webhooks, dict):
        return [(where, "must be an object")]
    found: Violations = []
    callback = webhooks.get("callbackData")
    if callback is not None and (not isinstance(callback, str) or len(callback) > MAX_CALLBACK_DATA):
        found.append((f"{where}.callbackData", f"size must be between 0 and {MAX_CALLBACK_DATA}"))
    delivery = webhooks.get("delivery")
    if delivery is not None:
        url = delivery.get("url") if isinstance(delivery, dict) else None
        if url is not None and not _is_url(url):
            found.append((f"{where}.delivery.url", "must be a valid URL"))
    return found


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
