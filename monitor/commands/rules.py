"""``monitor rules check|test|eval|explain``: the rule author's tools."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from monitor.cli import UsageError
from monitor.tagging import (
    RulesetError,
    Tagger,
    compile_ruleset,
    default_rules_path,
    load_ruleset,
)
from monitor.tagging.evaluate import EVAL_LAYERS, GoldError, evaluate, read_gold
from monitor.tagging.examples import run_examples

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("rules", help="check, test, evaluate and explain a ruleset",
                            description="Tools for writing and refining rules.")
    rules_sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    check = rules_sub.add_parser("check", help="validate a ruleset; exit 1 with file:line messages")
    check.add_argument("dir", nargs="?", type=Path, help="ruleset folder (default: rules/keep4o)")
    check.set_defaults(func=_check)

    test = rules_sub.add_parser("test", help="run every label's examples")
    test.add_argument("dir", nargs="?", type=Path, help="ruleset folder (default: rules/keep4o)")
    test.set_defaults(func=_test)

    ev = rules_sub.add_parser("eval", help="score the rules against hand-coded posts")
    ev.add_argument("gold", type=Path, help="gold JSONL: text, themes, claim, reasons, flags")
    ev.add_argument("--rules", type=Path, help="ruleset folder (default: rules/keep4o)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--limit", type=int, default=40,
                    help="misclassified posts to list (default 40; 0 for all)")
    ev.set_defaults(func=_eval)

    explain = rules_sub.add_parser("explain", help="show what fires on a text and why")
    explain.add_argument("text", help="the post text")
    explain.add_argument("--lang", help="the platform's language code, if any")
    explain.add_argument("--rules", type=Path, help="ruleset folder (default: rules/keep4o)")
    explain.set_defaults(func=_explain)


def _tagger(path: Path | None) -> Tagger:
    """Load and compile, turning every problem into one readable message."""
    try:
        return Tagger(compile_ruleset(load_ruleset(path or default_rules_path())))
    except RulesetError as exc:
        raise UsageError(f"the ruleset has {len(exc.problems)} problem(s):\n{exc}") from None


def _check(args: argparse.Namespace) -> int:
    path = args.dir or default_rules_path()
    try:
        ruleset = load_ruleset(path)
        compile_ruleset(ruleset)
    except RulesetError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    rules = len(ruleset.all_rules())
    print(f"{path}: ruleset '{ruleset.name}' ({ruleset.hash}) is valid: {len(ruleset.labels)} "
          f"labels, {rules} rules, languages {', '.join(ruleset.languages)}")
    return 0


def _test(args: argparse.Namespace) -> int:
    tagger = _tagger(args.dir)
    count, failures = run_examples(tagger)
    for failure in failures:
        print(failure.describe())
    print(f"{count - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def _eval(args: argparse.Namespace) -> int:
    tagger = _tagger(args.rules)
    try:
        gold = read_gold(args.gold)
    except (GoldError, OSError) as exc:
        raise UsageError(str(exc)) from None
    started = time.perf_counter()
    report, misses = evaluate(tagger, gold)
    elapsed = time.perf_counter() - started
    if args.json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
        return 0
    print(f"{report['posts']} posts, ruleset '{tagger.ruleset.name}' ({tagger.ruleset.hash}), "
          f"{elapsed:.2f} s")
    for layer in EVAL_LAYERS:
        data = report["layers"][layer]
        print(f"\n{layer}: macro-F1 {data['macro_f1']:.3f}  micro-F1 {data['micro_f1']:.3f}")
        print(f"  {'label':<24} {'prec':>6} {'rec':>6} {'f1':>6} {'support':>8}")
        for label, m in sorted(data["labels"].items(), key=lambda kv: kv[1]["f1"]):
            print(f"  {label:<24} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} "
                  f"{m['support']:>8}")
    shown = misses if args.limit == 0 else misses[: args.limit]
    print(f"\n{len(misses)} misclassified (post, layer) pairs" +
          (f"; first {len(shown)}:" if shown else ""))
    for miss in shown:
        post = miss.post
        parts = []
        if miss.missing:
            parts.append("missed " + ", ".join(sorted(miss.missing)))
        if miss.extra:
            parts.append("extra " + ", ".join(
                f"{label} ({', '.join(miss.rules.get(label, []))})" for label in sorted(miss.extra)))
        partial = {lb: r for lb, r in miss.rules.items() if lb in miss.missing and r}
        if partial:
            parts.append("partial " + "; ".join(f"{lb}: {', '.join(r)}" for lb, r in partial.items()))
        print(f"  {args.gold}:{post.line} [{post.id}] {miss.layer}: {'; '.join(parts)}")
        print(f"      {post.text[:160]!r}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    tagger = _tagger(args.rules)
    e = tagger.explain(args.text, args.lang)
    tags = e.tags
    print(f"language: {e.lang}   relevance: {e.relevance:.2f}"
          f"   campaign hashtag/term: {'yes' if e.campaign_marker else 'no'}")
    print(f"themes:  {', '.join(f'{s.label} ({s.score:g})' for s in tags.themes) or '-'}")
    print(f"claim:   {f'{tags.claim.label} ({tags.claim.score:g})' if tags.claim else '-'}")
    print(f"reasons: {', '.join(f'{s.label} ({s.score:g})' for s in tags.reasons) or '-'}")
    print(f"flags:   {', '.join(f'{f.kind}/{f.severity} by {f.rule}' for f in tags.flags) or '-'}")
    if tags.shadow:
        print(f"shadow:  {', '.join(f'{s.label} ({s.score:g})' for s in tags.shadow)}")
    print("\nrules that fired:" if e.hits else "\nno rule fired")
    for hit in sorted(e.hits, key=lambda h: (h.rule.layer, h.rule.label, h.rule.id)):
        state = (f"dropped: {hit.dropped}" if hit.dropped
                 else "exclusion" if hit.rule.exclusion
                 else "shadow" if hit.rule.shadow else f"+{hit.rule.weight:g}")
        print(f"  {hit.rule.layer:<6} {hit.rule.label:<22} {hit.rule.id:<32} {state:<16} "
              f"{hit.evidence!r}  ({hit.rule.where})")
    print("\nlabel scores:")
    for label, d in e.decisions.items():
        verdict = ("given" if any(label == s.label for s in (*tags.themes, *tags.reasons))
                   or (tags.claim and tags.claim.label == label)
                   or any(f.kind == label for f in tags.flags)
                   else "excluded" if d.excluded_by else
                   "shadow: would be given" if d.shadow_passes else
                   "below threshold" if not d.passes else "capped by the layer's max")
        print(f"  {label:<22} {d.score:g}/{d.threshold:g}  {verdict}")
    return 0
