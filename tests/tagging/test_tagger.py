"""monitor.tagging.tagger: weighted hits, thresholds, tiebreaks, drops, flags, reasons kept.

Each test tags a few plain sentences with a fixture ruleset (see conftest.py)
and says what the rule language promises for them; two hold the streaming
path's shortcuts to explain() on the shipped rules over a few thousand posts.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from monitor.bench.synth import open_vocabulary_posts, synthetic_posts
from monitor.model import Flag, LabelScore
from monitor.tagging import Tagger
from monitor.tagging.tagger import TAG_STEPS

SAMPLES = Path(__file__).parents[2] / "samples" / "stream.jsonl"


def labels(scores: tuple[LabelScore, ...]) -> list[str]:
    return [s.label for s in scores]


def dropped(tagger: Tagger, text: str, lang: str | None = None) -> list[tuple[str, str, str]]:
    return [(h.rule.id, h.dropped, h.evidence) for h in tagger.explain(text, lang).hits
            if h.dropped]


# -- scoring -----------------------------------------------------------------------


def test_one_weak_rule_stays_below_the_threshold(minimal_tagger: Tagger) -> None:
    e = minimal_tagger.explain("So sad today.")

    assert e.tags.themes == ()
    assert (e.decisions["grief"].score, e.decisions["grief"].threshold) == (1.0, 2.0)
    assert e.tags.rule_hits == ("grief.sad",)


def test_two_weak_rules_reach_it(minimal_tagger: Tagger) -> None:
    assert minimal_tagger.tag("So sad, crying all day.").themes == (
        LabelScore("grief", 2.0, ("grief.sad", "grief.cry")),)


def test_one_strong_rule_reaches_it(minimal_tagger: Tagger) -> None:
    assert minimal_tagger.tag("I miss 4o.").themes == (LabelScore("grief", 2.0, ("grief.miss",)),)


@pytest.mark.parametrize("text", ["sad sad sad", "Crying. Cry. Crying again."])
def test_a_rule_counts_once_per_post(minimal_tagger: Tagger, text: str) -> None:
    tags = minimal_tagger.tag(text)

    assert tags.themes == ()
    assert len(tags.rule_hits) == 1


def test_two_phrases_of_one_rule_count_once(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("We co-wrote songs; 4o was my writing partner.").themes == (
        LabelScore("creativity", 2.0, ("creat.partner",)),)


# -- the layer's maximum and its tiebreak ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "themes"),
    [
        # all four themes score 2: the stated order first, then names
        ("I miss 4o, my best friend, my writing partner, at work", ["grief", "companionship"]),
        ("My best friend, my writing partner, at work", ["companionship", "creativity"]),
        ("My writing partner at work", ["creativity", "workflow"]),
        # a higher score beats the order
        ("My best friend: I talked to 4o and it understood me. I miss 4o, my writing partner.",
         ["companionship", "grief"]),
    ],
)
def test_at_most_two_themes_by_score_then_order_then_name(demo_tagger: Tagger, text: str,
                                                           themes: list[str]) -> None:
    assert labels(demo_tagger.tag(text).themes) == themes


def test_a_capped_label_passes_but_is_not_given(demo_tagger: Tagger) -> None:
    e = demo_tagger.explain("I miss 4o, my best friend, my writing partner")

    assert e.decisions["creativity"].passes
    assert "creativity" not in labels(e.tags.themes)
    assert e.tags.shadow == ()  # capped is not shadow


@pytest.mark.parametrize(
    ("text", "claim"),
    [
        ("We paid for 4o and they silently swapped it.", LabelScore(
            "access", 2.0, ("access.paid_for",))),                     # tie: the order
        ("They silently swapped it, just tell us. We paid for 4o.", LabelScore(
            "transparency", 4.0, ("transp.tell_us", "transp.silent"))),  # higher score
    ],
)
def test_one_claim_at_most(demo_tagger: Tagger, text: str, claim: LabelScore) -> None:
    assert demo_tagger.tag(text).claim == claim


def test_two_reasons_allowed(demo_tagger: Tagger) -> None:
    # equal scores and no stated order: by name
    assert labels(demo_tagger.tag("Unfair! Release the weights.").reasons) == [
        "fairness", "open_source"]


# -- exclusions and dropped hits ---------------------------------------------------


def test_an_exclusion_vetoes_the_label(demo_tagger: Tagger) -> None:
    e = demo_tagger.explain("Best writing partner ever, use code SAVE10!")

    assert e.tags.themes == ()
    assert e.decisions["creativity"].score == 2.0
    assert e.decisions["creativity"].excluded_by == "creat.ad"
    assert e.tags.rule_hits == ("creat.partner", "creat.ad")


def test_a_negated_exclusion_does_not_veto(demo_tagger: Tagger) -> None:
    tags = demo_tagger.tag("Not sponsored, just my writing partner.")

    assert labels(tags.themes) == ["creativity"]
    assert dropped(demo_tagger, "Not sponsored, just my writing partner.") == [
        ("creat.ad", "negated", "sponsored")]


def test_a_negation_cue_drops_the_hit(demo_tagger: Tagger) -> None:
    text = "I don't miss 4o at all."

    assert demo_tagger.tag(text).themes == ()
    assert demo_tagger.tag(text).rule_hits == ()
    assert dropped(demo_tagger, text) == [("grief.miss", "negated", "miss 4o")]


@pytest.mark.parametrize(
    ("text", "given"),
    [
        ("Never miss 4o.", False),
        ("I do not truly miss 4o.", False),      # cue 2 tokens before
        ("Not that I miss 4o.", False),          # 3 tokens: still inside the window
        ("Not again. Sure, I miss 4o.", True),   # cue 6 tokens before: outside
        ("I miss 4o, not the new one.", True),   # a cue after the hit does not count
    ],
)
def test_negation_window(demo_tagger: Tagger, text: str, given: bool) -> None:
    assert bool(demo_tagger.tag(text).themes) is given


def test_negation_false_keeps_the_hit(demo_tagger: Tagger) -> None:
    tags = demo_tagger.tag("I can't afford Plus just to keep 4o.")

    assert tags.claim == LabelScore("access", 2.0, ("access.afford",))


def test_negation_in_chinese(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("我不想念4o", "zh").themes == ()
    assert dropped(demo_tagger, "我不想念4o", "zh") == [("grief.zh", "negated", "想念4o")]


def test_without_negation_cues_nothing_is_negated(minimal_tagger: Tagger) -> None:
    assert labels(minimal_tagger.tag("I don't miss 4o").themes) == ["grief"]


def test_the_phrase_matcher_finds_exactly_the_tokens_that_are_negation_cues(
        shipped_tagger: Tagger, stream_texts: list[str]) -> None:
    # the tagger reads cue positions from the phrase matcher's pass; the window's definition
    # is "a token whose lower case is a cue"
    texts = [*stream_texts, "NOT, n't, Nicht... jamás NADIE no-one cannot", "我不想念4o"]
    for code, pipe in shipped_tagger.compiled.pipelines.items():
        for text in texts:
            doc = pipe.nlp.make_doc(text)
            cues = [s for key, s, _ in pipe.phrases(doc) if key == pipe.negation_key]

            assert cues == [i for i, t in enumerate(doc) if t.lower_ in pipe.config.negations], \
                (code, text)


def test_the_stream_is_tagged_as_explain_tags_it(shipped_tagger: Tagger,
                                                 stream_texts: list[str]) -> None:
    # explain() looks every hit's place up; the stream skips that where it cannot matter
    # (a rule that counts anywhere, a post without a negation cue)
    items = [(text, None, ()) for text in stream_texts]

    assert shipped_tagger.tag_batch(items) == [shipped_tagger.explain(text).tags
                                               for text, _, _ in items]


def test_a_lap_callback_is_told_each_step_per_language_and_changes_nothing(
        demo_tagger: Tagger) -> None:
    items = [("I miss 4o so much", "en", ()), ("我想念4o", "zh", ()), ("bring back 4o", "en", ())]
    laps: list[str] = []

    tags = demo_tagger.tag_batch(items, laps.append)

    per_language = ["tokenize", "phrase match", "rules"]
    assert laps == ["language", "regex scan", *per_language, *per_language]
    assert set(laps) == set(TAG_STEPS)
    assert tags == demo_tagger.tag_batch(items)


@pytest.fixture(scope="module")
def stream_texts() -> list[str]:
    """Posts from samples/, the benchmark's campaign and open streams, and negated variants."""
    real = [orjson.loads(line)["text"] for line in SAMPLES.open("rb")][:1_500]
    campaign = [p["text"] for p in synthetic_posts(1_500, seed=11)]
    open_stream = [p["text"] for p in open_vocabulary_posts(500, seed=11)]
    rng = random.Random(1203)
    negated = []
    for text in real[:500] + campaign[:500]:
        words = text.split(" ")
        words.insert(rng.randrange(len(words) + 1), rng.choice(["not", "never", "no", "NOT"]))
        negated.append(" ".join(words))
    return real + campaign + open_stream + negated


@pytest.mark.parametrize(
    "text", ["They called us 'delusional' for missing 4o.", "They called us “delusional”.",
             'They said "go touch grass".'],
)
def test_quoted_drop_ignores_quoted_words(demo_tagger: Tagger, text: str) -> None:
    assert demo_tagger.tag(text).flags == ()
    assert [(rule, why) for rule, why, _ in dropped(demo_tagger, text)] == [
        ("harass.insult", "quoted")]


def test_quoted_drop_keeps_the_writers_own_words(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("You are all delusional.").flags == (
        Flag("harassment", "medium", "harass.insult", "delusional"),)


def test_quoted_keep_is_the_default(demo_tagger: Tagger) -> None:
    assert labels(demo_tagger.tag('She wrote "I miss 4o" on the wall').themes) == ["grief"]


# -- shadow ------------------------------------------------------------------------


def test_a_shadow_rule_is_counted_but_not_applied(shadow_tagger: Tagger) -> None:
    tags = shadow_tagger.tag("Heartbroken.")

    assert tags.themes == ()
    assert tags.rule_hits == ("grief.heartbroken",)
    assert tags.shadow == (LabelScore("grief", 2.0, ("grief.heartbroken",)),)
    assert tags.relevance == 0.0


def test_a_shadow_rule_adds_nothing_to_an_applied_label(shadow_tagger: Tagger) -> None:
    tags = shadow_tagger.tag("I miss 4o, heartbroken.")

    assert tags.themes == (LabelScore("grief", 2.0, ("grief.miss",)),)
    assert tags.rule_hits == ("grief.miss", "grief.heartbroken")
    assert tags.shadow == ()


def test_a_shadow_label_is_scored_but_not_given(shadow_tagger: Tagger) -> None:
    tags = shadow_tagger.tag("I am furious.")

    assert tags.themes == ()
    assert tags.shadow == (LabelScore("anger", 2.0, ("anger.furious",)),)
    assert tags.rule_hits == ("anger.furious",)


def test_a_shadow_label_below_threshold_is_not_reported(shadow_tagger: Tagger) -> None:
    assert shadow_tagger.tag("I am calm.").shadow == ()


# -- relevance and hashtag hijacking ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "relevance"),
    [
        ("Lovely sunset.", 0.0),
        ("Lovely sunset #keep4o", 0.2),               # hashtag
        ("gpt-4o is lovely", 0.3),                    # term
        ("This is so unfair.", 0.5),                  # a label, no term
        ("I miss 4o #keep4o", 1.0),                   # all three
        ("#KEEP4O and #OpenSource4o", 0.7),           # reason + hashtag: no term
    ],
)
def test_relevance(demo_tagger: Tagger, text: str, relevance: float) -> None:
    assert demo_tagger.tag(text).relevance == relevance


def test_relevance_below_flags_a_hijacked_hashtag(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("Buy my sneakers #keep4o").flags == (
        Flag("off_topic", "low", "offtopic.hijack", "relevance 0.20 < 0.3"),)


@pytest.mark.parametrize("text", ["Buy my sneakers", "Buy my sneakers, 4o fans",
                                  "I miss 4o #keep4o"])
def test_relevance_below_needs_a_marker_and_low_relevance(demo_tagger: Tagger, text: str) -> None:
    assert demo_tagger.tag(text).flags == ()


# -- hashtags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hashtags"),
    [("#OpenSource4o now", ()), ("Now ＃opensource4o", ()), ("Please", ("opensource4o",))],
    ids=["in-text-any-case", "full-width-hash", "from-platform"],
)
def test_hashtag_rule(demo_tagger: Tagger, text: str, hashtags: tuple[str, ...]) -> None:
    tags = demo_tagger.tag(text, hashtags=hashtags)

    assert tags.reasons == (LabelScore("open_source", 2.0, ("os.hashtag",)),)


def test_a_hashtag_rule_needs_the_hashtag_not_the_word(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("opensource4o is a nice word").reasons == ()


@pytest.mark.parametrize("platform_tag", ["OpenSource4o", "#opensource4o"])
def test_platform_hashtags_match_case_insensitively(demo_tagger: Tagger,
                                                    platform_tag: str) -> None:
    tags = demo_tagger.tag("Please", hashtags=(platform_tag,))

    assert tags.reasons == (LabelScore("open_source", 2.0, ("os.hashtag",)),)
    assert tags.relevance == 0.7


# -- languages ----------------------------------------------------------------------


def test_a_zh_only_phrase_does_not_fire_on_english(demo_tagger: Tagger) -> None:
    tags = demo_tagger.tag("I keep writing 想念4o on my wall", "en")

    assert tags.lang == "en"
    assert tags.rule_hits == ()


@pytest.mark.parametrize("lang", ["zh", "zh-CN", None])
def test_a_zh_only_phrase_fires_on_chinese(demo_tagger: Tagger, lang: str | None) -> None:
    tags = demo_tagger.tag("我每天都想念4o", lang)

    assert tags.lang == "zh"
    assert tags.themes == (LabelScore("grief", 2.0, ("grief.zh",)),)


@pytest.mark.parametrize(
    ("text", "platform", "lang"),
    [
        ("I miss 4o", "en-US", "en"),
        ("I miss 4o", "fr", "other"),
        ("4oがいなくて寂しい", None, "ja"),
        ("我想念4o", None, "zh"),
        ("I miss it and the way it was", None, "en"),
    ],
)
def test_language_resolution(demo_tagger: Tagger, text: str, platform: str | None,
                             lang: str) -> None:
    assert demo_tagger.tag(text, platform).lang == lang
    assert demo_tagger.language_of(text, platform) == lang


def test_other_languages_get_only_rules_for_every_language(demo_tagger: Tagger) -> None:
    assert demo_tagger.tag("miss 4o", "fr").themes == (LabelScore("grief", 2.0, ("grief.miss",)),)
    assert demo_tagger.tag("我想念4o", "ko").rule_hits == ()  # grief.zh is for zh only


def test_tag_batch_equals_tag_one_by_one(demo_tagger: Tagger) -> None:
    items = [
        ("I miss 4o #keep4o", None, ()),
        ("我每天都想念4o", "zh", ()),
        ("4oがいなくて寂しい", None, ()),
        ("Please", "en", ("opensource4o",)),
        ("miss 4o, unfair", "fr", ()),
        ("I don't miss 4o", "en-GB", ()),
        ("Claim your airdrop https://x.example/?ref=abc123", None, ()),
        ("我不想念4o", None, ()),
        ("They silently swapped 4o, go touch grass", None, ()),
    ]

    batch = demo_tagger.tag_batch(items)

    assert batch == [demo_tagger.tag(text, lang, tags) for text, lang, tags in items]
    assert [t.lang for t in batch] == ["en", "zh", "ja", "en", "other", "en", "en", "zh", "en"]
    assert demo_tagger.tag_batch([]) == []


# -- flags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("Claim your airdrop", Flag("spam", "low", "spam.airdrop", "airdrop")),
        ("Sign up https://x.example/?ref=abc123",
         Flag("spam", "high", "spam.referral", "ref=abc123")),
        # the strongest rule names the flag; the severity is the highest of all that fired
        ("Claim your airdrop https://x.example/?ref=abc123",
         Flag("spam", "high", "spam.airdrop", "airdrop")),
        ("Go touch grass", Flag("harassment", "medium", "harass.insult", "touch grass")),
    ],
)
def test_flags_carry_severity_rule_and_evidence(demo_tagger: Tagger, text: str,
                                                flag: Flag) -> None:
    assert demo_tagger.tag(text).flags == (flag,)


def test_a_flagged_post_keeps_its_themes(demo_tagger: Tagger) -> None:
    tags = demo_tagger.tag("I miss 4o. Claim your airdrop!")

    assert labels(tags.themes) == ["grief"]
    assert [f.kind for f in tags.flags] == ["spam"]


def test_several_flags_on_one_post(demo_tagger: Tagger) -> None:
    tags = demo_tagger.tag("Claim your airdrop, delusional people #keep4o")

    assert [(f.kind, f.severity) for f in tags.flags] == [
        ("spam", "low"), ("harassment", "medium"), ("off_topic", "low")]


def test_the_evidence_is_the_text_as_written(demo_tagger: Tagger) -> None:
    [flag] = demo_tagger.tag("FREE TOKENS for everyone").flags

    assert flag.evidence == "FREE TOKENS"
