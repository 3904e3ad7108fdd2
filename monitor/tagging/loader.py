"""Read a ruleset folder into a :class:`Ruleset`, reporting every problem.

Validation is exhaustive and happens before anything is tagged: unknown
keys, wrong types, duplicate ids, unknown labels in ``order``, examples
missing. Pattern-level checks (token patterns, regexes, lemma tables) need
spaCy and RE2 and run in :mod:`monitor.tagging.compiler`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.model import FLAG_KINDS, LAYERS, SEVERITIES
from monitor.moderation.config import SECTIONS
from monitor.tagging.ruleset import (
    MATCHER_KINDS,
    Example,
    Label,
    LanguageConfig,
    LayerScoring,
    Problem,
    Rule,
    Ruleset,
    RulesetError,
    Where,
)
from monitor.tagging.yamlload import LineDict, LineList, YamlProblem, load_yaml

__all__ = ["load_ruleset", "ruleset_files"]

_TOP_KEYS = ("ruleset", "campaign", "languages", "scoring", "moderation", "labels")
_LABEL_KEYS = (
    "label", "layer", "description", "mode", "threshold", "severity", "rules", "exclude",
    "examples",
)
_RULE_KEYS = (*MATCHER_KINDS, "id", "weight", "languages", "mode", "negation", "quoted", "severity")
_LANG_KEYS = ("negations", "negation_window", "tokenizer")
_CHAR_DEFAULT = ("zh", "ja", "ko", "th")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_LABEL_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_MIN_MATCH, _MIN_NO_MATCH = 3, 2


def ruleset_files(path: Path) -> list[Path]:
    """The YAML files of a ruleset folder, in the order they are read."""
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _hash(files: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class _Reader:
    """Collects problems while turning loaded YAML into a Ruleset."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.file = ""
        self.seen_sections: dict[str, Where] = {}
        self.rule_ids: dict[str, Where] = {}
        self.label_ids: dict[str, Where] = {}
        self.order_lines: dict[str, tuple[str, LineList]] = {}

    def where(self, line: int) -> Where:
        return Where(self.file, line)

    def fail(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.where(line), message))

    def unknown_keys(self, mapping: LineDict, allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(mapping.line_of(key), f"unknown key '{key}' in {what}; {hint}")

    def expect_map(self, value: Any, line: int, what: str) -> LineDict | None:
        if isinstance(value, LineDict):
            return value
        self.fail(line, f"{what} must be a mapping of 'key: value' lines")
        return None

    def str_list(self, value: Any, line: int, what: str) -> LineList | None:
        if isinstance(value, str):
            self.fail(line, f"{what} must be a list; write [{value!r}]")
            return None
        if not isinstance(value, LineList) or not value:
            self.fail(line, f"{what} must be a non-empty list")
            return None
        for i, item in enumerate(value):
            if isinstance(item, bool):
                self.fail(value.line_of(i), f"{what} item is read as {item} because YAML takes "
                          "unquoted no/yes/on/off as true/false; quote it, e.g. 'no'")
                return None
            if isinstance(item, int | float):
                value[i] = item = str(item)
            if not isinstance(item, str) or not item.strip():
                self.fail(value.line_of(i), f"{what} item {item!r} must be non-empty text")
                return None
        return value

    def number(self, value: Any, line: int, what: str, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(line, f"{what} must be a number, not {value!r}")
            return None
        if not low <= value <= high:
            self.fail(line, f"{what} is {value}; it must be between {low} and {high}")
            return None
        return float(value)

    def once(self, section: str, line: int) -> bool:
        if section in self.seen_sections:
            self.fail(line, f"'{section}' is already defined at {self.seen_sections[section]}; "
                            "keep one per ruleset")
            return False
        self.seen_sections[section] = self.where(line)
        return True

    # -- sections --------------------------------------------------------

    def read_campaign(self, node: LineDict, rs: Ruleset) -> None:
        self.unknown_keys(node, ("hashtags", "terms", "trusted_domains", "relevance"), "campaign")
        if "hashtags" in node and (tags := self.str_list(node["hashtags"], node.line_of("hashtags"),
                                                           "campaign.hashtags")):
            rs.campaign.hashtags = frozenset(t.lstrip("#").lower() for t in tags)
        if "terms" in node and (terms := self.str_list(node["terms"], node.line_of("terms"),
                                                         "campaign.terms")):
            rs.campaign.terms = tuple(t.lower() for t in terms)
        if "trusted_domains" in node and (doms := self.str_list(
                node["trusted_domains"], node.line_of("trusted_domains"),
                "campaign.trusted_domains")):
            rs.campaign.trusted_domains = tuple(d.lower().lstrip(".") for d in doms)
        if "relevance" in node and (rel := self.expect_map(
                node["relevance"], node.line_of("relevance"), "campaign.relevance")):
            self.unknown_keys(rel, ("label", "term", "hashtag"), "campaign.relevance")
            for key in ("label", "term", "hashtag"):
                if key in rel and (w := self.number(rel[key], rel.line_of(key),
                                                    f"campaign.relevance.{key}", 0, 1)) is not None:
                    rs.campaign.relevance[key] = w

    def read_languages(self, node: LineDict, rs: Ruleset) -> None:
        for code, conf in node.items():
            line = node.line_of(code)
            if not isinstance(code, str) or not re.fullmatch(r"[a-z]{2,3}", code):
                self.fail(line, f"language {code!r} must be an ISO 639 code such as en, es, zh")
                continue
            lang = LanguageConfig(code, tokenizer="char" if code in _CHAR_DEFAULT else "spacy")
            if conf is not None and (conf := self.expect_map(conf, line, f"languages.{code}")):
                self.unknown_keys(conf, _LANG_KEYS, f"languages.{code}")
                if "negations" in conf and (negs := self.str_list(
                        conf["negations"], conf.line_of("negations"), f"languages.{code}.negations")):
                    lang.negations = frozenset(n.lower() for n in negs)
                if "negation_window" in conf and (w := self.number(
                        conf["negation_window"], conf.line_of("negation_window"),
                        f"languages.{code}.negation_window", 1, 10)) is not None:
                    lang.negation_window = int(w)
                if "tokenizer" in conf:
                    if conf["tokenizer"] not in ("spacy", "char"):
                        self.fail(conf.line_of("tokenizer"),
                                  f"tokenizer must be 'spacy' or 'char', not {conf['tokenizer']!r}")
                    else:
                        lang.tokenizer = conf["tokenizer"]
            rs.languages[code] = lang

    def read_scoring(self, node: LineDict, rs: Ruleset) -> None:
        self.unknown_keys(node, LAYERS, "scoring")
        for layer in LAYERS:
            if layer not in node:
                continue
            conf = self.expect_map(node[layer], node.line_of(layer), f"scoring.{layer}")
            if conf is None:
                continue
            self.unknown_keys(conf, ("threshold", "max", "order"), f"scoring.{layer}")
            scoring = rs.scoring[layer]
            if "threshold" in conf and (t := self.number(
                    conf["threshold"], conf.line_of("threshold"), f"scoring.{layer}.threshold",
                    0.01, 1000)) is not None:
                scoring.threshold = t
            if "max" in conf:
                if layer == "flag":
                    self.fail(conf.line_of("max"), "flags have no maximum; remove 'max'")
                elif (m := self.number(conf["max"], conf.line_of("max"), f"scoring.{layer}.max",
                                       1, 10)) is not None:
                    scoring.max = 1 if layer == "claim" else int(m)
                    if layer == "claim" and m != 1:
                        self.fail(conf.line_of("max"), "a post has at most one claim; set max: 1")
            if "order" in conf and (order := self.str_list(conf["order"], conf.line_of("order"),
                                                             f"scoring.{layer}.order")):
                scoring.order = tuple(order)
                self.order_lines[layer] = (self.file, order)

    def read_moderation(self, node: LineDict, rs: Ruleset) -> None:
        config = rs.moderation
        top = SECTIONS[""]
        self.unknown_keys(node, (*top, *(k for k in SECTIONS if k)), "moderation")
        for key, value in node.items():
            if key in SECTIONS and key:
                sub = self.expect_map(value, node.line_of(key), f"moderation.{key}")
                if sub is None:
                    continue
                self.unknown_keys(sub, tuple(SECTIONS[key]), f"moderation.{key}")
                items = [(f"moderation.{key}.{k}", SECTIONS[key].get(k), v, sub.line_of(k))
                         for k, v in sub.items()]
            else:
                items = [(f"moderation.{key}", top.get(key), value, node.line_of(key))]
            for what, name, raw, line in items:
                if name is None:
                    continue
                default = getattr(config, name)
                if isinstance(default, bool):
                    if not isinstance(raw, bool):
                        self.fail(line, f"{what} is true or false")
                    else:
                        setattr(config, name, raw)
                    continue
                high = 1.0 if name.endswith("jaccard") else 10_000_000
                number = self.number(raw, line, what, 0.01 if isinstance(default, float) else 1,
                                     high)
                if number is not None and isinstance(default, int) and number != int(number):
                    self.fail(line, f"{what} is {raw}; it counts posts or entries, so it must be "
                                    "a whole number")
                elif number is not None:
                    setattr(config, name, int(number) if isinstance(default, int) else number)

    def read_label(self, node: Any, line: int, rs: Ruleset) -> None:
        node = self.expect_map(node, line, "each item of 'labels'")
        if node is None:
            return
        self.unknown_keys(node, _LABEL_KEYS, "a label")
        label_id, layer = node.get("label"), node.get("layer")
        if not isinstance(label_id, str) or not _LABEL_ID.match(label_id):
            self.fail(node.line, f"label id {label_id!r} must be snake_case text, e.g. "
                                 "'user_experience'")
            return
        if label_id in self.label_ids:
            self.fail(node.line, f"label '{label_id}' is already defined at "
                                 f"{self.label_ids[label_id]}; merge the two")
            return
        self.label_ids[label_id] = self.where(node.line)
        if layer not in LAYERS:
            self.fail(node.line_of("layer"), f"label '{label_id}': layer {layer!r} must be one "
                                             f"of {', '.join(LAYERS)}")
            return
        if layer == "flag" and label_id not in FLAG_KINDS:
            self.fail(node.line, f"flag label '{label_id}' is not a flag kind; use one of "
                                 f"{', '.join(FLAG_KINDS)}")
        desc = node.get("description")
        if not isinstance(desc, str) or not desc.strip():
            self.fail(node.line, f"label '{label_id}' needs a one-line 'description'")
            desc = ""
        label = Label(label_id, layer, desc.strip(), self.where(node.line))
        if "mode" in node:
            label.mode = self._mode(node["mode"], node.line_of("mode"))
        if "threshold" in node:
            label.threshold = self.number(node["threshold"], node.line_of("threshold"),
                                          f"label '{label_id}' threshold", 0.01, 1000)
        self._label_severity(node, label)
        for key, target, exclusion in (("rules", label.rules, False),
                                       ("exclude", label.exclude, True)):
            if key not in node:
                if key == "rules":
                    self.fail(node.line, f"label '{label_id}' has no 'rules'; add at least one")
                continue
            items = node[key]
            if not isinstance(items, LineList) or not items:
                self.fail(node.line_of(key), f"label '{label_id}': '{key}' must be a list of rules")
                continue
            for i, item in enumerate(items):
                if (rule := self.read_rule(item, items.line_of(i), label, exclusion)) is not None:
                    target.append(rule)
        self._examples(node, label)
        rs.labels[label_id] = label

    def _mode(self, value: Any, line: int) -> str:
        if value not in ("active", "shadow"):
            self.fail(line, f"mode must be 'active' or 'shadow', not {value!r}")
            return "active"
        return str(value)

    def _label_severity(self, node: LineDict, label: Label) -> None:
        sev = node.get("severity")
        if label.layer != "flag":
            if sev is not None:
                self.fail(node.line_of("severity"), f"label '{label.id}': only flags have a "
                                                    "severity; remove it")
            return
        if sev not in SEVERITIES:
            self.fail(node.line_of("severity"), f"flag '{label.id}' needs severity: one of "
                                                f"{', '.join(SEVERITIES)}")
            return
        if label.id == "csam_risk" and sev != "critical":
            self.fail(node.line_of("severity"), "csam_risk must have severity: critical")
        label.severity = sev

    def read_rule(self, node: Any, line: int, label: Label, exclusion: bool) -> Rule | None:
        what = f"a rule of label '{label.id}'"
        node = self.expect_map(node, line, what)
        if node is None:
            return None
        self.unknown_keys(node, _RULE_KEYS, what)
        rule_id = node.get("id")
        if not isinstance(rule_id, str) or not _ID.match(rule_id):
            self.fail(node.line, f"{what} needs an 'id' of lower-case letters, digits, '.', '_' "
                                 f"or '-', e.g. '{label.id}.keyword'; got {rule_id!r}")
            return None
        if rule_id in self.rule_ids:
            self.fail(node.line, f"rule id '{rule_id}' is already used at "
                                 f"{self.rule_ids[rule_id]}; rule ids must be unique")
            return None
        self.rule_ids[rule_id] = self.where(node.line)
        kinds = [k for k in MATCHER_KINDS if k in node]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self.fail(node.line, f"rule '{rule_id}' needs exactly one of "
                                 f"{', '.join(MATCHER_KINDS)} (found: {found})")
            return None
        kind = kinds[0]
        raw = node[kind]
        rule = Rule(rule_id, label.id, label.layer, kind, (), self.where(node.line_of(kind)),
                    exclusion=exclusion)
        if kind == "relevance_below":
            if label.layer != "flag":
                self.fail(node.line_of(kind), f"rule '{rule_id}': relevance_below is for flags")
                return None
            value = self.number(raw, node.line_of(kind), f"rule '{rule_id}' relevance_below", 0, 1)
            if value is None:
                return None
            rule.values = (value,)
        elif kind == "tokens":
            if not isinstance(raw, LineList) or not raw:
                self.fail(node.line_of(kind), f"rule '{rule_id}': tokens must be a token pattern "
                          "(a list of {ATTR: value} dicts) or a list of such patterns")
                return None
            patterns = [raw] if isinstance(raw[0], dict) else list(raw)
            lines = [raw.line] if isinstance(raw[0], dict) else [raw.line_of(i)
                                                                  for i in range(len(raw))]
            rule.values, rule.value_lines = tuple(patterns), tuple(lines)
        else:
            items = raw if isinstance(raw, LineList) or kind != "regex" else LineList([raw])
            if isinstance(items, LineList) and not hasattr(items, "item_lines"):
                items.line, items.item_lines = node.line_of(kind), [node.line_of(kind)]
            values = self.str_list(items, node.line_of(kind), f"rule '{rule_id}' {kind}")
            if values is None:
                return None
            if kind == "hashtags":
                rule.values = tuple(v.lstrip("#").lower() for v in values)
            else:
                rule.values = tuple(values)
            rule.value_lines = tuple(values.line_of(i) for i in range(len(values)))
        if "weight" in node:
            weight = self.number(node["weight"], node.line_of("weight"),
                                 f"rule '{rule_id}' weight", 0.01, 100)
            rule.weight = weight if weight is not None else 1.0
        if "languages" in node:
            langs = self.str_list(node["languages"], node.line_of("languages"),
                                  f"rule '{rule_id}' languages")
            rule.languages = tuple(langs) if langs else None
            rule.languages_line = node.line_of("languages")
        if "mode" in node:
            rule.mode = self._mode(node["mode"], node.line_of("mode"))
        if "negation" in node:
            if not isinstance(node["negation"], bool):
                self.fail(node.line_of("negation"), f"rule '{rule_id}': negation is true or false")
            else:
                rule.negation = node["negation"]
        if "quoted" in node:
            if node["quoted"] not in ("keep", "drop"):
                self.fail(node.line_of("quoted"), f"rule '{rule_id}': quoted is 'keep' or 'drop'")
            else:
                rule.quoted = node["quoted"]
        if "severity" in node:
            if label.layer != "flag":
                self.fail(node.line_of("severity"), f"rule '{rule_id}': only flag rules have a "
                                                    "severity; remove it")
            elif node["severity"] not in SEVERITIES:
                self.fail(node.line_of("severity"), f"rule '{rule_id}': severity must be one of "
                                                    f"{', '.join(SEVERITIES)}")
            elif label.id == "csam_risk" and node["severity"] != "critical":
                self.fail(node.line_of("severity"), "csam_risk rules must be critical")
            else:
                rule.severity = node["severity"]
        return rule

    def _examples(self, node: LineDict, label: Label) -> None:
        examples = node.get("examples")
        if not isinstance(examples, LineDict):
            self.fail(node.line_of("examples"), f"label '{label.id}' needs 'examples' with "
                      f"'match' (at least {_MIN_MATCH}) and 'no_match' (at least {_MIN_NO_MATCH})")
            return
        self.unknown_keys(examples, ("match", "no_match"), f"examples of '{label.id}'")
        for key, target, least in (("match", label.match, _MIN_MATCH),
                                   ("no_match", label.no_match, _MIN_NO_MATCH)):
            items = examples.get(key)
            if not isinstance(items, LineList) or len(items) < least:
                self.fail(examples.line_of(key), f"label '{label.id}' needs at least {least} "
                                                 f"'{key}' examples")
                continue
            for i, item in enumerate(items):
                where = self.where(items.line_of(i))
                if isinstance(item, str) and item.strip():
                    target.append(Example(item, None, where))
                elif (isinstance(item, LineDict) and isinstance(item.get("text"), str)
                      and set(item) <= {"text", "lang"}):
                    target.append(Example(item["text"], item.get("lang"), where))
                else:
                    self.fail(where.line, "an example is a text, or {text: ..., lang: xx}")

    # -- whole-ruleset checks -------------------------------------------

    def cross_check(self, rs: Ruleset) -> None:
        langs = set(rs.languages)
        for label in rs.labels.values():
            for rule in (*label.rules, *label.exclude):
                for code in rule.languages or ():
                    if code not in langs:
                        where = Where(rule.where.file, rule.languages_line or rule.where.line)
                        self.problems.append(Problem(where, (
                            f"rule '{rule.id}' names language '{code}', which is not under "
                            f"'languages'; add it there or fix the code ({', '.join(sorted(langs))})")))
            for ex in (*label.match, *label.no_match):
                if ex.lang is not None and ex.lang not in langs:
                    self.problems.append(Problem(ex.where, (
                        f"example language '{ex.lang}' is not under 'languages'")))
        for layer, (file, order) in self.order_lines.items():
            for i, name in enumerate(order):
                label = rs.labels.get(name)
                if label is None or label.layer != layer:
                    close = difflib.get_close_matches(name, [lb.id for lb in rs.labels_of(layer)], 1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    self.problems.append(Problem(Where(file, order.line_of(i)), (
                        f"scoring.{layer}.order names '{name}', which is not a {layer} label{hint}")))


def load_ruleset(path: str | Path) -> Ruleset:
    """Read and validate a ruleset folder; raise RulesetError listing every problem."""
    root = Path(path)
    if not root.is_dir():
        raise RulesetError([Problem(Where(str(root), 0), (
            "no such ruleset folder; pass a folder of YAML rule files, e.g. rules/keep4o"))])
    files = ruleset_files(root)
    if not files:
        raise RulesetError([Problem(Where(str(root), 0), "no .yaml files in this folder")])
    reader = _Reader(root)
    rs = Ruleset(name=root.name, path=root, hash=_hash(files, root),
                 scoring={layer: LayerScoring(max={"theme": 2, "claim": 1, "reason": 2}.get(layer))
                          for layer in LAYERS})
    for file in files:
        reader.file = str(file)
        try:
            doc = load_yaml(file)
        except YamlProblem as exc:
            reader.fail(exc.line, exc.message)
            continue
        if doc is None:
            continue
        if not isinstance(doc, LineDict):
            reader.fail(1, f"a rules file is a mapping with keys {', '.join(_TOP_KEYS)}")
            continue
        reader.unknown_keys(doc, _TOP_KEYS, "a rules file")
        for section in ("ruleset", "campaign", "languages", "scoring", "moderation"):
            if section not in doc or not reader.once(section, doc.line_of(section)):
                continue
            node = reader.expect_map(doc[section], doc.line_of(section), section)
            if node is None:
                continue
            if section == "ruleset":
                reader.unknown_keys(node, ("name", "description"), "ruleset")
                name = node.get("name")
                if not isinstance(name, str) or not _ID.match(name):
                    reader.fail(node.line, "ruleset.name must be a short lower-case id, e.g. keep4o")
                else:
                    rs.name = name
                rs.description = str(node.get("description") or "")
            elif section == "campaign":
                reader.read_campaign(node, rs)
            elif section == "languages":
                reader.read_languages(node, rs)
            elif section == "moderation":
                reader.read_moderation(node, rs)
            else:
                reader.read_scoring(node, rs)
        if "labels" in doc:
            labels = doc["labels"]
            if not isinstance(labels, LineList):
                reader.fail(doc.line_of("labels"), "'labels' must be a list of label definitions")
                continue
            for i, item in enumerate(labels):
                reader.read_label(item, labels.line_of(i), rs)
    if not rs.languages:
        rs.languages["en"] = LanguageConfig("en")
    if not rs.labels and not reader.problems:
        reader.fail(0, "the ruleset defines no labels")
    reader.cross_check(rs)
    if reader.problems:
        raise RulesetError(reader.problems)
    return rs
