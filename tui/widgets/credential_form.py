"""The credential form's field layout and the mapping between widgets and model data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from smsdesk.domain.credential import (
    FCC_OPT_OUT_WORDS,
    KEYWORD_LISTS,
    BlocklistSync,
    Credential,
    FuzzyMode,
    InboundMode,
    Provider,
    replies_as_lines,
)
from smsdesk.domain.inert import make_inert_keeping_lines
from smsdesk.domain.normalize import normalize
from smsdesk.domain.presets import PRESETS

Kind = Literal["text", "password", "number", "keywords", "message", "provider", "mode", "fuzzy", "replies",
               "blocklist"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: Kind = "text"
    placeholder: str = ""


GROUPS: tuple[tuple[str, tuple[FieldSpec, ...]], ...] = (
    ("Connection", (
        FieldSpec("name", "Name", placeholder="e.g. Shop UK"),
        FieldSpec("provider", "Provider", "provider"),
        FieldSpec("sandbox", "Sandbox", placeholder="e.g. prod"),
        FieldSpec("base_url", "API base URL", placeholder="e.g. xyz.api.infobip.com"),
        FieldSpec("api_key", "API key", "password"),
        FieldSpec("sender", "Sender", placeholder="default: the inbound number"),
    )),
    ("Keywords and replies", (
        FieldSpec("opt_in_keywords", "Opt-in keywords", "keywords"),
        FieldSpec("opt_in_message", "Opt-in message", "message"),
        FieldSpec("opt_out_keywords", "Opt-out keywords", "keywords"),
        FieldSpec("opt_out_message", "Opt-out message", "message"),
        FieldSpec("help_keywords", "Help keywords", "keywords"),
        FieldSpec("help_message", "Help message", "message"),
        FieldSpec("double_opt_in_keywords", "Double opt-in kw", "keywords", "none"),
        FieldSpec("double_opt_in_message", "Double opt-in msg", "message"),
        FieldSpec("double_opt_in_expiry_days", "Pending expires", "number", "days, 0 never; default 30"),
        FieldSpec("default_reply_message", "Default reply", "message"),
        FieldSpec("fuzzy_opt_out", "Fuzzy opt-out", "fuzzy"),
        FieldSpec("fuzzy_opt_out_message", "Fuzzy reply", "message"),
    )),
    ("Inbound", (
        FieldSpec("inbound_number", "Inbound number", placeholder="e.g. +44 7491 163443"),
        FieldSpec("inbound_keywords", "Custom keywords", "keywords", "e.g. DISCOUNT, VIP"),
        FieldSpec("custom_keyword_replies", "Custom replies", "replies"),
        FieldSpec("inbound_mode", "Inbound mode", "mode"),
        FieldSpec("blocklist_sync", "Blocklist sync", "blocklist"),
    )),
    ("Delivery", (
        FieldSpec("validity_period_hours", "Validity (hours)", "number", "1 to 48, e.g. 24"),
        FieldSpec("callback_data", "Callback data"),
    )),
    ("India DLT", (
        FieldSpec("principal_entity_id", "Principal entity", placeholder="digits, e.g. 1201159123456789"),
        FieldSpec("content_template_id", "Content template", placeholder="digits, e.g. 1207161234567890"),
    )),
)

FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for _, specs in GROUPS for spec in specs}
MESSAGE_FIELDS = tuple(name for name, spec in FIELD_SPECS.items() if spec.kind == "message")
PROVIDER_CHOICES = [(p.value, p.value) for p in Provider]
MODE_CHOICES = [(m.value, m.value) for m in InboundMode]
FUZZY_CHOICES = [(m.value, m.value) for m in FuzzyMode]
BLOCKLIST_CHOICES = [(m.value, m.value) for m in BlocklistSync]
PRESET_CHOICES = [(f"{p.name}: {p.title}", p.name) for p in PRESETS.values()]

assert set(FIELD_SPECS) == set(Credential.model_fields), "the form must cover every credential field"


# What a new credential starts with beyond the model's defaults: `smsdesk demo` puts its
# simulator's URL in the API base URL, so a credential made in the demo works there
# (cli/demo_cmd.py).
NEW_CREDENTIAL_DEFAULTS: dict[str, str] = {}


def form_values(cred: Credential | None) -> dict[str, str]:
    """The text each widget starts with: a new credential gets the model defaults.

    Inert: a credential stored before control characters were refused (or edited by hand in the
    database) may hold an ESC; an Input or TextArea would write it to the terminal raw. Shown, and
    saved if the operator saves, as its visible escape (`\x1b`)."""
    if cred is None:
        data: dict[str, Any] = {
            name: (field.get_default(call_default_factory=True) if not field.is_required() else "")
            for name, field in Credential.model_fields.items()
        }
        data.update(NEW_CREDENTIAL_DEFAULTS)
    else:
        data = cred.model_dump(mode="json")
    values: dict[str, str] = {}
    for name in FIELD_SPECS:
        value = data.get(name, "")
        if name in KEYWORD_LISTS:
            values[name] = ", ".join(value or [])
        elif name == "custom_keyword_replies":
            values[name] = replies_as_lines(value or {})
        elif hasattr(value, "value"):  # enums
            values[name] = str(value.value)
        else:
            values[name] = "" if value is None else str(value)
        values[name] = make_inert_keeping_lines(values[name])
    return values


# ---- messages in plain words ---------------------------------------------------------------------

_PLAIN = (
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^String should have at least 1 character$"), "is required"),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)$"), r"must be at most \1"),
    (re.compile(r"^Input should be a valid integer.*$"), "must be a whole number"),
    (re.compile(r"^String should have at most (\d+) characters?$"), r"must be at most \1 characters"),
    (re.compile(r"^String should have at least (\d+) characters?$"), r"must be at least \1 characters"),
    (re.compile(r"^Input should be (.+)$"), r"must be \1"),
    (re.compile(r"^Value error, (.+)$"), r"\1"),
)


def plain(message: str) -> str:
    """pydantic's wording ("Input should be greater than or equal to 1") in the form's own."""
    for pattern, replacement in _PLAIN:
        if pattern.match(message):
            return pattern.sub(replacement, message).replace("'", "")
    return message


def reply_lines(text: str) -> list[tuple[str, str]]:
    """(keyword, reply) of the form's `KEYWORD = reply` lines, for the part counts."""
    found = []
    for line in text.splitlines():
        keyword, sep, reply = line.partition("=")
        if sep and keyword.strip():
            found.append((keyword.strip(), reply.strip()))
    return found


def _keywords(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def dropped_opt_out_words(opened_with: str, cred: Credential) -> list[str]:
    """The opt-out words a save of `cred` would drop: STOP (and on a +1 number each of the FCC's
    words) that the opt-out list held when the form opened (`opened_with`, the form's text) and
    lacks now. A save that drops one asks first: people texting it would no longer be opted out."""
    wanted = ["STOP", *(word for word in FCC_OPT_OUT_WORDS if word != "STOP")] \
        if cred.inbound_number.startswith("+1") else ["STOP"]
    before = {normalize(keyword) for keyword in _keywords(opened_with)}
    after = {normalize(keyword) for keyword in cred.opt_out_keywords}
    return [word for word in wanted if normalize(word) in before and normalize(word) not in after]


def cross_field_errors(values: dict[str, str]) -> dict[str, str]:
    """The model's cross-field rules, checked on the form's text so they show up with the field
    errors, not only once every field is valid (pydantic runs them last)."""
    found: dict[str, str] = {}
    if values.get("content_template_id", "").strip() and not values.get("principal_entity_id", "").strip():
        found["content_template_id"] = "needs a DLT principal entity ID as well"
    owner: dict[str, str] = {}
    for list_name in KEYWORD_LISTS:
        for keyword in _keywords(values.get(list_name, "")):
            key = normalize(keyword)
            if key in owner and owner[key] != list_name and list_name not in found:
                found[list_name] = (f"keyword {keyword} is also in {FIELD_SPECS[owner[key]].label.lower()}")
            owner.setdefault(key, list_name)
    return found
