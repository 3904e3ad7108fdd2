"""monitor.tagging.compiler: patterns are checked at load, matchers built once per language."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.tagging import RulesetError, Tagger, compile_ruleset, load_ruleset

# -- refused patterns ------------------------------------------------------------

BAD_PATTERNS = [
    (8, "rule 'grief.unknown_attr': unknown token attribute 'COLOUR'; use one of IS_ALPHA, "),
    (12, "rule 'grief.pos': POS needs a trained pipeline, and the monitor tokenizes with blank "
         "ones; use LOWER, LEMMA, IS_* or LIKE_* instead"),
    (14, "rule 'grief.lookbehind': regex '(?<=i )miss 4o' does not compile: invalid perl "
         "operator: (?<=; RE2 has no look-around or back-references (it runs in linear time)"),
    (18, "rule 'grief.backref': regex '(miss) \\\\1' does not compile: invalid escape sequence: "
         "\\1; RE2 has no look-around or back-references"),
]


def test_bad_patterns_are_refused_with_file_and_line(rulesets: Path) -> None:
    ruleset = load_ruleset(rulesets / "bad_patterns")  # the loader has nothing against them

    with pytest.raises(RulesetError) as info:
        compile_ruleset(ruleset)

    problems = info.value.problems
    assert {Path(p.where.file).name for p in problems} == {"rules.yaml"}
    assert len(problems) == len(BAD_PATTERNS)  # '(a+)+$' is not among them
    for line, message in BAD_PATTERNS:
        assert [p.where.line for p in problems if p.message.startswith(message)] == [line], message


def _compile_problems(tmp_path: Path, rules: str, languages: str = "") -> list[tuple[int, str]]:
    (tmp_path / "rules.yaml").write_text(f"""\
{languages}labels:
  - label: grief
    layer: theme
    description: Missing the model.
    rules:
{rules}
    examples: {{match: [a, b, c], no_match: [d, e]}}
""", encoding="utf-8")
    with pytest.raises(RulesetError) as info:
        compile_ruleset(load_ruleset(tmp_path))
    return [(p.where.line, p.message) for p in info.value.problems]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('      - id: grief.op\n        tokens: [{LOWER: miss, OP: "x"}]',
         "rule 'grief.op': invalid token pattern: "),
        ("      - id: grief.lemma_regex\n        tokens: [{LEMMA: {REGEX: 'mis+'}}]",
         "rule 'grief.lemma_regex': LEMMA takes a word or {IN: [...]} / {NOT_IN: [...]}"),
        ("      - id: grief.mixed\n        tokens: [[{LOWER: miss}], oops]",
         "rule 'grief.mixed': a token pattern is a list of {ATTR: value} dicts"),
        ('      - id: grief.dep\n        tokens: [{dep: nsubj}]',
         "rule 'grief.dep': dep needs a trained pipeline"),
        ('      - id: grief.huge\n        lemmas: ["be be be be"]',
         "rule 'grief.huge': lemma phrase 'be be be be' expands to "),
    ],
    ids=["bad-op", "lemma-regex", "not-a-pattern", "dep-lowercase", "lemma-explosion"],
)
def test_more_refused_patterns(tmp_path: Path, rule: str, message: str) -> None:
    problems = _compile_problems(tmp_path, rule)

    assert [(line, msg[:len(message)]) for line, msg in problems] == [(7, message)]


def test_a_bad_pattern_is_reported_once_whatever_the_languages(tmp_path: Path) -> None:
    problems = _compile_problems(
        tmp_path, "      - id: grief.colour\n        tokens: [{COLOUR: blue}]",
        languages="languages: {en: {}, zh: {}, ja: {}}\n")

    assert len(problems) == 1


# -- regexes run in linear time ----------------------------------------------------


@pytest.fixture(scope="module")
def redos_tagger(rulesets: Path) -> Tagger:
    return Tagger(compile_ruleset(load_ruleset(rulesets / "redos")))


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("a" * 50_000 + "b", ()),
        ("a" * 50_000, ("spam.nested",)),
        ("x" * 50_000, ()),
        ("a" * 25_000 + "c", ("spam.overlap",)),
    ],
    ids=["a*50000+b", "a*50000", "x*50000", "a*25000+c"],
)
def test_catastrophic_backtracking_patterns_run_in_linear_time(
        redos_tagger: Tagger, text: str, fires: tuple[str, ...]) -> None:
    # Python's re needs seconds for '(a+)+$' on 25 a's and a 'b'; RE2 is linear.
    started = time.perf_counter()
    tags = redos_tagger.tag(text)
    elapsed = time.perf_counter() - started

    assert elapsed < 0.5
    assert tags.rule_hits == fires


def test_regex_is_case_insensitive_and_searched_in_raw_text(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("Day 100. 100 DAYS WITHOUT GPT-4O.").rule_hits == (
        "grief.days_without",)
    assert demo_tagger.tag("1 day without gpt4o").rule_hits == ("grief.days_without",)
    assert demo_tagger.tag("100 days with 4o").rule_hits == ()


SHARED_REGEX = """\
labels:
  - label: harassment
    layer: flag
    severity: medium
    description: Insults.
    rules:
      - id: harass.scam_call
        regex: ['\\bscam\\w*']
        weight: 2
    examples: {match: [a, b, c], no_match: [d, e]}
  - label: spam
    layer: flag
    severity: low
    description: Promotions.
    rules:
      - id: spam.scam_link
        regex: ['\\bfree\\s+\\w+', '\\bscam\\w*']
        weight: 2
        negation: false          # counts wherever it matched: its span is looked up late
    examples: {match: [a, b, c], no_match: [d, e]}
"""


def test_a_regex_shared_by_rules_is_searched_once_and_counts_for_each(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(SHARED_REGEX, encoding="utf-8")
    tagger = Tagger(compile_ruleset(load_ruleset(tmp_path)))

    tags = tagger.tag("Scammers! Free money at scam.example")

    assert len(tagger.compiled.regexes) == 2
    assert tags.rule_hits == ("harass.scam_call", "spam.scam_link")
    # each rule's evidence comes from the first of its own patterns that matched
    assert [(f.rule, f.evidence) for f in tags.flags] == [
        ("harass.scam_call", "Scammers"), ("spam.scam_link", "Free money")]


# -- lemmas ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["I talk to 4o", "I talked to 4o", "Talking to 4o again",
                                  "she talks to 4o"])
def test_lemma_rule_matches_inflections(demo_tagger: Tagger, text: str) -> None:
    assert demo_tagger.tag(text).rule_hits == ("comp.talk",)


@pytest.mark.parametrize("text", ["I walked to 4o", "talk about 4o", "talked to claude"])
def test_lemma_rule_needs_the_whole_phrase(demo_tagger: Tagger, text: str) -> None:
    assert demo_tagger.tag(text).rule_hits == ()


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("it understood me", "understood me"),
        ("it understands me", "understands me"),
        ("it always listened to me", "listened to me"),
        ("it hears to me", "hears to me"),
        ("4o really got me", "4o really got me"),  # OP "?" with a LEMMA
        ("it gets me", "it gets me"),
    ],
)
def test_lemma_in_token_patterns(demo_tagger: Tagger, text: str, evidence: str) -> None:
    [hit] = demo_tagger.explain(text).hits

    assert (hit.rule.id, hit.evidence, hit.dropped) == ("comp.understands", evidence, "")


def test_token_pattern_needs_every_token(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("it understood everything").rule_hits == ()
    assert demo_tagger.tag("it listened, to me").rule_hits == ()
    assert demo_tagger.tag("it truly gets me").rule_hits == ()


@pytest.mark.parametrize(("text", "fires"), [
    ("It saved me 8 hours a day", ("work.hours",)),
    ("It saved me eight hrs a day", ("work.hours",)),
    ("It saved me many hours a day", ()),
])
def test_token_pattern_with_like_num(demo_tagger: Tagger, text: str,
                                     fires: tuple[str, ...]) -> None:
    assert demo_tagger.tag(text).rule_hits == fires


# -- what gets built ---------------------------------------------------------------


def test_new_words_get_only_the_lexeme_attributes_the_rules_read(demo_tagger: Tagger) -> None:
    nlp = demo_tagger.compiled.pipelines["en"].nlp

    doc = nlp.make_doc("It saved me 73915 hours a day, Zyxwvut")

    number, word = doc[3], doc[-1]
    assert number.like_num  # work.hours reads LIKE_NUM
    assert demo_tagger.tag(doc.text).rule_hits == ("work.hours",)
    assert word.lower_ == "zyxwvut"  # the phrase matcher and negations read LOWER
    assert (word.shape_, word.is_alpha, word.is_title) == ("", False, False)  # no rule reads them


def test_one_pipeline_per_configured_language(demo_tagger: Tagger) -> None:
    compiled = demo_tagger.compiled

    assert list(compiled.pipelines) == ["en", "zh", "ja"]
    assert compiled.default_lang == "en"
    assert compiled.rules == demo_tagger.ruleset.all_rules()
