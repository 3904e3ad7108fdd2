"""One archive day as a flat table: ``monitor archive export DIR --day D``.

Parquet keeps list columns (themes, reasons, flags) as lists and created_at
as a UTC timestamp; CSV joins lists with ``;`` and writes created_at as ISO
8601 with ``Z``, which pandas, DuckDB and R's readr all parse. Rows are read
and written in batches, so a day of millions of posts exports in bounded
memory. Every line goes through :func:`monitor.codec.decode_tagged`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.codec import DecodeError, decode_tagged
from monitor.model import TaggedPost
from monitor.sinks.manifest import DATA_SUFFIX
from monitor.sinks.segment import FILE_MODE, FrameReader

__all__ = ["COLUMNS", "FORMATS", "SCHEMA", "ExportError", "export_day", "iter_day"]

FORMATS: tuple[str, ...] = ("parquet", "csv")
_LIST = pa.list_(pa.string())
#: The exported columns, in order; the one place their names and types are set.
SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("lang", pa.string()),
    ("text", pa.string()),
    ("author", pa.string()),
    ("url", pa.string()),
    ("themes", _LIST),
    ("claim", pa.string()),
    ("reasons", _LIST),
    ("flags", _LIST),
    ("relevance", pa.float64()),
    ("ruleset", pa.string()),
    ("ruleset_hash", pa.string()),
    ("processor_version", pa.string()),
])
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
_LIST_COLUMNS = ("themes", "reasons", "flags")
_BATCH = 50_000


class ExportError(ValueError):
    """The day cannot be exported as found; the message names the file and the fix."""


def _row(tagged: TaggedPost) -> tuple[Any, ...]:
    post, tags = tagged.post, tagged.tags
    return (
        post.id, post.source, post.created_at, tags.lang, post.text, post.author, post.url,
        [s.label for s in tags.themes], tags.claim.label if tags.claim else None,
        [s.label for s in tags.reasons], [f.kind for f in tagged.all_flags],
        tags.relevance, tagged.ruleset, tagged.ruleset_hash, tagged.processor_version,
    )


def iter_day(folder: Path) -> Iterator[TaggedPost]:
    """Every post of a day folder, file by file (sorted), in write order."""
    for path in sorted(folder.glob("*" + DATA_SUFFIX)):
        with path.open("rb") as fileobj:
            reader = FrameReader(fileobj)
            line_no = 0
            for content in reader:
                for line in content.splitlines():
                    line_no += 1
                    try:
                        yield decode_tagged(line)
                    except DecodeError as exc:
                        raise ExportError(
                            f"{folder.name}/{path.name}: line {line_no} does not decode ({exc}); "
                            f"run `monitor archive verify`"
                        ) from None
            if reader.problem:
                raise ExportError(
                    f"{folder.name}/{path.name}: {reader.problem}; run `monitor archive verify`, "
                    f"or export after the monitor has restarted and recovered the file"
                )


def _batches(folder: Path) -> Iterator[pa.RecordBatch]:
    rows: list[tuple[Any, ...]] = []
    for tagged in iter_day(folder):
        rows.append(_row(tagged))
        if len(rows) >= _BATCH:
            yield _to_batch(rows)
            rows = []
    if rows:
        yield _to_batch(rows)


def _to_batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def _csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for name in schema.names:
        column = batch.column(name)
        if name in _LIST_COLUMNS:
            column = pa.array([";".join(v) for v in column.to_pylist()], pa.string())
        elif name == "created_at":
            column = pa.array(
                [f"{v:%Y-%m-%dT%H:%M:%S.%f}Z" for v in column.to_pylist()], pa.string()
            )
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _csv_schema() -> pa.Schema:
    return pa.schema([
        pa.field(f.name, pa.string())
        if f.name in _LIST_COLUMNS or f.name == "created_at" else f
        for f in SCHEMA
    ])


def export_day(root: Path, day: date, fmt: str, out: Path) -> int:
    """Write ``day`` of the archive at ``root`` to ``out`` (0600); returns the row count."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    folder = root / day.isoformat()
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such day in the archive")
    part = out.with_name(out.name + ".part")
    try:
        rows = _write(folder, fmt, part)
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return rows


def _write(folder: Path, fmt: str, path: Path) -> int:
    rows = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(fd, "wb") as sink:
        if fmt == "parquet":
            with pq.ParquetWriter(sink, SCHEMA, compression="zstd") as writer:
                for batch in _batches(folder):
                    writer.write_batch(batch)
                    rows += batch.num_rows
        else:
            schema = _csv_schema()
            with pa_csv.CSVWriter(sink, schema) as writer:
                for batch in _batches(folder):
                    writer.write_batch(_csv_batch(batch, schema))
                    rows += batch.num_rows
    return rows
