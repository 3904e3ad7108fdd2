"""``monitor bench``: how close the full pipeline comes to the floor, in one session."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from monitor.bench.report import PACED_RATE, NoPosts, StagesReport, run_bench, run_stages
from monitor.bench.synth import VOCABULARIES
from monitor.cli import UsageError
from monitor.runtime.tagger_process import wanted

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench", help="measure the pipeline against the floor (JSON decode + tokenizer)",
        description="Run the floor (orjson + spaCy's blank tokenizer) and the full local "
                    "pipeline (replay -> processor -> metrics -> archive) on the same posts; "
                    f"print both rates, their ratio, p50/p99 latency at {PACED_RATE:,} posts/s "
                    "and the pipeline's peak RSS.")
    p.add_argument("--posts", type=int, default=100_000,
                   help="synthetic posts to generate (default 100000; ignored with --file)")
    p.add_argument("--vocabulary", choices=VOCABULARIES, default="campaign",
                   help="the synthetic posts' words: the campaign's phrasing (default) or an "
                        "open stream's long tail (400,000 words, 2,000,000 authors, 200,000 "
                        "linked domains; ignored with --file)")
    p.add_argument("--file", type=Path, help="a JSONL file of posts to use instead")
    p.add_argument("--rules", type=Path, help="ruleset folder (default: the shipped keep4o)")
    p.add_argument("--tagger-process", action=argparse.BooleanOptionalAction, default=None,
                   help="the pipeline tags in a second process (its CPU time and memory "
                        "counted), or not; default: as 'monitor run' would here (when two "
                        "or more CPUs are usable)")
    p.add_argument("--stages", action="store_true",
                   help="instead: the CPU microseconds a post spends in each stage (decode, "
                        "dedup, tag, moderate, metrics, archive), each timed alone in one "
                        "process, beside the floor's")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.file is None and args.posts < 1:
        raise UsageError(f"--posts {args.posts}: generate at least 1 post")
    if args.file is not None and not args.file.is_file():
        raise UsageError(f"--file {args.file}: no such file; pass a JSONL file of posts")
    progress = (lambda _: None) if args.json else (
        lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    if args.stages and args.tagger_process:
        raise UsageError("--stages times each stage in one process; drop --tagger-process")
    tagger_process = wanted(args.tagger_process)
    try:
        if args.stages:
            _print_stages(run_stages(args.posts, args.file, args.rules, progress=progress,
                                     vocabulary=args.vocabulary), args.json)
            return 0
        report = run_bench(args.posts, args.file, args.rules, progress=progress,
                           tagger_process=tagger_process, vocabulary=args.vocabulary)
    except NoPosts:
        raise UsageError(f"--file {args.file}: no line in it is a post (a JSON object with "
                         "a text); pass a JSONL file of posts") from None
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.summary()) + b"\n")
        return 0
    print(f"posts                 {report.posts:,}")
    print(f"floor                 {report.floor_posts_per_s:,.0f} posts/CPU-s "
          "(orjson + blank spaCy tokenizer)")
    where = "tagging in a second process" if tagger_process else "one process"
    # CPU-seconds per wall second: how much of the pair's two cores the run kept busy
    busy = (report.pipeline_wall_posts_per_s / report.pipeline_posts_per_s
            if report.pipeline_posts_per_s else 0.0)
    print(f"pipeline              {report.pipeline_posts_per_s:,.0f} posts/CPU-s "
          f"({report.pipeline_wall_posts_per_s:,.0f}/s wall, {busy:.2f} CPUs busy; replay -> "
          f"processor -> metrics -> archive; {where})")
    print(f"ratio                 {report.ratio:.3f}  (target >= 0.5)")
    print(f"latency at {PACED_RATE:,}/s   p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms "
          f"over {report.paced_posts:,} posts  (target p99 < 250 ms)")
    both = " (both processes)" if tagger_process else ""
    print(f"peak RSS (pipeline)   {report.peak_rss_mb:.0f} MiB{both}  (target < 400 MB)")
    return 0


#: what a reader of the tag stage's steps needs to know about some of them
_STEP_NOTES = {
    "refresh": "  (a step of a pending tagger refresh, and counting for the next)",
    "tokenize": "  (spaCy's tokenizer: the floor's own work)",
    "regex scan": "  (Hyperscan and RE2: which regex rules match)",
    "phrase match": "  (spaCy's PhraseMatcher)",
    "rules": "  (negation, quotes, scores, thresholds: the tagger's Python)",
}


def _print_stages(report: StagesReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.summary()) + b"\n")
        return
    total = report.total_us_per_post
    print(f"posts      {report.posts:,}" + (f" ({report.rejected:,} lines rejected)"
                                            if report.rejected else ""))
    print("stage      us/post  share")
    for stage, us in report.stages_us_per_post.items():
        print(f"{stage:<10} {us:7.1f}  {us / total:5.0%}" if total else f"{stage:<10} {us:7.1f}")
        if stage == "tag":
            for step, step_us in report.tag_steps_us_per_post.items():
                print(f"  {step:<12} {step_us:5.1f}{_STEP_NOTES.get(step, '')}")
    print(f"{'all':<10} {total:7.1f}  (CPU a post in one process, event loop and queues aside)")
    floor = report.floor_us_per_post
    print(f"{'floor':<10} {floor:7.1f}  (orjson + blank spaCy tokenizer); a ratio of 0.5 "
          f"leaves {2 * floor:.1f} us a post for all stages")
