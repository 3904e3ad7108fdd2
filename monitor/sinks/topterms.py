"""Top terms: a bounded, decaying top-k of content words per language.

Organizers liked learning that "love" was the word most #keep4o posts used.
This keeps that answer live and cheap enough for the firehose: per language
(each configured word-tokenized language, plus ``other``) a space-saving
sketch of how many posts used each content word, with exponential decay in
event time (half-life one hour by default), exposed as the gauge
``social_top_terms{lang,term}``.

* **Content words**: lower-case alphabetic words of at least 3 letters; a
  whitespace token containing a digit, ``@``, ``#`` or a URL is dropped whole;
  spaCy's stop words of the post's language (and English's, which mixed posts
  borrow: "the" is no French content word), the campaign's own words (every
  word of the ruleset's hashtags and terms) and an extra, configurable stop
  list are removed. A word counts once per post (posts using it, not
  occurrences: one post repeating "love" ten times is one post).
* **Bounded**: at most ``capacity`` terms per language. When a new term finds
  the table full, the table is pruned to its ``capacity // 2`` largest
  entries (amortized O(log capacity) per new term, instead of a scan per
  eviction) and a newcomer starts at the largest evicted count (the
  space-saving rule: an estimate overcounts by at most that floor, and a term
  that becomes frequent late still climbs into the top).
* **Decay**: forward decay. A post at event time ``t`` adds
  ``2 ** ((t - landmark) / half_life)``; the exposed value is the stored sum
  times ``2 ** ((landmark - now) / half_life)``, where ``now`` is the newest
  event time seen. Nothing is touched per tick; the landmark moves (all counts
  rescaled) when weights grow too large. Event times are clamped to the
  processing time plus ``max_future`` so one post with a bogus date cannot
  age everything else away.
* **Exposed**: the top ``k`` per language, refreshed at most once every
  ``publish_interval`` seconds (not per post); a term that drops out of the
  top k is removed from the gauge, so the label set stays bounded by
  ``k`` x (languages + 1).

Languages tokenized per character (``tokenizer: char``, e.g. zh, ja) have no
word boundaries without a segmenter and are not counted.
"""

from __future__ import annotations

import heapq
import importlib.util
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from monitor.model import TaggedPost
from monitor.tagging.language import OTHER
from monitor.tagging.ruleset import Ruleset

__all__ = [
    "DEFAULT_EXTRA_STOP_WORDS",
    "DecayingTopK",
    "TopTerms",
    "TopTermsSettings",
    "campaign_words",
    "content_words",
    "spacy_stop_words",
]

#: Fragments that English contractions leave behind ("don't" -> "don") and
#: social-media filler that spaCy's lists do not have.
DEFAULT_EXTRA_STOP_WORDS = frozenset({
    "don", "doesn", "didn", "isn", "aren", "wasn", "weren", "won", "wouldn", "couldn",
    "shouldn", "hasn", "haven", "hadn", "ain", "let", "lol", "lmao", "omg", "amp", "via",
    "http", "https", "www", "com",
})

#: A whitespace token with any of these is not a word: numbers, mentions, hashtags, URLs
#: (a slash, a leading www., a domain such as example.shop).
_NOT_A_WORD = re.compile(r"[\d@#/]|^www\.|[^\W_]\.[^\W\d_]{2,}")
#: Stripped from both ends of a token before it is looked at.
_PUNCTUATION = "\"'“”‘’„«»‹›.,;:!?¿¡()[]{}<>…*_~-–—|"
_LETTERS = re.compile(r"[^\W\d_]{3,}")
_LANG_CODE = re.compile(r"[a-z]{2,3}")
#: Renormalize when the newest weight exceeds 2**this (doubles reach 2**1023).
_RENORMALIZE_AT = 64.0
#: A weight below 2**this is nothing (doubles end near 2**-1074).
_WEIGHTLESS = -1000.0
#: Languages (outside the ruleset) whose stop words are cached; beyond, the union is used.
_MAX_STOP_CACHE = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class TopTermsSettings:
    """How many terms are kept and shown, how fast they fade, what is never a term."""

    #: terms exposed per language
    k: int = 20
    #: terms tracked per language (the memory bound)
    capacity: int = 200
    #: seconds of event time for a count to halve
    half_life: float = 3600.0
    #: the gauge is refreshed at most this often (seconds)
    publish_interval: float = 1.0
    #: event times are clamped to processing time plus this (seconds)
    max_future: float = 300.0
    #: removed on top of spaCy's stop words and the campaign's words
    extra_stop_words: frozenset[str] = DEFAULT_EXTRA_STOP_WORDS
    #: languages whose stop words apply to every post (posts mix in English)
    shared_stop_languages: tuple[str, ...] = ("en",)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"top terms: k={self.k}: show at least 1 term")
        if self.capacity < 2 * self.k:
            raise ValueError(f"top terms: capacity={self.capacity} must be at least 2*k "
                             f"({2 * self.k}) so the top k survive a prune")
        if not self.half_life > 0:
            raise ValueError(f"top terms: half_life={self.half_life}: use seconds > 0")
        if self.publish_interval < 0 or self.max_future < 0:
            raise ValueError("top terms: publish_interval and max_future must be >= 0")


def content_words(text: str, stop: frozenset[str]) -> set[str]:
    """The distinct content words of ``text`` (see the module doc), ``stop`` removed."""
    words: set[str] = set()
    add = words.add
    for token in text.lower().split():
        if not token.isalpha():
            token = token.strip(_PUNCTUATION)
            if not token.isalpha():  # inner punctuation ("don't", "e-mail") or not a word
                if not _NOT_A_WORD.search(token):
                    words.update(_LETTERS.findall(token))
                continue
        if len(token) >= 3:
            add(token)
    return words - stop


def campaign_words(ruleset: Ruleset) -> frozenset[str]:
    """Every alphabetic word (3+ letters) of the campaign's hashtags and terms."""
    found: set[str] = set()
    for phrase in (*ruleset.campaign.hashtags, *ruleset.campaign.terms):
        found.update(_LETTERS.findall(phrase.lower()))
    return frozenset(found)


def spacy_stop_words(code: str) -> frozenset[str]:
    """spaCy's STOP_WORDS for a language code (no model needed); empty when spaCy has none.

    Its file is run alone, not imported as ``spacy.lang.CODE.stop_words``: that
    would import all of spaCy (~77 MiB) into a process that may never tag."""
    if not _LANG_CODE.fullmatch(code):
        return frozenset()
    package = importlib.util.find_spec("spacy")  # found, not imported
    if package is None or not package.submodule_search_locations:
        return frozenset()
    path = Path(package.submodule_search_locations[0]) / "lang" / code / "stop_words.py"
    spec = importlib.util.spec_from_file_location(f"_spacy_stop_words_{code}", path)
    if spec is None or spec.loader is None or not path.is_file():
        return frozenset()
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return frozenset(w.lower() for w in getattr(module, "STOP_WORDS", ()))


class DecayingTopK:
    """Space-saving heavy hitters with forward exponential decay, at most ``capacity`` terms."""

    __slots__ = ("_counts", "_floor", "_keep", "_landmark", "capacity", "half_life")

    def __init__(self, *, capacity: int = 200, half_life: float = 3600.0) -> None:
        if capacity < 2:
            raise ValueError(f"capacity={capacity}: track at least 2 terms")
        if not half_life > 0:
            raise ValueError(f"half_life={half_life}: use seconds > 0")
        self.capacity = capacity
        self.half_life = half_life
        self._keep = capacity // 2
        #: term -> forward-decayed count, in units of the landmark
        self._counts: dict[str, float] = {}
        #: the largest count ever evicted (same units): a newcomer starts there
        self._floor = 0.0
        self._landmark: float | None = None

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, term: object) -> bool:
        return term in self._counts

    def add(self, terms: Iterable[str], t: float) -> None:
        """Count one post at event time ``t`` (seconds) that used ``terms``."""
        if self._landmark is None:
            self._landmark = t
        exponent = (t - self._landmark) / self.half_life
        if exponent > _RENORMALIZE_AT:
            self._move_landmark(t)
            exponent = 0.0
        elif exponent < _WEIGHTLESS:  # a post older than ~1000 half-lives adds nothing
            return
        weight = 2.0 ** exponent
        counts, capacity = self._counts, self.capacity
        for term in terms:
            count = counts.get(term)
            if count is None:
                if len(counts) >= capacity:
                    self._prune()
                counts[term] = self._floor + weight
            else:
                counts[term] = count + weight

    def top(self, k: int, now: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` largest estimates, decayed to event time ``now`` (default: the landmark)."""
        if not self._counts:
            return []
        assert self._landmark is not None
        scale = 1.0 if now is None else 2.0 ** ((self._landmark - now) / self.half_life)
        best = heapq.nsmallest(k, self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(term, count * scale) for term, count in best]

    def estimate(self, term: str, now: float | None = None) -> float:
        """One term's decayed estimate (0 when not tracked)."""
        count = self._counts.get(term, 0.0)
        if not count or now is None or self._landmark is None:
            return count
        return count * 2.0 ** ((self._landmark - now) / self.half_life)

    def floor(self, now: float | None = None) -> float:
        """The most an estimate can overcount (decayed to ``now``): the largest evicted count."""
        if not self._floor or now is None or self._landmark is None:
            return self._floor
        return self._floor * 2.0 ** ((self._landmark - now) / self.half_life)

    def _prune(self) -> None:
        """Keep the largest half; remember the largest count that was dropped."""
        counts = self._counts  # pruned in place: add() holds a reference
        ranked = sorted(counts.items(), key=itemgetter(1), reverse=True)
        self._floor = max(self._floor, ranked[self._keep][1])
        for term, _count in ranked[self._keep:]:
            del counts[term]

    def _move_landmark(self, t: float) -> None:
        """Make ``t`` the landmark: every count rescaled (or dropped, when far too old)."""
        assert self._landmark is not None
        exponent = (self._landmark - t) / self.half_life
        if exponent < _WEIGHTLESS:
            self._counts.clear()
            self._floor = 0.0
        else:
            factor = 2.0 ** exponent
            for term, count in self._counts.items():
                self._counts[term] = count * factor
            self._floor *= factor
        self._landmark = t


class TopTerms:
    """Per-language top terms of a ruleset's posts, exposed as ``social_top_terms{lang,term}``."""

    def __init__(self, ruleset: Ruleset, *, registry: CollectorRegistry | None = None,
                 settings: TopTermsSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings if settings is not None else TopTermsSettings()
        self.gauge = Gauge("social_top_terms",
                           "Posts using a content word (decayed, half-life in event time); "
                           "the top k per language.",
                           ["lang", "term"], registry=registry)
        self._clock = clock
        self._published = float("-inf")
        self._exposed: set[tuple[str, str]] = set()
        self._sketches: dict[str, DecayingTopK] = {}
        self._stop: dict[str, frozenset[str]] = {}
        #: campaign words, the extra list and the shared languages' stop words: every post
        self._common_stop: frozenset[str] = frozenset()
        #: for a post of unknown language: every configured language's stop words too
        self._unknown_stop: frozenset[str] = frozenset()
        self._skip: frozenset[str] = frozenset()
        #: the newest (clamped) event time seen, the "now" counts are decayed to
        self.now: float | None = None
        self.set_ruleset(ruleset)

    def set_ruleset(self, ruleset: Ruleset) -> None:
        """Languages and campaign words follow a (re)loaded ruleset; counts are kept."""
        s = self.settings
        words = [lang for lang, conf in ruleset.languages.items() if conf.tokenizer != "char"]
        self._skip = frozenset(lang for lang, conf in ruleset.languages.items()
                               if conf.tokenizer == "char")
        common = campaign_words(ruleset) | s.extra_stop_words
        common = common.union(*(spacy_stop_words(lang) for lang in s.shared_stop_languages))
        own = {lang: spacy_stop_words(lang) for lang in words}
        self._common_stop = common
        self._unknown_stop = common.union(*own.values())
        self._stop = {lang: common | own[lang] for lang in words}
        for lang in (*words, OTHER):
            if lang not in self._sketches:
                self._sketches[lang] = DecayingTopK(capacity=s.capacity, half_life=s.half_life)
        for lang in set(self._sketches) - {*words, OTHER}:
            del self._sketches[lang]  # a language the new ruleset dropped: unpublished below

    def stop_words(self, lang: str | None) -> frozenset[str]:
        """Stop words for a post's language (spaCy's list for unconfigured ones too)."""
        if lang is None:
            return self._unknown_stop
        stop = self._stop.get(lang)
        if stop is None:
            own = spacy_stop_words(lang)
            stop = self._common_stop | own if own else self._unknown_stop
            if len(self._stop) < len(self._sketches) + _MAX_STOP_CACHE:
                self._stop[lang] = stop
        return stop

    def observe(self, lang: str | None, text: str, created_at: float,
                processed_at: float | None = None) -> None:
        """Count one post (``lang`` as resolved by the tagger, times in epoch seconds)."""
        if lang in self._skip:
            return
        t = created_at
        if processed_at is not None:
            t = min(t, processed_at + self.settings.max_future)
        words = content_words(text, self.stop_words(lang))
        if self.now is None or t > self.now:
            self.now = t
        if words:
            sketch = self._sketches.get(lang) if lang else None
            if sketch is None:
                sketch = self._sketches[OTHER]
            sketch.add(words, t)

    def record(self, batch: Iterable[TaggedPost], now: float | None = None) -> None:
        """Count a processed batch, then refresh the gauge if it is due."""
        wall = time.time() if now is None else now
        observe = self.observe
        for tagged in batch:
            observe(tagged.tags.lang, tagged.post.text, tagged.post.created_at.timestamp(), wall)
        self.publish()

    def top(self, lang: str) -> list[tuple[str, float]]:
        """The current top k of one language bucket, decayed to the newest event time."""
        sketch = self._sketches.get(lang)
        return sketch.top(self.settings.k, self.now) if sketch is not None else []

    def publish(self, *, force: bool = False) -> bool:
        """Set the gauge to the current top k; remove terms that dropped out. At most once per
        ``publish_interval`` unless ``force``; returns whether it ran."""
        moment = self._clock()
        if not force and moment - self._published < self.settings.publish_interval:
            return False
        self._published = moment
        current: set[tuple[str, str]] = set()
        gauge = self.gauge
        for lang in self._sketches:
            for term, value in self.top(lang):
                gauge.labels(lang, term).set(round(value, 3))
                current.add((lang, term))
        for stale in self._exposed - current:
            gauge.remove(*stale)
        self._exposed = current
        return True
