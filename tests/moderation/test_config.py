"""A ruleset's ``moderation:`` section: overrides the defaults, drives the detectors, and a bad
value is a problem naming the file and the line, found when the ruleset loads."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from monitor.model import Flag, Post
from monitor.moderation.config import SECTIONS, ModerationConfig
from monitor.moderation.moderator import Moderator
from monitor.tagging import RulesetError, load_ruleset
from tests.moderation.conftest import RULES
from tests.moderation.synth import unique_text

Make = Callable[..., Post]
Moderate = Callable[..., list[tuple[Flag, ...]]]
README = Path(__file__).parents[2] / "rules" / "README.md"


def rules(flags: list[tuple[Flag, ...]]) -> list[str | None]:
    return [f[0].rule if f else None for f in flags]


def test_the_moderation_section_overrides_the_defaults() -> None:
    assert load_ruleset(RULES).moderation == ModerationConfig(
        window_seconds=300.0,
        near_duplicate_min_posts=5, near_duplicate_min_jaccard=0.7, near_duplicate_min_words=3,
        near_duplicate_large_cluster=20, max_clusters=100, max_singletons=400,
        link_promotion_min_posts=10,
        author_burst_max_posts=3, author_burst_seconds=30.0,
        hashtag_stuffing_min_hashtags=5, hashtag_stuffing_max_words=2,
    )


def test_settings_keep_their_types() -> None:
    config = load_ruleset(RULES).moderation
    for f in fields(ModerationConfig):
        default = getattr(ModerationConfig(), f.name)
        assert type(getattr(config, f.name)) is type(default), f.name


def test_without_a_moderation_section_the_defaults_apply(tmp_path: Path) -> None:
    shutil.copy(RULES / "labels.yaml", tmp_path / "labels.yaml")
    assert load_ruleset(tmp_path).moderation == ModerationConfig()


def test_the_tuned_ruleset_drives_the_detectors(post: Make, moderate: Moderate) -> None:
    ruleset = load_ruleset(RULES)
    mod = Moderator(ruleset.moderation, ruleset.campaign.trusted_domains)
    promotion = [post(f"Get 4o back at https://4o-back.app/{i} now #keep4o", at=i * 10,
                      author=f"bot{i}") for i in range(6)]
    assert rules(moderate(mod, promotion)) == [None] * 4 + ["moderation.near_duplicate"] * 2
    burst = [post(unique_text(i), at=100 + i * 5, author="eager") for i in range(4)]
    assert rules(moderate(mod, burst)) == [None] * 3 + ["moderation.author_burst"]
    stuffed = post("so true #keep4o #ai #gpt4o #chatgpt #openai", at=200)
    assert rules(moderate(mod, [stuffed])) == ["moderation.hashtag_stuffing"]


@pytest.mark.parametrize("domain", ["keep4o.org", "chng.it"])
def test_the_campaigns_trusted_domains_are_never_promotion(domain: str, post: Make,
                                                           moderate: Moderate) -> None:
    ruleset = load_ruleset(RULES)
    mod = Moderator(ruleset.moderation, ruleset.campaign.trusted_domains)
    shared = [post(f"{unique_text(i)} https://{domain}/{i}", at=i * 5, author=f"a{i}")
              for i in range(15)]
    elsewhere = [post(f"{unique_text(100 + i)} https://other.net/{i}", at=i * 5, author=f"b{i}")
                 for i in range(15)]
    assert rules(moderate(mod, shared)) == [None] * 15
    assert rules(moderate(mod, elsewhere)) == [None] * 9 + ["moderation.link_promotion"] * 6


def test_every_setting_but_the_domain_list_has_a_key_and_the_readme_shows_it() -> None:
    mapped = [name for section in SECTIONS.values() for name in section.values()]
    assert sorted(mapped) == sorted(f.name for f in fields(ModerationConfig)
                                    if f.name != "trusted_domains")
    readme = README.read_text(encoding="utf-8")
    block = readme[readme.index("```yaml\nmoderation:"):]
    block = block[:block.index("```", 3)]
    for section, keys in SECTIONS.items():
        if section:
            assert f"{section}:" in block, section
        for key in keys:
            assert f"{key}:" in block, f"{section}.{key}" if section else key


BAD = """\
ruleset:
  name: bad_moderation
moderation:
  window: -5
  enabled: "yes"
  near_duplicate:
    min_jaccard: 1.5
    min_post: 3
    max_singletons: lots
  author_burst: 10
  link_promotion: {min_posts: 0}
  flood: {min_posts: 3}
"""


def load_problems(folder: Path, campaign: str) -> list[str]:
    shutil.copy(RULES / "labels.yaml", folder / "labels.yaml")
    (folder / "campaign.yaml").write_text(campaign, encoding="utf-8")
    with pytest.raises(RulesetError) as caught:
        load_ruleset(folder)
    return [str(p) for p in caught.value.problems]


def test_bad_values_are_reported_with_file_line_and_the_fix(tmp_path: Path) -> None:
    where = tmp_path / "campaign.yaml"
    problems = load_problems(tmp_path, BAD)
    expected = {
        4: "moderation.window is -5; it must be between 0.01 and 10000000",
        5: "moderation.enabled is true or false",
        7: "moderation.near_duplicate.min_jaccard is 1.5; it must be between 0.01 and 1.0",
        8: "unknown key 'min_post' in moderation.near_duplicate; did you mean 'min_posts'?",
        9: "moderation.near_duplicate.max_singletons must be a number, not 'lots'",
        10: "moderation.author_burst must be a mapping of 'key: value' lines",
        11: "moderation.link_promotion.min_posts is 0; it must be between 1 and 10000000",
    }
    for line, message in expected.items():
        assert f"{where}:{line}: {message}" in problems, problems
    [flood] = [p for p in problems if p.startswith(f"{where}:12: ")]
    assert "unknown key 'flood' in moderation" in flood
    assert len(problems) == len(expected) + 1


def test_a_fraction_where_a_count_is_expected_is_reported(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, "moderation:\n  near_duplicate:\n    min_posts: 7.5\n")
    assert any(":3: " in p and "min_posts" in p for p in problems), problems
