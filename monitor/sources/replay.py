"""``replay:PATH?speed=max|realtime|Nx[&resume=true]``: posts from a JSONL or CSV file.

The bundled sample stream, captured data and tests all enter through here.
A bad line is a counted rejection with its line number, never the end of
the run; an over-long line is skipped without reading it whole. With
``resume=true`` the line number of each durable post is committed as the
source's cursor, and a restart skips the lines already archived.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

from monitor.codec import MAX_RECORD_BYTES, DecodeError, decode_post, post_from_mapping
from monitor.model import Post
from monitor.sources.base import Rejected, SourceContext

__all__ = ["ReplaySource", "parse_speed"]

#: Lines handled between yields to the event loop at full speed.
_YIELD_EVERY = 256


def parse_speed(value: str) -> float | None:
    """'max' -> None (no pacing), 'realtime' -> 1.0, '10x' -> 10.0."""
    value = value.strip().lower()
    if value == "max":
        return None
    if value == "realtime":
        return 1.0
    if value.endswith("x"):
        try:
            factor = float(value[:-1])
        except ValueError:
            factor = 0.0
        if factor > 0:
            return factor
    raise ValueError(f"speed={value!r}: use max, realtime or a factor such as 10x")


class ReplaySource:
    """Replays a file of posts, as fast as the pipeline takes them or paced by created_at."""

    finite = True

    def __init__(self, path: Path, *, speed: float | None = None, fmt: str | None = None,
                 name: str = "replay", resume: bool = False,
                 context: SourceContext | None = None) -> None:
        self.path = path
        self.speed = speed
        self.name = name
        self.context = context or SourceContext()
        self.cursor_key = f"replay:{path.resolve()}" if resume else None
        suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
        self.format = fmt or ("csv" if suffixes and suffixes[-1] == ".csv" else "jsonl")
        if self.format not in ("jsonl", "csv"):
            raise ValueError(f"format={self.format!r}: use jsonl or csv")

    @classmethod
    def from_uri(cls, uri: str, context: SourceContext | None = None) -> ReplaySource:
        """``replay:PATH[?speed=..&format=jsonl|csv]``."""
        parts = urlsplit(uri)
        raw_path = uri[len("replay:"):].split("?", 1)[0]
        path = Path(unquote(raw_path.removeprefix("//")))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"speed", "format", "resume"}
        if unknown:
            raise ValueError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; "
                             "use speed=, format= and resume=")
        if not path.is_file():
            raise ValueError(f"{uri}: no such file {path}")
        resume = query.get("resume", "false").lower()
        if resume not in ("true", "false"):
            raise ValueError(f"{uri}: resume={resume!r}: use true or false")
        return cls(path, speed=parse_speed(query.get("speed", "max")), fmt=query.get("format"),
                   resume=resume == "true", context=context)

    def _open(self) -> IO[bytes]:
        if self.path.suffix.lower() == ".gz":
            return gzip.open(self.path, "rb")
        return self.path.open("rb")

    def _records(self) -> Iterator[Post | Rejected]:
        with self._open() as fh:
            if self.format == "csv":
                yield from self.read_csv(fh)
            else:
                yield from self.read_jsonl(fh)

    def read_jsonl(self, fh: IO[bytes]) -> Iterator[Post | Rejected]:
        """Each line of a JSONL stream: a Post, or a rejection naming ``FILE:LINE``."""
        number = 0
        skip = self._resume_line()
        while True:
            line = fh.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            number += 1
            if number <= skip and line.endswith(b"\n"):
                continue
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield Rejected(self.name, "too_large", f"over {MAX_RECORD_BYTES} bytes",
                               f"{self.path}:{number}")
                continue
            if not line.strip():
                continue
            try:
                post = decode_post(line.rstrip(b"\r\n"), default_source=self.name)
            except DecodeError as exc:
                yield Rejected(self.name, exc.reason, exc.detail, f"{self.path}:{number}")
                continue
            if self.cursor_key is not None:
                post.checkpoint = (self.cursor_key, str(number))
            yield post

    def _resume_line(self) -> int:
        """Lines to skip: those up to the last durable post of an earlier run."""
        if self.cursor_key is None:
            return 0
        position = self.context.cursors.get(self.cursor_key)
        return int(position) if position and position.isdigit() else 0

    def read_csv(self, fh: IO[bytes]) -> Iterator[Post | Rejected]:
        """Each row of a CSV stream with a header: a Post, or a rejection naming ``FILE:LINE``."""
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.DictReader(text)
        number = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                number += 1
                reason = "invalid_utf8" if isinstance(exc, UnicodeDecodeError) else "invalid_csv"
                yield Rejected(self.name, reason, str(exc)[:120], f"{self.path}:{number}")
                if isinstance(exc, UnicodeDecodeError):
                    return  # the decoder cannot resynchronise; the rest is unreadable
                continue
            number = reader.line_num
            record = {k: v for k, v in row.items() if k and v not in (None, "")}
            for name in ("hashtags", "links"):
                if name in record:
                    record[name] = [t for t in str(record[name]).split(";") if t]
            try:
                yield post_from_mapping(record, default_source=self.name)
            except DecodeError as exc:
                yield Rejected(self.name, exc.reason, exc.detail, f"{self.path}:{number}")

    async def stream(self) -> AsyncIterator[Post | Rejected]:
        first_event: datetime | None = None
        started = time.monotonic()
        for count, item in enumerate(self._records(), 1):
            if self.speed is not None and isinstance(item, Post):
                if first_event is None:
                    first_event = item.created_at
                due = started + (item.created_at - first_event).total_seconds() / self.speed
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
            elif count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            yield item
