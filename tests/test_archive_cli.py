"""``monitor archive verify`` and ``monitor archive export`` on real archives."""

from __future__ import annotations

import csv
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import zstandard

from monitor.cli import main
from monitor.model import Flag, LabelScore, Post, TaggedPost, Tags
from monitor.privacy import Pseudonymizer
from monitor.sinks.archive import ArchiveWriter

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = "2024-05-01"


def make(n: int, source: str = "bluesky", when: datetime = NOON) -> TaggedPost:
    post = Post(
        id=f"{source}:{n}", source=source, text=f"bring back 4o, post {n}",
        created_at=when + timedelta(minutes=n), author=f"user{n % 3}", lang="en",
        url=f"https://example.com/{n}",
    )
    tags = Tags(
        lang="en",
        themes=(LabelScore("grief", 2.0, ("grief.r1",)), LabelScore("access", 1.0, ("acc.r1",))),
        claim=LabelScore("model_quality", 1.0, ("mq.r1",)) if n % 2 else None,
        reasons=(LabelScore("continuity", 1.0, ("c.r1",)),),
        flags=(Flag("spam", "low", "spam.r1"),) if n % 5 == 0 else (),
        relevance=0.5,
    )
    return TaggedPost(post, tags, "keep4o", "abc123", "0.1.0")


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    with ArchiveWriter(root, pseudonymizer=Pseudonymizer(b"k" * 32)) as writer:
        for chunk in range(3):  # three flushes: three frames per file
            writer.write_batch(make(i) for i in range(chunk * 10, chunk * 10 + 10))
            writer.write_batch(make(i, "reddit") for i in range(chunk * 4, chunk * 4 + 4))
            writer.flush()
        writer.write_batch(make(i, when=NOON + timedelta(days=1)) for i in range(5))
    return root


def verify(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["archive", "verify", str(root)])
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def test_verify_passes_on_a_good_archive(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = verify(archive, capsys)
    assert code == 0
    assert lines == [f"archive {archive}: OK, 2 days, 47 posts"]


def test_verify_fails_on_a_flipped_byte(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = archive / DAY / "bluesky.jsonl.zst"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, lines = verify(archive, capsys)
    assert code == 1
    assert any(line.startswith(f"{DAY}/bluesky.jsonl.zst: sha256: manifest says") for line in lines)
    assert not any(line.startswith(f"{DAY}/reddit") for line in lines)


def test_verify_fails_on_a_deleted_line(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = archive / DAY / "reddit.jsonl.zst"
    with path.open("rb") as fh:
        text = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    kept = text.splitlines(keepends=True)
    del kept[3]
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(b"".join(kept)))
    code, lines = verify(archive, capsys)
    assert code == 1
    assert f"{DAY}/reddit.jsonl.zst: posts: manifest says 12, file has 11" in lines
    assert any(line.startswith(f"{DAY}/manifest.json: counts.") for line in lines)


def test_verify_fails_on_a_missing_manifest(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (archive / DAY / "manifest.json").unlink()
    code, lines = verify(archive, capsys)
    assert code == 1
    assert any(line.startswith(f"{DAY}/manifest.json: missing") for line in lines)


def test_verify_fails_on_an_extra_file(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (archive / DAY / "mastodon.jsonl.zst").write_bytes(b"")
    code, lines = verify(archive, capsys)
    assert code == 1
    assert any(line.startswith(f"{DAY}/mastodon.jsonl.zst: not listed") for line in lines)


def test_verify_fails_on_a_duplicate_id(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = archive / "2024-05-02" / "bluesky.jsonl.zst"
    with path.open("rb") as fh:
        text = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    first = text.splitlines(keepends=True)[0]
    with path.open("ab") as fh:
        fh.write(zstandard.ZstdCompressor().compress(first))
    code, lines = verify(archive, capsys)
    assert code == 1
    assert any("line 6: duplicate id 'bluesky:0'" in line for line in lines)


def test_verify_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "verify", str(tmp_path / "nope")]) == 2
    assert "no such archive folder" in capsys.readouterr().err
    assert main(["archive", "verify", str(tmp_path)]) == 2
    assert "no day folders" in capsys.readouterr().err


def test_export_parquet(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.parquet"
    assert main(["archive", "export", str(archive), "--day", DAY, "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 42
    assert table.column_names == [
        "id", "source", "created_at", "lang", "text", "author", "url", "themes", "claim",
        "reasons", "flags", "relevance", "ruleset", "ruleset_hash", "processor_version",
    ]
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("themes").type == pa.list_(pa.string())
    rows = {row["id"]: row for row in table.to_pylist()}
    assert rows["bluesky:0"]["themes"] == ["grief", "access"]
    assert rows["bluesky:0"]["flags"] == ["spam"]
    assert rows["bluesky:1"]["claim"] == "model_quality"
    assert rows["bluesky:0"]["created_at"] == NOON
    assert rows["bluesky:0"]["author"] == Pseudonymizer(b"k" * 32)("user0")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_export_csv(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.csv"
    args = ["archive", "export", str(archive), "--day", DAY, "--format", "csv", "--out", str(out)]
    assert main(args) == 0
    assert pa_csv.read_csv(out).num_rows == 42
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 42
    first = next(r for r in rows if r["id"] == "bluesky:0")
    assert first["themes"] == "grief;access"
    assert first["flags"] == "spam"
    assert first["created_at"] == "2024-05-01T12:00:00.000000Z"
    assert datetime.fromisoformat(first["created_at"]) == NOON


def test_export_default_name_and_errors(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["archive", "export", str(archive), "--day", "2024-05-02"]) == 0
    assert pq.read_table(tmp_path / "archive-2024-05-02.parquet").num_rows == 5
    assert main(["archive", "export", str(archive), "--day", "2024-06-01"]) == 2
    assert "no such day" in capsys.readouterr().err
    assert main(["archive", "export", str(archive), "--day", "May 1"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert date.fromisoformat(DAY)  # the fixture's day is a real date
