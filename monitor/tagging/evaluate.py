"""Score a ruleset against hand-coded posts: the loop organizers refine rules with.

Per label precision, recall, F1 and support; per layer macro-F1 (over the
labels that occur in the gold set or in the predictions) and micro-F1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from monitor.model import Tags
from monitor.tagging.tagger import Tagger

__all__ = ["EVAL_LAYERS", "GoldPost", "Miss", "evaluate", "read_gold"]

#: Report layer -> how to read its labels from gold and from Tags.
EVAL_LAYERS: tuple[str, ...] = ("themes", "claims", "reasons", "flags")


@dataclass(slots=True)
class GoldPost:
    id: str
    text: str
    lang: str | None
    labels: dict[str, frozenset[str]]
    line: int


@dataclass(slots=True)
class Miss:
    """A post whose predicted labels differ from the gold ones, with the rules behind them."""

    post: GoldPost
    layer: str
    missing: frozenset[str]
    extra: frozenset[str]
    rules: dict[str, list[str]] = field(default_factory=dict)


class GoldError(ValueError):
    """A gold file line that is not in the gold format."""


def read_gold(path: Path) -> list[GoldPost]:
    """Read gold JSONL; a bad line is an error naming the file and line."""
    posts = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                text = obj["text"]
                claim = obj.get("claim")
                for key in ("themes", "reasons", "flags"):
                    value = obj.get(key)
                    if value is not None and (not isinstance(value, list)
                                              or not all(isinstance(v, str) for v in value)):
                        raise TypeError(f"{key} must be a list of labels")
                if claim is not None and not isinstance(claim, str):
                    raise TypeError("claim must be a label or null")
                labels = {
                    "themes": frozenset(obj.get("themes") or ()),
                    "claims": frozenset([claim] if claim else ()),
                    "reasons": frozenset(obj.get("reasons") or ()),
                    "flags": frozenset(obj.get("flags") or ()),
                }
                if not isinstance(text, str):
                    raise TypeError("text must be a string")
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise GoldError(f"{path}:{number}: not a gold post ({exc}); expected "
                                '{"text": ..., "themes": [...], "claim": ..., "reasons": [...], '
                                '"flags": [...]}') from None
            posts.append(GoldPost(str(obj.get("id") or f"line-{number}"), text,
                                  obj.get("lang"), labels, number))
    return posts


def predicted(tags: Tags) -> dict[str, frozenset[str]]:
    return {
        "themes": frozenset(s.label for s in tags.themes),
        "claims": frozenset([tags.claim.label] if tags.claim else ()),
        "reasons": frozenset(s.label for s in tags.reasons),
        "flags": frozenset(f.kind for f in tags.flags),
    }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _layer_report(pairs: Iterable[tuple[frozenset[str], frozenset[str]]]) -> dict[str, Any]:
    counts: dict[str, list[int]] = {}
    for gold, pred in pairs:
        for label in gold | pred:
            c = counts.setdefault(label, [0, 0, 0])
            if label in gold and label in pred:
                c[0] += 1
            elif label in pred:
                c[1] += 1
            else:
                c[2] += 1
    labels = {}
    f1s = []
    for label in sorted(counts):
        tp, fp, fn = counts[label]
        p, r, f = _prf(tp, fp, fn)
        f1s.append(f)
        labels[label] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                         "support": tp + fn}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    macro = sum(f1s) / len(f1s) if f1s else 0.0  # from unrounded F1s: round once
    return {"macro_f1": round(macro, 4), "micro_f1": round(_prf(tp, fp, fn)[2], 4),
            "labels": labels}


def evaluate(tagger: Tagger, gold: list[GoldPost]) -> tuple[dict[str, Any], list[Miss]]:
    """The report object of ``rules eval --json`` and the misclassified posts."""
    all_tags = tagger.tag_batch([(g.text, g.lang, ()) for g in gold])
    preds = [predicted(t) for t in all_tags]
    report: dict[str, Any] = {"posts": len(gold), "layers": {}}
    for layer in EVAL_LAYERS:
        report["layers"][layer] = _layer_report((g.labels[layer], p[layer])
                                                for g, p in zip(gold, preds, strict=True))
    misses: list[Miss] = []
    for g, p, tags in zip(gold, preds, all_tags, strict=True):
        for layer in EVAL_LAYERS:
            if g.labels[layer] != p[layer]:
                misses.append(Miss(g, layer, g.labels[layer] - p[layer], p[layer] - g.labels[layer],
                                   _rules_behind(tagger, g, tags)))
    return report, misses


def _rules_behind(tagger: Tagger, post: GoldPost, tags: Tags) -> dict[str, list[str]]:
    """Rule ids per label that fired on the post, whether or not the label was given."""
    explanation = tagger.explain(post.text, post.lang)
    return {label: d.rules + d.shadow_rules for label, d in explanation.decisions.items()}
