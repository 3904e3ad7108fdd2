"""Hostile rulesets: refused at load with ``file:line`` and the fix, or bounded in time.

A ruleset is code the monitor runs on every post. Each hostile rule below is
added as its own file next to the runtime fixture rules, and either
``monitor rules check`` refuses it naming ``hostile.yaml`` and the rule's
line, or it compiles and tags adversarial 50,000-character texts within
``BOUND`` CPU-seconds a post (RE2 is linear; the phrase trie is too).
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.codec import MAX_TEXT_CHARS
from monitor.tagging import RulesetError, Tagger, compile_ruleset, load_ruleset

RULES = Path(__file__).parents[1] / "runtime" / "rules"
#: CPU-seconds one adversarial post may take against a hostile rule.
BOUND = 0.5
#: the rule's first line in hostile.yaml (see ``hostile_rules``)
RULE_LINE = 7
ADVERSARIAL = ["a" * MAX_TEXT_CHARS, "a" * (MAX_TEXT_CHARS - 1) + "b", "x" * MAX_TEXT_CHARS,
               "aa " * (MAX_TEXT_CHARS // 3), ("a" * 30 + "!") * (MAX_TEXT_CHARS // 31),
               "😭" * MAX_TEXT_CHARS, ("word " * 10_000)[:MAX_TEXT_CHARS]]


def hostile_rules(folder: Path, rule: str) -> Path:
    """The runtime fixture ruleset plus ``hostile.yaml`` holding one label with ``rule``."""
    shutil.copytree(RULES, folder)
    (folder / "hostile.yaml").write_text(f"""\
labels:
  - label: hostile
    layer: theme
    description: A rule written to hurt.
    rules:
      - id: hostile.rule
{rule}
    examples:
      match: [aaaa, aaab, "xxy aaaa"]
      no_match: [bbb, "the sky"]
""", encoding="utf-8")
    return folder


def cpu(call, *args):  # type: ignore[no-untyped-def]
    start = time.process_time()
    result = call(*args)
    return result, time.process_time() - start


@pytest.mark.parametrize("pattern", [
    "(a+)+$", "(a|aa)+b", "(x+x+)+y", "(a*)*b", "(.*a){20}", "(\\w+\\s?){100}x",
    "^(([a-z])+.)+[A-Z]([a-z])+$", "(?:a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p){500}",
])
def test_catastrophic_regexes_run_in_bounded_time_or_are_refused(
        tmp_path: Path, pattern: str) -> None:
    folder = hostile_rules(tmp_path / "rules", f"        regex: '{pattern}'")
    try:
        tagger = Tagger(compile_ruleset(load_ruleset(folder)))
    except RulesetError as exc:  # too large for RE2's memory budget: refused, never slow
        [problem] = exc.problems
        assert (Path(problem.where.file).name, problem.where.line) == ("hostile.yaml", RULE_LINE)
        assert "hostile.rule" in problem.message
        return
    for text in ADVERSARIAL:
        _, spent = cpu(tagger.tag, text)
        assert spent < BOUND, f"{pattern!r} on {text[:12]!r}...: {spent:.2f} CPU-s"


@pytest.mark.parametrize(("pattern", "says"), [
    ("(miss 4o", "missing )"),
    ("[z-a]", "invalid character class range"),
    ("a{1001}", "invalid repetition size"),
    ("((a{100}){100}){100}", "invalid repetition size"),
    ("(?<=i )miss", "RE2 has no look-around"),
    ("(miss) \\1", "RE2 has no look-around or back-references"),
    ("(\\w+\\s?){1000}x", "RE2 instructions, at most 5000"),
])
def test_malformed_regexes_are_refused_with_file_line_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str, says: str) -> None:
    folder = hostile_rules(tmp_path / "rules", f"        regex: '{pattern}'")

    assert main(["rules", "check", str(folder)]) == 1

    err = capsys.readouterr().err
    assert f"{folder / 'hostile.yaml'}:{RULE_LINE}: rule 'hostile.rule': regex" in err
    assert says in err
    assert "1 problem(s)" in err


def test_a_huge_phrase_list_compiles_in_linear_time_and_tags_in_flat_time(
        tmp_path: Path) -> None:
    """20,000 two-word phrases in one rule: compiled once, then each post costs as before."""
    rng = random.Random(7)
    words = ["".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(3, 9)))
             for _ in range(40_000)]
    phrases = [f"{words[i]} {words[i + 1]}" for i in range(0, 40_000, 2)]
    listed = ", ".join(f'"{p}"' for p in [*phrases, "aaaa", "aaab", "xxy"])
    folder = hostile_rules(tmp_path / "rules", f"        phrases: [{listed}]")

    ruleset, load_s = cpu(load_ruleset, folder)
    compiled, compile_s = cpu(compile_ruleset, ruleset)
    tagger = Tagger(compiled)
    dense = " ".join(phrases)[:MAX_TEXT_CHARS]  # thousands of matches in one post
    tags, dense_s = cpu(tagger.tag, dense)
    _, plain_s = cpu(tagger.tag, "I miss 4o every day #keep4o")

    print(f"20,000 phrases: load {load_s:.2f} s, compile {compile_s:.2f} s CPU; a post made "
          f"of them {dense_s * 1000:.1f} ms, a plain post {plain_s * 1000:.2f} ms")
    assert "hostile.rule" in tags.rule_hits
    assert load_s + compile_s < 60  # about 0.2 ms a phrase on an idle machine
    assert dense_s < BOUND and plain_s < 0.05


def test_python_tags_in_rules_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rules are read with a safe loader: a Python object tag is an error, never a call."""
    marker = tmp_path / "pwned"
    folder = hostile_rules(tmp_path / "rules",
                           f"        phrases: !!python/object/apply:os.system ['touch {marker}']")

    assert main(["rules", "check", str(folder)]) == 1

    err = capsys.readouterr().err
    assert f"{folder / 'hostile.yaml'}:{RULE_LINE}:" in err
    assert not marker.exists()
