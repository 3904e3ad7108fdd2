"""The zstd frame segment: durable appends, recovery of a torn tail, permissions."""

from __future__ import annotations

import hashlib
import io
import stat
import subprocess
from pathlib import Path

import pytest
import zstandard

from monitor.sinks.segment import FrameReader, Segment, make_dir
from tests.support.binaries import require_binary


def lines(start: int, count: int) -> list[bytes]:
    return [b'{"id":"p%d"}\n' % i for i in range(start, start + count)]


def read_all(path: Path) -> bytes:
    with path.open("rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        return reader.read()


def seen_frames(path: Path, **kwargs: object) -> tuple[Segment, list[bytes]]:
    frames: list[bytes] = []
    segment = Segment.open(path, on_frame=frames.append, **kwargs)  # type: ignore[arg-type]
    return segment, frames


def test_append_then_reopen_sees_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "bluesky.jsonl.zst"
    segment = Segment.open(path)
    segment.append(lines(0, 3))
    segment.append(lines(3, 2))
    assert segment.posts == 5
    assert segment.bytes == path.stat().st_size
    assert segment.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    segment.close()

    again, frames = seen_frames(path)
    assert frames == [b"".join(lines(0, 3)), b"".join(lines(3, 2))]
    assert (again.posts, again.bytes, again.sha256) == (5, segment.bytes, segment.sha256)
    again.append(lines(5, 1))
    again.close()
    assert read_all(path) == b"".join(lines(0, 6))


def test_concatenated_frames_are_one_stream_for_the_zstd_tool(tmp_path: Path) -> None:
    zstd = require_binary("zstd")
    path = tmp_path / "x.jsonl.zst"
    segment = Segment.open(path)
    for i in range(3):
        segment.append(lines(i * 10, 10))
    segment.close()
    out = subprocess.run([zstd, "-dc", str(path)], capture_output=True, check=True).stdout
    assert out == b"".join(lines(0, 30))


def _two_good_frames(path: Path) -> int:
    segment = Segment.open(path)
    segment.append(lines(0, 4))
    segment.append(lines(4, 4))
    good = segment.bytes
    segment.close()
    return good


@pytest.mark.parametrize("damage", ["truncate_mid_frame", "append_garbage", "append_zeros"])
def test_torn_tail_is_cut_and_kept_aside(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "day" / "reddit.jsonl.zst"
    make_dir(path.parent)
    good = _two_good_frames(path)
    with path.open("r+b") as fh:
        if damage == "truncate_mid_frame":
            frame = zstandard.ZstdCompressor(write_checksum=True).compress(b"".join(lines(8, 50)))
            fh.seek(0, io.SEEK_END)
            fh.write(frame[: len(frame) // 2])
        elif damage == "append_garbage":
            fh.seek(0, io.SEEK_END)
            fh.write(b"garbage after a crash")
        else:
            fh.seek(0, io.SEEK_END)
            fh.write(b"\0" * 4096)
    damaged = path.read_bytes()[good:]

    torn = tmp_path / ".torn"
    segment, frames = seen_frames(path, torn_dir=torn)
    assert b"".join(frames) == b"".join(lines(0, 8))
    assert path.stat().st_size == good == segment.bytes
    assert segment.posts == 8
    kept = list(torn.iterdir())
    assert [p.read_bytes() for p in kept] == [damaged]
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    segment.append(lines(8, 1))
    segment.close()
    assert read_all(path) == b"".join(lines(0, 9))


def test_frame_without_final_newline_counts_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.zst"
    good = _two_good_frames(path)
    with path.open("ab") as fh:
        fh.write(zstandard.ZstdCompressor().compress(b'{"id":"half'))
    segment, frames = seen_frames(path)
    segment.close()
    assert len(frames) == 2
    assert path.stat().st_size == good


def test_reader_reports_corruption_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.zst"
    _two_good_frames(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 4] ^= 0xFF
    path.write_bytes(bytes(data))
    with path.open("rb") as fh:
        reader = FrameReader(fh)
        list(reader)
    assert reader.problem is not None
    assert "corrupt" in reader.problem or "incomplete" in reader.problem


def test_reader_is_clean_on_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.zst"
    _two_good_frames(path)
    with path.open("rb") as fh:
        reader = FrameReader(fh, chunk_size=7)  # frames straddle many reads
        assert b"".join(reader) == b"".join(lines(0, 8))
    assert reader.problem is None
    assert reader.frames == 2
    assert reader.sha256.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_files_and_folders_are_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    make_dir(folder)
    segment = Segment.open(folder / "x.jsonl.zst")
    segment.close()
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "x.jsonl.zst").stat().st_mode) == 0o600
