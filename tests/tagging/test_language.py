"""monitor.tagging.language: trust the platform, else the script, else function words."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.tagging import language
from monitor.tagging.language import OTHER, detect_language, normalize_lang, resolve_language

CONFIGURED = ("en", "zh", "ja")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("en-US", "en"), ("EN", "en"), ("zh_Hant", "zh"), ("pt-BR", "pt"), (" es ", "es"),
     ("", None), (None, None)],
)
def test_normalize_lang(code: str | None, expected: str | None) -> None:
    assert normalize_lang(code) == expected


@pytest.mark.parametrize(
    ("platform", "text", "expected"),
    [
        ("en-US", "I miss 4o", "en"),
        ("zh-Hant", "我想念4o", "zh"),
        ("fr", "Je veux 4o", OTHER),              # a language the ruleset does not tag
        ("en", "我想念4o", "en"),                 # the platform is trusted over the script
        (None, "4oがいなくて寂しい", "ja"),        # kana
        (None, "我每天都想念4o", "zh"),           # Han without kana
        (None, "4o 보고 싶어", OTHER),            # Hangul: ko, not configured
        (None, "I miss it and the way it was", "en"),
        (None, "4o 4o 4o", "en"),                 # nothing speaks up: the default
    ],
)
def test_resolve_language(platform: str | None, text: str, expected: str) -> None:
    assert resolve_language(platform, text, CONFIGURED, "en") == expected


def test_detect_language_by_function_words() -> None:
    assert detect_language("Der Himmel ist blau und ich vermisse 4o", ()) == "de"
    assert detect_language("Le ciel est bleu et je veux 4o", ()) == "fr"
    assert detect_language("the sky is blue and I want 4o", ()) == "en"
    assert detect_language("4 8 15 16 23 42", ()) is None


def test_every_known_language_votes_whatever_the_candidates() -> None:
    # German text stays German in an English-only ruleset, so it is tagged "other", not English
    assert detect_language("the sky, der Himmel ist blau und nicht grau", ("en",)) == "de"


def test_an_unconfigured_latin_language_is_other() -> None:
    text = "Sin 4o no soy nada, la extraño mucho y es muy triste"
    assert detect_language(text, ()) == "es"

    assert resolve_language(None, text, CONFIGURED, "en") == OTHER


def test_the_campaign_term_4o_is_not_a_portuguese_word() -> None:
    text = "Bring back 4o! 4o is irreplaceable"

    assert resolve_language(None, text, ("en", "pt"), "en") == "en"


@settings(max_examples=2000, derandomize=True)
@given(text=st.lists(st.sampled_from(["the", "IS", "der", "4o", "o", "_", "x9", " ", "'",
                                      "don't", "-", "\n", "Le", "que"]), max_size=20).map("".join))
def test_ascii_words_are_the_words_the_unicode_pattern_finds(text: str) -> None:
    lowered = text.lower()

    assert language._ASCII_WORD.findall(lowered) == language._WORD.findall(lowered)
