"""Tag posts with a compiled ruleset: weighted hits, thresholds, tiebreaks, reasons kept.

Pure and synchronous: text in, :class:`Tags` out. It holds no per-post
state, so its memory does not grow with the stream, and batches are
tokenized per language.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from spacy.attrs import IDX
from spacy.tokens import Doc

from monitor.model import SEVERITIES, Flag, LabelScore, Tags
from monitor.tagging.compiler import (
    CompiledRuleset,
    LanguagePipeline,
    Steps,
    fresh_pipelines_steps,
)
from monitor.tagging.language import OTHER, resolve_language
from monitor.tagging.ruleset import Label, Rule
from monitor.textutil import break_symbol_runs, extract_hashtags, quoted_spans

__all__ = ["TAG_STEPS", "Decision", "Explanation", "Hit", "Tagger"]

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_EVIDENCE_CHARS = 200
#: the layers whose labels compete for a post's themes, claim and reasons
_LAYERS = ("theme", "claim", "reason")
_first = itemgetter(0)
#: The steps of :meth:`Tagger.tag_batch`, in order, as it names them to a ``lap`` callback
TAG_STEPS = ("language", "regex scan", "tokenize", "phrase match", "rules")


@dataclass(slots=True, frozen=True)
class Hit:
    """Where a rule matched; ``dropped`` says why it did not count, if it did not."""

    rule: Rule
    start: int
    end: int
    evidence: str
    dropped: str = ""


@dataclass(slots=True)
class Decision:
    """One label's score on one post, before the layer's cap is applied."""

    label: Label
    threshold: float
    score: float = 0.0
    shadow_score: float = 0.0
    rules: list[str] = field(default_factory=list)
    shadow_rules: list[str] = field(default_factory=list)
    excluded_by: str | None = None

    @property
    def passes(self) -> bool:
        """Whether the label would be given, ignoring the layer's maximum."""
        return _passes(self.score, self.threshold, self.excluded_by, self.label.shadow)

    @property
    def shadow_passes(self) -> bool:
        """Whether shadow rules or a shadow label would give it."""
        return _shadow_passes(self.shadow_score, self.threshold, self.excluded_by, self.passes)


def _passes(score: float, threshold: float, excluded_by: str | None, shadow_label: bool) -> bool:
    """The one rule for giving a label (the layer's maximum aside): Decision's, and the
    streaming path's, which keeps scores in plain lists."""
    return excluded_by is None and score >= threshold and not shadow_label


def _shadow_passes(shadow_score: float, threshold: float, excluded_by: str | None,
                   passes: bool) -> bool:
    """The rule for a label that shadow rules or a shadow label would give."""
    return excluded_by is None and shadow_score >= threshold and not passes


@dataclass(slots=True)
class Explanation:
    """Everything behind one post's tags: for ``rules explain`` and ``rules test``."""

    text: str
    lang: str
    tags: Tags
    hits: list[Hit]
    decisions: dict[str, Decision]
    relevance: float
    campaign_marker: bool


class Tagger:
    """Applies one compiled ruleset; cheap to call, safe to share, swapped whole on reload."""

    def __init__(self, compiled: CompiledRuleset) -> None:
        self.compiled = compiled
        rs = compiled.ruleset
        self.ruleset = rs
        self._langs = frozenset(rs.languages)
        self._labels = list(rs.labels.values())
        self._label_ids = [label.id for label in self._labels]
        self._label_layers = [label.layer for label in self._labels]
        self._label_shadow = [label.shadow for label in self._labels]
        label_index = {label.id: i for i, label in enumerate(self._labels)}
        self._thresholds = [rs.threshold(label) for label in self._labels]
        #: per rule, what scoring reads: (label position, scored with the hits (not a
        #: relevance rule), exclusion, shadow, weight, id)
        self._plan = [(label_index[r.label], r.kind != "relevance_below", r.exclusion, r.shadow,
                       r.weight, r.id) for r in compiled.rules]
        order: dict[str, int] = {}
        for scoring in rs.scoring.values():
            for pos, name in enumerate(scoring.order):
                order[name] = pos
        #: label position -> its tiebreak among equal scores: the scoring order, then the id
        self._tiebreak = [(order.get(label.id, len(order)), label.id) for label in self._labels]
        self._limits = {layer: rs.scoring[layer].max for layer in _LAYERS
                        if layer in rs.scoring}
        self._rule_ids = [r.id for r in compiled.rules]
        self._campaign_tags = rs.campaign.hashtags
        self._relevance = rs.campaign.relevance
        #: rules whose hit needs its span to count: negation and quotes look at it; in a
        #: post without a negation cue, only quotes do
        self._needs_span = [r.negation or r.quoted == "drop" for r in compiled.rules]
        self._needs_quote_span = [r.quoted == "drop" for r in compiled.rules]
        #: the hit of a rule that counts wherever it matched (immutable, so shared)
        self._bare_hits = [Hit(r, 0, 0, "") for r in compiled.rules]

    # -- public API --------------------------------------------------------

    def language_of(self, text: str, platform_lang: str | None) -> str:
        return resolve_language(platform_lang, text, self._langs, self.compiled.default_lang)

    def tag(self, text: str, lang: str | None = None, hashtags: Iterable[str] = ()) -> Tags:
        """Tag one text; prefer :meth:`tag_batch` on a stream."""
        return self.tag_batch([(text, lang, tuple(hashtags))])[0]

    def tag_batch(self, items: Sequence[tuple[str, str | None, tuple[str, ...]]],
                  lap: Callable[[str], None] | None = None) -> list[Tags]:
        """Tag (text, platform language, platform hashtags) triples, batched per language.

        ``lap``: called with each step's name (:data:`TAG_STEPS`) as it ends, so
        ``monitor bench --stages`` can tell the libraries' work (tokenizer,
        Hyperscan, the phrase matcher) from the rules' own; once per step and
        language, never per post."""
        resolved = [self.language_of(text, lang) for text, lang, _ in items]
        if lap is not None:
            lap("language")
        # Every regex scan of the batch first, then the tokenizing: each keeps its tables
        # in the CPU cache (scans between tokenizer calls took ~35% longer)
        regex_set = self.compiled.regex_set
        found: Sequence[Sequence[int] | None] = regex_set.match_batch(
            [text for text, _, _ in items]) if regex_set is not None else [None] * len(items)
        if lap is not None:
            lap("regex scan")
        out: list[Tags | None] = [None] * len(items)
        by_lang: dict[str, list[int]] = {}
        for i, lang in enumerate(resolved):
            by_lang.setdefault(lang, []).append(i)
        for lang, indices in by_lang.items():
            pipe = self._pipe(lang)
            # No spaCy memory zone here: inside one the tokenizer cannot keep its cache
            # and rebuilds every lexeme (measured: 5x slower). The processor bounds the
            # vocabulary instead by swapping in a fresh tagger (see fresh_steps()).
            # The pipelines are blank (compiler._blank): make_doc is all nlp.pipe would do,
            # without its batching machinery (~5 us a post less)
            make_doc = pipe.nlp.make_doc
            docs = [make_doc(break_symbol_runs(items[i][0])) for i in indices]
            if lap is not None:
                lap("tokenize")
            phrase_hits = [pipe.phrases(doc) for doc in docs]
            if lap is not None:
                lap("phrase match")
            for i, doc, hits in zip(indices, docs, phrase_hits, strict=True):
                text, _, tags = items[i]
                out[i] = self._evaluate(pipe, doc, text, lang, tags, explain=False,
                                        found=found[i], phrases=hits).tags
            if lap is not None:
                lap("rules")
        return out  # type: ignore[return-value]

    def fresh_steps(self, languages: Collection[str] | None = None) -> Steps[Tagger]:
        """The same ruleset with new spaCy pipelines (regexes shared, not recompiled), built
        a step at a time (monitor/tagging/refresh.py).

        spaCy's vocabulary keeps every distinct token it has ever seen (memory
        zones free the strings but not the index, and cost the tokenizer its
        cache); on an endless stream of new words, handles and links that is
        a slow leak. The processor swaps in a fresh tagger every so often,
        which returns that memory. ``languages``: only these pipelines are new
        (default: all); the others are shared with this tagger.
        """
        return Tagger((yield from fresh_pipelines_steps(self.compiled, languages)))

    def vocabulary_growth(self) -> dict[str, int]:
        """Lexemes each language's vocabulary gained since it was built: what a refresh frees."""
        return {code: len(pipe.nlp.vocab) - pipe.built_size
                for code, pipe in self.compiled.pipelines.items()}

    def explain(self, text: str, lang: str | None = None,
                hashtags: Iterable[str] = ()) -> Explanation:
        """What fires and why, including hits dropped by negation or quotes."""
        resolved = self.language_of(text, lang)
        pipe = self._pipe(resolved)
        doc = pipe.nlp(break_symbol_runs(text))
        return self._evaluate(pipe, doc, text, resolved, tuple(hashtags), explain=True)

    # -- internals -----------------------------------------------------------

    def _pipe(self, lang: str) -> LanguagePipeline:
        pipelines = self.compiled.pipelines
        return pipelines.get(lang) or pipelines[self.compiled.default_lang]

    def _evaluate(self, pipe: LanguagePipeline, doc: Doc, text: str, lang: str,
                  platform_tags: tuple[str, ...], explain: bool,
                  found: Sequence[int] | None = None, phrases: Any = None) -> Explanation:
        """``found``, ``phrases``: the regex filter's and the phrase matcher's answers, if
        the caller has them (tag_batch runs each stage over the whole batch)."""
        rules = self.compiled.rules
        fired: dict[int, Hit] = {}
        dropped: list[Hit] = []
        quotes: list[tuple[int, int]] | None = None
        #: rule index -> the regex that matched or the token span, for hits whose
        #: evidence was not looked up
        unplaced: dict[int, Any] = {}
        term_seen = False
        other = lang == OTHER
        if phrases is None:
            phrases = pipe.phrases(doc)
        # where the negation cues are (token positions): the phrase matcher found them
        cues = [s for match_id, s, _ in phrases if match_id == pipe.negation_key] \
            if pipe.negation_key else []
        window = pipe.config.negation_window

        def consider(index: int, start_tok: int, end_tok: int, start: int, end: int) -> None:
            nonlocal quotes
            rule = rules[index]
            if other and rule.languages is not None:
                return
            why = ""
            if rule.negation and cues and any(start_tok - window <= c < start_tok for c in cues):
                why = "negated"
            elif rule.quoted == "drop":
                if quotes is None:
                    quotes = quoted_spans(text)
                if any(qs <= start and end <= qe for qs, qe in quotes):
                    why = "quoted"
            hit = Hit(rule, start, end, text[start:end][:_EVIDENCE_CHARS], why)
            if why:
                if explain:
                    dropped.append(hit)
            else:
                fired[index] = hit

        # without a cue no hit is negated: a rule needs its span only for quotes
        needs_span = self._needs_span if cues else self._needs_quote_span
        bare = self._bare_hits
        for match_id, s, e in phrases:
            if match_id == pipe.term_key:
                term_seen = True
                continue
            if match_id == pipe.negation_key:
                continue
            index = pipe.keys[match_id]
            if index in fired:
                continue
            if not explain and not needs_span[index]:
                # counts wherever it is: no Hit built per post; a flag that shows it as
                # evidence finds the words from the token span (_flag)
                if not (other and rules[index].languages is not None):
                    fired[index] = bare[index]
                    unplaced[index] = (s, e)
                continue
            consider(index, s, e, doc[s].idx, doc[e - 1].idx + len(doc[e - 1]))
        if pipe.tokens is not None:
            for match_id, s, e in pipe.tokens(doc):
                index = pipe.keys[match_id]
                if index not in fired:
                    consider(index, s, e, doc[s].idx, doc[e - 1].idx + len(doc[e - 1]))
        if self.compiled.regex_set is not None:
            if found is None:
                found = self.compiled.regex_set.match(text)
            if found:
                self._regex_hits(found, doc, text, lang, fired, consider, explain, unplaced,
                                 needs_span)
        hashtags = {t.lstrip("#＃").lower() for t in platform_tags}
        hashtags.update(extract_hashtags(text))
        for tag in hashtags:
            for index in self.compiled.hashtag_rules.get(tag, ()):
                if index not in fired and rules[index].applies_to(lang):
                    fired[index] = Hit(rules[index], 0, 0, "#" + tag)
        marker = bool(hashtags & self._campaign_tags) or term_seen
        return self._decide(doc, text, lang, fired, dropped, term_seen, marker, hashtags,
                            explain, unplaced)

    def _regex_hits(self, found: Sequence[int], doc: Doc, text: str, lang: str,
                    fired: dict[int, Hit], consider: object, explain: bool,
                    unplaced: dict[int, Any], needs_span: list[bool]) -> None:
        """``found``: the positions of the patterns that match (RegexScan)."""
        regexes, rules = self.compiled.regexes, self.compiled.rules
        # A pattern may serve several rules: gather each rule's matching patterns, then
        # take the rules in order and each rule's patterns in the order it lists them.
        per_rule: dict[int, list[tuple[int, Any]]] = {}
        for pos in found:
            regex, users = regexes[pos]
            for index, order in users:
                if index not in fired:
                    per_rule.setdefault(index, []).append((order, regex))
        starts: Any = None
        subject: str | bytes = text
        other = lang == OTHER
        for index in sorted(per_rule):
            rule = rules[index]
            if not rule.applies_to(lang):
                continue
            patterns = per_rule[index]
            if len(patterns) > 1:
                patterns.sort(key=_first)
            if not explain and not needs_span[index]:
                if not (other and rule.languages is not None):
                    # it matched and counts wherever it is: skip the second search (~12 us
                    # a pattern); a flag that shows it as evidence looks it up (_flag)
                    fired[index] = self._bare_hits[index]
                    unplaced[index] = patterns[0][1]
                continue
            if starts is None:
                starts = doc.to_array(IDX)
                # ASCII: bytes offsets are character offsets, and RE2's wrapper skips
                # converting them (a third of a search's cost)
                subject = text.encode("ascii") if text.isascii() else text
            for _, regex in patterns:
                for m in regex.finditer(subject):
                    start, end = m.start(), m.end()
                    tok = max(0, int(starts.searchsorted(start, side="right")) - 1)
                    consider(index, tok, tok + 1, start, end)  # type: ignore[operator]
                    if index in fired:
                        break
                if index in fired:
                    break

    def _decide(self, doc: Doc, text: str, lang: str, fired: dict[int, Hit], dropped: list[Hit],
                term_seen: bool, marker: bool, hashtags: set[str],
                explain: bool = True, unplaced: dict[int, Any] | None = None) -> Explanation:
        #: label position -> [score, shadow score, rules, shadow rules, excluded by] (a
        #: Decision without its label and threshold: one is built for explain() only)
        scores: dict[int, list[Any]] = {}
        self._sum(scores, fired)
        thresholds, label_shadow = self._thresholds, self._label_shadow
        passing: dict[str, list[int]] = {}
        layers = self._label_layers
        for label_pos, score in scores.items():
            if _passes(score[0], thresholds[label_pos], score[4], label_shadow[label_pos]):
                passing.setdefault(layers[label_pos], []).append(label_pos)
        themes = self._top("theme", passing.get("theme"), scores)
        claims = self._top("claim", passing.get("claim"), scores)
        reasons = self._top("reason", passing.get("reason"), scores)
        w = self._relevance
        campaign_tag = bool(hashtags & self._campaign_tags)
        relevance = (w["label"] * bool(themes or claims or reasons) + w["term"] * term_seen
                     + w["hashtag"] * campaign_tag)
        if marker:
            rules = self.compiled.rules
            for index in self.compiled.relevance_rules:
                rule = rules[index]
                if relevance < float(rule.values[0]) and rule.applies_to(lang):
                    fired[index] = Hit(rule, 0, 0, f"relevance {relevance:.2f} < {rule.values[0]}")
                    self._sum(scores, (index,), relevance=True)
        label_ids = self._label_ids
        flags: list[Flag] = []
        shadows: list[LabelScore] = []
        for label_pos, score in scores.items():
            given = _passes(score[0], thresholds[label_pos], score[4], label_shadow[label_pos])
            if given:
                if layers[label_pos] == "flag":
                    flags.append(self._flag(label_pos, fired, doc, text, unplaced))
            elif _shadow_passes(score[1], thresholds[label_pos], score[4], given):
                shadows.append(LabelScore(label_ids[label_pos], score[1],
                                          tuple(score[2] + score[3])))
        tags = Tags(
            lang=lang,
            themes=themes,
            claim=claims[0] if claims else None,
            reasons=reasons,
            flags=tuple(flags),
            relevance=round(relevance, 4),
            shadow=tuple(shadows),
            rule_hits=tuple(map(self._rule_ids.__getitem__, fired)),
        )
        if not explain:  # tag_batch reads only the tags
            return Explanation(text, lang, tags, [], {}, relevance, marker)
        hits = list(fired.values()) + dropped
        decisions = {label_ids[pos]: Decision(self._labels[pos], thresholds[pos], *score)
                     for pos, score in scores.items()}
        return Explanation(text, lang, tags, hits, decisions, relevance, marker)

    def _sum(self, scores: dict[int, list[Any]], indices: Iterable[int], *,
             relevance: bool = False) -> None:
        """Add the rules' weights to their labels' scores. ``relevance``: the rules that
        compare relevance, which count only once the other hits have given it."""
        plan = self._plan
        for index in indices:
            label_pos, scored, exclusion, shadow, weight, rule_id = plan[index]
            if scored == relevance:
                continue
            score = scores.get(label_pos)
            if score is None:
                score = scores[label_pos] = [0.0, 0.0, [], [], None]
            if exclusion and not relevance:  # (a relevance rule counts even under exclude)
                if not shadow and score[4] is None:
                    score[4] = rule_id
                continue
            score[1] += weight
            if shadow:
                score[3].append(rule_id)
            else:
                score[0] += weight
                score[2].append(rule_id)

    def _top(self, layer: str, passing: list[int] | None,
             scores: dict[int, list[Any]]) -> tuple[LabelScore, ...]:
        """The layer's passing labels, best first, cut at the layer's maximum."""
        if not passing:
            return ()
        if len(passing) > 1:
            tiebreak = self._tiebreak
            passing.sort(key=lambda pos: (-scores[pos][0], tiebreak[pos]))
            limit = self._limits.get(layer)
            if limit:
                del passing[limit:]
        label_ids = self._label_ids
        return tuple(LabelScore(label_ids[pos], scores[pos][0], tuple(scores[pos][2]))
                     for pos in passing)

    def _flag(self, label_pos: int, fired: dict[int, Hit], doc: Doc, text: str,
              unplaced: dict[int, Any] | None) -> Flag:
        plan = self._plan
        hits = [(i, h) for i, h in fired.items()
                if plan[i][0] == label_pos and not plan[i][2] and not plan[i][3]]
        index, top = max(hits, key=lambda ih: ih[1].rule.weight)
        label = self._labels[label_pos]
        severity = max((h.rule.severity or label.severity or "low" for _, h in hits),
                       key=_SEVERITY_RANK.__getitem__)
        evidence = top.evidence
        if unplaced and index in unplaced:  # what consider() would have kept
            where = unplaced[index]
            if isinstance(where, tuple):  # a token span
                first, last = doc[where[0]], doc[where[1] - 1]
                evidence = text[first.idx:last.idx + len(last)][:_EVIDENCE_CHARS]
            else:  # the same first match the second search would find
                m = where.search(text)
                evidence = text[m.start():m.end()][:_EVIDENCE_CHARS]
        return Flag(label.id, severity, top.rule.id, evidence)
