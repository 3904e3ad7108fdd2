"""Cheap language resolution: trust the platform, else look at script and function words.

A full language-identification model would cost more than tagging itself on
the firehose; the rules only need to know which tokenizer and which
language-specific rules to use, and most platforms send a language.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["OTHER", "detect_language", "normalize_lang", "resolve_language"]

OTHER = "other"
#: Codes platforms send for "unknown": detect instead (X sends "und", some "zxx").
_UNDETERMINED = frozenset({"und", "zxx", "mul", "xx"})

_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_WORD = re.compile(r"\b[^\W\d_]+\b")  # whole words only: the "o" of "4o" is not a word
#: the same on lower-case ASCII: a plain character set (re looks up no Unicode category)
_ASCII_WORD = re.compile(r"\b[a-z]+\b")

#: A few frequent, mostly unambiguous function words per Latin-script language.
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "and", "is", "are", "was", "this", "that", "with", "you", "my", "for", "not", "have", "it", "of", "to", "i", "we", "they", "what", "just", "been", "will", "can", "don't"]),
    "es": frozenset(["el", "la", "los", "las", "que", "y", "es", "en", "por", "para", "con", "una", "del", "al", "lo", "se", "mi", "pero", "más", "como", "está", "muy", "nos"]),
    "de": frozenset(["der", "die", "das", "und", "ist", "nicht", "ich", "wir", "mit", "ein", "eine", "auf", "für", "zu", "den", "dem", "es", "sie", "auch", "noch", "wie"]),
    "fr": frozenset(["le", "la", "les", "et", "est", "une", "des", "du", "pour", "pas", "que", "qui", "dans", "nous", "je", "vous", "avec", "sur", "ce", "cette", "mais", "très"]),
    "pt": frozenset(["o", "os", "as", "que", "não", "uma", "para", "com", "em", "do", "da", "dos", "é", "mais", "mas", "você"]),
    "it": frozenset(["il", "gli", "che", "non", "è", "una", "per", "con", "sono", "della", "di", "ma", "più", "anche"]),
}


def normalize_lang(code: str | None) -> str | None:
    """'en-US', 'EN', 'zh_Hant' -> 'en', 'en', 'zh'; None stays None."""
    if not code:
        return None
    return code.replace("_", "-").split("-", 1)[0].strip().lower() or None


def detect_language(text: str, candidates: Collection[str] = ()) -> str | None:
    """Guess from script, then function words; None when nothing speaks up.

    ``candidates`` is accepted for callers that know the configured set, but
    every known language votes, so Spanish text in an en-only ruleset is
    recognized as Spanish (and tagged as ``other``), not as English.
    """
    sample = text[:400].lower()
    if sample.isascii():  # no script to see: function words alone (~2x faster)
        words = _ASCII_WORD.findall(sample)
    else:
        if _KANA.search(sample):
            return "ja"
        if _HANGUL.search(sample):
            return "ko"
        if _HAN.search(sample):
            return "zh"
        words = _WORD.findall(sample)
    best, best_hits = None, 0
    for lang, vocab in _FUNCTION_WORDS.items():  # all of them: an unconfigured one means OTHER
        hits = sum(1 for w in words if w in vocab)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best


def resolve_language(platform_lang: str | None, text: str, configured: Collection[str],
                     default: str) -> str:
    """The language a post is tagged in: a configured code, or OTHER."""
    lang = normalize_lang(platform_lang)
    if lang in _UNDETERMINED:
        lang = None
    if lang is None:
        lang = detect_language(text, configured) or default
    return lang if lang in configured else OTHER
