"""What the crash (SIGKILL) tests share: an input whose every line is known, and
what an archive held at the moment of a kill.

    source = write_input(path, posts=4_000, seed=9, rng=random.Random(9))
    source.valid_ids, source.acknowledged(line)   # post ids, by replay line
    committed_cursor(state, source.path)          # the line a resumed replay committed
    ids, problems = complete_frames(archive)      # Counter of ids in complete frames
    assert_recovery_keeps(archive, copy, ids)     # a restart's recovery verifies, loses none
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from monitor.archive_verify import verify_archive
from monitor.bench.synth import synthetic_posts
from monitor.sinks.archive import ArchiveWriter
from monitor.sinks.manifest import DATA_SUFFIX, day_folders
from monitor.sinks.segment import FrameReader

__all__ = ["Input", "assert_recovery_keeps", "committed_cursor", "complete_frames",
           "write_input"]


@dataclass
class Input:
    """The replay file and what each of its lines is: a post id, or None for a bad line."""

    path: Path
    lines: list[str | None]

    @property
    def valid_ids(self) -> set[str]:
        return {i for i in self.lines if i is not None}

    def acknowledged(self, cursor: int) -> set[str]:
        return {i for i in self.lines[:cursor] if i is not None}


def write_input(path: Path, *, posts: int, seed: int, rng: random.Random) -> Input:
    """Synthetic posts over six event days: late posts, bad lines and repeated lines mixed in.

    Late posts (one in 25, one to three days old) make the archive reopen
    closed days and close others, writing their manifests; the last line is a
    valid post, so a replay cursor ends at the last line.
    """
    start = datetime(2026, 2, 13, 18, tzinfo=UTC)
    records = list(synthetic_posts(posts, seed=seed, start=start, per_second=1 / 120))
    lines: list[bytes] = []
    ids: list[str | None] = []
    for n, record in enumerate(records):
        if n % 25 == 7:
            late = datetime.fromisoformat(str(record["created_at"]))
            late -= timedelta(days=rng.uniform(1, 3))
            record["created_at"] = late.isoformat().replace("+00:00", "Z")
        if n % 97 == 13:
            lines.append(b'{"id": "broken-%d", "text": "cut sh' % n)
            ids.append(None)
        if n % 151 == 40 and lines:
            again = rng.randrange(len(lines))  # a repeat: archived once all the same
            lines.append(lines[again])
            ids.append(ids[again])
        lines.append(orjson.dumps(record))
        ids.append(str(record["id"]))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return Input(path, ids)


def committed_cursor(state: Path, replay: Path) -> int:
    """The replay line number a process acknowledged (``replay:FILE?resume=true``'s cursor
    in ``STATE/cursors.json``; 0: none yet)."""
    try:
        cursors = orjson.loads((state / "cursors.json").read_bytes())
    except FileNotFoundError:
        return 0
    return int(cursors.get(f"replay:{replay.resolve()}", 0))


def complete_frames(archive: Path) -> tuple[Counter[str], list[str]]:
    """Ids in the archive's complete frames (what recovery keeps), and each file's problem.

    Every record must sit in the folder of its own UTC day.
    """
    ids: Counter[str] = Counter()
    problems: list[str] = []
    if not archive.is_dir():
        return ids, problems
    for day in day_folders(archive):
        for path in sorted(day.glob("*" + DATA_SUFFIX)):
            with path.open("rb") as fh:
                reader = FrameReader(fh)
                for content in reader:
                    for line in content.splitlines():
                        record = orjson.loads(line)
                        assert record["created_at"].startswith(day.name), (path, record["id"])
                        ids[record["id"]] += 1
            if reader.problem:
                problems.append(f"{path.relative_to(archive)}: {reader.problem}")
    return ids, problems


def assert_recovery_keeps(archive: Path, copy: Path, ids: Counter[str], context: str) -> None:
    """A copy of ``archive``, recovered the way a restart recovers it, verifies and still
    holds every post of its complete frames (``ids``)."""
    if not archive.is_dir():
        return
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(archive, copy)
    ArchiveWriter(copy, pseudonymize=False).close()  # what the restart does first
    report = verify_archive(copy)
    assert report.ok, f"{[str(p) for p in report.problems[:5]]}; {context}"
    assert complete_frames(copy)[0] == ids, f"recovery lost readable posts; {context}"
