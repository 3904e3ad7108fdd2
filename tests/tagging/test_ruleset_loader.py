"""monitor.tagging.loader: YAML folders become a validated Ruleset, or every problem at once.

The ``broken`` fixture holds one mistake per marked line; each must be reported
as ``file:line: what is wrong; how to fix it``, all of them in one go.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.tagging import RulesetError, load_ruleset
from monitor.tagging.ruleset import LayerScoring

# -- a good ruleset -------------------------------------------------------------


def test_demo_ruleset_loads(rulesets: Path) -> None:
    rs = load_ruleset(rulesets / "demo")

    assert rs.name == "demo"
    assert rs.description == "A miniature #keep4o codebook for the test suite."
    assert list(rs.languages) == ["en", "zh", "ja"]
    assert rs.languages["en"].negations == {"not", "n't", "no", "never"}
    assert rs.languages["en"].tokenizer == "spacy"
    assert (rs.languages["zh"].tokenizer, rs.languages["zh"].negation_window) == ("char", 2)
    assert rs.languages["ja"].tokenizer == "char"
    assert rs.scoring["theme"] == LayerScoring(2.0, 2, ("grief", "companionship"))
    assert rs.scoring["claim"] == LayerScoring(2.0, 1, ("access",))
    assert rs.scoring["reason"] == LayerScoring(2.0, 2, ())
    assert rs.scoring["flag"] == LayerScoring(1.0, None, ())
    assert rs.campaign.hashtags == {"keep4o", "opensource4o"}  # '#' and case dropped
    assert rs.campaign.terms == ("4o", "gpt-4o")
    assert [lb.id for lb in rs.labels_of("theme")] == [
        "grief", "companionship", "creativity", "workflow"]
    assert [lb.id for lb in rs.labels_of("flag")] == ["spam", "harassment", "off_topic"]
    assert len(rs.all_rules()) == 21
    assert len(rs.hash) == 16


def test_rule_settings_are_read(rulesets: Path) -> None:
    rules = {r.id: r for r in load_ruleset(rulesets / "demo").all_rules()}

    assert rules["grief.miss"].values == ("miss 4o", "miss gpt-4o")
    assert rules["grief.miss"].weight == 2.0
    assert Path(rules["grief.miss"].where.file).name == "themes.yaml"
    assert rules["grief.miss"].where.line == 7
    assert rules["grief.zh"].languages == ("zh",)
    assert rules["grief.days_without"].values == (r"\b\d+ days? without (gpt-?)?4o\b",)
    assert rules["comp.understands"].value_lines == (34, 35, 36)
    assert rules["access.afford"].negation is False
    assert rules["harass.insult"].quoted == "drop"
    assert rules["spam.referral"].severity == "high"
    assert rules["creat.ad"].exclusion is True
    assert rules["os.hashtag"].values == ("opensource4o",)
    assert rules["offtopic.hijack"].values == (0.3,)
    assert rules["comp.talk"].weight == 1.0 and rules["harass.insult"].weight == 1.0


def test_examples_keep_their_language_and_line(rulesets: Path) -> None:
    grief = load_ruleset(rulesets / "demo").labels["grief"]

    assert [(e.text, e.lang, e.where.line) for e in grief.match] == [
        ("I miss 4o every single day.", None, 18),
        ("100 days without 4o and it still hurts", None, 19),
        ("我每天都想念4o", "zh", 20),
    ]
    assert len(grief.no_match) == 2


def test_defaults_for_a_minimal_ruleset(rulesets: Path) -> None:
    rs = load_ruleset(rulesets / "minimal")

    assert rs.name == "minimal"  # the folder's name without a 'ruleset' section
    assert list(rs.languages) == ["en"] and rs.languages["en"].negations == frozenset()
    assert rs.threshold(rs.labels["grief"]) == 2.0
    assert rs.scoring["theme"].max == 2 and rs.scoring["claim"].max == 1
    assert rs.campaign.relevance == {"label": 0.5, "term": 0.3, "hashtag": 0.2}


def test_shadow_modes_are_read(rulesets: Path) -> None:
    rs = load_ruleset(rulesets / "shadow")

    assert rs.labels["anger"].shadow
    assert not rs.labels["grief"].shadow
    assert [r.id for r in rs.labels["grief"].rules if r.shadow] == ["grief.heartbroken"]


def test_hash_depends_on_content_not_location(rulesets: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(rulesets / "demo", tmp_path / "demo")
    original = load_ruleset(rulesets / "demo").hash

    assert load_ruleset(copy).hash == original

    with (copy / "flags.yaml").open("a", encoding="utf-8") as fh:
        fh.write("# a comment is a change too\n")
    assert load_ruleset(copy).hash != original


# -- the broken ruleset: every problem, each on its line -------------------------

BROKEN = [
    ("a_setup.yaml", 5, "languages.en.negations item is read as False because YAML takes "
                        "unquoted no/yes/on/off as true/false; quote it, e.g. 'no'"),
    ("a_setup.yaml", 8, "unknown key 'treshold' in scoring.theme; did you mean 'threshold'?"),
    ("a_setup.yaml", 9, "scoring.theme.order names 'grife', which is not a theme label; "
                        "did you mean 'grief'?"),
    ("b_labels.yaml", 9, "rule id 'grief.miss' is already used at "),
    ("b_labels.yaml", 11, "rule 'grief.none' needs exactly one of phrases, lemmas, tokens, regex, "
                          "hashtags, relevance_below (found: none)"),
    ("b_labels.yaml", 13, "rule 'grief.both' needs exactly one of phrases, lemmas, tokens, regex, "
                          "hashtags, relevance_below (found: phrases, regex)"),
    ("b_labels.yaml", 23, "label 'grief' is already defined at "),
    ("b_labels.yaml", 30, "label 'anger': layer 'themes' must be one of theme, claim, reason, flag"),
    ("b_labels.yaml", 35, "flag label 'scam' is not a flag kind; use one of spam, nsfw, "
                          "csam_risk, harassment, off_topic"),
    ("b_labels.yaml", 42, "flag 'spam' needs severity: one of low, medium, high, critical"),
    ("b_labels.yaml", 50, "csam_risk must have severity: critical"),
    ("b_labels.yaml", 58, "unknown key 'wieght' in a rule of label 'hope'; did you mean 'weight'?"),
    ("b_labels.yaml", 60, "label 'hope' needs at least 3 'match' examples"),
    ("c_duplicate_key.yaml", 5, "key 'layer' appears twice (first on line 3); keep one"),
    ("d_syntax.yaml", 3, "invalid YAML: mapping values are not allowed here"),
]
#: Reported at the line of the rule's `languages` key (tested below).
LANGUAGE_PROBLEM = "rule 'grief.french' names language 'fr', which is not under 'languages'"


@pytest.fixture(scope="module")
def broken_problems(rulesets: Path) -> list[tuple[str, int, str]]:
    with pytest.raises(RulesetError) as info:
        load_ruleset(rulesets / "broken")
    return [(Path(p.where.file).name, p.where.line, p.message) for p in info.value.problems]


def test_every_problem_is_reported_at_once(broken_problems: list[tuple[str, int, str]]) -> None:
    assert len(broken_problems) == len(BROKEN) + 1
    assert sum(LANGUAGE_PROBLEM in msg for _, _, msg in broken_problems) == 1


@pytest.mark.parametrize(("file", "line", "message"), BROKEN,
                         ids=[f"{f}:{n}" for f, n, _ in BROKEN])
def test_problem_points_at_its_line(broken_problems: list[tuple[str, int, str]], file: str,
                                    line: int, message: str) -> None:
    found = [(f, n) for f, n, msg in broken_problems if msg.startswith(message)]
    assert found == [(file, line)]


def test_duplicates_name_the_first_definition(broken_problems: list[tuple[str, int, str]],
                                              rulesets: Path) -> None:
    first = rulesets / "broken" / "b_labels.yaml"
    messages = [msg for _, _, msg in broken_problems]
    assert f"rule id 'grief.miss' is already used at {first}:7; rule ids must be unique" in messages
    assert f"label 'grief' is already defined at {first}:3; merge the two" in messages


def test_unknown_language_points_at_the_languages_line(
        broken_problems: list[tuple[str, int, str]]) -> None:
    found = [(f, n) for f, n, msg in broken_problems if msg.startswith(LANGUAGE_PROBLEM)]
    assert found == [("b_labels.yaml", 17)]


def test_error_text_is_one_file_line_message_per_problem(rulesets: Path) -> None:
    with pytest.raises(RulesetError) as info:
        load_ruleset(rulesets / "broken")

    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems)
    assert lines[0] == (f"{rulesets / 'broken' / 'a_setup.yaml'}:5: "
                        f"{info.value.problems[0].message}")


# -- one mistake each: the line marked '# <-' is the one reported ----------------

LABEL = """\
  - label: grief
    layer: theme
    description: Missing the model.
    rules:
      - id: grief.miss
        phrases: ["miss 4o"]
    examples: {match: [a, b, c], no_match: [d, e]}
"""


def label_with(old: str, new: str) -> str:
    """A rules file holding the good LABEL with one piece changed."""
    assert old in LABEL
    return "labels:\n" + LABEL.replace(old, new)


MISS = 'phrases: ["miss 4o"]'
ONE_MISTAKE = {
    "claim_max": (
        "scoring:\n  claim: {max: 2}  # <-\nlabels:\n" + LABEL,
        "a post has at most one claim; set max: 1"),
    "flag_max": (
        "scoring:\n  flag:\n    max: 3  # <-\nlabels:\n" + LABEL,
        "flags have no maximum; remove 'max'"),
    "bad_language_code": (
        "languages:\n  English:  # <-\n    negations: [not]\nlabels:\n" + LABEL,
        "language 'English' must be an ISO 639 code such as en, es, zh"),
    "top_level_typo": (
        "label:  # <-\n" + LABEL + "labels:\n" + LABEL,
        "unknown key 'label' in a rules file; did you mean 'labels'?"),
    "not_a_mapping": (
        "- label: grief  # <-\n",
        "a rules file is a mapping with keys"),
    "label_id_case": (
        label_with("- label: grief", "- label: Grief  # <-"),
        "label id 'Grief' must be snake_case text, e.g. 'user_experience'"),
    "mode_value": (
        label_with("layer: theme", "layer: theme\n    mode: draft  # <-"),
        "mode must be 'active' or 'shadow', not 'draft'"),
    "severity_on_theme": (
        label_with("layer: theme", "layer: theme\n    severity: low  # <-"),
        "label 'grief': only flags have a severity; remove it"),
    "no_description": (
        label_with("- label: grief\n    layer: theme\n    description: Missing the model.",
                   "- label: grief  # <-\n    layer: theme"),
        "label 'grief' needs a one-line 'description'"),
    "no_examples": (
        label_with("- label: grief", "- label: grief  # <-").replace(
            "    examples: {match: [a, b, c], no_match: [d, e]}\n", ""),
        "label 'grief' needs 'examples' with 'match' (at least 3) and 'no_match' (at least 2)"),
    "example_language": (
        label_with("    examples: {match: [a, b, c], no_match: [d, e]}",
                   "    examples:\n      no_match: [d, e]\n      match:\n        - a\n"
                   "        - b\n        - {text: c, lang: fr}  # <-"),
        "example language 'fr' is not under 'languages'"),
    "rule_id_missing": (
        label_with("- id: grief.miss", "- weight: 2  # <-"),
        "a rule of label 'grief' needs an 'id' of lower-case letters"),
    "phrases_not_list": (
        label_with(MISS, "phrases: miss 4o  # <-"),
        "rule 'grief.miss' phrases must be a list; write ['miss 4o']"),
    "relevance_on_theme": (
        label_with(MISS, "relevance_below: 0.3  # <-"),
        "rule 'grief.miss': relevance_below is for flags"),
    "weight_zero": (
        label_with(MISS, MISS + "\n        weight: 0  # <-"),
        "rule 'grief.miss' weight is 0; it must be between 0.01 and 100"),
    "negation_text": (
        label_with(MISS, MISS + '\n        negation: "off"  # <-'),
        "rule 'grief.miss': negation is true or false"),
    "quoted_value": (
        label_with(MISS, MISS + "\n        quoted: strip  # <-"),
        "rule 'grief.miss': quoted is 'keep' or 'drop'"),
}


@pytest.mark.parametrize("case", ONE_MISTAKE)
def test_one_mistake(tmp_path: Path, case: str) -> None:
    text, message = ONE_MISTAKE[case]
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    marked = [n for n, line in enumerate(text.splitlines(), 1) if line.endswith("# <-")]

    with pytest.raises(RulesetError) as info:
        load_ruleset(tmp_path)

    assert [(p.where.line, p.message[:len(message)]) for p in info.value.problems] == [
        (marked[0], message)]


def test_a_section_may_appear_once_per_ruleset(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("ruleset: {name: one}\nlabels:\n" + LABEL, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# again\nruleset: {name: two}\n", encoding="utf-8")

    with pytest.raises(RulesetError) as info:
        load_ruleset(tmp_path)

    [problem] = info.value.problems
    assert (Path(problem.where.file).name, problem.where.line) == ("b.yaml", 2)
    assert problem.message == (f"'ruleset' is already defined at {tmp_path / 'a.yaml'}:1; "
                               "keep one per ruleset")


def test_files_are_read_in_name_order_and_yml_counts(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("labels:\n" + LABEL, encoding="utf-8")
    (tmp_path / "a.yaml").write_text("labels:\n" + LABEL.replace("grief", "hope"),
                                     encoding="utf-8")
    (tmp_path / "notes.txt").write_text("labels: [oops]", encoding="utf-8")

    assert list(load_ruleset(tmp_path).labels) == ["hope", "grief"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no .yaml files in this folder"),
        (lambda d: (d / "rules.yaml").write_text("# nothing yet\n"), "the ruleset defines no labels"),
        (lambda d: (d / "rules.yaml").write_bytes(b"labels:\n  - label: caf\xe9\n"),
         "not UTF-8 text"),
    ],
    ids=["empty-folder", "no-labels", "not-utf8"],
)
def test_empty_or_unreadable_rulesets(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path)

    with pytest.raises(RulesetError) as info:
        load_ruleset(tmp_path)

    assert [p.message[:len(message)] for p in info.value.problems] == [message]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="no such ruleset folder"):
        load_ruleset(tmp_path / "nope")
