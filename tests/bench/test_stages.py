"""``monitor bench --stages``: every stage runs on every post, and the figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.bench.stages import STAGES, stage_costs
from monitor.bench.synth import write_jsonl
from monitor.tagging.tagger import TAG_STEPS


@pytest.fixture(scope="module")
def posts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 synthetic posts, then a line that is not JSON and a post sent twice."""
    path = tmp_path_factory.mktemp("stages") / "posts.jsonl"
    write_jsonl(str(path), 600)
    first = path.read_bytes().splitlines(keepends=True)[0]
    with path.open("ab") as fh:
        fh.write(b"{not json\n")
        fh.write(first)
    return path


def test_each_stage_is_timed_over_the_same_posts(posts_file: Path) -> None:
    costs = stage_costs(posts_file)
    assert (costs.posts, costs.rejected) == (601, 1)
    assert costs.archived == 600  # the repeated post is a duplicate, not archived twice
    assert list(costs.us_per_post()) == list(STAGES)
    for stage in ("decode", "tag", "moderate", "metrics", "archive"):
        assert costs.seconds[stage] > 0, stage
    # tagging with all the rules is the pipeline's largest stage on the campaign's posts
    assert max(costs.seconds, key=costs.seconds.__getitem__) == "tag"


def test_the_tag_stage_is_split_by_the_taggers_steps(posts_file: Path) -> None:
    costs = stage_costs(posts_file)

    assert list(costs.tag_steps) == ["refresh", *TAG_STEPS]
    assert sum(costs.tag_steps.values()) == pytest.approx(costs.seconds["tag"], rel=1e-9)
    for step in ("language", "regex scan", "tokenize", "phrase match", "rules"):
        assert costs.tag_steps[step] > 0, step
    # spaCy's tokenizer, the floor's own work, is a large part of tagging, not all of it
    assert 0.1 < costs.tag_steps["tokenize"] / costs.seconds["tag"] < 0.9


def test_json_prints_the_floor_and_each_stage(posts_file: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor", "bench", "--stages", "--json",
                           "--file", str(posts_file)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report) == {"posts", "floor_us_per_post", "stages_us_per_post",
                           "tag_steps_us_per_post", "total_us_per_post"}
    assert report["posts"] == 601
    assert list(report["stages_us_per_post"]) == list(STAGES)
    assert report["total_us_per_post"] == pytest.approx(
        sum(report["stages_us_per_post"].values()), abs=0.05)
    assert list(report["tag_steps_us_per_post"]) == ["refresh", *TAG_STEPS]
    assert sum(report["tag_steps_us_per_post"].values()) == pytest.approx(
        report["stages_us_per_post"]["tag"], abs=0.05)
    assert report["floor_us_per_post"] > 0


def test_stages_with_a_tagging_process_is_a_usage_error(posts_file: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor", "bench", "--stages",
                           "--tagger-process", "--file", str(posts_file)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "drop --tagger-process" in done.stderr


def test_the_printout_lists_the_tag_steps_under_the_tag_stage(posts_file: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "monitor", "bench", "--stages",
                           "--file", str(posts_file)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("tag "))
    steps = lines[at + 1:at + 1 + len(TAG_STEPS) + 1]
    assert [line.split()[0] for line in steps] == ["refresh", "language", "regex", "tokenize",
                                                   "phrase", "rules"]
    assert "the floor's own work" in steps[3]
    assert lines[at + len(steps) + 1].startswith("moderate ")
