"""Which of a ruleset's regexes match each post: Hyperscan's one pass, RE2's answers.

RE2's FilteredRE2 looks for each pattern's literals, then confirms every
candidate with a full search: ~65 searches a post on the shipped rules, the
tagger's largest cost. Hyperscan runs all patterns in one automaton, but it
differs from RE2 on Unicode and it compiles UTF-8 mode's multi-byte classes
slowly (~27 s for the shipped rules). So it scans a *mapped* text instead,
one byte per code point: ASCII as is, each non-ASCII character that a
pattern names a byte of its own (one per case-folding orbit, as RE2 folds),
every other one byte 0x80, a non-word, non-space byte. Gaps like
``[^.!?]{0,60}`` count code points as RE2 does, and byte-mode compiling takes
a few seconds (cached on disk by content).

A pattern goes to Hyperscan only when its syntax means the same in both
engines (escapes from a known list, ``$`` as ``\\z``, no inline flags, no
``^`` after other items, named characters with a byte); the rest, and every
pattern when the ``hyperscan`` package is missing, stay in an RE2 filter. A
text with a character RE2 folds onto an ASCII letter goes to RE2 whole.
Both give the same pattern positions; tests compare them on real,
synthetic and mutated posts, and one post in 1,000 is checked against RE2
at run time (Hyperscan 0.9.1's own UTF-8 mode misses matches RE2 finds).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import re2

try:
    import hyperscan
except ImportError:  # no wheel for this platform: RE2 alone, same answers
    hyperscan = None

__all__ = ["CHECK_EVERY", "RegexScan", "ascii_folds", "cache_dir", "hyperscan_pattern"]

log = logging.getLogger(__name__)

#: the mapped byte of every character no pattern names (and of VT: RE2's \s excludes it)
_OTHER = 0x80
#: bytes for the characters patterns name, one per case-folding orbit
_CODES = range(0x81, 0x100)
_HEX = frozenset("0123456789abcdefABCDEF")
#: escapes whose meaning is the same in RE2 and Hyperscan over mapped bytes
_SAME_ESCAPES = frozenset("bBwWdDsSntrf")
_MAX_CODEPOINT = 0x110000
#: compiled databases kept on disk (~4 MB each for the shipped rules)
_CACHE_KEEP = 8
#: one text in this many is also checked with RE2's filter over all the patterns (~85 us)
CHECK_EVERY = 1_000


def cache_dir() -> Path:
    """Where compiled Hyperscan databases are kept (``MONITOR_CACHE_DIR`` overrides)."""
    env = os.environ.get("MONITOR_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home (a bare container user): the temporary folder
            base = os.path.join(tempfile.gettempdir(), f"cache-{os.getuid()}")
    return Path(base) / "social-monitor"


class RegexScan:
    """Every pattern's position among ``patterns`` that matches a text, as RE2 says."""

    def __init__(self, patterns: Sequence[str], options: Any, *, use_hyperscan: bool = True,
                 check_every: int = CHECK_EVERY, compiled: Sequence[Any] | None = None) -> None:
        """``check_every``: one text in so many is checked against RE2 alone.
        ``compiled``: each pattern already compiled with ``options`` (the tagger keeps them
        for its second searches), else compiled here."""
        self.patterns = list(patterns)
        self.check_every = check_every
        self._until_check = check_every
        #: texts on which Hyperscan and RE2 disagreed (then RE2 answers alone)
        self.disagreements = 0
        self._options = options
        self._db: Any = None
        self._hs_ids: list[int] = []
        self._scratch = threading.local()
        self._table: np.ndarray | None = None
        if use_hyperscan and hyperscan is not None:
            self._build_hyperscan()
        in_hs = frozenset(self._hs_ids)
        self._rest = _Re2Filter([i for i in range(len(self.patterns)) if i not in in_hs],
                                self.patterns, options)
        #: Hyperscan's patterns one by one in RE2, the run-time check's reference: ~1.2 ms a
        #: text for the shipped rules, where a filter over all the patterns takes ~85 us but
        #: holds a third copy of each (8 MiB) for one text in a thousand
        self._one_by_one = [(i, compiled[i] if compiled is not None
                             else re2.compile(self.patterns[i], options))
                            for i in sorted(in_hs)]
        #: that filter, built at the first text Hyperscan cannot read (see ascii_folds)
        self._all: _Re2Filter | None = None if self._db is not None else self._rest

    @property
    def hyperscan_patterns(self) -> int:
        """How many patterns Hyperscan answers for (the rest go to RE2)."""
        return len(self._hs_ids)

    def match(self, text: str) -> list[int]:
        return self.match_batch([text])[0]

    def match_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Matching pattern positions per text, ascending."""
        if self._db is None:
            return [self._rest.match(text) for text in texts]
        scratch = self._scratch_here()
        folds = ascii_folds()
        out: list[list[int]] = []
        found: list[int] = []
        for text, mapped in zip(texts, self._mapped(texts), strict=True):
            if not text.isascii() and any(c in text for c in folds):
                out.append(self._all_patterns().match(text))
                continue
            hits = self._rest.match(text)
            self._db.scan(mapped, match_event_handler=_collect, context=found, scratch=scratch)
            self._until_check -= 1
            if self._until_check <= 0:
                self._until_check = self.check_every
                if not self._agrees(text, found):
                    return out + self.match_batch(texts[len(out):])
            if found:
                hits.extend(found)
                hits.sort()
                found.clear()
            out.append(hits)
        return out

    def _agrees(self, text: str, found: list[int]) -> bool:
        """Whether RE2 finds what Hyperscan found among its patterns; if not, RE2 alone
        answers from now on (a wrong tag is worse than a slow one)."""
        expected = self._in_re2(text)
        if sorted(found) == expected:
            return True
        self.disagreements += 1
        log.error("hyperscan and RE2 disagree on regexes %s for a post (%d characters); "
                  "RE2 alone answers from now on. Please report it with the rules' version.",
                  sorted(set(found).symmetric_difference(expected)), len(text))
        found.clear()
        self._db = None
        self._rest = self._all_patterns()
        return False

    def _in_re2(self, text: str) -> list[int]:
        """Which of Hyperscan's patterns RE2 finds in ``text``, ascending."""
        return [i for i, regex in self._one_by_one if regex.search(text)]

    def _all_patterns(self) -> _Re2Filter:
        if self._all is None:  # ~0.07 s for the shipped rules
            self._all = _Re2Filter(list(range(len(self.patterns))), self.patterns, self._options)
        return self._all

    # -- internals -----------------------------------------------------------

    def _mapped(self, texts: Sequence[str]) -> list[bytes]:
        """Each text as Hyperscan reads it: one byte per code point (see the module doc)."""
        joined = "".join(texts)
        if joined.isascii() and "\x0b" not in joined:
            data = joined.encode("ascii")
        else:
            assert self._table is not None
            points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            data = self._table[points].tobytes()
        out: list[bytes] = []
        start = 0
        for text in texts:
            end = start + len(text)
            out.append(data[start:end])
            start = end
        return out

    def _scratch_here(self) -> Any:
        scratch = getattr(self._scratch, "value", None)
        if scratch is None:  # one per thread: a scratch serves one scan at a time
            scratch = self._scratch.value = hyperscan.Scratch(self._db)
        return scratch

    def _build_hyperscan(self) -> None:
        codes = _assign_codes(self.patterns)
        translated = [hyperscan_pattern(p, codes) for p in self.patterns]
        candidates = [i for i, t in enumerate(translated) if t is not None]
        if not candidates:
            return
        self._db, self._hs_ids = _database([translated[i] for i in candidates], candidates)
        self._table = _table(codes)


class _Re2Filter:
    """RE2's FilteredRE2 over some of the patterns, answering in overall positions."""

    def __init__(self, positions: list[int], patterns: Sequence[str], options: Any) -> None:
        self._positions = positions
        self._filter: Any = None
        if positions:
            self._filter = re2.Filter()
            for i in positions:
                self._filter.Add(patterns[i], options)
            self._filter.Compile()

    def match(self, text: str) -> list[int]:
        if self._filter is None:
            return []
        found = self._filter.Match(text)
        if not found:
            return []
        positions = self._positions
        return [positions[i] for i in found]


def _collect(pattern_id: int, start: int, end: int, flags: int, found: list[int]) -> None:
    found.append(pattern_id)


# -- patterns ------------------------------------------------------------------


def hyperscan_pattern(pattern: str, codes: dict[str, int]) -> bytes | None:
    """``pattern`` for Hyperscan over mapped bytes, or None where the engines could differ.

    ``codes``: the mapped byte of each non-ASCII character it may name; a
    character without one keeps the pattern in RE2.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0  # index of the first member of the open class
    #: nothing matched yet on this path: a '^' here is a leading anchor (Hyperscan
    #: refuses others); one entry per open group, its state where it opened
    at_start, group_starts = True, []
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1:i + 2]
            if nxt == "x" and len(pattern) >= i + 4 and set(pattern[i + 2:i + 4]) <= _HEX \
                    and int(pattern[i + 2:i + 4], 16) < 0x80 and int(pattern[i + 2:i + 4], 16) != 0x0b:
                out.append(pattern[i:i + 4])
                i += 4
                at_start = False
                continue
            if nxt and (nxt in _SAME_ESCAPES or (nxt.isascii() and not nxt.isalnum())):
                out.append(pattern[i:i + 2])
                i += 2
                at_start = False
                continue
            return None  # \v, \pL, \Q, \x{..}, \z, digits: meanings differ or unchecked
        if in_class:
            if ch == "]" and i > class_start:
                in_class = False
            elif ch == "[" and pattern[i + 1:i + 2] in (":", ".", "="):
                return None  # POSIX classes: [[:space:]] has VT, which is mapped away
        else:
            if ch == "[":
                in_class = True
                out.append(ch)
                i += 1
                if pattern[i:i + 1] == "^":
                    out.append("^")
                    i += 1
                class_start = i
                if pattern[i:i + 1] == "]":  # a literal ']' first
                    out.append("]")
                    i += 1
                at_start = False
                continue
            if ch == "$":  # in Hyperscan '$' also matches before a final newline
                out.append("\\z")
                i += 1
                continue
            if ch == "^":
                if not at_start:
                    return None
                out.append(ch)
                i += 1
                continue
            if ch == "(":
                if pattern[i + 1:i + 2] == "?" and pattern[i + 2:i + 3] != ":":
                    return None  # inline flags, named groups
                group_starts.append(at_start)
                opener = "(?:" if pattern[i + 1:i + 2] == "?" else "("
                out.append(opener)
                i += len(opener)
                continue
            if ch == "|":
                at_start = group_starts[-1] if group_starts else True
                out.append(ch)
                i += 1
                continue
            if ch == ")" and group_starts:
                group_starts.pop()
            if ch == "{" and pattern[i + 1:i + 2] == ",":
                return None
        at_start = False
        if ch.isascii():
            out.append(ch)
        else:
            code = codes.get(ch)
            if code is None:
                return None
            if in_class and (_range_operator(pattern, i - 1, class_start)
                             or _range_operator(pattern, i + 1, class_start)):
                return None  # a range over code points is no range over mapped bytes
            out.append(chr(code) if code < 0x80 else f"\\x{code:02x}")
        i += 1
    return "".join(out).encode("ascii")


def _range_operator(pattern: str, i: int, class_start: int) -> bool:
    """Whether pattern[i] is a '-' joining two class members into a range."""
    if not 0 <= i < len(pattern) or pattern[i] != "-":
        return False
    if i == class_start or pattern[i + 1:i + 2] == "]":
        return False  # first or last: a literal '-'
    backslashes = len(pattern[:i]) - len(pattern[:i].rstrip("\\"))
    return backslashes % 2 == 0  # an odd run escapes it


# -- the mapping ---------------------------------------------------------------


def _assign_codes(patterns: Sequence[str]) -> dict[str, int]:
    """A byte for each non-ASCII character patterns name, for as many patterns as 127 fit.

    A case-folding orbit shares one byte (patterns are case-insensitive).
    Patterns needing the fewest characters get theirs first; the rest, and
    those naming a character RE2 folds onto an ASCII letter, stay in RE2.
    """
    codes: dict[str, int] = {}
    free = list(reversed(_CODES))
    for chars in sorted((sorted({c for c in p if not c.isascii()}) for p in patterns), key=len):
        orbits = list(dict.fromkeys(_fold_orbit(c) for c in chars if c not in codes))
        if len(orbits) > len(free) or any(c.isascii() for o in orbits for c in o):
            continue
        for orbit in orbits:  # in a fixed order: the same bytes, the same cached database
            code = free.pop()
            for c in orbit:
                codes[c] = code
    return codes


@functools.cache
def _case_links() -> dict[str, set[str]]:
    """Characters linked by Python's single-character case mappings: a superset of what
    RE2 folds together, which :func:`_fold_orbit` then checks against RE2 itself."""
    links: dict[str, set[str]] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        links.setdefault(letter, set()).add(letter.upper())
        links.setdefault(letter.upper(), set()).add(letter)
    for cp in range(0x80, 0x1F000):
        c = chr(cp)
        for other in (c.lower(), c.upper(), c.casefold()):
            if len(other) == 1 and other != c:
                links.setdefault(c, set()).add(other)
                links.setdefault(other, set()).add(c)
    return links


@functools.cache
def _fold_orbit(char: str) -> frozenset[str]:
    """The characters RE2's case-insensitive ``char`` matches (itself included)."""
    links = _case_links()
    seen = {char}
    todo = [char]
    while todo:
        for other in links.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    if len(seen) == 1:
        return frozenset(seen)
    options = re2.Options()
    options.case_sensitive = False
    matcher = re2.compile(re2.escape(char), options)
    return frozenset(c for c in seen if matcher.fullmatch(c))


@functools.cache
def ascii_folds() -> str:
    """The non-ASCII characters RE2 matches for an ASCII letter (U+212A KELVIN SIGN for
    'k'): Hyperscan cannot, so a text with one is RE2's alone."""
    return "".join(sorted({c for letter in "abcdefghijklmnopqrstuvwxyz"
                           for c in _fold_orbit(letter) if not c.isascii()}))


def _table(codes: dict[str, int]) -> np.ndarray:
    table = np.full(_MAX_CODEPOINT, _OTHER, dtype=np.uint8)
    table[:0x80] = np.arange(0x80, dtype=np.uint8)
    table[0x0b] = _OTHER
    for char, code in codes.items():
        table[ord(char)] = code
    return table


# -- compiling -----------------------------------------------------------------


def _database(expressions: list[bytes], ids: list[int]) -> tuple[Any, list[int]]:
    """The compiled database and the ids it holds, from the disk cache when it has them.

    A pattern Hyperscan refuses (it has limits RE2 lacks) is found by halving
    and left to RE2."""
    flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
    digest = hashlib.sha256(f"{hyperscan.__version__}|{flags}".encode())
    for i, expression in zip(ids, expressions, strict=True):
        digest.update(f"|{i}:".encode() + expression)
    path = cache_dir() / "hyperscan" / f"{digest.hexdigest()}.hsdb"
    cached = _load(path)
    if cached is not None:
        return cached
    db, kept = _compile(expressions, ids, flags)
    _store(path, db, kept)
    return db, kept


def _compile(expressions: list[bytes], ids: list[int], flags: int) -> tuple[Any, list[int]]:
    try:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=expressions, ids=ids, flags=[flags] * len(ids))
        return db, ids
    except hyperscan.error as exc:
        if len(ids) == 1:
            log.debug("regex %d left to RE2: hyperscan says %s", ids[0], exc)
            return None, []
    half = len(ids) // 2
    _, left = _compile(expressions[:half], ids[:half], flags)
    _, right = _compile(expressions[half:], ids[half:], flags)
    kept = left + right
    if not kept:
        return None, []
    by_id = dict(zip(ids, expressions, strict=True))
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[by_id[i] for i in kept], ids=kept, flags=[flags] * len(kept))
    return db, kept


def _load(path: Path) -> tuple[Any, list[int]] | None:
    try:
        raw = path.read_bytes()
        header, _, blob = raw.partition(b"\n")
        ids_text, _, checksum = header.partition(b";")
        if hashlib.sha256(blob).hexdigest().encode() != checksum:
            return None  # torn or altered: never hand Hyperscan a damaged database
        ids = [int(x) for x in ids_text.split(b",")] if ids_text else []
        return (hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK) if ids else None), ids
    except (OSError, ValueError, hyperscan.error):
        return None  # absent, or built for another CPU: compile again


def _store(path: Path, db: Any, ids: list[int]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = hyperscan.dumpb(db) if db is not None else b""
        header = ",".join(map(str, ids)) + ";" + hashlib.sha256(blob).hexdigest()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(header.encode() + b"\n" + blob)
        tmp.replace(path)
        older = sorted(path.parent.glob("*.hsdb"), key=lambda p: p.stat().st_mtime)
        for stale in older[:-_CACHE_KEEP]:  # one per ruleset version: keep the latest
            stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only home: compile every time, say so once
        log.info("hyperscan cache not written (%s): regexes compile at each start", exc)
