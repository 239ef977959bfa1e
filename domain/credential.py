"""The credential model: every field of Journey Optimizer's Infobip API credential form."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from smsdesk.domain.normalize import normalize
from smsdesk.domain.phone import normalize_sender, to_e164

DEFAULT_OPT_IN = ["SUBSCRIBE", "YES", "UNSTOP", "START", "CONTINUE", "RESUME", "BEGIN"]
DEFAULT_OPT_OUT = ["STOP", "QUIT", "CANCEL", "END", "UNSUBSCRIBE", "NO"]
# The words the FCC's 2025 rule (47 CFR 64.1200(a)(10)) names for revoking consent: a programme on
# a +1 (US, Canada: NANP) number should honour each of them.
FCC_OPT_OUT_WORDS = ("STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE")
DEFAULT_HELP = ["HELP"]
MAX_MESSAGE = 1600
# Upper bounds far above anything real, so that a 10 MB key or 200,000 keywords are refused by name
# instead of being stored and copied into every reply and screen. Infobip keys are about 70
# characters; DLT ids 12 to 19 digits (others only warn, up to this bound).
MAX_API_KEY = 512
MAX_DLT_ID = 64
MAX_KEYWORDS = 100  # per list
MAX_KEYWORD = 34  # characters, inner whitespace collapsed (Journey Optimizer's bound)
DEFAULT_FUZZY_MESSAGE = "Reply STOP to unsubscribe."
DEFAULT_EXPIRY_DAYS = 30
MAX_EXPIRY_DAYS = 3650
# Rows stored before these bounds existed must still load: validation with this context skips
# the bounds and character checks added later; saving such a credential applies them.
STORED = {"stored": True}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
KEYWORD_LISTS = (
    "opt_in_keywords",
    "opt_out_keywords",
    "help_keywords",
    "double_opt_in_keywords",
    "inbound_keywords",
)
MASK = "••••"  # how masked API keys start (domain/credential_records.py: masked_key)
_SANDBOX = re.compile(r"^[a-z0-9_-]{1,64}$")


class Provider(StrEnum):
    INFOBIP = "infobip"


class InboundMode(StrEnum):
    FORWARD = "forward"
    PULL = "pull"


class BlocklistSync(StrEnum):
    """What consent here does to Infobip's Blocklist for the credential's sender (README, "The Blocklist")."""

    OFF = "off"
    PUSH = "push"  # an opt-out here blocks the number there; an opt-in here unblocks it
    TWO_WAY = "two-way"  # push, and `smsdesk consent reconcile --apply` brings blocks found there here

    @property
    def pushes(self) -> bool:
        return self is not BlocklistSync.OFF


class FuzzyMode(StrEnum):
    """What a near-miss opt-out (domain/fuzzy.py) does: nothing special, a reply, the review queue, both."""

    OFF = "off"
    REPLY = "reply"
    REVIEW = "review"
    REPLY_REVIEW = "reply+review"

    @property
    def replies(self) -> bool:
        return self in (FuzzyMode.REPLY, FuzzyMode.REPLY_REVIEW)

    @property
    def reviews(self) -> bool:
        return self in (FuzzyMode.REVIEW, FuzzyMode.REPLY_REVIEW)


def _split_keywords(value: Any) -> Any:
    """Accept comma-separated text (the TUI) or a list (JSON); return a list of keywords."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_keywords(values: list[str], bounded: bool = True) -> list[str]:
    if bounded and len(values) > MAX_KEYWORDS:
        raise ValueError(f"{len(values)} keywords; at most {MAX_KEYWORDS}")
    seen: set[str] = set()
    result: list[str] = []
    for raw in values:
        if not isinstance(raw, str):
            raise ValueError("keywords must be text")
        keyword = " ".join(raw.split())  # multi-word keywords ("OPT OUT"): inner whitespace collapsed
        if bounded and _CONTROL.search(keyword):
            raise ValueError(f"keyword {keyword!r} must not contain control or bidi characters")
        if not 1 <= len(keyword) <= MAX_KEYWORD:
            raise ValueError(f"keyword {keyword!r} must be 1 to {MAX_KEYWORD} characters")
        if "," in keyword:  # the TUI edits lists as comma-separated text: "A,B" would come back as two
            raise ValueError(f"keyword {keyword!r} must not contain a comma")
        key = normalize(keyword)
        if not key:
            raise ValueError(f"keyword {keyword!r} has no letters or digits")
        if key not in seen:
            seen.add(key)
            result.append(keyword)
    return result


def _parse_replies(value: Any) -> Any:
    """custom_keyword_replies from JSON (an object), the CLI (a JSON object as text) or the form
    (one `KEYWORD = reply` per line)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                raise ValueError("must be a JSON object of custom keyword to reply text") from None
        found: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            keyword, sep, reply = line.partition("=")
            if not sep:
                raise ValueError(f"line {number}: write KEYWORD = reply text")
            found[keyword.strip()] = reply.strip()
        return found
    return value


def replies_as_lines(replies: dict[str, str]) -> str:
    """The form's text for custom_keyword_replies (the inverse of _parse_replies)."""
    return "\n".join(f"{keyword} = {reply}" for keyword, reply in replies.items())


# C0 controls but the newline, DEL and C1 (U+0080..U+009F; a lone U+009B is a terminal's CSI): an
# ESC in a help message or a keyword would reach the operator's terminal (OSC 52 writes the
# clipboard, OSC 0 the title) and the handset. Bidi embeddings, overrides and isolates reorder
# what is shown, and a lone surrogate cannot be sent as UTF-8. Exactly what `make_inert` would
# change: refused at every entry (import, CLI, form); rows already stored are read as they are
# and shown inert.
_UNSAFE = "\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL_IN_MESSAGE = re.compile(f"[\x00-\x09\x0b-\x1f{_UNSAFE}]")
_CONTROL = re.compile(f"[\x00-\x1f{_UNSAFE}]")


def _one_newline_kind(value: Any) -> Any:
    """Windows line ends (a JSON file written on Windows) as plain newlines."""
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _no_controls(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str, info: ValidationInfo) -> str:
        found = pattern.search(value)
        if found and not _stored(info):
            raise ValueError(f"must not contain control or bidi characters ({what}); found U+{ord(found.group()):04X}")
        return value
    return check


Keywords = Annotated[list[str], BeforeValidator(_split_keywords)]
Message = Annotated[str, BeforeValidator(_one_newline_kind), Field(max_length=MAX_MESSAGE),
                    AfterValidator(_no_controls(_CONTROL_IN_MESSAGE, "a newline is allowed, ESC and the like are not"))]
Replies = Annotated[dict[str, Message], BeforeValidator(_parse_replies)]


class Credential(BaseModel):
    """What an operator configures; the JSON interface of import/export uses these names."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=False)

    name: str = Field(min_length=1, max_length=100)
    provider: Provider = Provider.INFOBIP
    sandbox: str = "prod"
    base_url: str
    api_key: str = Field(min_length=1)
    sender: str = ""
    opt_in_keywords: Keywords = Field(default_factory=lambda: list(DEFAULT_OPT_IN))
    opt_in_message: Message = ""
    opt_out_keywords: Keywords = Field(default_factory=lambda: list(DEFAULT_OPT_OUT))
    opt_out_message: Message = ""
    help_keywords: Keywords = Field(default_factory=lambda: list(DEFAULT_HELP))
    help_message: Message = ""
    double_opt_in_keywords: Keywords = Field(default_factory=list)
    double_opt_in_message: Message = ""
    principal_entity_id: str = ""
    content_template_id: str = ""
    validity_period_hours: int = Field(default=48, ge=1, le=48, strict=False)
    callback_data: Annotated[str, AfterValidator(_no_controls(_CONTROL, "not even a newline"))] = Field(
        default="", max_length=4000)
    inbound_number: str = ""
    inbound_keywords: Keywords = Field(default_factory=list)
    default_reply_message: Message = ""
    inbound_mode: InboundMode = InboundMode.FORWARD
    # Keyword engine 2 (README, "Keyword rules"): older files without these still import.
    custom_keyword_replies: Replies = Field(default_factory=dict)
    fuzzy_opt_out: FuzzyMode = FuzzyMode.OFF
    fuzzy_opt_out_message: Message = DEFAULT_FUZZY_MESSAGE
    double_opt_in_expiry_days: int = Field(default=DEFAULT_EXPIRY_DAYS, ge=0, le=MAX_EXPIRY_DAYS, strict=False)
    blocklist_sync: BlocklistSync = BlocklistSync.OFF

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        # isprintable() is False for controls (ESC, NUL), format characters (bidi overrides such as
        # U+202E, which make "Shop\u202egnp.exe" display as "Shopexe.png", zero-width spaces and
        # joiners), separators other than the space, and unassigned or private code points.
        if not value.isprintable() and not _stored(info):
            raise ValueError("must be printable characters only (no control, bidi or zero-width characters)")
        return value

    @field_validator("sandbox")
    @classmethod
    def _sandbox(cls, value: str) -> str:
        if not _SANDBOX.match(value):
            raise ValueError("use 1 to 64 of a-z, 0-9, _ and -")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: str, info: ValidationInfo) -> str:
        if len(value) > MAX_API_KEY and not _stored(info):
            raise ValueError(f"{len(value)} characters; an API key has at most {MAX_API_KEY}")
        if any(c.isspace() for c in value):
            raise ValueError("must not contain whitespace")
        if not value.isprintable() and not _stored(info):
            raise ValueError("must be printable characters only")
        if value.startswith(MASK):
            raise ValueError("is a masked key (from an export without --with-secrets); give the real key")
        return value

    @field_validator("validity_period_hours", mode="before")
    @classmethod
    def _whole_hours(cls, value: Any) -> Any:
        return _whole_number(value, "must be whole hours from 1 to 48")

    @field_validator("double_opt_in_expiry_days", mode="before")
    @classmethod
    def _whole_days(cls, value: Any) -> Any:
        return _whole_number(value, f"must be whole days from 0 (never) to {MAX_EXPIRY_DAYS}")

    @field_validator(*KEYWORD_LISTS)
    @classmethod
    def _keywords(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _check_keywords(value, bounded=not _stored(info))

    @field_validator("principal_entity_id", "content_template_id")
    @classmethod
    def _digits(cls, value: str, info: ValidationInfo) -> str:
        if len(value) > MAX_DLT_ID and not _stored(info):
            raise ValueError(f"{len(value)} digits; a DLT id has at most {MAX_DLT_ID}")
        if value and not (value.isascii() and value.isdigit()):
            raise ValueError("must contain digits only")
        return value

    @field_validator("inbound_number")
    @classmethod
    def _inbound_number(cls, value: str) -> str:
        return to_e164(value) if value else ""

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return normalize_sender(value) if value else ""

    @model_validator(mode="after")
    def _cross_field(self) -> Credential:
        if self.content_template_id and not self.principal_entity_id:
            raise _field_error(
                "content_template_id", "needs a DLT principal entity ID as well"
            )
        owner: dict[str, str] = {}
        for list_name in KEYWORD_LISTS:
            for keyword in getattr(self, list_name):
                key = normalize(keyword)
                if key in owner and owner[key] != list_name:
                    raise _field_error(
                        list_name,
                        f"keyword {keyword!r} is in both {owner[key]} and {list_name}",
                    )
                owner[key] = list_name
        self.custom_keyword_replies = self._replies_of_custom_keywords()
        return self

    def _replies_of_custom_keywords(self) -> dict[str, str]:
        """Each reply keyed by its custom keyword as configured; a reply needs its keyword."""
        spelled = {normalize(keyword): keyword for keyword in self.inbound_keywords}
        replies: dict[str, str] = {}
        for keyword, reply in self.custom_keyword_replies.items():
            configured = spelled.get(normalize(keyword))
            if configured is None:
                raise _field_error("custom_keyword_replies",
                                   f"{keyword!r} is not a custom inbound keyword of this credential")
            if reply:
                replies[configured] = reply
        return replies

    @property
    def reply_sender(self) -> str:
        """Replies go out from the sender, or from the inbound number when no sender is set."""
        return self.sender or self.inbound_number

    def warnings(self) -> dict[str, str]:
        """Non-blocking advice, keyed by field."""
        found: dict[str, str] = {}
        for name in ("principal_entity_id", "content_template_id"):
            value = getattr(self, name)
            if value and not 12 <= len(value) <= 19:
                found[name] = "DLT ids are usually 12 to 19 digits"
        if self.double_opt_in_keywords and not self.double_opt_in_message:
            found["double_opt_in_message"] = "double opt-in keywords set but no confirmation message"
        if self.fuzzy_opt_out.replies and not self.fuzzy_opt_out_message:
            found["fuzzy_opt_out_message"] = "fuzzy opt-out replies, but the message is empty: nothing is sent"
        missing = missing_fcc_words(self.inbound_number, self.opt_out_keywords)
        if missing:
            found["opt_out_keywords"] = (f"a +1 number: the FCC's opt-out words {', '.join(missing)} are missing "
                                         "(the us preset has them)")
        return found


class StoredCredential(Credential):
    """A credential as the store holds it: with its row id and optimistic-concurrency version."""

    id: int
    version: int
    created_at: str = ""
    updated_at: str = ""

    def to_credential(self) -> Credential:
        # As stored: a name from before the character rules loads; saving it again applies them.
        return Credential.model_validate(self.model_dump(include=set(Credential.model_fields)), context=STORED)


def _whole_number(value: Any, message: str) -> Any:
    if isinstance(value, bool):
        raise ValueError(message)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(message)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ValueError(message)
        return int(text)
    return value


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _field_error(field: str, message: str) -> ValueError:
    # pydantic wraps model-validator errors with loc=(); the field travels in the message
    # prefix "field: " which field_errors() splits back out.
    return ValueError(f"{field}:: {message}")


def missing_fcc_words(inbound_number: str, opt_out_keywords: list[str]) -> list[str]:
    """The FCC's opt-out words an opt-out list lacks, for a +1 (NANP) inbound number; [] otherwise."""
    if not inbound_number.startswith("+1"):
        return []
    have = {normalize(keyword) for keyword in opt_out_keywords}
    return [word for word in FCC_OPT_OUT_WORDS if normalize(word) not in have]


def normalize_base_url(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("an API base URL is required, such as xyz.api.infobip.com")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. a netloc that NFKC turns into "/" or "@": its message echoes the input
        raise ValueError("has no valid host name") from None
    if parts.scheme not in ("https", "http"):
        raise ValueError("must use https://")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError("must be a host only, without path or query (e.g. xyz.api.infobip.com)")
    host = parts.hostname or ""
    if not host or any(c.isspace() for c in parts.netloc) or not parts.netloc.isprintable():
        raise ValueError("has no valid host name")
    try:
        _ = parts.port  # urlsplit validates the port lazily
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ValueError("plain http is allowed only for localhost or 127.0.0.1; use https://")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Flatten a pydantic error into {field: message}, never echoing the rejected input."""
    found: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        parts = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
        # custom_keyword_replies is a mapping: its keys are the user's text, not field names
        field = parts[0] if parts[:1] == ["custom_keyword_replies"] else ".".join(parts)
        if not field and ":: " in message:  # only model-level errors carry their field in the message
            field, _, message = message.partition(":: ")
        field = field or "credential"
        found.setdefault(field, message)
    return found
