"""The credential form's field layout and the mapping between widgets and model data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from smsdesk.store.models import KEYWORD_LISTS, Credential, InboundMode, Provider

Kind = Literal["text", "password", "number", "keywords", "message", "provider", "mode"]


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
        FieldSpec("sandbox", "Sandbox", placeholder="prod"),
        FieldSpec("base_url", "API base URL", placeholder="xyz.api.infobip.com"),
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
        FieldSpec("default_reply_message", "Default reply", "message"),
    )),
    ("Inbound", (
        FieldSpec("inbound_number", "Inbound number", placeholder="+447491163443"),
        FieldSpec("inbound_keywords", "Custom keywords", "keywords", "e.g. DISCOUNT, VIP"),
        FieldSpec("inbound_mode", "Inbound mode", "mode"),
    )),
    ("Delivery", (
        FieldSpec("validity_period_hours", "Validity (hours)", "number", "1 to 48"),
        FieldSpec("callback_data", "Callback data"),
    )),
    ("India DLT", (
        FieldSpec("principal_entity_id", "Principal entity", placeholder="digits"),
        FieldSpec("content_template_id", "Content template", placeholder="digits"),
    )),
)

FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for _, specs in GROUPS for spec in specs}
MESSAGE_FIELDS = tuple(name for name, spec in FIELD_SPECS.items() if spec.kind == "message")
PROVIDER_CHOICES = [(p.value, p.value) for p in Provider]
MODE_CHOICES = [(m.value, m.value) for m in InboundMode]

assert set(FIELD_SPECS) == set(Credential.model_fields), "the form must cover every credential field"


def form_values(cred: Credential | None) -> dict[str, str]:
    """The text each widget starts with: a new credential gets the model defaults."""
    if cred is None:
        data: dict[str, Any] = {
            name: (field.get_default(call_default_factory=True) if not field.is_required() else "")
            for name, field in Credential.model_fields.items()
        }
    else:
        data = cred.model_dump(mode="json")
    values: dict[str, str] = {}
    for name in FIELD_SPECS:
        value = data.get(name, "")
        if name in KEYWORD_LISTS:
            values[name] = ", ".join(value or [])
        elif hasattr(value, "value"):  # enums
            values[name] = str(value.value)
        else:
            values[name] = "" if value is None else str(value)
    return values
