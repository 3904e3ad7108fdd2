"""Lemma matching without a lemmatizer on the hot path.

spaCy's lookup lemmatizer maps each surface form to a lemma through a table
from spacy-lookups-data. Matching "lemma X" is therefore the same as
matching any surface form the table maps to X, plus X itself. We invert the
table once, for just the lemmas the rules use, and match those forms on
lower-case text: the same answers, with no per-token Python work per post.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import orjson

__all__ = ["LemmaForms", "forms_for", "has_lemma_table"]


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


def _table(lang: str) -> dict[str, str]:
    """The whole lookup table (es, de and fr: ~100 MB each as dicts): read, used, dropped,
    one language at a time, so compiling peaks at one table, not all of them."""
    path = _table_path(lang)
    if path is None:
        raise LookupError(lang)
    with gzip.open(path, "rb") as fh:
        return orjson.loads(fh.read())


@lru_cache(maxsize=32)
def forms_for(lang: str, lemmas: frozenset[str]) -> LemmaForms:
    """LemmaForms, cached: recompiling the same ruleset (a refresh) reads no table again."""
    return LemmaForms(lang, lemmas)


class LemmaForms:
    """Surface forms per lemma for one language, built for the lemmas asked."""

    def __init__(self, lang: str, lemmas: Iterable[str]) -> None:
        wanted = {lemma.lower() for lemma in lemmas}
        self.forms: dict[str, set[str]] = {lemma: {lemma} for lemma in wanted}
        for form, value in _table(lang).items():
            # most tables map a form to one lemma; French maps it to a list of them
            for lemma in (value,) if isinstance(value, str) else value:
                lemma = lemma.lower()
                if lemma in wanted:
                    self.forms[lemma].add(form.lower())

    def of(self, lemma: str) -> list[str]:
        """Every lower-case form that lemmatizes to ``lemma``, sorted for stable builds."""
        return sorted(self.forms.get(lemma.lower(), {lemma.lower()}))
