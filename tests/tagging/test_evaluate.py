"""monitor.tagging.evaluate: precision, recall and F1 of a ruleset against hand-coded posts.

The full ``rules eval --json`` report for gold/demo_gold.jsonl, computed by
hand, is asserted in tests/test_cli_rules.py; here: reading gold files, the
misclassified posts, and the averaging.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.tagging import Tagger
from monitor.tagging.evaluate import GoldError, GoldPost, evaluate, read_gold

GOLD = Path(__file__).parent / "gold" / "demo_gold.jsonl"


def gold(text: str, *, themes: tuple[str, ...] = (), claim: str | None = None,
         reasons: tuple[str, ...] = (), flags: tuple[str, ...] = (), line: int = 0) -> GoldPost:
    return GoldPost(f"g{line}", text, None, {
        "themes": frozenset(themes), "claims": frozenset([claim] if claim else ()),
        "reasons": frozenset(reasons), "flags": frozenset(flags)}, line)


def test_read_gold() -> None:
    posts = read_gold(GOLD)

    assert [p.id for p in posts] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    assert [p.line for p in posts] == [1, 2, 3, 4, 5, 6, 7]
    assert posts[6].lang == "zh" and posts[0].lang is None
    assert posts[3].labels == {"themes": frozenset(), "claims": frozenset({"access"}),
                               "reasons": frozenset({"fairness", "open_source"}),
                               "flags": frozenset()}


def test_read_gold_skips_blank_lines_and_numbers_posts_without_id(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('\n{"text": "I miss 4o", "themes": ["grief"]}\n\n{"text": "hi"}\n')

    posts = read_gold(path)

    assert [(p.id, p.line, p.text) for p in posts] == [("line-2", 2, "I miss 4o"),
                                                        ("line-4", 4, "hi")]
    assert posts[1].labels["themes"] == frozenset()


@pytest.mark.parametrize(
    "line",
    ['{"text": "ok"}\n{"themes": ["grief"]}', '{"text": "ok"}\n{"text": 4}',
     '{"text": "ok"}\n["I miss 4o"]', '{"text": "ok"}\n{"text": "x", "claim": ["a"]}',
     '{"text": "ok"}\nnot json'],
    ids=["no-text", "text-not-string", "not-object", "claim-list", "not-json"],
)
def test_a_bad_gold_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text(line)

    with pytest.raises(GoldError, match=rf"^{path}:2: not a gold post \("):
        read_gold(path)


def test_a_label_list_written_as_text_is_a_bad_gold_line(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"text": "I miss 4o", "themes": "grief"}\n')

    with pytest.raises(GoldError, match=r":1: not a gold post"):
        read_gold(path)


def test_misses_name_the_post_layer_and_rules(demo_tagger: Tagger) -> None:
    _, misses = evaluate(demo_tagger, read_gold(GOLD))

    assert [(m.post.id, m.layer, sorted(m.missing), sorted(m.extra)) for m in misses] == [
        ("p2", "themes", ["grief"], []),
        ("p3", "themes", ["companionship"], ["workflow"]),
        ("p4", "reasons", ["open_source"], []),
        ("p5", "flags", [], ["off_topic"]),
        ("p6", "claims", ["access"], ["transparency"]),
        ("p6", "flags", [], ["harassment"]),
    ]
    assert misses[1].rules == {"companionship": ["comp.talk"], "workflow": ["work.daily"]}


def test_perfect_rules_score_one(demo_tagger: Tagger) -> None:
    report, misses = evaluate(demo_tagger, [gold("I miss 4o", themes=("grief",)),
                                            gold("Hello there")])

    assert misses == []
    assert report["layers"]["themes"] == {
        "macro_f1": 1.0, "micro_f1": 1.0,
        "labels": {"grief": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}}}
    assert report["layers"]["claims"] == {"macro_f1": 0.0, "micro_f1": 0.0, "labels": {}}


def _one_third_and_one_quarter() -> list[GoldPost]:
    """grief: 1 TP, 2 FP, 2 FN (F1 1/3); creativity: 1 TP, 3 FP, 3 FN (F1 1/4)."""
    return [
        gold("I miss 4o", themes=("grief",)),
        *[gold("I miss 4o") for _ in range(2)],
        *[gold("Hello", themes=("grief",)) for _ in range(2)],
        gold("my writing partner", themes=("creativity",)),
        *[gold("my writing partner") for _ in range(3)],
        *[gold("Hello", themes=("creativity",)) for _ in range(3)],
    ]


def test_per_label_and_micro_scores(demo_tagger: Tagger) -> None:
    report, _ = evaluate(demo_tagger, _one_third_and_one_quarter())
    themes = report["layers"]["themes"]

    assert themes["labels"] == {
        "creativity": {"precision": 0.25, "recall": 0.25, "f1": 0.25, "support": 4},
        "grief": {"precision": 0.3333, "recall": 0.3333, "f1": 0.3333, "support": 3},
    }
    assert themes["micro_f1"] == 0.2857  # 2 TP, 5 FP, 5 FN: 2/7


def test_macro_f1_is_rounded_once(demo_tagger: Tagger) -> None:
    report, _ = evaluate(demo_tagger, _one_third_and_one_quarter())

    assert report["layers"]["themes"]["macro_f1"] == 0.2917
