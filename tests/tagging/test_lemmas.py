"""monitor.tagging.lemmas: lemma matching by inverting spaCy's lookup table."""

from __future__ import annotations

from monitor.tagging.lemmas import LemmaForms, has_lemma_table


def test_forms_of_a_lemma_are_its_inflections() -> None:
    forms = LemmaForms("en", ["Talk", "miss"])

    assert forms.of("talk") == ["talk", "talked", "talking", "talks"]
    assert forms.of("MISS") == ["miss", "missed", "misses", "missing"]


def test_a_word_not_asked_for_stands_for_itself() -> None:
    assert LemmaForms("en", ["talk"]).of("4o") == ["4o"]


def test_lemma_tables_exist_for_latin_languages_not_for_chinese() -> None:
    assert has_lemma_table("en") and has_lemma_table("es") and has_lemma_table("de")
    assert not has_lemma_table("zh")
