"""Acceptance: ``monitor run --source replay:FILE?speed=max --exit-when-done`` on a file
with valid and malformed lines archives each valid post once, counts every bad line
by reason on the live /metrics, leaves an archive that verifies, and exits 0.

The file is ``tests/data/replay/mixed.jsonl`` plus one over-256-KiB line; what it
must give is in ``mixed.expected.json`` next to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import zstandard

from monitor.archive_export import iter_day
from monitor.cli import main

if TYPE_CHECKING:
    from conftest import FinishedRun


def test_the_run_exits_0(mixed_run: FinishedRun) -> None:
    assert mixed_run.code == 0, mixed_run.stderr
    assert "Traceback" not in mixed_run.stderr


def test_every_valid_post_is_archived_exactly_once(mixed_run: FinishedRun,
                                                   mixed_expected: dict[str, Any]) -> None:
    day = mixed_run.archive / mixed_expected["day"]
    manifest = orjson.loads((day / "manifest.json").read_bytes())
    assert manifest["posts"] == len(mixed_expected["valid_ids"])  # the duplicate excluded
    assert sorted(t.post.id for t in iter_day(day)) == mixed_expected["valid_ids"]


def test_the_archive_verifies(mixed_run: FinishedRun, mixed_expected: dict[str, Any]) -> None:
    assert main(["archive", "verify", str(mixed_run.archive)]) == 0
    days = sorted(p.name for p in mixed_run.archive.iterdir() if p.is_dir())
    assert days == [mixed_expected["day"], "2025-08-20"]  # the mixed file, the keep-alive


def test_every_malformed_line_is_counted_by_reason_on_the_live_metrics(
        mixed_run: FinishedRun, mixed_expected: dict[str, Any]) -> None:
    metrics = mixed_run.metrics
    assert metrics.by("social_posts_rejected_total", "reason",
                      source="replay") == mixed_expected["rejected"]
    received = (len(mixed_expected["valid_ids"]) + mixed_expected["duplicates"]
                + sum(mixed_expected["rejected"].values()))
    assert metrics.value("social_posts_received_total", source="replay") == received
    assert metrics.value("social_posts_duplicate_total", source="replay") == 1
    assert metrics.by("social_posts_processed_total", "lang",
                      source="replay") == mixed_expected["processed_by_lang"]


def test_no_author_or_post_id_appears_in_the_metrics(mixed_run: FinishedRun,
                                                     mixed_expected: dict[str, Any]) -> None:
    for secret in mixed_expected["secrets"]:
        assert secret not in mixed_run.metrics.text
    assert "keepalive" not in mixed_run.metrics.text


def test_archived_authors_are_pseudonyms(mixed_run: FinishedRun,
                                         mixed_expected: dict[str, Any]) -> None:
    day = mixed_run.archive / mixed_expected["day"]
    authors = {t.post.author for t in iter_day(day)}
    assert len(authors) == 3 and all(a and len(a) == 32 for a in authors)
    for path in day.glob("*.jsonl.zst"):
        with path.open("rb") as fh:
            text = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
        assert b"zzpostid-0001" in text  # ids are kept, for research ...
        assert b"zzauthor" not in text   # ... handles are not
