"""The law's words by default where the law applies (issue 27, point 8): a credential on a +1
number gets the FCC's seven opt-out words, or is told which are missing."""

from __future__ import annotations

import json
from pathlib import Path

from smsdesk.domain.credential import FCC_OPT_OUT_WORDS, Credential, missing_fcc_words
from tests.support.cli import run_main

US = "+12025550143"
UK = "+447491163443"


def add(db: Path, number: str, *extra: str) -> tuple[int, str, dict]:
    done = run_main("--db", str(db), "creds", "add", "--name", "Shop", "--base-url", "x.api.infobip.com",
                    "--api-key-stdin", "--inbound-number", number, "--json", *extra, stdin="k-0123456789\n")
    return done.code, done.err, json.loads(done.out) if done.code == 0 else {}


def test_a_plus_one_number_gets_the_fcc_words_by_default(tmp_path: Path) -> None:
    code, err, shown = add(tmp_path / "smsdesk.db", US)
    assert code == 0, err
    assert missing_fcc_words(US, shown["opt_out_keywords"]) == []
    assert "the us preset's" in err


def test_other_numbers_keep_journey_optimizers_defaults(tmp_path: Path) -> None:
    code, err, shown = add(tmp_path / "smsdesk.db", UK)
    assert code == 0 and err == ""
    assert shown["opt_out_keywords"] == ["STOP", "QUIT", "CANCEL", "END", "UNSUBSCRIBE", "NO"]


def test_an_explicit_list_without_them_is_told_which_are_missing(tmp_path: Path) -> None:
    code, err, shown = add(tmp_path / "smsdesk.db", US, "--opt-out-keywords", "STOP,QUIT")
    assert code == 0 and shown["opt_out_keywords"] == ["STOP", "QUIT"]  # the operator's choice stands
    assert "warning: opt_out_keywords: a +1 number: the FCC's opt-out words END, REVOKE, OPT OUT, CANCEL, " \
           "UNSUBSCRIBE are missing" in err


def test_the_warning_follows_the_number_and_the_words() -> None:
    base = {"name": "Shop", "base_url": "x.api.infobip.com", "api_key": "k-0123456789"}
    assert "opt_out_keywords" in Credential(**base, inbound_number=US).warnings()
    assert "opt_out_keywords" not in Credential(**base, inbound_number=US,
                                                opt_out_keywords=list(FCC_OPT_OUT_WORDS)).warnings()
    assert "opt_out_keywords" not in Credential(**base, inbound_number=UK).warnings()
