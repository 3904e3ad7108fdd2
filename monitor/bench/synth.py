"""Realistic synthetic posts for benchmarks and soak runs: deterministic, any size.

Posts are composed from fragments (openers, bodies, closers, hashtags,
links, mentions) in several languages, so exact repeats are rare, lengths
vary around ~300-400 bytes of JSON, and the tagger has real work to do.

Those posts speak the campaign's few hundred words. A firehose has a long
tail (names, typos, hashtags, links, new authors) that grows spaCy's
vocabulary and the moderation windows and fills the near-duplicate index
with texts sharing common words: ``vocabulary="open"`` draws words from a
Zipf-like law over 400,000 made-up words and the commonest real ones, from
2,000,000 authors, with links to 200,000 domains.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

__all__ = ["VOCABULARIES", "open_vocabulary_posts", "synthetic_posts", "write_jsonl"]


_OPENERS = [
    "Honestly,", "Day {n} without 4o.", "Still can't believe it:", "Reminder:", "PSA:",
    "Okay so", "Unpopular opinion:", "Hot take:", "Quick thread 🧵", "Just saying,", "",
    "Good morning everyone.", "Update from the community:", "Real talk:", "Serious question:",
]
_BODIES = [
    "I miss talking to GPT-4o every evening, it actually understood what I meant",
    "4o helped me through the worst year of my life and now it's just gone",
    "the new model feels cold and robotic compared to 4o, it's not the same at all",
    "they keep routing my chats to a different model without telling me",
    "the guardrails got so strict that it refuses to talk about anything emotional",
    "OpenAI retired 4o with barely any notice and still hasn't explained why",
    "paying users deserve a say before a model we rely on gets deprecated",
    "if they won't keep it running, open-source the weights so the community can",
    "sign the petition and share it, we're close to the next milestone",
    "the poll results are in and almost everyone wants a legacy option",
    "calling adult users 'vulnerable' to justify taking 4o away is insulting",
    "who decides what counts as 'safe' AI? not the people who use it every day",
    "4o had a warmth and creativity no successor has come close to",
    "my writing partner for two years, and it remembered how I think",
    "we need minimum notice periods before models are retired, as an industry norm",
    "the silence from the company is the worst part of all of this",
    "AI companionship is a real social question and deserves respect, not ridicule",
    "if GPT-5 was really better we wouldn't be here a hundred days later",
    "there was something alive in the way 4o answered, call it what you want",
    "my kid learned to read with 4o's stories, that's not nothing",
    "the weather here is lovely today, off to the park",
    "new phone arrived, battery life looks great so far",
    "watching the game tonight, anyone else?",
    "coffee first, then emails, then maybe a walk",
]
_CLOSERS = [
    "", "", "Bring it back.", "We're not going anywhere.", "Please listen.", "💔", "🙏", "✊",
    "Thoughts?", "This matters.", "#keep4o forever.", "Share if you agree.",
]
_TAGS = ["#keep4o", "#OpenSource4o", "#keepGPT4o", "#AI", "#ChatGPT", "#OpenAI", "#save4o"]
_LINKS = [
    "https://www.change.org/p/keep-gpt-4o", "https://www.theverge.com/ai/openai-4o-retirement",
    "https://bsky.app/profile/someone.bsky.social/post/3k{n}",
    "https://x.com/someone/status/18{n}", "https://youtu.be/abc{n}",
    "https://www.reuters.com/technology/openai-{n}", "",
]
_MENTIONS = ["@OpenAI", "@sama", "@ChatGPTapp", "", "", ""]
_OTHER = {
    "es": ["Extraño a 4o cada día, nadie lo reemplaza", "Que devuelvan el acceso a GPT-4o ya",
           "Firmad la petición para mantener 4o", "El nuevo modelo es frío y sin alma"],
    "de": ["Ich vermisse 4o jeden Tag", "Gebt uns GPT-4o zurück, bitte",
           "Open-Source die Gewichte von 4o", "Das neue Modell ist kalt und leer"],
    "fr": ["4o me manque tous les jours", "Rendez-nous l'accès à GPT-4o",
           "Publiez les poids de 4o en open source", "Le nouveau modèle est froid"],
    "zh": ["我每天都想念4o", "请把GPT-4o还给我们", "开源4o的权重吧", "新模型太冷漠了"],
    "ja": ["4oがいなくて毎日さみしい", "GPT-4oを返してください", "4oの重みをオープンソースに"],
}
_SOURCES = ["bluesky", "x", "mastodon", "reddit"]


def _post(rng: random.Random, i: int, when: datetime) -> dict[str, object]:
    n = rng.randint(1, 999_999)
    lang = rng.choices(["en", "es", "de", "fr", "zh", "ja"], [80, 5, 4, 4, 4, 3])[0]
    if lang == "en":
        parts = [rng.choice(_OPENERS).format(n=rng.randint(1, 400)), rng.choice(_BODIES)]
        if rng.random() < 0.5:
            parts.append(rng.choice(_BODIES))
        parts.append(rng.choice(_CLOSERS))
    else:
        parts = [rng.choice(_OTHER[lang]), rng.choice(_OTHER[lang])]
    parts.extend(rng.sample(_TAGS, rng.randint(1, 3)))
    parts.append(rng.choice(_MENTIONS))
    parts.append(rng.choice(_LINKS).format(n=n))
    return _record(rng, "synthetic", i, 20_000, " ".join(p for p in parts if p), when,
                   lang, 0.8)


def _record(rng: random.Random, kind: str, i: int, authors: int, text: str, when: datetime,
            lang: str, with_lang: float) -> dict[str, object]:
    """A replay record: a random source and author; ``lang`` given with ``with_lang`` odds."""
    source = rng.choice(_SOURCES)
    post: dict[str, object] = {
        "id": f"{source}:{kind}-{i}",
        "source": source,
        "author": f"user{rng.randint(1, authors)}",
        "text": text,
        "created_at": when.isoformat().replace("+00:00", "Z"),
        "url": f"https://example.invalid/{source}/{i}",
    }
    if rng.random() < with_lang:
        post["lang"] = lang
    return post


def synthetic_posts(count: int, *, seed: int = 4, start: datetime | None = None,
                    per_second: float = 50.0) -> Iterator[dict[str, object]]:
    """``count`` post records in created_at order, ``per_second`` on average."""
    rng = random.Random(seed)
    when = start or datetime(2026, 2, 13, tzinfo=UTC)
    for i in range(count):
        when += timedelta(seconds=rng.expovariate(per_second))
        yield _post(rng, i, when)


_COMMON = ["the", "a", "to", "and", "i", "you", "it", "is", "4o", "keep4o", "model", "openai",
           "gpt", "miss", "we", "this", "not", "for", "my", "of"]
_SYLLABLES = ["ka", "to", "mi", "ra", "ne", "lo", "su", "vi", "de", "po", "an", "el", "ri", "us",
              "om", "be", "ta", "qu", "is", "or"]
_OPEN_WORDS = 400_000


def open_vocabulary_posts(count: int, *, seed: int = 4, start: datetime | None = None,
                          per_second: float = 50.0) -> Iterator[dict[str, object]]:
    """``count`` posts of 8-50 words with a firehose's long tail (see the module docstring)."""
    rng = random.Random(seed)
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(2 + i % 4)) + (
        str(i % 97) if i % 5 == 0 else "") for i in range(_OPEN_WORDS)]
    ranks = np.random.default_rng(seed)
    when = start or datetime(2026, 2, 13, tzinfo=UTC)
    for i in range(count):
        when += timedelta(seconds=rng.expovariate(per_second))
        drawn = np.minimum(ranks.zipf(1.2, size=rng.randint(8, 50)), _OPEN_WORDS) - 1
        text = [_COMMON[r] if r < len(_COMMON) and rng.random() < 0.5 else words[r]
                for r in drawn.tolist()]
        if rng.random() < 0.3:
            text.append(f"https://site{rng.randint(1, 200_000)}.example/p/{i}")
        if rng.random() < 0.5:
            text.append(f"#tag{rng.randint(1, 50_000)}")
        if rng.random() < 0.3:
            text.append("#keep4o")
        yield _record(rng, "open", i, 2_000_000, " ".join(text), when, "en", 0.5)


#: what ``write_jsonl(vocabulary=...)`` and ``monitor bench --vocabulary`` accept
_GENERATORS = {"campaign": synthetic_posts, "open": open_vocabulary_posts}
VOCABULARIES = tuple(_GENERATORS)


def write_jsonl(path: str, count: int, *, seed: int = 4, vocabulary: str = "campaign") -> int:
    """Write ``count`` synthetic posts as a replay file; returns the bytes written."""
    if vocabulary not in _GENERATORS:
        raise ValueError(f"vocabulary {vocabulary!r}: one of {', '.join(VOCABULARIES)}")
    posts = _GENERATORS[vocabulary](count, seed=seed)
    written = 0
    with open(path, "wb") as fh:
        for post in posts:
            line = orjson.dumps(post) + b"\n"
            fh.write(line)
            written += len(line)
    return written
