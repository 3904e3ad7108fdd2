"""The daily archive writer: layout, dedup, durability, recovery, rollover, privacy."""

from __future__ import annotations

import random
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import zstandard

from monitor.archive_verify import verify_archive
from monitor.codec import decode_tagged
from monitor.model import Flag, LabelScore, Post, TaggedPost, Tags
from monitor.privacy import ENV_KEY, Pseudonymizer, PseudonymKeyError
from monitor.sinks.archive import ArchiveError, ArchiveWriter
from monitor.sinks.idset import IdSet

DAY = date(2024, 5, 1)
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


def make(
    n: int,
    *,
    source: str = "bluesky",
    when: datetime = NOON,
    author: str | None = "alice.bsky.social",
    themes: tuple[str, ...] = ("grief",),
    claim: str | None = "model_quality",
    flags: tuple[str, ...] = (),
    raw: object = None,
) -> TaggedPost:
    post = Post(
        id=f"{source}:{n}",
        source=source,
        text=f"post {n} #keep4o",
        created_at=when + timedelta(seconds=n),
        author=author,
        lang="en",
        url=f"https://example.com/{source}/{n}",
        raw=raw,
    )
    tags = Tags(
        lang="en",
        themes=tuple(LabelScore(t, 2.0, (f"{t}.r1",)) for t in themes),
        claim=LabelScore(claim, 1.5, (f"{claim}.r1",)) if claim else None,
        reasons=(LabelScore("continuity", 1.0, ("continuity.r1",)),),
        flags=tuple(Flag(kind, "low", f"{kind}.r1") for kind in flags),
        relevance=0.75,
    )
    return TaggedPost(post, tags, "keep4o", "abc123", "0.1.0")


def writer(root: Path, **kwargs: object) -> ArchiveWriter:
    kwargs.setdefault("pseudonymizer", Pseudonymizer(KEY))
    kwargs.setdefault("today", DAY)
    return ArchiveWriter(root, **kwargs)  # type: ignore[arg-type]


def read_lines(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        data = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    return data.splitlines()


def archive_bytes(root: Path) -> bytes:
    """Every byte the archive holds, data files decompressed, for 'is X in there' checks."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".zst":
            out.extend(read_lines(path))
        elif path.is_file():
            out.append(path.read_bytes())
    return b"\n".join(out)


def test_round_trip_and_manifest(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    posts = [make(i) for i in range(5)] + [make(i, source="reddit", flags=("spam",)) for i in range(3)]
    with writer(root) as w:
        assert all(w.write(p) for p in posts)
    day = root / "2024-05-01"
    assert sorted(p.name for p in day.iterdir()) == [
        "bluesky.jsonl.zst", "manifest.json", "reddit.jsonl.zst",
    ]
    back = [decode_tagged(line) for line in read_lines(day / "bluesky.jsonl.zst")]
    assert [t.post.id for t in back] == [f"bluesky:{i}" for i in range(5)]
    assert back[0].post.text == posts[0].post.text
    assert back[0].post.created_at == posts[0].post.created_at
    assert [s.label for s in back[0].tags.themes] == ["grief"]
    assert back[0].tags.claim is not None and back[0].tags.claim.label == "model_quality"
    assert (back[0].ruleset, back[0].ruleset_hash) == ("keep4o", "abc123")

    manifest = orjson.loads((day / "manifest.json").read_bytes())
    assert manifest["day"] == "2024-05-01"
    assert manifest["posts"] == 8
    assert [(f["path"], f["posts"]) for f in manifest["files"]] == [
        ("bluesky.jsonl.zst", 5), ("reddit.jsonl.zst", 3),
    ]
    assert all(f["bytes"] == (day / f["path"]).stat().st_size for f in manifest["files"])
    assert manifest["counts"] == {
        "themes": {"grief": 8},
        "claims": {"model_quality": 8},
        "reasons": {"continuity": 8},
        "flags": {"spam": 3},
        "langs": {"en": 8},
    }
    assert manifest["first_created_at"] == "2024-05-01T12:00:00Z"
    assert manifest["last_created_at"] == "2024-05-01T12:00:04Z"
    assert manifest["ruleset"] == {"name": "keep4o", "hash": "abc123"}
    assert manifest["processor_version"] == "0.1.0"
    assert verify_archive(root).ok


def test_partitioned_by_utc_event_day(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    late = datetime(2024, 5, 1, 23, 30, tzinfo=UTC).astimezone(
        datetime.now().astimezone().tzinfo)  # any zone: the UTC day decides
    with writer(root) as w:
        w.write(make(0, when=late))
        w.write(make(1, when=datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)))
    assert sorted(p.name for p in root.iterdir()) == ["2024-05-01", "2024-05-02"]


def test_duplicate_ids_within_a_day_written_once(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    with writer(root) as w:
        assert w.write(make(1)) is True
        assert w.write(make(1)) is False
        assert w.flush() == 1
        assert w.write(make(1)) is False  # also once durable
        assert w.write_batch([make(1), make(2), make(2)]) == 1
        other_day = make(1, when=NOON + timedelta(days=1))
        assert w.write(other_day) is True  # same id, another day: kept
    assert len(read_lines(root / "2024-05-01" / "bluesky.jsonl.zst")) == 2
    assert verify_archive(root).ok


def test_flush_reports_durable_posts_per_source(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    with writer(tmp_path / "archive", on_durable=lambda s, n: seen.append((s, n))) as w:
        w.write_batch([make(i) for i in range(3)] + [make(0, source="rss")])
        assert w.pending_posts == 4
        assert w.durable_posts == 0
        assert w.flush() == 4
        assert w.flush() == 0
        assert (w.pending_posts, w.durable_posts) == (0, 4)
        assert w.durable_by_source == {"bluesky": 3, "rss": 1}
    assert sorted(seen) == [("bluesky", 3), ("rss", 1)]


def test_maybe_flush_waits_for_the_interval(tmp_path: Path) -> None:
    with writer(tmp_path / "archive") as w:
        w.maybe_flush(100.0)
        w.write(make(0))
        assert w.maybe_flush(100.5) == 0
        assert w.maybe_flush(101.0) == 1
        assert w.durable_posts == 1


@pytest.mark.parametrize("damage", ["truncate_mid_frame", "append_garbage"])
def test_restart_after_a_torn_tail_keeps_every_flushed_post(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "archive"
    first = writer(root)
    first.write_batch([make(i) for i in range(10)])
    first.flush()
    path = root / "2024-05-01" / "bluesky.jsonl.zst"
    good = path.stat().st_size
    first.write_batch([make(i) for i in range(10, 20)])
    first.flush()
    # The process dies: no close(), no manifest; the last frame is torn on disk.
    if damage == "truncate_mid_frame":
        with path.open("r+b") as fh:
            fh.truncate(good + (path.stat().st_size - good) // 2)
    else:
        with path.open("ab") as fh:
            fh.write(b"\x28\xb5\x2f\xfd half a frame")

    with writer(root) as second:
        assert second.write(make(3)) is False  # ids reloaded from the file
        if damage == "truncate_mid_frame":
            assert second.write(make(15)) is True  # lost with the torn frame: written again
        assert second.write(make(99)) is True
    ids = [orjson.loads(line)["id"] for line in read_lines(path)]
    assert ids[:10] == [f"bluesky:{i}" for i in range(10)]
    assert len(ids) == len(set(ids))
    if damage == "append_garbage":
        assert ids[10:20] == [f"bluesky:{i}" for i in range(10, 20)]
    assert (root / ".torn" / "2024-05-01").is_dir()
    report = verify_archive(root)
    assert report.ok, report.problems
    assert report.posts == len(ids)


def test_restart_alone_repairs_days_left_by_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    crashed = writer(root)
    crashed.write_batch([make(i) for i in range(4)])
    crashed.rollover(datetime(2024, 5, 2, 0, 0, tzinfo=UTC))  # manifest says 4 posts
    crashed.write_batch([make(i) for i in range(4, 8)])
    crashed.write(make(0, when=NOON + timedelta(days=1)))
    crashed.flush()
    path = root / "2024-05-01" / "bluesky.jsonl.zst"
    with path.open("ab") as fh:
        fh.write(b"torn")
    assert not verify_archive(root).ok  # stale manifest, torn tail, missing manifest

    restarted = writer(root, today=date(2024, 5, 2))
    assert restarted.open_days == []  # repaired days are not kept in memory
    report = verify_archive(root)
    assert report.ok, report.problems
    assert (report.days, report.posts) == (2, 9)
    restarted.close()


def test_midnight_rollover_writes_the_manifest(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    w = writer(root)
    w.write_batch([make(i) for i in range(5)])
    manifest = root / "2024-05-01" / "manifest.json"
    assert w.rollover(datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)) == []
    assert not manifest.exists()
    assert w.rollover(datetime(2024, 5, 2, 0, 0, 1, tzinfo=UTC)) == [DAY]
    assert orjson.loads(manifest.read_bytes())["posts"] == 5
    assert w.durable_posts == 5
    assert verify_archive(root).ok
    assert w.rollover(datetime(2024, 5, 2, 0, 0, 2, tzinfo=UTC)) == []  # once per midnight
    w.write(make(5))  # a late post dirties the day again; shutdown refreshes it
    w.close()
    assert orjson.loads(manifest.read_bytes())["posts"] == 6
    assert verify_archive(root).ok


def test_at_most_max_open_days_and_late_posts_reopen(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    days = [NOON + timedelta(days=d) for d in range(4)]
    with writer(root, max_open_days=3) as w:
        for d, when in enumerate(days):
            w.write_batch([make(i, when=when) for i in range(3)])
            assert len(w.open_days) == min(d + 1, 3)
        assert w.open_days == [date(2024, 5, 2), date(2024, 5, 3), date(2024, 5, 4)]
        closed = root / "2024-05-01" / "manifest.json"
        assert orjson.loads(closed.read_bytes())["posts"] == 3
        assert w.write(make(1, when=days[0])) is False  # reopened with its ids
        assert w.open_days[-1] == DAY
        assert w.write(make(7, when=days[0])) is True
    assert orjson.loads(closed.read_bytes())["posts"] == 4
    report = verify_archive(root)
    assert report.ok, report.problems
    assert (report.days, report.posts) == (4, 13)


def test_files_and_folders_owner_only(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    with writer(root) as w:
        w.write(make(0))
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_authors_pseudonymized_and_key_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    key_file = tmp_path / "state" / "pseudonym.key"
    root = tmp_path / "archive"
    with ArchiveWriter(root, key_file=key_file, today=DAY) as w:
        w.write(make(0, author="alice.bsky.social"))
        w.write(make(1, author="bob.example"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_hex = key_file.read_text().strip()
    stored = archive_bytes(root)
    assert b"alice.bsky.social" not in stored and b"bob.example" not in stored
    assert key_hex.encode() not in stored and bytes.fromhex(key_hex) not in stored
    authors = [orjson.loads(x)["author"] for x in read_lines(root / "2024-05-01/bluesky.jsonl.zst")]
    same_key = Pseudonymizer.load(key_file, environ={})
    assert authors == [same_key("alice.bsky.social"), same_key("bob.example")]
    assert authors[0] != authors[1]
    assert Pseudonymizer(b"x" * 32)("alice.bsky.social") != authors[0]
    assert "alice" not in authors[0] and len(authors[0]) == 32


def test_pseudonym_key_from_environment(tmp_path: Path) -> None:
    env = {ENV_KEY: "correct horse battery staple"}
    one = Pseudonymizer.load(tmp_path / "unused.key", environ=env)
    two = Pseudonymizer.load(tmp_path / "other.key", environ=env)
    assert one("carol") == two("carol")
    assert not (tmp_path / "unused.key").exists()
    assert "correct" not in repr(one)
    with pytest.raises(PseudonymKeyError, match=ENV_KEY):
        Pseudonymizer.load(tmp_path / "k", environ={ENV_KEY: "short"})
    bad = tmp_path / "bad.key"
    bad.write_text("not hex")
    with pytest.raises(PseudonymKeyError, match=r"bad\.key"):
        Pseudonymizer.load(bad, environ={})


def test_key_file_inside_the_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="inside the archive"):
        ArchiveWriter(tmp_path / "archive", key_file=tmp_path / "archive" / "k.key")


def test_pseudonymize_off_and_raw_kept_only_when_asked(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    with writer(plain, pseudonymize=False) as w:
        w.write(make(0, raw={"platform": "payload"}))
    record = orjson.loads(read_lines(plain / "2024-05-01/bluesky.jsonl.zst")[0])
    assert record["author"] == "alice.bsky.social"
    assert "raw" not in record

    kept = tmp_path / "kept"
    with writer(kept, keep_raw=True) as w:
        w.write(make(0, raw={"platform": "payload"}))
    record = orjson.loads(read_lines(kept / "2024-05-01/bluesky.jsonl.zst")[0])
    assert record["raw"] == {"platform": "payload"}


def test_write_after_close_is_an_error(tmp_path: Path) -> None:
    w = writer(tmp_path / "archive")
    w.close()
    with pytest.raises(ArchiveError, match="closed"):
        w.write(make(0))


def test_id_set_matches_a_python_set() -> None:
    rng = random.Random(7)
    ids = IdSet(recent_max=64)
    truth: set[str] = set()
    for _ in range(20_000):
        post_id = f"x:{rng.randrange(12_000)}"
        assert ids.add(post_id) == (post_id not in truth)
        truth.add(post_id)
    assert len(ids) == len(truth)
    assert all(i in ids for i in truth)
    assert "x:never" not in ids


def test_id_set_memory_stays_small() -> None:
    ids = IdSet()
    for i in range(200_000):
        ids.add(f"bluesky:at://did:plc:abcdefghijklmnop/app.bsky.feed.post/{i}")
    assert len(ids) == 200_000
    # memory_bytes() is sys.getsizeof of the sorted runs, their fences and the recent set.
    assert ids.memory_bytes() < 5_000_000
    assert ids.memory_bytes() / len(ids) < 16
    assert "bluesky:at://did:plc:abcdefghijklmnop/app.bsky.feed.post/123456" in ids


def test_a_record_that_is_not_ours_stops_the_reopen_with_the_file_named(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    with writer(root) as w:
        w.write(make(0))
    path = root / "2024-05-01" / "bluesky.jsonl.zst"
    with path.open("ab") as fh:
        fh.write(zstandard.ZstdCompressor().compress(b"not json\n"))
    with pytest.raises(ArchiveError, match=r"bluesky\.jsonl\.zst: a line is not an archive record"):
        writer(root)
