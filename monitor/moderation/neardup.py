"""Near-duplicate floods: the same promotion posted again and again, slightly varied.

Text is normalized first (links, mentions, digits, emoji and case removed:
what spammers vary), then its set of words is summarized by a MinHash
signature. Banded LSH finds candidate clusters in a few dict lookups and a
Jaccard estimate confirms them. MinHash is used rather than SimHash because
posts are short: one inserted word moves a SimHash by many bits but a word
set only a little.

Memory is bounded twice: one-off texts wait in a "singletons" queue (the
oldest evicted first), clusters with at least two posts in a protected LRU
of their own, so a stream of unique posts cannot push a live flood out.
Everything also expires with the window.

Work is bounded too. Common words can hold all of a band's minima ("i",
"to" and "#keep" did on a stream with a large vocabulary, gathering 600
unrelated texts in one bucket), so a post may meet hundreds of candidates:
signatures live in one matrix, the candidates are compared in one NumPy
call, and a band's bucket keeps only its newest ``BUCKET_SIZE`` entries.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from monitor.moderation.window import expire_until

__all__ = ["BUCKET_SIZE", "EMPTY", "SIGNATURE_LENGTH", "NearDuplicateIndex", "dedup_words",
           "minhash", "minhash_batch"]

_LINK = re.compile(r"https?://\S+|www\.\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|app|ai|co|xyz|"
                   r"me|ly|gg|link|site|shop|online|info)(?:/\S*)?", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.]+")
#: runs of letters and '#': no digits, no underscores, no punctuation or emoji
_WORD = re.compile(r"(?:[^\W\d_]+|#)+")
#: the same on lower-case ASCII: a plain character set, where the Unicode classes cost re
#: a category lookup per character (9 -> 4 us a post)
_ASCII_WORD = re.compile(r"[a-z#]+")

_HASHES = 24
_ROWS = 4
_BANDS = _HASHES // _ROWS
#: values in one MinHash signature
SIGNATURE_LENGTH = _HASHES
#: every value of the signature of no words (np.iinfo costs ~1 us a call: once here)
EMPTY = np.iinfo(np.uint64).max
_rng = np.random.default_rng(20250813)  # fixed: signatures must agree across processes
# Multiply-add modulo 2**64 with odd multipliers permutes the 64-bit word hashes; the
# xor-shift mixes the high bits down so each of the _HASHES orders is unrelated.
_A = _rng.integers(0, 2**64, size=_HASHES, dtype=np.uint64, endpoint=False) | np.uint64(1)
_B = _rng.integers(0, 2**64, size=_HASHES, dtype=np.uint64, endpoint=False)
_SHIFT = np.uint64(29)


def dedup_words(text: str) -> set[str]:
    """What stays the same when a spammer varies links, mentions, numbers, emoji and case:
    the words left once they are removed, lower-case (a '#' stays on its word).

    Links and mentions never span whitespace, so only the words that could
    hold one are searched: the link pattern tried at every word boundary of
    the whole text cost 11-14 us a post, against ~5 for the words with a '.',
    a ':' or an '@'."""
    kept = text.split()
    for i, word in enumerate(kept):
        if "." in word or ":" in word:
            word = kept[i] = _LINK.sub(" ", word)
        if "@" in word:
            kept[i] = _MENTION.sub(" ", word)
    lowered = " ".join(kept).lower()
    return set((_ASCII_WORD if lowered.isascii() else _WORD).findall(lowered))


#: word -> its 8-byte hash; words repeat (Zipf), a lookup costs a twentieth of a hash.
#: Emptied when full rather than evicted one by one: a cheap bound (~6 MB).
_WORD_HASHES: dict[str, bytes] = {}
_WORD_HASHES_MAX = 1 << 15


def _word_hash(word: str) -> bytes:
    digest = _WORD_HASHES.get(word)
    if digest is None:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        if len(_WORD_HASHES) >= _WORD_HASHES_MAX:
            _WORD_HASHES.clear()
        _WORD_HASHES[word] = digest
    return digest


def minhash(words: set[str]) -> np.ndarray:
    """A MinHash signature of a word set (``_HASHES`` values), vectorized with NumPy."""
    return minhash_batch([words])[0]


def minhash_batch(word_sets: list[set[str]]) -> np.ndarray:
    """Signatures of many word sets in one vectorized pass: (len(word_sets), _HASHES).

    Per-post NumPy calls cost more than the arithmetic on tweet-sized sets,
    so the processor hashes a whole batch at once. Empty sets get all-max rows.
    """
    counts = [len(ws) for ws in word_sets]
    out = np.full((len(word_sets), _HASHES), EMPTY, dtype=np.uint64)
    total = sum(counts)
    if not total:
        return out
    known = _WORD_HASHES.get  # a hit costs a lookup, not a call (~20 words a post)
    digests = b"".join([known(w) or _word_hash(w) for ws in word_sets for w in ws])
    x = np.frombuffer(digests, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping modulo 2**64 is the point
        values = x[:, None] * _A[None, :] + _B[None, :]
    values ^= values >> _SHIFT
    nonempty = [i for i, c in enumerate(counts) if c]
    starts = np.cumsum([0] + [counts[i] for i in nonempty[:-1]])
    out[nonempty] = np.minimum.reduceat(values, starts, axis=0)
    return out


#: Entries a band's bucket keeps, newest last. An entry pushed out is still found
#: through its other bands, and a cluster that gets a post moves back to the end.
BUCKET_SIZE = 1024
#: Fewer candidates than this are compared one by one (~0.8 us each; all at once ~3 us).
_VECTOR_FROM = 4


@dataclass(slots=True)
class _Cluster:
    """One text seen once (a singleton) or a cluster of near-duplicates.

    Its id is its row in the index's signature matrix. Most entries are
    one-off texts, so what only a cluster needs is made when it gets its
    second post: the authors' table (an ``OrderedDict`` is ~350 bytes) and
    its band keys (a singleton computes them from its row when dropped)."""

    #: post times, arrival order (a list: an empty deque alone is ~760 bytes)
    times: list[float]
    #: the first post's author, until the second post makes ``authors``
    author: str | None
    #: author -> last time seen in this cluster, oldest first (expire with the window)
    authors: OrderedDict[str, float] | None = None
    keys: tuple[int, ...] = ()


def _cluster_bytes(cluster: _Cluster) -> int:
    total = 100 + 32 * len(cluster.keys) + sys.getsizeof(cluster.times) + 24 * len(cluster.times)
    if cluster.authors is not None:
        total += sys.getsizeof(cluster.authors) + 60 * len(cluster.authors)
    return total


#: what _cluster_bytes says of every one-off text (its times never change: a second
#: post makes it a cluster)
_SINGLETON_BYTES = _cluster_bytes(_Cluster([0.0], None))


class NearDuplicateIndex:
    """Clusters of near-identical texts seen within a time window."""

    def __init__(self, window_seconds: float = 600.0, *, min_jaccard: float = 0.6,
                 max_clusters: int = 5_000, max_singletons: int = 20_000,
                 max_cluster_events: int = 1_000, min_words: int = 4) -> None:
        if not 0 < min_jaccard <= 1:
            raise ValueError("min_jaccard must be in (0, 1]")
        self.window = window_seconds
        self.min_jaccard = min_jaccard
        self.max_clusters = max_clusters
        self.max_singletons = max_singletons
        self.max_cluster_events = max_cluster_events
        self.min_words = min_words
        self._clusters: OrderedDict[int, _Cluster] = OrderedDict()
        self._singletons: OrderedDict[int, _Cluster] = OrderedDict()
        #: band key -> the entry holding it, or its newest entries (a list of 2 or more;
        #: a bare id for the common single occupant saves a list per key)
        self._bands: dict[int, int | list[int]] = {}
        #: row i: the signature of entry i; a free row holds EMPTY, which matches nothing
        self._signatures = np.full((min(1_024, max_singletons + max_clusters + 1), _HASHES),
                                   EMPTY, dtype=np.uint64)
        self._free: list[int] = []
        self._next_id = 0

    @staticmethod
    def _keys(signature: np.ndarray) -> tuple[int, ...]:
        """One key per band: a hash of the band's number and its values.

        Process-local (``hash`` is salted per process), which is all an index
        needs: two bands that collide only add a candidate for the Jaccard check."""
        raw = signature.tobytes()
        step = len(raw) // _BANDS
        return tuple(hash((i, raw[i * step:(i + 1) * step])) for i in range(_BANDS))

    def _find(self, signature: np.ndarray, keys: tuple[int, ...]) -> int | None:
        """The best-matching entry; a tie goes to the one met last in band order
        (in a bucket, the most recently active last).

        A near-duplicate shares most bands with its cluster, so an entry can be
        met in several buckets; it is compared once either way."""
        bands = self._bands
        met: list[int] = []
        for key in keys:
            ids = bands.get(key)
            if ids is not None:
                if isinstance(ids, int):
                    met.append(ids)
                else:
                    met.extend(ids)
        if not met:
            return None
        if len(met) < _VECTOR_FROM:
            best, best_j = None, self.min_jaccard
            known: dict[int, float] = {}
            rows = self._signatures
            for cid in met:
                jaccard = known.get(cid)
                if jaccard is None:
                    jaccard = known[cid] = float(
                        np.count_nonzero(rows[cid] == signature)) / _HASHES
                if jaccard >= best_j:
                    best, best_j = cid, jaccard
            return best
        # take() and a sum: ~3 us for 4-13 rows, half of fancy indexing and count_nonzero
        same = (self._signatures.take(met, axis=0) == signature).sum(axis=1)
        last_best = len(met) - 1 - int(same[::-1].argmax())
        if same[last_best] / _HASHES < self.min_jaccard:
            return None
        return met[last_best]

    def _file(self, cid: int, keys: tuple[int, ...]) -> None:
        """Put ``cid`` last in each of its bands' buckets (moved there if it was in)."""
        bands = self._bands
        for key in keys:
            ids = bands.get(key)
            if ids is None:
                bands[key] = cid
            elif isinstance(ids, int):
                if ids != cid:
                    bands[key] = [ids, cid]
            elif ids[-1] != cid:
                if cid in ids:
                    ids.remove(cid)
                ids.append(cid)
                if len(ids) > BUCKET_SIZE:
                    del ids[0]

    def _drop(self, cid: int, cluster: _Cluster) -> None:
        bands = self._bands
        for key in cluster.keys or self._keys(self._signatures[cid]):
            ids = bands.get(key)
            if ids is None:
                continue
            if isinstance(ids, int):
                if ids == cid:
                    del bands[key]
            elif cid in ids:
                ids.remove(cid)
                if len(ids) == 1:
                    bands[key] = ids[0]
        self._signatures[cid] = EMPTY
        self._free.append(cid)

    def _new_id(self) -> int:
        if self._free:
            return self._free.pop()
        cid = self._next_id
        self._next_id += 1
        rows = self._signatures
        if cid == len(rows):  # never more than max_singletons + max_clusters + 1 in use
            size = max(cid + 1, min(2 * len(rows), self.max_singletons + self.max_clusters + 1))
            grown = np.full((size, _HASHES), EMPTY, dtype=np.uint64)
            grown[:len(rows)] = rows
            self._signatures = grown
        return cid

    def word_sets(self, texts: list[str]) -> list[set[str]]:
        """Normalized word sets; too-short texts give an empty set (never clustered)."""
        sets = [dedup_words(t) for t in texts]
        return [ws if len(ws) >= self.min_words else set() for ws in sets]

    def observe(self, text: str, author: str | None, now: float,
                signature: np.ndarray | None = None) -> tuple[int, int]:
        """Add one post; return (posts, distinct authors) of its cluster within the window.

        ``signature`` is the post's row of :func:`minhash_batch` when the
        caller hashed a batch; without it the text is hashed here.
        """
        if signature is None:
            words = self.word_sets([text])[0]
            if not words:
                return 1, 1
            signature = minhash(words)
        elif signature[0] == EMPTY:
            return 1, 1
        keys = self._keys(signature)
        cid = self._find(signature, keys)
        horizon = now - self.window
        if cid is None:
            cid = self._new_id()
            self._signatures[cid] = signature  # a copy, not a view pinning the caller's batch
            self._singletons[cid] = _Cluster([now], author)
            self._file(cid, keys)
            while len(self._singletons) > self.max_singletons:
                self._drop(*self._singletons.popitem(last=False))
            self._expire_both(horizon)
            return 1, 1
        cluster = self._singletons.pop(cid, None)
        if cluster is not None:  # a second post: promote to the protected clusters
            self._clusters[cid] = cluster
            cluster.keys = self._keys(self._signatures[cid])
            cluster.authors = OrderedDict()
            if cluster.author is not None:
                cluster.authors[cluster.author] = cluster.times[0]
                cluster.author = None
            while len(self._clusters) > self.max_clusters:
                self._drop(*self._clusters.popitem(last=False))
        else:
            cluster = self._clusters[cid]
            self._clusters.move_to_end(cid)
        self._file(cid, cluster.keys)  # a live cluster stays among its buckets' newest
        times = cluster.times
        expire_until(times, horizon)
        if len(times) >= self.max_cluster_events:
            del times[0]
        times.append(now)
        authors = cluster.authors
        assert authors is not None
        if author is not None:
            authors[author] = now
            authors.move_to_end(author)
        while authors and (len(authors) > self.max_cluster_events
                           or next(iter(authors.values())) <= horizon):
            authors.popitem(last=False)
        self._expire_both(horizon)
        return len(times), max(1, len(authors))

    def _expire_both(self, horizon: float) -> None:
        self._expire(self._singletons, horizon)
        self._expire(self._clusters, horizon)

    def _expire(self, queue: OrderedDict[int, _Cluster], horizon: float) -> None:
        """Drop clusters whose last post left the window (oldest first; cheap when none)."""
        while queue:
            cid, cluster = next(iter(queue.items()))
            if cluster.times and cluster.times[-1] > horizon:
                return
            del queue[cid]
            self._drop(cid, cluster)

    def __len__(self) -> int:
        return len(self._clusters) + len(self._singletons)

    def memory_bytes(self) -> int:
        """Estimated bytes held: signatures, band index, times and authors.

        A one-off text is always the same size (one time, no keys, no
        authors' table): counted, not walked. Walking 20,000 of them, on the
        event loop where the gauge is read, took ~5-15 ms of the ~27."""
        total = sys.getsizeof(self._clusters) + sys.getsizeof(self._singletons)
        total += self._signatures.nbytes + sys.getsizeof(self._free)
        total += sys.getsizeof(self._bands) + 32 * len(self._bands) + sum(
            sys.getsizeof(v) for v in self._bands.values() if isinstance(v, list))
        total += len(self._singletons) * _SINGLETON_BYTES
        for cluster in self._clusters.values():
            total += _cluster_bytes(cluster)
        return total
