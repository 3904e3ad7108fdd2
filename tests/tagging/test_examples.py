"""monitor.tagging.examples: every label's own examples, the rule author's unit tests."""

from __future__ import annotations

from pathlib import Path

from monitor.tagging import Tagger, load_tagger
from monitor.tagging.examples import ExampleFailure, run_examples
from monitor.tagging.ruleset import Example, Where


def test_every_example_of_the_demo_ruleset_passes(demo_tagger: Tagger) -> None:
    count, failures = run_examples(demo_tagger)

    assert count == sum(len(lb.match) + len(lb.no_match)
                        for lb in demo_tagger.ruleset.labels.values()) == 56
    assert failures == []


def test_shadow_labels_and_rules_are_tested_as_if_active(shadow_tagger: Tagger) -> None:
    assert run_examples(shadow_tagger) == (10, [])


def test_failures_say_where_and_why(rulesets: Path) -> None:
    count, failures = run_examples(load_tagger(rulesets / "failing_examples"))
    where = rulesets / "failing_examples" / "rules.yaml"

    assert count == 5
    assert [f.describe() for f in failures] == [
        f"{where}:16: should get 'grief': 'So sad about 4o.'\n"
        "    score 1 (threshold 2)\n"
        "    fired: grief.sad",
        f"{where}:20: should not get 'grief': 'I miss 4o, honestly.'\n"
        "    score 2 (threshold 2)\n"
        "    fired: grief.miss",
    ]


def test_a_failure_shows_dropped_hits_and_exclusions(demo_tagger: Tagger) -> None:
    label = demo_tagger.ruleset.labels["grief"]
    example = Example("I don't miss 4o", None, Where("x.yaml", 3))
    failure = ExampleFailure(label, example, True, demo_tagger.explain(example.text))
    assert failure.describe() == (
        "x.yaml:3: should get 'grief': \"I don't miss 4o\"\n"
        "    no rule of this label fired\n"
        "    dropped (negated): grief.miss on 'miss 4o'")

    label = demo_tagger.ruleset.labels["creativity"]
    example = Example("my writing partner, sponsored", None, Where("x.yaml", 4))
    failure = ExampleFailure(label, example, True, demo_tagger.explain(example.text))
    assert failure.describe() == (
        "x.yaml:4: should get 'creativity': 'my writing partner, sponsored'\n"
        "    score 2 (threshold 2)\n"
        "    fired: creat.partner\n"
        "    excluded by: creat.ad")
