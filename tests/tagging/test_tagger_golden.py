"""The demo ruleset on a spread of posts, compared with a checked-in golden file.

Inputs: golden/demo_posts.jsonl. Expected: golden/demo_explain.json. After an
intended change to the tagger or the demo ruleset, regenerate and review:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/tagging/test_tagger_golden.py
    git diff tests/tagging/golden/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.model import LabelScore
from monitor.tagging import Explanation, Tagger

HERE = Path(__file__).parent / "golden"


def _scores(scores: tuple[LabelScore, ...]) -> dict[str, Any]:
    return {s.label: {"score": s.score, "rules": list(s.rules)} for s in scores}


def explanation_to_dict(post_id: str, e: Explanation) -> dict[str, Any]:
    """Everything the tagger decided about one post, without file paths."""
    t = e.tags
    return {
        "id": post_id,
        "lang": t.lang,
        "relevance": t.relevance,
        "campaign_marker": e.campaign_marker,
        "themes": _scores(t.themes),
        "claim": _scores((t.claim,) if t.claim else ()),
        "reasons": _scores(t.reasons),
        "flags": [{"kind": f.kind, "severity": f.severity, "rule": f.rule, "evidence": f.evidence}
                  for f in t.flags],
        "shadow": _scores(t.shadow),
        "rule_hits": list(t.rule_hits),
        "hits": sorted(({"rule": h.rule.id, "evidence": h.evidence, "dropped": h.dropped}
                        for h in e.hits), key=lambda h: (h["rule"], h["evidence"])),
        "scores": {label: {"score": d.score, "threshold": d.threshold,
                           "excluded_by": d.excluded_by} for label, d in e.decisions.items()},
    }


def test_demo_ruleset_golden(demo_tagger: Tagger, golden) -> None:
    posts = [json.loads(line) for line in (HERE / "demo_posts.jsonl").read_text("utf-8")
             .splitlines() if line.strip()]

    actual = [explanation_to_dict(p["id"], demo_tagger.explain(
        p["text"], p.get("lang"), p.get("hashtags", ()))) for p in posts]

    golden(HERE / "demo_explain.json", actual)
    # explain and the streaming path agree
    batch = demo_tagger.tag_batch([(p["text"], p.get("lang"), tuple(p.get("hashtags", ())))
                                   for p in posts])
    assert [demo_tagger.explain(p["text"], p.get("lang"), p.get("hashtags", ())).tags
            for p in posts] == batch
