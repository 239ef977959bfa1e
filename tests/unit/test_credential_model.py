"""The credential model, text normalisation, inert rendering and SMS part counting.

Every rule of the credential form is tested with values that must pass and values that must
fail, and every failure must name the field it belongs to.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from smsdesk.domain.credential import (
    DEFAULT_HELP,
    DEFAULT_OPT_IN,
    DEFAULT_OPT_OUT,
    KEYWORD_LISTS,
    MAX_MESSAGE,
    Credential,
    field_errors,
)
from smsdesk.domain.credential_records import masked_key
from smsdesk.domain.inert import make_inert
from smsdesk.domain.normalize import first_word, normalize
from smsdesk.domain.phone import infobip_digits, to_e164, to_e164_or_none
from smsdesk.domain.sms_parts import GSM_BASIC, GSM_EXTENSION, count_parts

GOOD: dict[str, Any] = {"name": "Shop", "base_url": "xyz.api.infobip.com", "api_key": "abc123DEF456"}


def build(**changes: Any) -> Credential:
    return Credential.model_validate(GOOD | changes)


def errors(**changes: Any) -> dict[str, str]:
    """The {field: message} a bad record produces; fails the test if the record is accepted."""
    with pytest.raises(ValidationError) as caught:
        build(**changes)
    return field_errors(caught.value)


def only_error(field: str, **changes: Any) -> str:
    found = errors(**changes)
    assert list(found) == [field], found
    return found[field]


# -- defaults ---------------------------------------------------------------------------------


def test_defaults_are_journey_optimizers() -> None:
    cred = build()
    assert cred.sandbox == "prod"
    assert cred.provider == "infobip"
    assert cred.inbound_mode == "forward"
    assert cred.validity_period_hours == 48
    assert cred.opt_in_keywords == ["SUBSCRIBE", "YES", "UNSTOP", "START", "CONTINUE", "RESUME", "BEGIN"]
    assert cred.opt_out_keywords == ["STOP", "QUIT", "CANCEL", "END", "UNSUBSCRIBE", "NO"]
    assert cred.help_keywords == ["HELP"]
    assert cred.double_opt_in_keywords == []
    assert cred.inbound_keywords == []
    assert cred.warnings() == {}


def test_defaults_are_fresh_lists_per_credential() -> None:
    first, second = build(), build()
    first.opt_in_keywords.append("EXTRA")
    assert second.opt_in_keywords == DEFAULT_OPT_IN
    assert "EXTRA" not in DEFAULT_OPT_IN


@pytest.mark.parametrize(
    ("field", "custom", "defaults"),
    [("opt_in_keywords", ["JOIN"], DEFAULT_OPT_IN), ("opt_out_keywords", ["HALT"], DEFAULT_OPT_OUT),
     ("help_keywords", ["INFO"], DEFAULT_HELP)],
)
def test_custom_lists_replace_the_defaults(field: str, custom: list[str], defaults: list[str]) -> None:
    cred = build(**{field: custom})
    assert getattr(cred, field) == custom
    assert not set(defaults) & set(getattr(cred, field))


def test_unknown_field_is_rejected_by_name() -> None:
    assert "apikey" in errors(apikey="x")


# -- name --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "stored"), [("a", "a"), ("x" * 100, "x" * 100), ("  Shop UK  ", "Shop UK"),
                                             ("Ünïcødé 店", "Ünïcødé 店")])
def test_name_good(raw: str, stored: str) -> None:
    assert build(name=raw).name == stored


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101, None, 5])
def test_name_bad(raw: Any) -> None:
    only_error("name", name=raw)


def test_name_is_required() -> None:
    data = dict(GOOD)
    del data["name"]
    with pytest.raises(ValidationError) as caught:
        Credential.model_validate(data)
    assert "name" in field_errors(caught.value)


# -- sandbox -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["prod", "a", "x" * 64, "eu-west_2", "0", "-", "_"])
def test_sandbox_good(raw: str) -> None:
    assert build(sandbox=raw).sandbox == raw


@pytest.mark.parametrize("raw", ["", "x" * 65, "Prod", "pröd", "my sandbox", "a.b", "a/b", "a\nb", "ｐｒｏｄ"])
def test_sandbox_bad(raw: str) -> None:
    only_error("sandbox", sandbox=raw)


# -- base URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("xyz.api.infobip.com", "https://xyz.api.infobip.com"),
        ("  xyz.api.infobip.com  ", "https://xyz.api.infobip.com"),
        ("XYZ.API.INFOBIP.COM", "https://xyz.api.infobip.com"),
        ("https://xyz.api.infobip.com", "https://xyz.api.infobip.com"),
        ("https://xyz.api.infobip.com/", "https://xyz.api.infobip.com"),
        ("HTTPS://xyz.api.infobip.com", "https://xyz.api.infobip.com"),
        ("https://xyz.api.infobip.com:8443", "https://xyz.api.infobip.com:8443"),
        ("http://localhost", "http://localhost"),
        ("http://localhost:9090", "http://localhost:9090"),
        ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
        ("http://LOCALHOST:9090", "http://localhost:9090"),
        ("localhost:9090", "https://localhost:9090"),
    ],
)
def test_base_url_good(raw: str, stored: str) -> None:
    assert build(base_url=raw).base_url == stored


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ",
        "http://xyz.api.infobip.com",  # plain http off loopback
        "http://127.0.0.2", "http://localhost.evil.com", "http://10.0.0.1",
        "ftp://xyz.api.infobip.com", "file:///etc/passwd", "javascript://x",
        "https://xyz.api.infobip.com/sms/2/text", "xyz.api.infobip.com/path",
        "https://xyz.api.infobip.com?x=1", "https://xyz.api.infobip.com#frag",
        "https://user:pass@xyz.api.infobip.com", "https://user@xyz.api.infobip.com",
        "http://127.0.0.1@evil.com",
        "https://", "https://:443", "https://xyz.api.infobip.com:99999", "https://xyz.api.infobip.com:port",
        "https://xyz api.infobip.com",
    ],
)
def test_base_url_bad(raw: str) -> None:
    only_error("base_url", base_url=raw)


@pytest.mark.parametrize("raw", ["0\x1f\u2100", "x\uff0f.api.infobip.com", "x\uff20evil.com"])
def test_base_url_that_nfkc_breaks_is_refused_without_echoing_it(raw: str) -> None:
    """urlsplit's own error for these quotes the input (a raw control character, found by hypothesis)."""
    assert only_error("base_url", base_url=raw) == "has no valid host name"


def test_base_url_http_message_says_https() -> None:
    assert "https" in only_error("base_url", base_url="http://xyz.api.infobip.com")


# -- API key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "stored"), [("k", "k"), ("a1b2-c3d4_e5", "a1b2-c3d4_e5"), (" key ", "key"),
                                             ("x" * 200, "x" * 200)])
def test_api_key_good(raw: str, stored: str) -> None:
    assert build(api_key=raw).api_key == stored


@pytest.mark.parametrize("raw", ["", "   ", "ab cd", "ab\tcd", "ab\ncd", "ab\u00a0cd", None,
                                 masked_key("0123456789abcdef"), masked_key("short")])
def test_api_key_bad(raw: Any) -> None:
    only_error("api_key", api_key=raw)


def test_api_key_error_never_echoes_the_key() -> None:
    secret = "topsecret value"
    with pytest.raises(ValidationError) as caught:
        build(api_key=secret)
    assert secret not in str(field_errors(caught.value))
    assert "topsecret" not in str(field_errors(caught.value))


# -- keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", KEYWORD_LISTS)
@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("JOIN", ["JOIN"]),
        ("JOIN, MEMBER ,  WIN", ["JOIN", "MEMBER", "WIN"]),
        ("JOIN,,MEMBER,", ["JOIN", "MEMBER"]),
        (["JOIN", "MEMBER"], ["JOIN", "MEMBER"]),
        ([" JOIN "], ["JOIN"]),
        ("JOIN, join, Join", ["JOIN"]),  # de-duplicated ignoring case, first spelling kept
        (["JOIN", "ＪＯＩＮ"], ["JOIN"]),  # full width folds to the same keyword
        (["x" * 34], ["x" * 34]),
        (["K"], ["K"]),
        (["2FOR1", "WIN-WIN", "A&B"], ["2FOR1", "WIN-WIN", "A&B"]),
        # multi-word keywords (issue 15): inner whitespace of any kind collapses to one space
        ("OPT OUT", ["OPT OUT"]),
        (["STOP   ALL"], ["STOP ALL"]),
        (["ab\tcd"], ["ab cd"]),
        (["ab\u3000cd"], ["ab cd"]),
        (["OPT OUT", "opt-out", "OptOut"], ["OPT OUT", "OptOut"]),  # "opt-out" is the words "opt out"
        (["ARRÊT", "arret"], ["ARRÊT"]),  # accents fold: one keyword
        (["x" * 16 + "   " + "y" * 17], ["x" * 16 + " " + "y" * 17]),  # 34 once collapsed
        ("", []),
        ([], []),
        (None, []),
    ],
)
def test_keywords_good(field: str, raw: Any, stored: list[str]) -> None:
    # clear every default list so that only the list under test holds keywords
    cleared: dict[str, Any] = {key: [] for key in KEYWORD_LISTS}
    assert getattr(build(**(cleared | {field: raw})), field) == stored


@pytest.mark.parametrize("field", KEYWORD_LISTS)
@pytest.mark.parametrize(
    "raw",
    [["x" * 35], ["x" * 17 + " " + "y" * 17], ["!!!"], [""], ["  "], ["! ?"], [5], 5, "x" * 35 + ",OK"],
)
def test_keywords_bad(field: str, raw: Any) -> None:
    cleared: dict[str, Any] = {key: [] for key in KEYWORD_LISTS}
    only_error(field, **(cleared | {field: raw}))


def test_keyword_length_counts_characters_not_bytes() -> None:
    assert build(inbound_keywords=["é" * 34]).inbound_keywords == ["é" * 34]
    only_error("inbound_keywords", inbound_keywords=["é" * 35])


@pytest.mark.parametrize(
    ("changes", "first", "second"),
    [
        ({"inbound_keywords": ["STOP"]}, "opt_out_keywords", "inbound_keywords"),
        ({"help_keywords": ["stop"]}, "opt_out_keywords", "help_keywords"),
        ({"double_opt_in_keywords": "YES"}, "opt_in_keywords", "double_opt_in_keywords"),
        ({"opt_in_keywords": ["JOIN", "Help!"]}, "opt_in_keywords", "help_keywords"),
        ({"opt_in_keywords": ["ＨＥＬＰ"]}, "opt_in_keywords", "help_keywords"),
        ({"opt_in_keywords": ["A"], "opt_out_keywords": ["B"], "help_keywords": ["C"],
          "double_opt_in_keywords": ["D"], "inbound_keywords": ["X", "d"]},
         "double_opt_in_keywords", "inbound_keywords"),
    ],
)
def test_keyword_in_two_lists_names_both(changes: dict[str, Any], first: str, second: str) -> None:
    found = errors(**changes)
    assert len(found) == 1, found
    ((field, message),) = found.items()
    assert field in (first, second)
    assert first in message and second in message


def test_same_keyword_twice_in_one_list_is_not_a_cross_list_error() -> None:
    assert build(opt_out_keywords=["STOP", "stop", "Stop."]).opt_out_keywords == ["STOP"]


def test_disjoint_custom_lists_are_accepted() -> None:
    cred = build(double_opt_in_keywords="CONFIRM", inbound_keywords="PIZZA, SUSHI", double_opt_in_message="ok")
    assert cred.double_opt_in_keywords == ["CONFIRM"]
    assert cred.inbound_keywords == ["PIZZA", "SUSHI"]


# -- messages, callback data -------------------------------------------------------------------

MESSAGE_FIELDS = ("opt_in_message", "opt_out_message", "help_message", "double_opt_in_message",
                  "default_reply_message")


@pytest.mark.parametrize("field", MESSAGE_FIELDS)
@pytest.mark.parametrize("text", ["", "Reply STOP to stop.", "x" * MAX_MESSAGE, "Ж" * MAX_MESSAGE,
                                  "😀" * MAX_MESSAGE])
def test_message_good(field: str, text: str) -> None:
    assert getattr(build(**{field: text}), field) == text


@pytest.mark.parametrize("field", MESSAGE_FIELDS)
@pytest.mark.parametrize("text", ["x" * (MAX_MESSAGE + 1), "Ж" * (MAX_MESSAGE + 1), 5])
def test_message_bad(field: str, text: Any) -> None:
    only_error(field, **{field: text})


def test_message_limit_is_1600() -> None:
    assert MAX_MESSAGE == 1600


@pytest.mark.parametrize("text", ["", "x" * 4000, '{"campaign": "spring"}'])
def test_callback_data_good(text: str) -> None:
    assert build(callback_data=text).callback_data == text


@pytest.mark.parametrize("text", ["x" * 4001, 12])
def test_callback_data_bad(text: Any) -> None:
    only_error("callback_data", callback_data=text)


# -- DLT ids -----------------------------------------------------------------------------------

DLT = ("principal_entity_id", "content_template_id")


@pytest.mark.parametrize("digits", ["1" * 12, "1" * 19, "1234567890123456"])
def test_dlt_ids_good_without_warning(digits: str) -> None:
    cred = build(principal_entity_id=digits, content_template_id=digits)
    assert cred.principal_entity_id == digits
    assert cred.content_template_id == digits
    assert cred.warnings() == {}


@pytest.mark.parametrize("digits", ["1", "1" * 11, "1" * 20, "0" * 40])
def test_dlt_ids_of_unusual_length_warn_but_save(digits: str) -> None:
    cred = build(principal_entity_id=digits, content_template_id=digits)
    assert set(cred.warnings()) == set(DLT)


@pytest.mark.parametrize("field", DLT)
@pytest.mark.parametrize("raw", ["12345678901a", "1234 5678 9012", "-123456789012", "1234567890.12",
                                 "¹²³⁴⁵⁶⁷⁸⁹⁰¹²", "١٢٣٤٥٦٧٨٩٠١٢", "１２３４５６７８９０１２"])
def test_dlt_ids_bad(field: str, raw: str) -> None:
    principal = {"principal_entity_id": "123456789012"}  # so the template check does not fire
    assert field in errors(**(principal | {field: raw}))


def test_content_template_without_principal_entity_is_an_error() -> None:
    message = only_error("content_template_id", content_template_id="123456789012")
    assert "principal" in message


def test_principal_entity_alone_is_fine() -> None:
    assert build(principal_entity_id="123456789012").content_template_id == ""


# -- validity period ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "stored"), [(1, 1), (48, 48), (24, 24), ("24", 24), (" 12 ", 12), (24.0, 24)])
def test_validity_good(raw: Any, stored: int) -> None:
    assert build(validity_period_hours=raw).validity_period_hours == stored


@pytest.mark.parametrize("raw", [0, 49, -1, 1.5, "1.5", "0", "49", "", "two", "²", "١٢", True, False, None])
def test_validity_bad(raw: Any) -> None:
    message = only_error("validity_period_hours", validity_period_hours=raw)
    assert "int()" not in message  # a user-facing message, not Python internals


# -- inbound number and sender -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+447491163443", "+447491163443"),
        ("447491163443", "+447491163443"),  # Infobip's digits without '+'
        ("00447491163443", "+447491163443"),
        ("+44 7491 163443", "+447491163443"),
        ("+44 (0)7491-163443", "+447491163443"),
        ("+1 415 555 2671", "+14155552671"),
        ("", ""),
    ],
)
def test_inbound_number_good(raw: str, stored: str) -> None:
    assert build(inbound_number=raw).inbound_number == stored


@pytest.mark.parametrize("raw", ["abc", "Clinic", "+1 800 FLOWERS", "12", "+", "07491163443x", "+99912345",
                                 "+4474911634431234567"])
def test_inbound_number_bad(raw: str) -> None:
    only_error("inbound_number", inbound_number=raw)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Clinic", "Clinic"),
        ("A" * 11, "A" * 11),
        ("Shop UK", "Shop UK"),
        ("Shop.Co&_-", "Shop.Co&_-"),
        ("447491163443", "+447491163443"),
        ("+44 7491 163443", "+447491163443"),
        ("", ""),
    ],
)
def test_sender_good(raw: str, stored: str) -> None:
    assert build(sender=raw).sender == stored


@pytest.mark.parametrize("raw", ["A" * 12, "Shop!", "Shop/UK", "Шоп", "+1 800 FLOWERS", "12", "+"])
def test_sender_bad(raw: str) -> None:
    only_error("sender", sender=raw)


def test_reply_sender_falls_back_to_inbound_number() -> None:
    assert build(inbound_number="447491163443").reply_sender == "+447491163443"
    assert build(inbound_number="447491163443", sender="Clinic").reply_sender == "Clinic"


def test_phone_helpers() -> None:
    assert to_e164_or_none("Clinic") is None
    assert to_e164_or_none("447491163443") == "+447491163443"
    assert infobip_digits(to_e164("447491163443")) == "447491163443"


# -- provider, mode, several errors at once ----------------------------------------------------


@pytest.mark.parametrize(("field", "raw"), [("provider", "twilio"), ("inbound_mode", "push"),
                                            ("inbound_mode", "")])
def test_enums_bad(field: str, raw: str) -> None:
    only_error(field, **{field: raw})


def test_pull_mode_good() -> None:
    assert build(inbound_mode="pull").inbound_mode == "pull"


def test_every_bad_field_is_reported_at_once() -> None:
    found = errors(name="", sandbox="Bad Box", base_url="http://x.com", api_key="a b",
                   validity_period_hours=0, inbound_number="abc")
    assert set(found) == {"name", "sandbox", "base_url", "api_key", "validity_period_hours", "inbound_number"}


@pytest.mark.parametrize(
    ("field", "raw"),
    [("inbound_number", "1::2"), ("inbound_keywords", ["a::" + "b" * 40]), ("inbound_keywords", "a:: b" * 10)],
)
def test_field_errors_are_not_fooled_by_colons_in_user_input(field: str, raw: Any) -> None:
    assert list(errors(**{field: raw})) == [field]


def test_stored_round_trip_through_json() -> None:
    cred = build(inbound_keywords="PIZZA", sender="Clinic", inbound_number="447491163443",
                 principal_entity_id="123456789012", content_template_id="1234567890123",
                 validity_period_hours=12, callback_data="cb", inbound_mode="pull")
    again = Credential.model_validate(cred.model_dump(mode="json"))
    assert again == cred


# -- text.normalize ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Stop!", "stop"),
        (" stop ", "stop"),
        ("ＳＴＯＰ", "stop"),
        ("Ｓｔｏｐ", "stop"),
        ("STOP", "stop"),
        ("Straße", "strasse"),  # casefold, not lower
        ("ΣΤΟΠ", "στοπ"),
        ("stop   please", "stop please"),
        ("stop \t\n please", "stop please"),
        ("stop\u3000please", "stop please"),  # ideographic space
        ("\u00a0stop\u00a0", "stop"),
        ("¡¿STOP?!", "stop"),
        ('"stop"', "stop"),
        ("...stop...", "stop"),
        ("😀STOP😀", "stop"),
        ("\u200bSTOP\u200b", "stop"),  # zero-width space (Cf)
        ("\x1bSTOP\x07", "stop"),
        ("don't", "don t"),  # words end at punctuation (issue 15)
        ("STOP,thanks", "stop thanks"),
        ("S\u200bTOP", "stop"),  # zero-width inside: dropped
        ("STO\u00adP", "stop"),  # soft hyphen
        ("\u200fSTOP\u200e", "stop"),  # bidi marks
        ("ARRÊT", "arret"),
        ("Ｏｐｔ　Ｏｕｔ", "opt out"),
        ("stop.", "stop"),
        ("ﬁnish", "finish"),  # NFKC ligature
        ("", ""),
        ("   ", ""),
        ("!!!", ""),
    ],
)
def test_normalize(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


@pytest.mark.parametrize(("text", "word"), [("stop please", "stop"), ("stop. please", "stop"),
                                            ("stop", "stop"), ("", "")])
def test_first_word(text: str, word: str) -> None:
    assert first_word(normalize(text)) == word


@given(st.text())
def test_normalize_is_idempotent_and_trimmed(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once


# -- text.make_inert ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "must_not_contain", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\x1b", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]52;c;SGVsbG8=\x07", "\x07", "\\x1b]52;c;SGVsbG8=\\x07"),  # OSC 52 clipboard write
        ("bell\x07", "\x07", "bell\\x07"),
        ("del\x7f", "\x7f", "del\\x7f"),
        ("csi\x9b31m", "\x9b", "csi\\x9b31m"),  # 8-bit CSI
        ("line1\nline2", "\n", "line1⏎line2"),
        ("cr\roverwrite", "\r", "cr\\x0doverwrite"),
        ("tab\there", "\t", "tab\\x09here"),
        ("nul\x00", "\x00", "nul\\x00"),
    ],
)
def test_make_inert(raw: str, must_not_contain: str, shown: str) -> None:
    assert must_not_contain not in make_inert(raw)
    assert make_inert(raw) == shown


@pytest.mark.parametrize("text", ["plain", "Ünïcødé 店 😀", "€[]{}", ""])
def test_make_inert_leaves_printable_text_alone(text: str) -> None:
    assert make_inert(text) == text


@given(st.text())
def test_make_inert_never_leaves_a_control_character(text: str) -> None:
    assert not any(unicodedata.category(c) == "Cc" for c in make_inert(text))


# -- SMS parts ---------------------------------------------------------------------------------

GSM_CHAR = "a"
UCS_CHAR = "Ж"
EXT_CHAR = "€"
GSM_ACCENTS = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà¡¤"
EMOJI = "😀"  # outside the BMP: a surrogate pair, two UTF-16 units


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        (GSM_CHAR * 160, "GSM-7", 160, 1),
        (GSM_CHAR * 161, "GSM-7", 161, 2),
        (GSM_CHAR * 153 * 2, "GSM-7", 306, 2),
        (GSM_CHAR * (153 * 2 + 1), "GSM-7", 307, 3),
        (GSM_CHAR, "GSM-7", 1, 1),
        (EXT_CHAR * 80, "GSM-7", 160, 1),
        (EXT_CHAR * 80 + GSM_CHAR, "GSM-7", 161, 2),
        (GSM_CHAR * 159 + EXT_CHAR, "GSM-7", 161, 2),
        (GSM_CHAR * 158 + EXT_CHAR, "GSM-7", 160, 1),
        ("{}[]~^|\\\f", "GSM-7", 18, 1),
        ("line\nline\r", "GSM-7", 10, 1),
        (GSM_ACCENTS, "GSM-7", len(GSM_ACCENTS), 1),  # one septet each
        (UCS_CHAR * 70, "UCS-2", 70, 1),
        (UCS_CHAR * 71, "UCS-2", 71, 2),
        (UCS_CHAR * 67 * 2, "UCS-2", 134, 2),
        (UCS_CHAR * (67 * 2 + 1), "UCS-2", 135, 3),
        (GSM_CHAR * 69 + UCS_CHAR, "UCS-2", 70, 1),  # one non-GSM character switches the whole text
        (GSM_CHAR * 70 + UCS_CHAR, "UCS-2", 71, 2),
        (EMOJI * 35, "UCS-2", 70, 1),
        (EMOJI * 35 + GSM_CHAR, "UCS-2", 71, 2),
        (GSM_CHAR * 69 + EMOJI, "UCS-2", 71, 2),
        (EXT_CHAR * 40 + UCS_CHAR, "UCS-2", 41, 1),  # in UCS-2 the euro sign is one unit
        ("ç", "UCS-2", 1, 1),  # only the capital Ç is in the GSM basic set
        ("`", "UCS-2", 1, 1),
    ],
)
def test_count_parts(text: str, encoding: str, units: int, parts: int) -> None:
    counted = count_parts(text)
    assert (counted.encoding, counted.units, counted.parts) == (encoding, units, parts)
    assert counted.per_part == ({"GSM-7": 160, "UCS-2": 70} if parts == 1 else {"GSM-7": 153, "UCS-2": 67})[encoding]


def test_count_parts_empty() -> None:
    counted = count_parts("")
    assert (counted.units, counted.parts) == (0, 0)
    assert counted.describe() == "empty"


def test_describe() -> None:
    assert count_parts("hi").describe() == "2 chars, GSM-7, 1 SMS part"
    assert count_parts(UCS_CHAR * 71).describe() == "71 chars, UCS-2, 2 SMS parts"


def test_extension_and_basic_sets_are_disjoint() -> None:
    assert not GSM_BASIC & GSM_EXTENSION
    assert len(GSM_BASIC) == 128 - 1  # 128 code points less the escape code itself
    assert len(GSM_EXTENSION) == 9 + 1  # nine printable extension characters plus form feed


@given(st.text(alphabet=sorted(GSM_BASIC | GSM_EXTENSION), max_size=700))
def test_gsm_parts_hold_every_unit(text: str) -> None:
    counted = count_parts(text)
    assert counted.encoding == "GSM-7"
    assert counted.units == len(text) + sum(c in GSM_EXTENSION for c in text)
    if counted.units:
        assert counted.parts * counted.per_part >= counted.units > (counted.parts - 1) * counted.per_part


@given(st.text(min_size=1, max_size=300).filter(lambda t: any(c not in GSM_BASIC | GSM_EXTENSION for c in t)))
def test_ucs2_units_are_utf16_code_units(text: str) -> None:
    counted = count_parts(text)
    assert counted.encoding == "UCS-2"
    assert counted.units == len(text) + sum(ord(c) > 0xFFFF for c in text)
