"""The stateful detectors, through Moderator.moderate, with real Posts and Tags on a timeline.

Tags are what the content rules would have said (built directly), except in
the last section, where the real tagger on the shipped ruleset says it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from monitor.model import Flag, Post
from monitor.moderation.detectors import (
    DETECTORS,
    ModerationState,
    Observed,
    author_burst,
    hashtag_stuffing,
    near_duplicate,
    registrable_domain,
)
from monitor.moderation.moderator import Moderator, merge_flags
from monitor.processor import Processor
from monitor.sinks.metrics import Metrics
from monitor.tagging import Ruleset, Tagger
from tests.moderation.conftest import CONTENT_SPAM, OFF_CAMPAIGN, ON_CAMPAIGN
from tests.moderation.synth import unique_text

Make = Callable[..., Post]
Moderate = Callable[..., list[tuple[Flag, ...]]]

#: A promotion the way bots vary it: the link, a mention, the emoji.
FLOOD = [
    "Get GPT-4o back at https://gpt4o-back.app/?ref={i}x 🔥 unlimited, no subscription #keep4o",
    "@sama Get GPT-4o back at https://get.gpt4o-back.app/r/a{i} ✅ unlimited, no subscription #keep4o",
    "Get GPT-4o back at gpt4o-back.app/?u={i} 🚀 unlimited, no subscription #keep4o #gpt4o",
]
COPYPASTA = "Day 197 without 4o. We are still here. #keep4o"


def flood(make: Make, n: int, *, every: float = 20.0, start: float = 0.0) -> list[Post]:
    """``n`` flood posts from ``n`` different bots, ``every`` seconds apart."""
    return [make(FLOOD[i % 3].format(i=i), at=start + i * every, author=f"bot{i}")
            for i in range(n)]


def rules(flags: list[tuple[Flag, ...]]) -> list[str | None]:
    """The rule of each post's one flag, None for a post with none."""
    assert all(len(f) <= 1 for f in flags), flags
    return [f[0].rule if f else None for f in flags]


# -- near-duplicate floods ------------------------------------------------------------------


def test_a_promotion_flood_is_flagged_from_the_nth_post_on(post: Make, moderator: Callable[..., Moderator],
                                                           moderate: Moderate) -> None:
    flags = moderate(moderator(), flood(post, 12))
    assert rules(flags) == [None] * 7 + ["moderation.near_duplicate"] * 5
    eighth = flags[7][0]
    assert (eighth.kind, eighth.severity) == ("spam", "medium")
    assert eighth.detail == {"cluster_size": 8, "authors": 8}
    assert eighth.evidence == FLOOD[7 % 3].format(i=7)[:120]
    assert [f[0].detail["cluster_size"] for f in flags[7:]] == [8, 9, 10, 11, 12]  # type: ignore[index]


def test_min_posts_sets_where_a_flood_starts(post: Make, moderator: Callable[..., Moderator],
                                             moderate: Moderate) -> None:
    flags = moderate(moderator(near_duplicate_min_posts=3), flood(post, 5))
    assert rules(flags) == [None, None, "moderation.near_duplicate", "moderation.near_duplicate",
                            "moderation.near_duplicate"]


def test_a_flood_on_the_campaigns_topics_is_flagged_all_the_same(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    flags = moderate(moderator(), flood(post, 10), ON_CAMPAIGN)
    assert rules(flags)[7:] == ["moderation.near_duplicate"] * 3


def test_a_flood_spread_wider_than_the_window_is_not_a_flood(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    flags = moderate(moderator(), flood(post, 30, every=100.0))  # six posts per 600 s
    assert rules(flags) == [None] * 30


def test_on_campaign_copypasta_without_links_is_collective_action(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    posts = [post(COPYPASTA + (" ✊" if i % 2 else ""), at=i * 5, author=f"fan{i}")
             for i in range(80)]
    assert rules(moderate(moderator(), posts, ON_CAMPAIGN)) == [None] * 80


def test_a_large_cluster_off_the_campaigns_topics_is_flagged_without_a_link(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    posts = [post("Great deals on sneakers this weekend only #keep4o", at=i * 5, author=f"a{i}")
             for i in range(60)]
    flags = moderate(moderator(), posts, OFF_CAMPAIGN)
    assert rules(flags) == [None] * 49 + ["moderation.near_duplicate"] * 11
    assert flags[49][0].detail["cluster_size"] == 50  # type: ignore[index]


def test_a_content_spam_rule_agreeing_makes_a_linkless_cluster_a_flood(post: Make) -> None:
    """Seen at the detector: through the Moderator the content rule's own flag is kept instead."""
    state = Moderator(salt=b"s").state
    flags = []
    for i in range(8):
        item = post("Follow for follow, I follow back everyone #keep4o", at=i * 5, author=f"a{i}")
        flags.append(near_duplicate(state, Observed(item, CONTENT_SPAM, i * 5.0, (), (), None)))
    assert flags[:7] == [None] * 7
    assert flags[7] is not None and flags[7].rule == "moderation.near_duplicate"


# -- link promotion ------------------------------------------------------------------------


def test_one_untrusted_domain_pushed_by_many_posts_is_flagged(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    posts = [post(f"{unique_text(i)} https://{['', 'www.', 'try.'][i % 3]}free4o.chat/p/{i}",
                  at=i * 10, author=f"a{i}") for i in range(25)]
    flags = moderate(moderator(), posts)
    assert rules(flags) == [None] * 19 + ["moderation.link_promotion"] * 6
    twentieth = flags[19][0]
    assert twentieth.evidence == "free4o.chat"
    assert twentieth.detail == {"domain": "free4o.chat", "posts": 20}


def test_people_sharing_a_site_about_the_campaign_are_not_promoting_it(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    posts = [post(f"{unique_text(i)} https://keep4o-stories.net/{i}", at=i * 10, author=f"a{i}")
             for i in range(25)]
    assert rules(moderate(moderator(), posts, ON_CAMPAIGN)) == [None] * 25


def test_the_link_field_counts_like_a_link_in_the_text(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    posts = [post(unique_text(i), at=i, author=f"a{i}", links=(f"https://free4o.chat/{i}",))
             for i in range(20)]
    assert rules(moderate(moderator(), posts))[-1] == "moderation.link_promotion"


TRUSTED = [
    "https://www.change.org/p/openai-keep-gpt-4o", "https://chng.it/AbCd3",
    "https://www.openpetition.de/petition/online/gpt-4o", "https://forms.gle/x1Y2",
    "https://www.theverge.com/ai/123/openai-gpt-4o", "https://www.bbc.co.uk/news/technology-1",
    "https://news.bbc.co.uk/2/hi/technology/1.stm", "https://www.reuters.com/technology/openai-1/",
    "https://bsky.app/profile/a.bsky.social/post/3l", "https://x.com/a/status/19",
    "https://youtu.be/abc", "https://m.youtube.com/watch?v=abc", "https://www.reddit.com/r/ChatGPT/",
    "https://openai.com/index/gpt-4o/", "https://help.openai.com/en/articles/1",
    "https://arxiv.org/abs/2508.1", "https://github.com/a/b", "https://chatgpt.com/share/1",
    "https://petition.parliament.uk/petitions/700001",
    "https://petitions.whitehouse.gov/petition/keep-4o",
    "https://citizens-initiative.europa.eu/initiatives/details/2026/000001",
]
def _trusted_param(url: str) -> str:
    """Subdomain entries (petition.parliament.uk), change.org's short links and
    chatgpt.com/share conversations are all trusted: none is ever promotion."""
    return url


@pytest.mark.parametrize("url", [_trusted_param(u) for u in TRUSTED])
def test_petitions_news_and_platforms_are_never_promotion(
        url: str, post: Make, moderate: Moderate, shipped_ruleset: Ruleset) -> None:
    """Thirty off-topic posts with the link and thirty copies of one share text: no flag."""
    mod = Moderator(shipped_ruleset.moderation, shipped_ruleset.campaign.trusted_domains)
    distinct = [post(f"{unique_text(i)} {url}{i}", at=i * 5, author=f"a{i}") for i in range(30)]
    shared = [post(f"I just signed, please sign and share {url}{i}", at=200 + i * 5,
                   author=f"b{i}") for i in range(30)]
    assert rules(moderate(mod, distinct + shared)) == [None] * 60


@pytest.mark.parametrize(("host", "registrable"), [
    ("get.4o-back.app", "4o-back.app"), ("news.bbc.co.uk", "bbc.co.uk"), ("x.com", "x.com"),
    ("a.b.example.com.au", "example.com.au"), ("localhost", "localhost"),
])
def test_registrable_domain(host: str, registrable: str) -> None:
    assert registrable_domain(host) == registrable


# -- per-author bursts ------------------------------------------------------------------------


def test_an_author_posting_faster_than_the_rate_is_flagged_and_never_named(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    handle = "maria_4o.bsky.social"
    posts = [post(unique_text(i), at=i * 5, author=handle) for i in range(12)]  # 12 in 55 s
    flags = moderate(moderator(), posts)
    assert rules(flags) == [None] * 10 + ["moderation.author_burst"] * 2
    flag = flags[10][0]
    assert (flag.kind, flag.severity, flag.evidence) == ("spam", "low", "")
    assert flag.detail == {"posts": 11, "seconds": 60.0}
    assert "maria" not in repr(flags)


def test_posting_at_the_rate_or_slower_is_fine(post: Make, moderator: Callable[..., Moderator],
                                               moderate: Moderate) -> None:
    at_the_rate = [post(unique_text(i), at=i * 6, author="fast") for i in range(10)]
    slower = [post(unique_text(100 + i), at=i * 6.1, author="steady") for i in range(40)]
    anonymous = [post(unique_text(200 + i), at=i, author=None) for i in range(30)]
    assert rules(moderate(moderator(), [*at_the_rate, *slower, *anonymous])) == [None] * 80


def test_author_burst_settings(post: Make, moderator: Callable[..., Moderator],
                               moderate: Moderate) -> None:
    mod = moderator(author_burst_max_posts=3, author_burst_seconds=10.0)
    posts = [post(unique_text(i), at=t, author="a") for i, t in enumerate([0, 2, 4, 6, 20, 22, 24])]
    assert rules(moderate(mod, posts)) == [None, None, None, "moderation.author_burst",
                                           None, None, None]


def test_authors_are_hashed_with_the_moderators_salt(post: Make) -> None:
    """Two moderators with different salts keep no handle and agree on nothing but counts."""
    posts = [post(unique_text(i), at=i, author="maria") for i in range(11)]
    state_a = Moderator(salt=b"one").state
    state_b = Moderator(salt=b"two").state
    for item in posts:
        obs = Observed(item, OFF_CAMPAIGN, item.created_at.timestamp(), (), (), None)
        author_burst(state_a, obs)
        author_burst(state_b, obs)
    assert len(state_a.authors) == len(state_b.authors) == 1
    assert state_a.authors.count("maria", 11) == 0


# -- hashtag stuffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "platform_tags", "flagged"), [
    ("#keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral", (), True),
    ("#keep4o #gpt4o #ai #chatgpt #openai #tech #love", (), False),  # 7 hashtags
    ("follow me #keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral", (), True),
    ("please follow me for more daily posts #keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral",
     (), False),  # 7 words
    ("@a @b https://x.io/1 #keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral 2026", (), True),
    ("#keep4o #gpt4o #ai #chatgpt", ("tech", "love", "viral", "fyp"), True),
    ("#Keep4o #GPT4o #AI #ChatGPT", ("keep4o", "gpt4o", "ai", "chatgpt"), False),  # the same 4
])
def test_hashtag_stuffing(text: str, platform_tags: tuple[str, ...], flagged: bool, post: Make,
                          moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    flags = moderate(moderator(), [post(text, hashtags=platform_tags)])
    assert rules(flags) == (["moderation.hashtag_stuffing"] if flagged else [None])


def test_hashtag_stuffing_detail_counts_hashtags_and_unique_text(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    text = "wow #keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral #fyp"
    [(flag,)] = moderate(moderator(), [post(text)])
    assert flag.detail == {"hashtags": 9, "words": 1}


# -- merging and isolation --------------------------------------------------------------------


def test_a_post_carries_at_most_one_flag_per_kind(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    """A bot repeating a stuffed promotion: flood, burst and stuffing all fire, one flag stays."""
    text = "https://gpt4o-back.app/?ref={i} #keep4o #gpt4o #ai #chatgpt #openai #tech #love #viral"
    posts = [post(text.format(i=i), at=i * 2, author="bot") for i in range(12)]
    flags = moderate(moderator(), posts)
    assert all(len(f) == 1 for f in flags)
    assert rules(flags) == ["moderation.hashtag_stuffing"] * 7 + ["moderation.near_duplicate"] * 5
    assert flags[-1][0].severity == "medium"  # the most severe of the three kept


def test_a_kind_the_content_rules_raised_is_not_raised_again(
        post: Make, moderator: Callable[..., Moderator], moderate: Moderate) -> None:
    flags = moderate(moderator(), flood(post, 12), CONTENT_SPAM)
    assert flags == [()] * 12


def test_merge_flags_keeps_the_most_severe_per_kind_and_defers_to_content_rules() -> None:
    low = Flag("spam", "low", "moderation.author_burst")
    medium = Flag("spam", "medium", "moderation.near_duplicate")
    other_medium = Flag("spam", "medium", "moderation.link_promotion")
    harassment = Flag("harassment", "medium", "moderation.pile_on")
    assert merge_flags((), [low, medium, other_medium]) == (medium,)  # the first of equals
    assert merge_flags((), [low, harassment]) == (low, harassment)
    assert merge_flags([Flag("spam", "low", "spam.link")], [medium, harassment]) == (harassment,)
    assert merge_flags([], []) == ()


def broken(state: ModerationState, item: Observed) -> Flag | None:
    """A detector with a bug in it."""
    raise ZeroDivisionError("division by zero")


def test_a_detector_that_raises_is_counted_and_the_others_still_run(
        post: Make, moderate: Moderate, caplog: pytest.LogCaptureFixture) -> None:
    mod = Moderator(detectors=(broken, near_duplicate, author_burst, hashtag_stuffing))
    with caplog.at_level(logging.ERROR, logger="monitor.moderation.moderator"):
        flags = moderate(mod, flood(post, 10))
    assert mod.errors == 10
    assert rules(flags)[7:] == ["moderation.near_duplicate"] * 3
    assert "detector broken failed on post test:1" in caplog.text


def test_the_built_in_detectors_in_order() -> None:
    assert [d.__name__ for d in DETECTORS] == ["near_duplicate", "link_promotion", "author_burst",
                                               "hashtag_stuffing"]


def test_a_disabled_moderator_flags_nothing(post: Make, moderator: Callable[..., Moderator],
                                            moderate: Moderate) -> None:
    assert moderate(moderator(enabled=False), flood(post, 30, every=1)) == [()] * 30


def test_an_empty_batch(moderator: Callable[..., Moderator]) -> None:
    assert moderator().moderate([], []) == []


def test_the_state_is_kept_across_batches(post: Make, moderator: Callable[..., Moderator],
                                          moderate: Moderate) -> None:
    mod = moderator()
    posts = flood(post, 12)
    flags = [f for i in range(0, 12, 5) for f in moderate(mod, posts[i:i + 5])]
    assert rules(flags) == [None] * 7 + ["moderation.near_duplicate"] * 5


# -- with the real tagger on the shipped ruleset ------------------------------------------------


@pytest.fixture
def processor(shipped_tagger: Tagger) -> Processor:
    ruleset = shipped_tagger.ruleset
    return Processor(shipped_tagger, moderator=Moderator(ruleset.moderation,
                                                         ruleset.campaign.trusted_domains))


def test_a_flood_the_content_rules_miss_is_caught_and_measured(
        post: Make, processor: Processor, shipped_tagger: Tagger) -> None:
    text = "4o lives on at https://gpt4o-home.net/{i}, same model, come talk to it #keep4o"
    posts = [post(text.format(i=i), at=i * 30, author=f"bot{i % 4}") for i in range(10)]
    tagged = processor.process(posts).tagged
    assert [t.tags.flags for t in tagged] == [()] * 10  # no content rule fires
    assert [t.flags[0].rule if t.flags else None for t in tagged] == \
        [None] * 7 + ["moderation.near_duplicate"] * 3
    assert tagged[-1].flags[0].detail == {"cluster_size": 10, "authors": 4}
    metrics = Metrics(shipped_tagger.ruleset, registry=CollectorRegistry())
    metrics.record_tagged(tagged)
    sample = metrics.registry.get_sample_value
    assert sample("social_duplicate_cluster_size_count") == 3
    assert sample("social_duplicate_cluster_size_sum") == 8 + 9 + 10
    assert sample("social_flags_total", {"source": "bluesky", "flag": "spam",
                                         "severity": "medium"}) == 3


def test_a_day_n_copypasta_the_codebook_tags_is_never_flagged(post: Make,
                                                               processor: Processor) -> None:
    posts = [post(COPYPASTA, at=i * 10, author=f"fan{i}") for i in range(60)]
    assert [t.all_flags for t in processor.process(posts).tagged] == [()] * 60


def test_a_campaign_slogan_storm_is_never_flagged(post: Make, processor: Processor) -> None:
    posts = [post("4o mattered. Our voices matter. #keep4o", at=i * 10, author=f"fan{i}")
             for i in range(60)]
    assert [t.all_flags for t in processor.process(posts).tagged] == [()] * 60


@pytest.mark.parametrize(("domain", "trusted"), [
    ("bbc.co.uk", True), ("news.bbc.co.uk", True), ("a.b.news.bbc.co.uk", True),
    ("evilbbc.co.uk", False), ("bbc.co.uk.evil.example", False), ("co.uk", False),
    ("openai.com", True), ("", False)])
def test_a_domain_is_trusted_when_it_or_a_domain_it_is_under_is_listed(
        domain: str, trusted: bool) -> None:
    moderator = Moderator(trusted_domains=("bbc.co.uk", "OpenAI.com"))
    assert moderator.state.is_trusted(domain) is trusted
