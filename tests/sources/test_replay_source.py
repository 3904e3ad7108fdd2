"""``replay:FILE``: JSONL and CSV files, gzipped or not, paced or as fast as possible.

``data/posts.jsonl`` and ``data/posts.csv`` hold the same four posts in the
two formats; both must decode to the golden ``tests/data/golden/replay_posts.json``.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.codec import MAX_RECORD_BYTES, encode_post
from monitor.model import Post
from monitor.sources import SOURCE_TYPES, SourceError, open_source
from monitor.sources.base import Rejected, Source
from monitor.sources.replay import ReplaySource, parse_speed

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "replay_posts.json"


async def read_all(source: ReplaySource) -> list[Post | Rejected]:
    return [item async for item in source.stream()]


def as_json(posts: list[Post | Rejected]) -> list[dict[str, Any]]:
    assert all(isinstance(p, Post) for p in posts), posts
    return [orjson.loads(encode_post(p)) for p in posts]  # type: ignore[arg-type]


def write_lines(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))
    return path


def gzipped(path: Path, target: Path) -> Path:
    with path.open("rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


# -- formats ---------------------------------------------------------------------


def test_a_replay_source_is_a_finite_source() -> None:
    source = open_source(f"replay:{DATA / 'posts.jsonl'}")
    assert isinstance(source, ReplaySource) and isinstance(source, Source)
    assert (source.name, source.finite, source.speed, source.format) == (
        "replay", True, None, "jsonl")


async def test_jsonl_posts_decode_to_the_golden_posts(
        golden: Callable[[Path, Any], None]) -> None:
    golden(GOLDEN, as_json(await read_all(ReplaySource(DATA / "posts.jsonl"))))


async def test_csv_gives_the_same_posts_as_jsonl() -> None:
    source = open_source(f"replay:{DATA / 'posts.csv'}")
    assert source.format == "csv"
    posts = await read_all(source)  # type: ignore[arg-type]
    assert as_json(posts) == orjson.loads(GOLDEN.read_bytes())
    assert posts[1].hashtags == ("keep4o", "OpenSource4o")  # the CSV column 'a;b'


@pytest.mark.parametrize("name", ["posts.jsonl", "posts.csv"])
async def test_gzipped_files_are_read_transparently(tmp_path: Path, name: str) -> None:
    packed = gzipped(DATA / name, tmp_path / f"{name}.gz")
    source = open_source(f"replay:{packed}?speed=max")
    assert source.format == name.rsplit(".", 1)[1]
    assert as_json(await read_all(source)) == orjson.loads(GOLDEN.read_bytes())  # type: ignore[arg-type]


async def test_format_option_overrides_the_file_extension(tmp_path: Path) -> None:
    export = tmp_path / "export.txt"
    shutil.copy(DATA / "posts.csv", export)
    source = open_source(f"replay:{export}?format=csv")
    assert as_json(await read_all(source)) == orjson.loads(GOLDEN.read_bytes())  # type: ignore[arg-type]


# -- bad input -------------------------------------------------------------------

BAD_LINES = [
    pytest.param('{"id": "a", "text": "cut short"', "invalid_json", id="invalid_json"),
    pytest.param(b'{"id": "a", "text": "\xff", "created_at": "2025-08-13T10:00:00Z"}',
                 "invalid_utf8", id="invalid_utf8"),
    pytest.param('["a", "b"]', "not_object", id="not_object"),
    pytest.param('{"id": "a", "created_at": "2025-08-13T10:00:00Z"}', "missing_field:text",
                 id="missing_text"),
    pytest.param('{"text": "hi", "created_at": "2025-08-13T10:00:00Z"}', "missing_field:id",
                 id="missing_id"),
    pytest.param('{"id": "a", "text": "hi"}', "missing_field:created_at", id="missing_time"),
    pytest.param('{"id": "a", "text": "hi", "created_at": "13/08/2025"}', "bad_timestamp",
                 id="bad_timestamp"),
    pytest.param('{"id": "a", "text": "hi", "created_at": "1970-01-01T00:00:00Z"}',
                 "bad_timestamp", id="out_of_range_timestamp"),
    pytest.param('{"id": "a", "text": ["hi"], "created_at": "2025-08-13T10:00:00Z"}',
                 "bad_type:text", id="wrong_type_text"),
    pytest.param('{"id": "a", "text": "hi", "created_at": "2025-08-13T10:00:00Z", '
                 '"hashtags": "keep4o"}', "bad_type:hashtags", id="wrong_type_hashtags"),
    pytest.param('{"id": "a", "text": " ", "created_at": "2025-08-13T10:00:00Z"}',
                 "empty_text", id="empty_text"),
    pytest.param('{"id": "a", "text": "' + "x" * 300_000 + '", "created_at": '
                 '"2025-08-13T10:00:00Z"}', "too_large", id="over_256KiB"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
async def test_a_bad_line_is_rejected_with_its_reason_and_place_and_the_replay_goes_on(
        tmp_path: Path, line: str | bytes, reason: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl",
                       '{"id": "ok-1", "text": "before", "created_at": "2025-08-13T10:00:00Z"}',
                       line,
                       '{"id": "ok-2", "text": "after", "created_at": "2025-08-13T10:00:01Z"}')
    before, rejected, after = await read_all(ReplaySource(path))
    assert isinstance(before, Post) and isinstance(after, Post)
    assert after.id == "ok-2"
    assert isinstance(rejected, Rejected)
    assert (rejected.source, rejected.reason, rejected.where) == ("replay", reason, f"{path}:2")


async def test_blank_lines_are_skipped_not_rejected_and_lines_keep_their_numbers(
        tmp_path: Path) -> None:
    path = write_lines(tmp_path / "blank.jsonl", "",
                       '{"id": "a", "text": "hi", "created_at": "2025-08-13T10:00:00Z"}',
                       "   ", "\t", "{oops}")
    items = await read_all(ReplaySource(path))
    assert [type(i).__name__ for i in items] == ["Post", "Rejected"]
    assert items[1].where == f"{path}:5"  # type: ignore[union-attr]


async def test_a_huge_line_is_skipped_without_losing_the_next_one(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "huge.jsonl", "x" * (3 * MAX_RECORD_BYTES),
                       '{"id": "a", "text": "hi", "created_at": "2025-08-13T10:00:00Z"}')
    rejected, post = await read_all(ReplaySource(path))
    assert isinstance(rejected, Rejected) and rejected.reason == "too_large"
    assert isinstance(post, Post) and post.id == "a"


async def test_a_record_of_exactly_the_limit_is_accepted_mid_file(tmp_path: Path) -> None:
    record = {"id": "limit", "text": "hi", "created_at": "2025-08-13T10:00:00Z", "raw": ""}
    record["raw"] = "x" * (MAX_RECORD_BYTES - len(orjson.dumps(record)))
    line = orjson.dumps(record)
    assert len(line) == MAX_RECORD_BYTES
    path = write_lines(tmp_path / "limit.jsonl", line,
                       '{"id": "next", "text": "hi", "created_at": "2025-08-13T10:00:00Z"}')
    items = await read_all(ReplaySource(path))
    assert [getattr(i, "id", getattr(i, "reason", None)) for i in items] == ["limit", "next"]


async def test_csv_rows_are_rejected_with_their_line_numbers() -> None:
    path = DATA / "rejects.csv"
    items = await read_all(ReplaySource(path))
    assert [(i.id if isinstance(i, Post) else (i.reason, i.where)) for i in items] == [
        "csv-1",
        ("missing_field:text", f"{path}:3"),
        ("bad_timestamp", f"{path}:4"),
        ("missing_field:id", f"{path}:5"),
        "csv-4",
    ]
    assert items[0].hashtags == ("keep4o",)  # type: ignore[union-attr]


async def test_csv_with_invalid_utf8_is_rejected_and_ends(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "latin1.csv", "id,text,created_at",
                       "a,hello,2025-08-13T10:00:00Z", b"b,caf\xe9,2025-08-13T10:00:01Z")
    items = await read_all(ReplaySource(path))
    assert [type(i).__name__ for i in items][-1] == "Rejected"
    assert items[-1].reason == "invalid_utf8"  # type: ignore[union-attr]


async def test_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (DATA / "posts.csv").read_bytes())
    assert as_json(await read_all(ReplaySource(path))) == orjson.loads(GOLDEN.read_bytes())


# -- pacing ----------------------------------------------------------------------


async def arrival_offsets(source: ReplaySource) -> list[float]:
    """Seconds from starting the stream to each item."""
    started = time.monotonic()
    return [time.monotonic() - started async for _ in source.stream()]


async def test_ten_x_replays_a_two_second_span_in_a_fifth_of_a_second() -> None:
    # data/paced.jsonl: posts at 0, 1 and 2 seconds
    offsets = await arrival_offsets(open_source(f"replay:{DATA / 'paced.jsonl'}?speed=10x"))  # type: ignore[arg-type]
    for got, want in zip(offsets, [0.0, 0.1, 0.2], strict=True):
        assert want - 0.01 <= got <= want + 0.08, offsets


async def test_realtime_follows_created_at(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "rt.jsonl", *(
        f'{{"id": "rt-{i}", "text": "hi", "created_at": "2025-08-13T10:00:00.{i * 15:02d}Z"}}'
        for i in range(3)))  # 0, 0.15 and 0.30 s
    offsets = await arrival_offsets(open_source(f"replay:{path}?speed=realtime"))  # type: ignore[arg-type]
    for got, want in zip(offsets, [0.0, 0.15, 0.30], strict=True):
        assert want - 0.01 <= got <= want + 0.08, offsets


async def test_max_does_not_wait_for_created_at() -> None:
    # data/posts.jsonl spans an hour and a half of event time
    started = time.monotonic()
    items = await read_all(open_source(f"replay:{DATA / 'posts.jsonl'}?speed=max"))  # type: ignore[arg-type]
    assert len(items) == 4
    assert time.monotonic() - started < 0.1


async def test_a_paced_replay_stops_promptly_when_cancelled(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "slow.jsonl",
                       '{"id": "a", "text": "hi", "created_at": "2025-08-13T10:00:00Z"}',
                       '{"id": "b", "text": "hi", "created_at": "2025-08-13T11:00:00Z"}')
    source = open_source(f"replay:{path}?speed=realtime")
    task = asyncio.create_task(read_all(source))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize(("text", "speed"), [
    ("max", None), ("MAX", None), ("realtime", 1.0), ("10x", 10.0), ("2.5X", 2.5),
    (" 600x ", 600.0), ("0.5x", 0.5),
])
def test_speeds(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0x", "-2x", "x", "10", "", "nanx", "tenx"])
def test_a_bad_speed_says_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="use max, realtime or a factor such as 10x"):
        parse_speed(text)


# -- URIs ------------------------------------------------------------------------


def test_uri_options_and_path_forms(tmp_path: Path) -> None:
    path = shutil.copy(DATA / "posts.csv", tmp_path / "my posts.data")
    source = open_source(f"replay://{tmp_path}/my%20posts.data?format=csv&speed=20x")
    assert (source.path, source.format, source.speed) == (path, "csv", 20.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("uri", "message"), [
    ("replay:{data}/posts.jsonl?speed=fast", "speed='fast': use max, realtime or a factor"),
    ("replay:{data}/posts.jsonl?rate=10x", "unknown option(s) rate; use speed="),
    ("replay:{data}/nope.jsonl", "no such file {data}/nope.jsonl"),
    ("replay:{data}/posts.jsonl?format=xml", "format='xml': use jsonl or csv"),
])
def test_a_bad_replay_uri_says_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        open_source(uri.format(data=DATA))
    assert message.format(data=DATA) in str(info.value)


def test_an_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(SourceError, match=r"unknown source 'nope:posts'; use one of replay:") as info:
        open_source("nope:posts")
    for scheme in SOURCE_TYPES:
        assert f"{scheme}:" in str(info.value)
