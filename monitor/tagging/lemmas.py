"""Lemma matching without a lemmatizer on the hot path.

spaCy's lookup lemmatizer maps each surface form to a lemma through a table
from spacy-lookups-data. Matching "lemma X" is therefore the same as
matching any surface form the table maps to X, plus X itself. We invert the
table once, for just the lemmas the rules use, and match those forms on
lower-case text: the same answers, with no per-token Python work per post.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import re2

__all__ = ["LemmaForms", "forms_for", "has_lemma_table"]

#: lemmas searched for in one scan of a table
_WORDS_PER_SCAN = 200


def _table_path(lang: str) -> Path | None:
    try:
        import spacy_lookups_data
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    path = Path(spacy_lookups_data.__file__).parent / "data" / f"{lang}_lemma_lookup.json.gz"
    return path if path.exists() else None


def has_lemma_table(lang: str) -> bool:
    """Whether spacy-lookups-data ships a lookup lemma table for ``lang``."""
    return _table_path(lang) is not None


def _raw_table(lang: str) -> bytes:
    path = _table_path(lang)
    if path is None:
        raise LookupError(lang)
    with gzip.open(path, "rb") as fh:
        return fh.read()


def _entries(raw: bytes, wanted: set[str]) -> Iterator[tuple[str, str]]:
    """(form, lemma) for the table's entries whose lemma, lower-cased, is wanted.

    A table is one JSON object, form -> lemma (French: -> a list of lemmas),
    ~1,000,000 entries: es, de and fr take ~100 MB each as a dict. One RE2
    scan of the raw bytes finds the wanted lemmas as values (a string
    followed by ',', ']', '}' or a line end, where a key is followed by ':')
    and reads each one's key back from there, so only the hits are built.
    """
    if b"\\" in raw:  # escapes: the scan below assumes none; read it properly
        for form, value in orjson.loads(raw).items():
            for lemma in (value,) if isinstance(value, str) else value:
                if lemma.lower() in wanted:
                    yield form, lemma
        return
    for match in _value_matches(raw, sorted(wanted)):
        lemma = match.group(1).decode()
        if lemma.lower() not in wanted:  # RE2's case folding is wider than str.lower
            continue
        colon = raw.rfind(b'":', 0, match.start())
        if colon < 0:
            continue
        form = raw[raw.rfind(b'"', 0, colon) + 1:colon].decode()
        yield form, lemma


def _value_matches(raw: bytes, words: list[str]) -> Iterator[Any]:
    """Matches of the words as values, case-insensitive, in groups small enough for RE2's
    DFA (one alternation of thousands of words exceeds its memory and crawls)."""
    options = re2.Options()
    options.log_errors = False
    for start in range(0, len(words), _WORDS_PER_SCAN):
        group = "|".join(re2.escape(w) for w in words[start:start + _WORDS_PER_SCAN])
        yield from re2.compile(f'"((?i:{group}))"\\s*[,\\]}}\\n]'.encode(), options).finditer(raw)


@lru_cache(maxsize=32)
def forms_for(lang: str, lemmas: frozenset[str]) -> LemmaForms:
    """LemmaForms, cached: recompiling the same ruleset (a refresh) reads no table again."""
    return LemmaForms(lang, lemmas)


class LemmaForms:
    """Surface forms per lemma for one language, built for the lemmas asked."""

    def __init__(self, lang: str, lemmas: Iterable[str]) -> None:
        wanted = {lemma.lower() for lemma in lemmas}
        self.forms: dict[str, set[str]] = {lemma: {lemma} for lemma in wanted}
        if wanted:
            for form, lemma in _entries(_raw_table(lang), wanted):
                self.forms[lemma.lower()].add(form.lower())

    def of(self, lemma: str) -> list[str]:
        """Every lower-case form that lemmatizes to ``lemma``, sorted for stable builds."""
        return sorted(self.forms.get(lemma.lower(), {lemma.lower()}))
