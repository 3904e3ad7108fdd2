"""The floor: the least any post monitor must do (decode JSON, tokenize the text).

Reading the lines, ``orjson.loads`` and spaCy's blank English tokenizer over
the texts (``nlp.tokenizer.pipe``): nothing that tags, counts or stores can
be faster, so the pipeline's rate is reported as a fraction of this one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import spacy

__all__ = ["floor_rate"]


def _texts(path: Path) -> Iterator[str]:
    """Each post's text; a line that is not a JSON object with a text is skipped, as the
    pipeline rejects it."""
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    post = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(post, dict) and isinstance(text := post.get("text"), str):
                    yield text


def floor_rate(path: Path) -> tuple[int, float]:
    """(posts, CPU-seconds) for reading, decoding and tokenizing every post in ``path``."""
    nlp = spacy.blank("en")
    started = time.process_time()
    posts = 0
    for _doc in nlp.tokenizer.pipe(_texts(path), batch_size=256):
        posts += 1
    return posts, time.process_time() - started
