"""monitor.textutil: links, hashtags and quotes found in raw post text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import textutil
from monitor.textutil import break_symbol_runs, extract_hashtags, extract_links


def test_links_with_a_scheme_come_first_then_bare_domains_given_one() -> None:
    text = "Sign it: getgpt4o.app/x and https://change.org/p/keep-4o, or www.4o.ai."

    assert extract_links(text) == ("https://change.org/p/keep-4o", "https://getgpt4o.app/x",
                                   "https://www.4o.ai")


def test_hashtags_are_lower_case_without_their_sign_once_each() -> None:
    assert extract_hashtags("#Keep4o ＃keep4o #OpenSource4o a#b") == ("keep4o", "opensource4o")


def whole_text_links(text: str) -> tuple[str, ...]:
    """The definition: links with a scheme, then bare domains searched in the whole rest
    (extract_links searches only the words that can hold one)."""
    found = textutil._LINK.findall(text)
    rest = textutil._LINK.sub(" ", text)
    found.extend("https://" + m.group(0) for m in textutil._BARE_LINK.finditer(rest))
    return tuple(dict.fromkeys(link.rstrip(".,;:!?") for link in found))


_LINKY = st.lists(st.sampled_from(
    [*"aZ9_#@./:-'\" \n()éK🔥", "https://", "HTTP://", "www.", ".com", ".app", ".co.uk",
     "x.io/p", "\u00a0", "\u3000", "\x85", "（"]), max_size=30).map("".join)


@settings(max_examples=3000, derandomize=True)
@given(text=_LINKY)
def test_searching_words_finds_what_searching_the_whole_text_finds(text: str) -> None:
    assert extract_links(text) == whole_text_links(text)


#: the definitions, with their assertion first (the module's patterns start with the
#: character, which re finds faster)
HASHTAG = re.compile(r"(?<![\w#&])[#＃](\w[\w\u200d]*)", re.UNICODE)
LINK = re.compile(r"\bhttps?://[^\s<>\"'）)\]]+", re.IGNORECASE)

_TAGGY = st.lists(st.sampled_from(
    [*"aZ9_#＃&@ .é\u200d🔥h", "http://", "HTTPS://", "https://x.io", "hH", "_h"]),
    max_size=30).map("".join)


@settings(max_examples=3000, derandomize=True)
@given(text=_TAGGY)
def test_hashtag_and_link_patterns_find_what_their_definitions_find(text: str) -> None:
    assert [m.span() for m in textutil._HASHTAG.finditer(text)] == [
        m.span() for m in HASHTAG.finditer(text)]
    assert [m.span() for m in textutil._LINK.finditer(text)] == [
        m.span() for m in LINK.finditer(text)]


_SYMBOLS = st.lists(st.sampled_from(
    [*"a9_ .!?#…—«»、。「", "é", "ß", "中", "٣", "🔥", "👍🏽", "\u00a0", "\u3000", "\x0b", "\x1c",
     "\u2028", "\ud800", "!" * 8, "🔥" * 9, "。" * 5]), max_size=40).map("".join)


@settings(max_examples=3000, derandomize=True)
@given(text=_SYMBOLS)
def test_symbol_runs_are_broken_as_the_definition_says(text: str) -> None:
    # the definition: every 17th character of a run of 17 or more [^\w\s] becomes a space
    step = textutil.SYMBOL_RUN + 1
    expected = textutil._SYMBOL_RUN.sub(lambda m: "".join(
        " " if i % step == step - 1 else c for i, c in enumerate(m.group(0))), text)

    broken = break_symbol_runs(text)

    assert broken == expected
    assert len(broken) == len(text)
