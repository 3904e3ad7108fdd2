"""NearDuplicateIndex: what spammers vary is ignored, everything else is not; memory is bounded."""

from __future__ import annotations

import gc
import random
import re
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.moderation import neardup
from monitor.moderation.neardup import (
    NearDuplicateIndex,
    dedup_words,
    minhash,
    minhash_batch,
)
from tests.moderation.synth import ordinary_posts, unique_text

#: the first MinHash value of {"keep4o"}, as every version so far computed it
KEEP4O_FIRST = 18031998445142450636
FLOOD = "Get GPT-4o back at https://gpt4o-back.app/?ref=a1B2c3 🔥 unlimited, no subscription #keep4o"

#: The flood text as bots vary it; each must land in the flood's cluster.
VARIANTS = {
    "another link": "Get GPT-4o back at https://try.gpt4o-back.app/r/Zx9Qp 🔥 unlimited, no subscription #keep4o",
    "a bare link": "Get GPT-4o back at gpt4o-back.app 🔥 unlimited, no subscription #keep4o",
    "a mention": "@sama Get GPT-4o back at https://gpt4o-back.app/?ref=a1B2c3 🔥 unlimited, no subscription #keep4o",
    "other emoji": "✅✨ Get GPT-4o back at https://gpt4o-back.app/?ref=a1B2c3 unlimited, no subscription #keep4o",
    "other digits": "Get GPT-5o back at https://gpt4o-back.app/?ref=77 🔥 unlimited 24/7, no subscription #keep4o",
    "upper case": "GET GPT-4O BACK AT HTTPS://GPT4O-BACK.APP/?REF=A1B2C3 🔥 UNLIMITED, NO SUBSCRIPTION #KEEP4O",
    "a word inserted": "Get GPT-4o back now at https://gpt4o-back.app/?ref=a1B2c3 🔥 unlimited, no subscription #keep4o",
    "a word removed": "Get GPT-4o at https://gpt4o-back.app/?ref=a1B2c3 🔥 unlimited, no subscription #keep4o",
}



def test_normalizing_drops_links_mentions_digits_emoji_and_case() -> None:
    assert dedup_words("@sama GET GPT-4o back at https://x.io/?ref=9 🔥 www.y.com/z z.app") \
        == {"get", "gpt", "o", "back", "at"}
    assert dedup_words("Signed! 🙏 #keep4o") == {"signed", "#keep", "o"}


_NOT_WORD = re.compile(r"[^\w#]+|\d+|_+")


def three_pass_words(text: str) -> set[str]:
    """The normalizer as first written (links, then mentions, then everything not a
    word replaced by spaces): the definition the one-pass version must keep."""
    text = neardup._MENTION.sub(" ", neardup._LINK.sub(" ", text))
    return set(_NOT_WORD.sub(" ", text.lower()).split())


#: texts built from the pieces the normalizer treats specially
_SPAMMY = st.lists(st.sampled_from(
    [*"aZ9_#@./:-' \n²éİß🔥４", "https://", "www.", ".com", ".app", "gpt", "x.io/p",
     "\u00a0", "\u3000", "\x85", "\x1c"]),  # whitespace Python splits on, not only ' '
    max_size=30).map("".join)


@settings(max_examples=2000, derandomize=True)
@given(text=_SPAMMY)
def test_the_one_pass_word_set_is_the_normalized_texts_words(text: str) -> None:
    assert dedup_words(text) == three_pass_words(text)


#: ASCII only: dedup_words reads those words with a plain character set
_ASCII_SPAMMY = st.lists(st.sampled_from(
    [*"aZ9_#@./:-'! \n\t\x0b\x1c~^`", "https://", "www.", ".com", "GPT", "x.io/p", "Keep4o"]),
    max_size=30).map("".join)


@settings(max_examples=2000, derandomize=True)
@given(text=_ASCII_SPAMMY)
def test_an_ascii_texts_word_set_is_its_normalized_words(text: str) -> None:
    assert dedup_words(text) == three_pass_words(text)


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_a_variant_joins_the_cluster_of_the_original(variant: str) -> None:
    index = NearDuplicateIndex(600)
    assert index.observe(FLOOD, "bot-1", 0) == (1, 1)
    assert index.observe(variant, "bot-2", 10) == (2, 2)
    assert len(index) == 1


def test_every_variant_counts_toward_one_cluster_with_its_distinct_authors() -> None:
    index = NearDuplicateIndex(600)
    seen = [index.observe(text, f"bot-{i % 3}", i * 20)
            for i, text in enumerate([FLOOD, *VARIANTS.values()])]
    assert seen[-1] == (9, 3)
    assert [posts for posts, _ in seen] == list(range(1, 10))


def _without(word: str) -> str:
    return " ".join(w for w in FLOOD.split() if w != word)


@pytest.mark.parametrize("variant", [
    *(pytest.param(_without(w), id=f"without {w}") for w in FLOOD.split()),
    *(pytest.param(FLOOD.replace("back", f"back {w}"), id=f"with {w}")
      for w in ("now", "free", "finally", "really", "we")),
])
def test_any_one_word_more_or_less_keeps_a_text_in_its_cluster(variant: str) -> None:
    index = NearDuplicateIndex(600)
    index.observe(FLOOD, "bot-1", 0)
    assert index.observe(variant, "bot-2", 10) == (2, 2)


@pytest.mark.parametrize(("first", "second"), [
    ("I miss talking to it every evening after work", "Bitcoin is doing something weird again today"),
    ("The weather here is lovely today, off to the park",
     "OpenAI retired the model with barely two weeks of notice"),
    ("Sign the petition and share it with your friends",
     "My cat knocked the plant over again this morning"),
    (FLOOD, "Please sign the petition to keep GPT-4o https://www.change.org/p/keep-gpt-4o #keep4o"),
])
def test_unrelated_texts_stay_apart(first: str, second: str) -> None:
    index = NearDuplicateIndex(600)
    index.observe(first, "a", 0)
    assert index.observe(second, "b", 1) == (1, 1)
    assert len(index) == 2


def test_unrelated_texts_sharing_one_common_word_stay_apart() -> None:
    index = NearDuplicateIndex(600)
    index.observe("We see you #keep4o", "a", 0)
    second = ("my daughter asked where the nice robot went. what do I tell her "
              "We won't stop #OpenSource4o")
    assert index.observe(second, "b", 1) == (1, 1)


def test_unrelated_ordinary_posts_almost_never_look_alike() -> None:
    texts = [r["text"] for r in ordinary_posts(3_000, seed=11)]
    index = NearDuplicateIndex(600)
    words = index.word_sets(texts)
    signatures = minhash_batch(words)
    rng = random.Random(1)
    pairs = alike = 0
    while pairs < 5_000:
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        if i == j or not words[i] or not words[j]:
            continue
        if len(words[i] & words[j]) / len(words[i] | words[j]) >= 0.3:
            continue
        pairs += 1
        estimate = np.count_nonzero(signatures[i] == signatures[j]) / signatures.shape[1]
        alike += estimate >= index.min_jaccard
    assert alike <= 1, f"{alike} of {pairs} unrelated pairs look like near-duplicates"


@pytest.mark.parametrize("text", ["Signed! 🙏 #keep4o", "So true 😭", "This 👆 https://bsky.app/x/1",
                                  "4o 4o 4o 4o 4o", "@OpenAI @sama 🔥🔥🔥"])
def test_texts_shorter_than_min_words_are_never_clustered(text: str) -> None:
    index = NearDuplicateIndex(600, min_words=4)
    assert [index.observe(text, f"u{i}", i) for i in range(20)] == [(1, 1)] * 20
    assert len(index) == 0
    assert index.word_sets([text]) == [set()]


def test_a_cluster_counts_only_posts_within_the_window() -> None:
    index = NearDuplicateIndex(600)
    index.observe(FLOOD, "a", 0)
    assert index.observe(VARIANTS["a mention"], "b", 599)[0] == 2
    assert index.observe(VARIANTS["other emoji"], "c", 1_000)[0] == 2  # the post at 0 expired


def test_a_cluster_whose_last_post_left_the_window_is_forgotten() -> None:
    index = NearDuplicateIndex(600)
    index.observe(FLOOD, "a", 0)
    index.observe(VARIANTS["a mention"], "b", 10)
    index.observe(unique_text(1), "c", 100)
    assert len(index) == 2
    index.observe(unique_text(2), "d", 690)  # 680 s after the flood's last post
    assert len(index) == 2  # the flood cluster went, the text at 100 is still within
    index.observe(unique_text(3), "e", 2_000)
    assert len(index) == 1
    assert index.observe(FLOOD, "f", 2_001) == (1, 1)


def test_distinct_authors_are_counted_within_the_window_too() -> None:
    index = NearDuplicateIndex(600)
    for i, author in enumerate(["a", "b", "c"]):
        index.observe(FLOOD, author, i * 300)
    assert index.observe(FLOOD, "d", 900) == (2, 2)  # only the posts at 600 (c) and 900 (d)


def test_one_off_texts_are_bounded_by_max_singletons() -> None:
    """A stream of 100,000 unique texts in one window: len() and memory stay at the cap."""
    index = NearDuplicateIndex(600, max_singletons=2_000, max_clusters=200)
    full = 0
    for start in range(0, 100_000, 1_000):
        texts = [unique_text(i) for i in range(start, start + 1_000)]
        for i, (text, signature) in enumerate(zip(texts, minhash_batch(index.word_sets(texts)),
                                                  strict=True)):
            assert index.observe(text, f"u{start + i}", (start + i) * 0.001, signature) == (1, 1)
        assert len(index) <= 2_000
        if start + 1_000 == 4_000:
            # the queue reached its cap at 2,000 and has been replaced once since: the band
            # index's dict, with as many keys but churned, has resized to its steady size
            full = index.memory_bytes()
        elif start >= 4_000:
            assert index.memory_bytes() <= full * 1.2, (start, index.memory_bytes(), full)
    assert len(index) == 2_000


def test_memory_counts_one_off_texts_as_a_walk_over_them_would() -> None:
    index = NearDuplicateIndex(60, max_singletons=500, max_clusters=50)
    texts = [unique_text(i) for i in range(2_000)]
    texts[1::10] = texts[:2_000:10]  # every tenth text posted again: clusters too
    for i, (text, signature) in enumerate(zip(texts, minhash_batch(index.word_sets(texts)),
                                              strict=True)):
        index.observe(text, f"u{i % 37}", i * 0.05, signature)
    assert index._singletons and index._clusters

    walked = sum(100 + 32 * len(c.keys) + sys.getsizeof(c.times) + 24 * len(c.times)
                 + (sys.getsizeof(c.authors) + 60 * len(c.authors) if c.authors is not None else 0)
                 for queue in (index._clusters, index._singletons) for c in queue.values())
    containers = (sys.getsizeof(index._clusters) + sys.getsizeof(index._singletons)
                  + index._signatures.nbytes + sys.getsizeof(index._free)
                  + sys.getsizeof(index._bands) + 32 * len(index._bands)
                  + sum(sys.getsizeof(v) for v in index._bands.values() if isinstance(v, list)))
    assert index.memory_bytes() == containers + walked


def test_a_live_flood_survives_a_stream_of_unique_texts_between_its_posts() -> None:
    """Clusters sit in a protected queue: one-off texts cannot push them out."""
    index = NearDuplicateIndex(600, max_singletons=100, max_clusters=50)
    index.observe(FLOOD, "bot-0", 0)
    serial = 0
    sizes = []
    for k in range(1, 30):
        now = k * 15.0
        sizes.append(index.observe(FLOOD, f"bot-{k % 5}", now)[0])
        for _ in range(500):  # 500 unique posts between two flood posts, 5x the singleton cap
            serial += 1
            now += 0.01
            index.observe(unique_text(serial), f"u{serial}", now)
        assert len(index) <= 150
    assert sizes == list(range(2, 31))


def test_a_live_flood_is_lost_when_the_singletons_queue_is_what_holds_it() -> None:
    """The price of the bound: a text seen only once is evicted by max_singletons newer ones."""
    index = NearDuplicateIndex(600, max_singletons=100)
    index.observe(FLOOD, "bot-1", 0)
    for i in range(100):
        index.observe(unique_text(i), f"u{i}", 1 + i * 0.01)
    assert index.observe(FLOOD, "bot-2", 5) == (1, 1)


def test_minhash_batch_equals_minhash_of_each_text() -> None:
    index = NearDuplicateIndex(600)
    texts = [FLOOD, *VARIANTS.values(), "So true", "", unique_text(5), "4o mattered. Our voices matter."]
    sets = index.word_sets(texts)
    batch = minhash_batch(sets)
    assert batch.shape == (len(texts), 24)
    assert batch.dtype == np.uint64
    for words, row in zip(sets, batch, strict=True):
        if words:
            np.testing.assert_array_equal(row, minhash(words))
        else:
            assert (row == np.iinfo(np.uint64).max).all()  # empty: never clustered


def test_signatures_do_not_depend_on_which_word_hashes_are_remembered() -> None:
    """Workers compare signatures made in other processes: the word-hash memo must be
    invisible, also when it fills up and starts over."""
    words = dedup_words(FLOOD)
    before = minhash(words)
    minhash_batch([{f"filler{i}"} for i in range(neardup._WORD_HASHES_MAX + 10)])
    assert len(neardup._WORD_HASHES) <= neardup._WORD_HASHES_MAX
    np.testing.assert_array_equal(minhash(words), before)
    # pinned: a signature written to the changelog by an older worker still matches
    assert minhash({"keep4o"})[0] == minhash_batch([{"keep4o"}])[0][0] == KEEP4O_FIRST


def test_minhash_batch_of_nothing_is_an_empty_array() -> None:
    assert minhash_batch([]).shape == (0, 24)
    assert minhash_batch([set(), set()]).shape == (2, 24)


def test_a_signature_from_the_batch_gives_the_same_answer_as_hashing_here() -> None:
    texts = [FLOOD, *VARIANTS.values()]
    hashed_here, from_batch = NearDuplicateIndex(600), NearDuplicateIndex(600)
    signatures = minhash_batch(from_batch.word_sets(texts))
    for i, (text, signature) in enumerate(zip(texts, signatures, strict=True)):
        assert hashed_here.observe(text, f"b{i}", i) == from_batch.observe(text, f"b{i}", i,
                                                                           signature)


def test_min_jaccard_outside_zero_one_is_refused() -> None:
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="min_jaccard"):
            NearDuplicateIndex(600, min_jaccard=bad)


def test_an_entry_keeps_its_own_signature_not_its_batchs_matrix() -> None:
    index = NearDuplicateIndex()
    texts = [unique_text(i) for i in range(256)]
    batch = minhash_batch(index.word_sets(texts))
    index.observe("", "author", 0.0, batch[0])  # a row: a view into the batch
    held = weakref.ref(batch)
    del batch
    gc.collect()
    assert held() is None  # 256 rows of 24 hashes (48 KiB) freed with the batch


# -- crowded bands: common words can hold all of a band's minima ---------------------------

def _signature(rng: np.random.Generator, like: np.ndarray | None = None,
               same: range | list[int] = range(0)) -> np.ndarray:
    """A random signature that equals ``like`` at the positions in ``same``."""
    signature = rng.integers(0, 2**63, size=24, dtype=np.uint64)
    if like is not None:
        signature[list(same)] = like[list(same)]
    return signature


def _band(band: int) -> range:
    return range(band * 4, band * 4 + 4)


def test_a_band_keeps_its_newest_entries_and_an_entry_pushed_out_is_found_through_the_others(
) -> None:
    """3,000 texts share one band with the original (as texts made of the same common
    words do) and nothing else: the bucket stops at BUCKET_SIZE, the original is still
    found through its five other bands."""
    rng = np.random.default_rng(3)
    index = NearDuplicateIndex(600)
    original = _signature(rng)
    index.observe("", "author", 0.0, original)
    for i in range(3_000):
        assert index.observe("", f"u{i}", 1.0, _signature(rng, original, _band(0))) == (1, 1)
    assert max(len(ids) for ids in index._bands.values() if isinstance(ids, list)) \
        == neardup.BUCKET_SIZE
    variant = original.copy()
    variant[21:] += np.uint64(1)  # 21 of 24 values the same, band 5 differs
    assert index.observe("", "another", 2.0, variant) == (2, 2)


def test_a_live_cluster_stays_in_its_crowded_bands() -> None:
    """Every one of the cluster's bands gets 900 newer entries between two of its posts,
    4,500 in all: each post moves the cluster back to the end of its buckets."""
    rng = np.random.default_rng(5)
    index = NearDuplicateIndex(600)
    flood = _signature(rng)
    index.observe("", "bot-0", 0.0, flood)
    counts = [index.observe("", "bot-1", 0.5, flood)[0]]
    for round_ in range(1, 6):
        for i in range(900):
            for band in range(6):
                index.observe("", f"u{i}", round_, _signature(rng, flood, _band(band)))
        counts.append(index.observe("", f"bot-{round_ + 1}", round_ + 0.5, flood)[0])
    assert counts == [2, 3, 4, 5, 6, 7]


def test_a_one_off_text_pushed_out_of_all_its_bands_is_not_found() -> None:
    """The price of the bound on work: BUCKET_SIZE newer entries in each of its six bands
    and a text seen once is forgotten, as if max_singletons newer texts had come."""
    rng = np.random.default_rng(7)
    index = NearDuplicateIndex(600)
    text = _signature(rng)
    index.observe("", "a", 0.0, text)
    for i in range(neardup.BUCKET_SIZE):
        for band in range(6):
            index.observe("", f"u{i}", 1.0, _signature(rng, text, _band(band)))
    assert index.observe("", "b", 2.0, text) == (1, 1)


def test_among_many_candidates_the_most_similar_entry_wins() -> None:
    """Twelve entries share band 0 with the post (compared in one NumPy call): the one
    with 16 equal values wins over one with 15 (a cluster already) and ten below 0.6."""
    rng = np.random.default_rng(9)
    index = NearDuplicateIndex(600)
    post = _signature(rng)
    for k in range(5):
        index.observe("", f"weak-{k}", 0.0, _signature(rng, post, range(4 + k)))
    second = _signature(rng, post, [*range(4), *range(9, 20)])  # 11 in common with best
    index.observe("", "second-1", 0.1, second)
    index.observe("", "second-2", 0.2, second)
    index.observe("", "best", 0.3, _signature(rng, post, range(16)))
    for k in range(5, 10):
        index.observe("", f"weak-{k}", 0.4, _signature(rng, post, range(4 + k)))
    assert index.observe("", "post", 1.0, post) == (2, 2)  # joined "best", not "second"
    assert index.observe("", "second-3", 1.1, second) == (3, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_comparing_candidates_at_once_or_one_by_one_gives_the_same_clusters(seed: int) -> None:
    """Posts drawn as variants of a few originals, sharing whole bands and tying often:
    the index answers the same whether it compares every candidate in one NumPy call
    or one by one (a tie goes to the candidate met last either way)."""
    rng = np.random.default_rng(seed)
    originals = [_signature(rng) for _ in range(3)]
    stream = []
    for _ in range(60):
        like = originals[int(rng.integers(3))]
        bands = rng.choice(6, size=int(rng.integers(1, 6)), replace=False)
        stream.append(_signature(rng, like, [p for b in bands for p in _band(int(b))]))

    def answers(vector_from: int) -> list[tuple[int, int]]:
        index = NearDuplicateIndex(600, min_jaccard=0.5)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(neardup, "_VECTOR_FROM", vector_from)
            return [index.observe("", f"u{i % 7}", i * 0.1, s) for i, s in enumerate(stream)]

    assert answers(1) == answers(10**9)
