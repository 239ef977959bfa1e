"""The filter lines' one parser (tui/filter_parser.py) under the log's and Profiles' vocabularies:
quotes, keys in any case, the fallback for a lone quote, and each view's errors."""

from __future__ import annotations

import pytest

from smsdesk.store.queries import MessageFilter
from smsdesk.tui.filter_parser import FilterSyntaxError, Term, parse_terms
from smsdesk.tui.log_filter import describe, parse_filter
from smsdesk.tui.profile_filter import NO_FILTER, parse_profile_filter


def test_terms_keep_quoted_values_whole_and_name_known_keys() -> None:
    assert parse_terms('CRED:"Shop UK" x:y word', {"cred": "credential"}) == [
        Term('CRED:Shop UK', "cred", "Shop UK", "credential"),
        Term("x:y", "x", "y", None),
        Term("word", None, "word", None),
    ]


def test_a_lone_quote_falls_back_to_plain_words() -> None:
    assert [t.word for t in parse_terms("don't stop", {})] == ["don't", "stop"]


def test_the_log_filter() -> None:
    found = parse_filter('cred:"Shop UK" action:out num:4179 hello http://x')
    assert found == MessageFilter(credential="Shop UK", action="opt-out", number="4179", text="hello http://x")
    assert describe(found) == "cred:'Shop UK' action:opt-out num:4179 'hello http://x'"
    assert parse_filter(describe(MessageFilter(credential="Shop UK"))).credential == "Shop UK"
    with pytest.raises(FilterSyntaxError, match="action must be one of opt-in"):
        parse_filter("action:zz")


def test_the_profiles_filter() -> None:
    assert parse_profile_filter('Consent:NONE kw:disc sandbox:"my box" 4179') == {
        "sandbox": "my box", "consent": "", "attribute": "disc", "number": "4179"}
    assert parse_profile_filter("") == NO_FILTER == {"sandbox": "", "consent": None, "attribute": "", "number": ""}
    with pytest.raises(FilterSyntaxError, match="consent must be y, n, p or none"):
        parse_profile_filter("consent:maybe")
    with pytest.raises(FilterSyntaxError, match=r"unknown filter 'cred': use consent:, attr:, sandbox:, num:"):
        parse_profile_filter("cred:shop")
