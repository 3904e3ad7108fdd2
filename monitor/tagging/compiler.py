"""Compile a validated Ruleset into spaCy matchers, one blank pipeline per language.

At run time a post costs one tokenizer pass, one PhraseMatcher call, one
Matcher call (only if token patterns exist) and one regex scan (regexscan.py); no model
is loaded, so nothing is fetched from a hub. Every pattern is checked here,
at load, and problems are reported with the rule's ``file:line``.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Generator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import re2
import spacy
from spacy.attrs import IDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from monitor.tagging.lemmas import LemmaForms, forms_for, has_lemma_table
from monitor.tagging.regexscan import RegexScan
from monitor.tagging.ruleset import LanguageConfig, Problem, Rule, Ruleset, RulesetError

__all__ = ["NEGATION_KEY", "TERM_KEY", "CompiledRuleset", "LanguagePipeline", "Steps",
           "compile_ruleset", "fresh_pipelines_steps"]

_T = TypeVar("_T")
#: a build done a step at a time (a refresh: one language's tokenizer a step); returns its result
Steps = Generator[None, None, _T]

#: Match key of the campaign's core terms inside each PhraseMatcher.
TERM_KEY = "__campaign_term__"
#: Match key of the language's negation cues inside each PhraseMatcher.
NEGATION_KEY = "__negation__"
#: Most surface variants one lemma phrase may expand to.
MAX_LEMMA_VARIANTS = 256
#: Memory budget of one compiled regex (RE2 refuses larger programs).
REGEX_MAX_MEM = 8 << 20
#: Most phrases one token pattern may be enumerated into (else the Matcher runs it).
MAX_TOKEN_VARIANTS = 20_000
#: RE2 program size per regex: the shipped rules' largest is 1,589; (\w+\s?){1000}x
#: is 10,005 and costs 2.4 s on a 50,000-character post.
MAX_REGEX_PROGRAM = 5_000

_TOKEN_ATTRS = frozenset({
    "ORTH", "TEXT", "LOWER", "NORM", "LENGTH", "SHAPE", "PREFIX", "SUFFIX", "LEMMA", "OP",
    "IS_ALPHA", "IS_ASCII", "IS_DIGIT", "IS_LOWER", "IS_UPPER", "IS_TITLE", "IS_PUNCT",
    "IS_SPACE", "IS_STOP", "IS_BRACKET", "IS_QUOTE", "IS_CURRENCY", "LIKE_NUM", "LIKE_URL",
    "LIKE_EMAIL",
})
#: lexeme attributes computed whatever the rules: LOWER (the phrase matcher's attribute,
#: negation windows) and LANG (one string)
_LEXEME_ATTRS = frozenset({"LOWER", "LANG"})
_NEEDS_MODEL = frozenset({"POS", "TAG", "MORPH", "DEP", "ENT_TYPE", "ENT_IOB", "ENT_ID",
                          "SENT_START", "IS_SENT_START", "ENT_KB_ID", "HEAD"})


@dataclass(slots=True)
class LanguagePipeline:
    """A blank spaCy pipeline for one language and the matchers compiled for it.

    The PhraseMatcher is built on a vocabulary of its own (the patterns'
    words), not ``nlp``'s: it reads only the string hashes of the tokens it is
    given, so it serves every fresh ``nlp`` a refresh brings, and the
    stream's words never reach the vocabulary it keeps alive. The token
    Matcher may read a token's strings from its own vocabulary (fuzzy and
    set predicates), so it is built on ``nlp``'s, from ``token_patterns``,
    again at each refresh."""

    config: LanguageConfig
    #: the tokenizer the stream's posts go through: a refresh replaces it
    nlp: Language
    phrases: PhraseMatcher
    tokens: Matcher | None
    #: spaCy string hash of a match key -> index into CompiledRuleset.rules
    keys: dict[int, int] = field(default_factory=dict)
    term_key: int = 0
    #: match key of the negation cues (0: the language has none)
    negation_key: int = 0
    #: lexemes in the vocabulary once built: what the stream's words add is the rest
    built_size: int = 0
    #: rule id -> the token patterns the Matcher runs (those the PhraseMatcher cannot)
    token_patterns: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)


@dataclass(slots=True)
class CompiledRuleset:
    """Everything the Tagger needs, immutable once built (safe to swap atomically)."""

    ruleset: Ruleset
    rules: list[Rule]
    pipelines: dict[str, LanguagePipeline]
    regex_set: RegexScan | None
    #: position in regex_set -> the compiled pattern and the (rule index, position among
    #: the rule's patterns) of every rule using it
    regexes: list[tuple[Any, tuple[tuple[int, int], ...]]]
    hashtag_rules: dict[str, list[int]]
    relevance_rules: list[int]
    default_lang: str


def _blank(conf: LanguageConfig) -> Language:
    """A tokenizer-only pipeline; 'char' uses spaCy's per-character segmenter."""
    if conf.tokenizer == "char":
        return spacy.blank("zh")
    return spacy.blank(conf.code)


def _regex_options(max_mem: int = REGEX_MAX_MEM) -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = max_mem
    # Only a match's bounds are read (evidence, negation, quotes). Capturing groups made
    # RE2 track every group's span in its NFA; without them the DFA finds the bounds:
    # a rule's second search costs half (25 -> 14 us on a three-sentence post).
    options.never_capture = True
    return options


def enumerate_pattern(pattern: list[dict[str, Any]]) -> list[list[str]] | None:
    """The token sequences a simple pattern matches, or None if it is not simple.

    Simple: every token is ``LOWER`` = a lower-case word or ``{IN: [...]}``,
    optionally with ``OP: "?"``. Such a pattern matches exactly the phrases
    enumerated here, so the PhraseMatcher (a trie) can run it instead of the
    Matcher, whose set predicates cost Python calls on every token.
    """
    choices: list[list[str | None]] = []
    total = 1
    for spec in pattern:
        if not set(spec) <= {"LOWER", "OP"} or "LOWER" not in spec:
            return None
        op = spec.get("OP")
        if op not in (None, "?"):
            return None
        value = spec["LOWER"]
        if isinstance(value, str):
            words = [value]
        elif isinstance(value, dict) and set(value) == {"IN"} and isinstance(value["IN"], list):
            words = list(value["IN"])
        else:
            return None
        if not all(isinstance(w, str) and w and w == w.lower() and " " not in w for w in words):
            return None
        options: list[str | None] = list(dict.fromkeys(words))
        if op == "?":
            options.append(None)
        choices.append(options)
        total *= len(options)
        if total > MAX_TOKEN_VARIANTS:
            return None
    variants = [[w for w in combo if w is not None] for combo in itertools.product(*choices)]
    return [v for v in variants if v]


class _Compiler:
    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.problems: list[Problem] = []
        self.rules = ruleset.all_rules()
        self.lemma_forms: dict[str, LemmaForms] = {}

    def fail(self, rule: Rule, message: str, line: int | None = None) -> None:
        """Record a problem once, however many language pipelines meet it."""
        where = rule.where if line is None else type(rule.where)(rule.where.file, line)
        problem = Problem(where, f"rule '{rule.id}': {message}")
        if problem not in self.problems:
            self.problems.append(problem)

    def forms(self, pipe: LanguagePipeline) -> LemmaForms | None:
        """Lemma forms for one language, built once for every lemma the rules use."""
        lang = pipe.config.code
        if lang not in self.lemma_forms:
            if not has_lemma_table(lang):
                return None
            words: set[str] = set()
            # the lemma table's language's own tokenizer: the pipeline's, unless it is 'char'
            # (a second blank pipeline costs ~0.1 s, on every refresh)
            nlp = pipe.nlp if pipe.config.tokenizer != "char" else spacy.blank(lang)
            for rule in self.rules:
                if rule.kind == "lemmas" and rule.applies_to(lang):
                    for phrase in rule.values:
                        words.update(t.lower_ for t in nlp.make_doc(str(phrase)))
                elif rule.kind == "tokens" and rule.applies_to(lang):
                    words.update(_lemma_values(rule.values))
            self.lemma_forms[lang] = forms_for(lang, frozenset(words))
        return self.lemma_forms[lang]

    def lemma_variants(self, rule: Rule, phrase: str, pipe: LanguagePipeline,
                       line: int) -> list[str]:
        forms = self.forms(pipe)
        tokens = [t.lower_ for t in pipe.nlp.make_doc(phrase)]
        choices = [forms.of(t) if forms else [t] for t in tokens]
        total = 1
        for c in choices:
            total *= len(c)
        if total > MAX_LEMMA_VARIANTS:
            self.fail(rule, f"lemma phrase {phrase!r} expands to {total} word forms (at most "
                            f"{MAX_LEMMA_VARIANTS}); shorten it or split it into several phrases",
                      line)
            return []
        return [" ".join(combo) for combo in itertools.product(*choices)]

    def token_pattern(self, rule: Rule, pattern: Any, pipe: LanguagePipeline,
                      line: int) -> list[dict[str, Any]] | None:
        if not isinstance(pattern, list) or not all(isinstance(t, dict) for t in pattern):
            self.fail(rule, "a token pattern is a list of {ATTR: value} dicts, e.g. "
                            "[{LOWER: i}, {LEMMA: miss}]", line)
            return None
        out = []
        for token in pattern:
            spec: dict[str, Any] = {}
            for key, value in token.items():
                attr = str(key).upper()
                if attr in _NEEDS_MODEL:
                    self.fail(rule, f"{key} needs a trained pipeline, and the monitor tokenizes "
                                    "with blank ones; use LOWER, LEMMA, IS_* or LIKE_* instead", line)
                    return None
                if attr not in _TOKEN_ATTRS:
                    self.fail(rule, f"unknown token attribute {key!r}; use one of "
                                    f"{', '.join(sorted(_TOKEN_ATTRS))}", line)
                    return None
                if attr == "LEMMA":
                    lowered = self._lemma_attr(rule, value, pipe, line)
                    if lowered is None:
                        return None
                    spec["LOWER"] = lowered
                else:
                    spec[attr] = value
            out.append(spec)
        return out

    def _lemma_attr(self, rule: Rule, value: Any, pipe: LanguagePipeline, line: int) -> Any:
        forms = self.forms(pipe)

        def expand(words: Any) -> list[str] | None:
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                self.fail(rule, "LEMMA IN / NOT_IN takes a list of words", line)
                return None
            return sorted({f for w in words for f in (forms.of(w) if forms else [w.lower()])})

        if isinstance(value, str):
            return {"IN": forms.of(value) if forms else [value.lower()]}
        if isinstance(value, dict) and set(value) <= {"IN", "NOT_IN"} and value:
            out = {}
            for op, words in value.items():
                if (expanded := expand(words)) is None:
                    return None
                out[op] = expanded
            return out
        self.fail(rule, "LEMMA takes a word or {IN: [...]} / {NOT_IN: [...]}; for other "
                        "operators match LOWER", line)
        return None

    def pipeline(self, conf: LanguageConfig) -> LanguagePipeline:
        """One language's matchers, on the patterns' own blank pipeline, and the stream's
        tokenizer (see LanguagePipeline). Built in one go: a refresh builds only the
        tokenizer (fresh_pipelines_steps)."""
        nlp = _blank(conf)  # the patterns' own: held by the PhraseMatcher only
        pipe = LanguagePipeline(conf, nlp, PhraseMatcher(nlp.vocab, attr="LOWER"), None)
        token_patterns: dict[int, list[list[dict[str, Any]]]] = {}
        for index, rule in enumerate(self.rules):
            if not rule.applies_to(conf.code) or rule.kind not in ("phrases", "lemmas", "tokens"):
                continue
            key = nlp.vocab.strings.add(rule.id)
            pipe.keys[key] = index
            lines = rule.value_lines or (rule.where.line,) * len(rule.values)
            if rule.kind == "tokens":
                patterns = [self.token_pattern(rule, p, pipe, line)
                            for p, line in zip(rule.values, lines, strict=False)]
                for pattern in patterns:
                    if pattern is None:
                        continue
                    variants = enumerate_pattern(pattern)
                    if variants is None:
                        token_patterns.setdefault(index, []).append(pattern)
                    else:
                        pipe.phrases.add(rule.id, [Doc(nlp.vocab, words=v) for v in variants])
                continue
            texts: list[str] = []
            for phrase, line in zip(rule.values, lines, strict=False):
                texts.extend(self.lemma_variants(rule, str(phrase), pipe, line)
                             if rule.kind == "lemmas" else [str(phrase)])
            docs = [d for d in nlp.tokenizer.pipe(texts) if len(d)]
            if docs:
                pipe.phrases.add(rule.id, docs)
        checked = Matcher(nlp.vocab, validate=True)  # on the patterns' vocabulary; run on
        for index, patterns in token_patterns.items():  # the stream's (_with_fresh_tokenizer)
            rule = self.rules[index]
            try:
                checked.add(rule.id, patterns)
            except (ValueError, TypeError) as exc:  # MatchPatternError is a ValueError
                detail = " ".join(str(exc).split())[:300]
                self.fail(rule, f"invalid token pattern: {detail}")
                continue
            pipe.token_patterns[rule.id] = patterns
        if self.rs.campaign.terms:
            pipe.term_key = nlp.vocab.strings.add(TERM_KEY)
            pipe.phrases.add(TERM_KEY, list(nlp.tokenizer.pipe(self.rs.campaign.terms)))
        # A cue is one token whose lower case is the cue (the tagger's negation window):
        # one-token patterns, not tokenized ("n't" stays whole), so the matcher finds exactly
        # those tokens, in the pass it makes anyway
        cues = sorted(w for w in conf.negations if w and w == w.lower())
        if cues:
            pipe.negation_key = nlp.vocab.strings.add(NEGATION_KEY)
            pipe.phrases.add(NEGATION_KEY, [Doc(nlp.vocab, words=[w]) for w in cues])
        return _with_fresh_tokenizer(pipe)

    def regexes(self) -> tuple[RegexScan | None, list[tuple[Any, tuple[tuple[int, int], ...]]]]:
        options = _regex_options()
        #: pattern -> (compiled, rules using it): a pattern shared by several rules
        #: (languages, flags reusing a spam list) is scanned for once
        by_pattern: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
        for index, rule in enumerate(self.rules):
            if rule.kind != "regex":
                continue
            lines = rule.value_lines or (rule.where.line,) * len(rule.values)
            for order, (pattern, line) in enumerate(zip(rule.values, lines, strict=False)):
                known = by_pattern.get(str(pattern))
                if known is not None:
                    if all(i != index for i, _ in known[1]):
                        known[1].append((index, order))
                    continue
                try:
                    regex = re2.compile(str(pattern), options)
                except re2.error as exc:
                    reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) \
                        else str(exc)
                    self.fail(rule, f"regex {pattern!r} does not compile: {reason}; RE2 has no "
                                    "look-around or back-references (it runs in linear time)", line)
                    continue
                if regex.programsize > MAX_REGEX_PROGRAM:  # linear, but every post pays for it
                    self.fail(rule, f"regex {pattern!r} compiles to {regex.programsize} RE2 "
                                    f"instructions, at most {MAX_REGEX_PROGRAM}; use smaller "
                                    "repetition counts or split it", line)
                    continue
                # (RE2's filter refuses only what RE2 cannot compile: checked above)
                by_pattern[str(pattern)] = (regex, [(index, order)])
        if not by_pattern or self.problems:
            return None, []
        compiled = [(regex, tuple(users)) for regex, users in by_pattern.values()]
        try:
            scan = RegexScan(list(by_pattern), options, compiled=[r for r, _ in compiled])
        except re2.error:
            raise RulesetError([Problem(self.rules[compiled[0][1][0][0]].where,
                                        "the regexes could not be compiled together; "
                                        "simplify or remove some")]) from None
        return scan, compiled


def _with_fresh_tokenizer(pipe: LanguagePipeline) -> LanguagePipeline:
    """``pipe`` with a new blank pipeline for the stream (an empty vocabulary) and its
    token Matcher built on it; the PhraseMatcher is shared (see LanguagePipeline)."""
    nlp = _blank(pipe.config)
    tokens = None
    if pipe.token_patterns:
        tokens = Matcher(nlp.vocab, validate=True)
        for rule_id, patterns in pipe.token_patterns.items():
            tokens.add(rule_id, patterns)
    _keep_lexeme_attrs(nlp, {attr for patterns in pipe.token_patterns.values()
                             for pattern in patterns for spec in pattern for attr in spec})
    return replace(pipe, nlp=nlp, tokens=tokens, built_size=len(nlp.vocab))


def _keep_lexeme_attrs(nlp: Language, used: set[str]) -> None:
    """Have spaCy compute only the lexeme attributes the matchers read.

    Each word the vocabulary has not seen becomes a lexeme, and a blank
    pipeline computes all 23 of its attributes (shape, prefix, suffix, stop
    word, like_num...) in Python calls; a stream brings new words (handles,
    numbers, links) in most posts, and again after every refresh. Token
    patterns may read any attribute: theirs are kept."""
    keep = {IDS[name] for name in _LEXEME_ATTRS | used if name in IDS}
    vocab = nlp.vocab
    vocab.lex_attr_getters = {attr: getter for attr, getter in vocab.lex_attr_getters.items()
                              if attr in keep}


def _lemma_values(patterns: tuple[object, ...]) -> set[str]:
    """Words used with LEMMA in token patterns, so their forms get built."""
    words: set[str] = set()
    stack: list[Any] = list(patterns)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if str(key).upper() == "LEMMA":
                    if isinstance(value, str):
                        words.add(value.lower())
                    elif isinstance(value, dict):
                        for v in value.values():
                            if isinstance(v, list):
                                words.update(str(w).lower() for w in v)
    return words


def _pipelines(compiler: _Compiler, ruleset: Ruleset) -> dict[str, LanguagePipeline]:
    pipelines: dict[str, LanguagePipeline] = {}
    for code, conf in ruleset.languages.items():
        try:
            pipelines[code] = compiler.pipeline(conf)
        except (ImportError, OSError) as exc:
            raise RulesetError([Problem(ruleset.labels[next(iter(ruleset.labels))].where, (
                f"language '{code}' has no spaCy tokenizer here ({exc}); set "
                f"'tokenizer: char' under languages.{code}"))]) from None
    return pipelines


def fresh_pipelines_steps(compiled: CompiledRuleset, languages: Collection[str] | None = None,
                          ) -> Steps[CompiledRuleset]:
    """The same compiled ruleset with new stream tokenizers (a new, empty vocabulary) for
    ``languages`` (default: all), the others' kept; a step per language.

    Only the tokenizers hold the stream's words: the regexes, hashtag tables
    and phrase matchers are shared, not compiled again. A refresh costs a
    blank pipeline per language (keep4o's English one ~0.1 s; with its phrase
    matchers built again too, as before, 0.25-0.3 s), a step at a time, so
    a stream's refresh never stalls a batch for long (monitor/tagging/refresh.py).
    """
    pipelines = dict(compiled.pipelines)
    for code, pipe in compiled.pipelines.items():
        if languages is None or code in languages:
            pipelines[code] = _with_fresh_tokenizer(pipe)
            yield
    return replace(compiled, pipelines=pipelines)


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """Build matchers for every language; raise RulesetError listing every bad pattern."""
    compiler = _Compiler(ruleset)
    pipelines = _pipelines(compiler, ruleset)
    regex_set, regexes = compiler.regexes()
    hashtag_rules: dict[str, list[int]] = {}
    relevance: list[int] = []
    for index, rule in enumerate(compiler.rules):
        if rule.kind == "hashtags":
            for tag in rule.values:
                hashtag_rules.setdefault(str(tag), []).append(index)
        elif rule.kind == "relevance_below":
            relevance.append(index)
    if compiler.problems:
        raise RulesetError(compiler.problems)
    return CompiledRuleset(
        ruleset=ruleset,
        rules=compiler.rules,
        pipelines=pipelines,
        regex_set=regex_set,
        regexes=regexes,
        hashtag_rules=hashtag_rules,
        relevance_rules=relevance,
        default_lang=next(iter(ruleset.languages)),
    )
