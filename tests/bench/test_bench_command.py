"""``monitor bench``: the real command on a small run; its figures' shape, not their speed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.bench.floor import floor_rate
from monitor.bench.synth import write_jsonl

KEYS = {"posts", "floor_posts_per_s", "pipeline_posts_per_s", "ratio", "p50_ms", "p99_ms",
        "peak_rss_mb"}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "bench", *args],
                          capture_output=True, text=True, timeout=280, check=False)


def test_json_prints_one_object_with_every_figure(tmp_path: Path) -> None:
    done = bench("--posts", "300", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    report = json.loads(lines[0])
    assert set(report) == KEYS
    assert report["posts"] == 300
    assert report["floor_posts_per_s"] > 0 and report["pipeline_posts_per_s"] > 0
    assert abs(report["ratio"] - report["pipeline_posts_per_s"] / report["floor_posts_per_s"]) \
        < 0.01
    assert 0 < report["p50_ms"] <= report["p99_ms"]
    assert 50 < report["peak_rss_mb"] < 4096  # the pipeline's process, spaCy loaded


def test_floor_reads_decodes_and_tokenizes_every_post(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    write_jsonl(str(path), 50)
    with path.open("ab") as fh:
        fh.write(b"\n")  # a blank line is not a post
        fh.write(b"{not json\n")  # nor is a broken one: skipped, as the pipeline rejects it
        fh.write(b'{"id": "x"}\n')
    posts, seconds = floor_rate(path)
    assert posts == 50
    assert seconds > 0


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    done = bench("--file", str(tmp_path / "nope.jsonl"), "--json")
    assert done.returncode == 2
    assert "nope.jsonl: no such file" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("mode", [(), ("--stages",)], ids=["bench", "stages"])
def test_a_file_without_a_post_is_a_usage_error(tmp_path: Path, mode: tuple[str, ...]) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"text": "cut off\n\n[1, 2]\n')
    done = bench(*mode, "--file", str(path), "--json")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "broken.jsonl: no line in it is a post" in done.stderr
    assert done.stdout == ""


def test_the_open_vocabulary_runs_the_same_phases() -> None:
    done = bench("--posts", "300", "--vocabulary", "open", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["posts"] == 300 and report["pipeline_posts_per_s"] > 0


def test_the_printout_says_how_many_cpus_the_pipeline_kept_busy() -> None:
    done = bench("--posts", "300", "--tagger-process")
    assert done.returncode == 0, done.stderr[-2000:]
    line = re.search(r"([\d,]+) posts/CPU-s \(([\d,]+)/s wall, (\d+\.\d\d) CPUs busy; "
                     r".*; tagging in a second process", done.stdout)
    assert line is not None, done.stdout
    per_cpu, per_wall, busy = (float(g.replace(",", "")) for g in line.groups())
    # CPU-seconds of both processes per wall second: the two rates' quotient, at most the machine
    assert busy == pytest.approx(per_wall / per_cpu, abs=0.01 + per_wall / per_cpu / 500)
    assert 0.1 < busy <= (os.cpu_count() or 1) + 0.05


def test_an_unknown_vocabulary_is_a_usage_error() -> None:
    done = bench("--posts", "300", "--vocabulary", "tiny")
    assert done.returncode == 2
    assert "invalid choice: 'tiny'" in done.stderr
