"""``monitor rules check|test|eval|explain``: the rule author's tools, run as the CLI runs them.

The fixture rulesets live in tests/tagging/rulesets/ (see tests/tagging/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main

RULESETS = Path(__file__).parent / "tagging" / "rulesets"
DEMO = RULESETS / "demo"
GOLD = Path(__file__).parent / "tagging" / "gold" / "demo_gold.jsonl"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- check -------------------------------------------------------------------------


def test_check_a_good_ruleset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "check", DEMO)

    assert code == 0
    assert err == ""
    assert out.startswith(f"{DEMO}: ruleset 'demo' (")
    assert out.endswith(") is valid: 11 labels, 21 rules, languages en, zh, ja\n")


def test_check_a_broken_ruleset_lists_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    broken = RULESETS / "broken"

    code, out, err = run(capsys, "rules", "check", broken)

    lines = err.splitlines()
    assert code == 1
    assert out == ""
    assert lines[-1] == f"16 problem(s) in {broken}"
    assert len(lines) == 17
    assert all(line.startswith(f"{broken}/") for line in lines[:-1])
    assert f"{broken}/b_labels.yaml:30: label 'anger': layer 'themes' must be one of theme, " \
           "claim, reason, flag" in lines
    assert f"{broken}/a_setup.yaml:8: unknown key 'treshold' in scoring.theme; did you mean " \
           "'threshold'?" in lines
    assert f"{broken}/d_syntax.yaml:3: invalid YAML: mapping values are not allowed here" in lines


def test_check_reports_pattern_problems_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rules", "check", RULESETS / "bad_patterns")

    assert code == 1
    assert [line.split(": ", 1)[0] for line in err.splitlines()] == [
        f"{RULESETS}/bad_patterns/rules.yaml:{n}" for n in (8, 12, 14, 18)
    ] + [f"4 problem(s) in {RULESETS}/bad_patterns"]


def test_check_a_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "rules", "check", tmp_path / "nope")

    assert code == 1
    assert "no such ruleset folder" in err


# -- test --------------------------------------------------------------------------


def test_test_passes_when_every_example_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "rules", "test", DEMO) == (0, "56 passed, 0 failed\n", "")


def test_test_prints_failures_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    where = RULESETS / "failing_examples" / "rules.yaml"

    code, out, _ = run(capsys, "rules", "test", RULESETS / "failing_examples")

    assert code == 1
    assert out == (
        f"{where}:16: should get 'grief': 'So sad about 4o.'\n"
        "    score 1 (threshold 2)\n"
        "    fired: grief.sad\n"
        f"{where}:20: should not get 'grief': 'I miss 4o, honestly.'\n"
        "    score 2 (threshold 2)\n"
        "    fired: grief.miss\n"
        "3 passed, 2 failed\n"
    )


def test_test_on_a_broken_ruleset_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "test", RULESETS / "broken")

    assert (code, out) == (2, "")
    assert err.startswith("monitor rules: the ruleset has 16 problem(s):\n")
    assert f"{RULESETS}/broken/b_labels.yaml:42: flag 'spam' needs severity" in err


# -- eval --------------------------------------------------------------------------

# By hand, from tests/tagging/gold/demo_gold.jsonl and the demo rules:
#   p1 "I miss 4o every day"        gold grief            predicted grief
#   p2 "My writing partner is gone" gold creativity+grief predicted creativity
#   p3 "I talked to 4o at work"     gold companionship    predicted workflow (comp.talk is 1 < 2)
#   p4 "We paid for 4o, unfair"     gold access; fairness+open_source
#                                   predicted access; fairness
#   p5 "Claim your airdrop #keep4o" gold spam             predicted spam + off_topic (0.2 < 0.3)
#   p6 "silently swapped 4o, go touch grass"
#                                   gold claim access     predicted transparency + harassment
#   p7 "我想念4o" (zh)              gold grief            predicted grief
# themes:  grief TP 2 FN 1 -> P 1, R 2/3, F1 0.8; creativity 1/1/1; companionship FN 1 and
#          workflow FP 1 -> 0; macro (0.8 + 1 + 0 + 0) / 4 = 0.45;
#          micro TP 3 FP 1 FN 2 -> P 3/4, R 3/5, F1 2/3
# claims:  access TP 1 FN 1 -> 1, 1/2, 2/3; transparency FP 1 -> 0; macro 1/3;
#          micro TP 1 FP 1 FN 1 -> 1/2
# reasons: fairness 1/1/1; open_source FN 1 -> 0; macro 1/2; micro TP 1 FN 1 -> 2/3
# flags:   spam 1/1/1; off_topic, harassment FP -> 0; macro 1/3; micro TP 1 FP 2 -> 1/2


def _m(precision: float, recall: float, f1: float, support: int) -> dict[str, float]:
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


EXPECTED_REPORT = {
    "posts": 7,
    "layers": {
        "themes": {"macro_f1": 0.45, "micro_f1": 0.6667, "labels": {
            "companionship": _m(0.0, 0.0, 0.0, 1),
            "creativity": _m(1.0, 1.0, 1.0, 1),
            "grief": _m(1.0, 0.6667, 0.8, 3),
            "workflow": _m(0.0, 0.0, 0.0, 0),
        }},
        "claims": {"macro_f1": 0.3333, "micro_f1": 0.5, "labels": {
            "access": _m(1.0, 0.5, 0.6667, 2),
            "transparency": _m(0.0, 0.0, 0.0, 0),
        }},
        "reasons": {"macro_f1": 0.5, "micro_f1": 0.6667, "labels": {
            "fairness": _m(1.0, 1.0, 1.0, 1),
            "open_source": _m(0.0, 0.0, 0.0, 1),
        }},
        "flags": {"macro_f1": 0.3333, "micro_f1": 0.5, "labels": {
            "harassment": _m(0.0, 0.0, 0.0, 0),
            "off_topic": _m(0.0, 0.0, 0.0, 0),
            "spam": _m(1.0, 1.0, 1.0, 1),
        }},
    },
}


def test_eval_json_is_one_object_with_the_contracted_numbers(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "eval", GOLD, "--rules", DEMO, "--json")

    assert (code, err) == (0, "")
    assert out.count("\n") == 1 and out.endswith("\n")
    assert json.loads(out) == EXPECTED_REPORT


def test_eval_text_lists_scores_and_misclassified_posts(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "eval", GOLD, "--rules", DEMO, "--limit", "2")

    assert code == 0
    assert out.startswith("7 posts, ruleset 'demo' (")
    assert "\nthemes: macro-F1 0.450  micro-F1 0.667\n" in out
    assert "\n  grief                     1.000  0.667  0.800        3\n" in out
    assert "\n6 misclassified (post, layer) pairs; first 2:\n" in out
    assert out.endswith(
        f"  {GOLD}:2 [p2] themes: missed grief\n"
        "      'My writing partner is gone'\n"
        f"  {GOLD}:3 [p3] themes: missed companionship; extra workflow (work.daily); "
        "partial companionship: comp.talk\n"
        "      'I talked to 4o at work'\n")


def test_eval_with_a_bad_gold_file_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "I miss 4o", "themes": ["grief"]}\n{"themes": []}\n')

    code, out, err = run(capsys, "rules", "eval", gold, "--rules", DEMO, "--json")

    assert (code, out) == (2, "")
    assert err.startswith(f"monitor rules: {gold}:2: not a gold post (")


def test_eval_with_a_missing_gold_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "rules", "eval", tmp_path / "none.jsonl", "--rules", DEMO)

    assert code == 2
    assert "none.jsonl" in err


# -- explain -----------------------------------------------------------------------


def test_explain_shows_dropped_hits_and_exclusions(capsys: pytest.CaptureFixture[str]) -> None:
    text = "I don't miss 4o, they called us 'delusional'. Best writing partner, use code X"

    code, out, _ = run(capsys, "rules", "explain", text, "--rules", DEMO)

    assert code == 0
    assert out == f"""\
language: en   relevance: 0.30   campaign hashtag/term: yes
themes:  -
claim:   -
reasons: -
flags:   -

rules that fired:
  flag   harassment             harass.insult                    dropped: quoted  'delusional'  ({DEMO}/flags.yaml:28)
  theme  creativity             creat.ad                         exclusion        'use code'  ({DEMO}/themes.yaml:59)
  theme  creativity             creat.partner                    +2               'writing partner'  ({DEMO}/themes.yaml:55)
  theme  grief                  grief.miss                       dropped: negated 'miss 4o'  ({DEMO}/themes.yaml:7)

label scores:
  creativity             2/2  excluded
"""


def test_explain_shows_labels_capped_by_the_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "explain",
                       "I miss 4o, my best friend, my writing partner #keep4o", "--rules", DEMO)

    assert code == 0
    assert out.startswith("language: en   relevance: 1.00   campaign hashtag/term: yes\n"
                          "themes:  grief (2), companionship (2)\n")
    assert out.endswith("label scores:\n"
                        "  grief                  2/2  given\n"
                        "  companionship          2/2  given\n"
                        "  creativity             2/2  capped by the layer's max\n")


def test_explain_without_hits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "explain", "Lovely weather", "--rules", DEMO)

    assert code == 0
    assert "\nno rule fired\n" in out


def test_explain_honours_the_platform_language(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "explain", "我想念4o", "--lang", "zh-CN", "--rules", DEMO)

    assert code == 0
    assert out.startswith("language: zh ")
    assert "themes:  grief (2)\n" in out


def test_explain_calls_a_shadow_label_shadow(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "explain", "I am furious", "--rules",
                       RULESETS / "shadow")

    assert code == 0
    assert "shadow:  anger (2)\n" in out
    [verdict] = [line for line in out.splitlines() if line.startswith("  anger ")]
    assert "below threshold" not in verdict and "shadow" in verdict
