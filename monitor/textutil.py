"""Small, pure text helpers shared by the tagger and moderation."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import re2

__all__ = ["break_symbol_runs", "domain_of", "extract_hashtags", "extract_links",
           "quoted_spans"]

# Both start with a character, not an assertion: re then skips to the next '#' or 'h'
# instead of trying the assertion at every position (hashtags 3.8 -> 1.4 us a post,
# links 2.5 -> 1.5). The lookbehind, taken after it, says what (?<![\w#&]) and \b said.
_HASHTAG = re.compile(r"[#＃](?<![\w#&][#＃])(\w[\w\u200d]*)", re.UNICODE)
_LINK = re.compile(r"h(?<!\wh)ttps?://[^\s<>\"'）)\]]+", re.IGNORECASE)
_BARE_LINK = re.compile(
    r"(?<![@\w.])(?:[a-z0-9-]+\.)+(?:com|org|net|io|app|ai|co|xyz|me|ly|gg|link|site|info|"
    r"online|shop|de|fr|es|jp|cn|uk|eu)(?:/[^\s<>\"']*)?", re.IGNORECASE)
_QUOTES = re.compile(
    r"\"[^\"\n]{1,400}\"|“[^”\n]{1,400}”|«[^»\n]{1,400}»|「[^」\n]{1,400}」|『[^』\n]{1,400}』"
    r"|„[^“”\n]{1,400}[“”]|(?<!\w)'[^'\n]{1,400}'(?!\w)|‘[^’\n]{1,400}’(?!\w)"
)


#: Longest run of punctuation, symbols or emoji handed to spaCy's tokenizer whole.
SYMBOL_RUN = 16
_SYMBOL_RUN = re.compile(rf"[^\w\s]{{{SYMBOL_RUN + 1},}}")
#: A necessary condition for one: as many code points in a row that are not ASCII word or
#: space characters (each of a run's is one). RE2's DFA answers in ~1 us where re tests
#: every character's Unicode category (~4 us a post), and nearly no post has such a run.
_SYMBOL_RUN_CANDIDATE = re2.compile(rf"[^A-Za-z0-9_\t\n\f\r ]{{{SYMBOL_RUN + 1}}}".encode())


def break_symbol_runs(text: str) -> str:
    """``text`` with a space for every 17th character of long punctuation or emoji runs.

    spaCy strips prefixes and suffixes one character at a time, searching the
    rest again each time, so a run of symbols costs quadratic time: 8,000
    '!' took 7 s, a 50,000-character post minutes. The length is kept, so
    character offsets still point into the raw text.
    """
    if len(text) <= SYMBOL_RUN or not _SYMBOL_RUN_CANDIDATE.search(
            text.encode("utf-8", "surrogatepass")):  # a lone surrogate: bytes that count more
        return text
    step = SYMBOL_RUN + 1
    return _SYMBOL_RUN.sub(lambda m: "".join(
        " " if i % step == SYMBOL_RUN else c for i, c in enumerate(m.group(0))), text)


def extract_hashtags(text: str) -> tuple[str, ...]:
    """Hashtags in the text, lower-case, without '#', in order, once each."""
    if "#" not in text and "＃" not in text:
        return ()
    return tuple(dict.fromkeys(m.lower() for m in _HASHTAG.findall(text)))


def extract_links(text: str) -> tuple[str, ...]:
    """URLs in the text, with bare domains ("getgpt4o.app/x") given a scheme."""
    found = _LINK.findall(text)
    rest = _LINK.sub(" ", text) if found else text
    if "." in rest:  # a bare link never spans whitespace: only words with a '.' can hold one
        found.extend("https://" + m.group(0) for word in rest.split() if "." in word
                     for m in _BARE_LINK.finditer(word))
    return tuple(dict.fromkeys(link.rstrip(".,;:!?") for link in found))


@lru_cache(maxsize=4096)
def domain_of(url: str) -> str:
    """The host of a URL, lower-case, without 'www.'; '' when there is none.

    Cached: moderation asks for each link's host up to three times a post
    (urlsplit ~1.5 us)."""
    try:
        host = urlsplit(url if "://" in url else "https://" + url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Character spans inside quotation marks: quoted speech, not the writer's own words."""
    return [m.span() for m in _QUOTES.finditer(text)]
