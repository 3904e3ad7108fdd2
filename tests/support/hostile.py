"""Hostile input for property tests: values, frames and bytes no platform should send.

``hostile_frames(base)`` takes a well-formed frame (a dict as the platform
documents it) and breaks it: one field somewhere replaced by a hostile value
(wrong types, 1 MB texts, 10,000 hashtags, deep nesting, lone surrogates, NUL
bytes, RTL and zero-width characters, emoji floods, timestamps far in the
past or future), then, sometimes, the encoded bytes broken too (cut short,
invalid UTF-8, nesting past any parser's depth). The ``HOSTILE`` settings
profile fixes the seed (``derandomize``) and runs a few thousand examples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from monitor.codec import REJECT_REASONS
from monitor.model import Post

__all__ = ["HOSTILE", "HOSTILE_TEXTS", "check_item", "deep", "encode", "hostile_bytes",
           "hostile_frames", "hostile_values"]

settings.register_profile(
    "hostile", max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "2000")),
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much])
#: fixed seed, a few thousand examples (HOSTILE_EXAMPLES overrides the count)
HOSTILE = settings.get_profile("hostile")

MB = 1 << 20
RTL = "\u202e\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea\u202c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
#: Built once: the large ones would make every example slow.
HOSTILE_TEXTS: tuple[str, ...] = (
    "", " ", "\x00", "a\x00b #keep4o", "\ud800", "x\udfffy", "\ud83d", RTL, ZERO_WIDTH * 50,
    f"I miss{ZERO_WIDTH}4o #keep{ZERO_WIDTH}4o", f"{RTL} #keep4o {RTL}",
    "😭" * 5000, "🏳️‍🌈👨‍👩‍👧‍👦" * 2000, "#keep4o " * 10_000,
    " ".join(f"#tag{i}" for i in range(10_000)), "4o " * (MB // 3), "x" * MB,
    "\u0301" * 10_000, "\n" * 1000, "<script>alert(1)</script>", "&#xd800;&#0;&amp;",
    "9" * 400, "-1", "1e309", "NaN", "0000-00-00T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z", "2199-01-01T00:00:00Z",
    "2025-08-13T10:00:00Z", "2025-13-45T25:61:61Z",
)
_TIMES = st.sampled_from(["0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                          "9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                          "2025-08-13T10:00:00+14:00", "2025-08-13", "13/08/2025", ""])
_NUMBERS = st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 1e308, -0.0, 1.5, True, False])
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.text(max_size=20) | st.sampled_from(HOSTILE_TEXTS) | _TIMES | _NUMBERS)


def deep(depth: int) -> Any:
    """``{"a": [{"a": [... "bottom"]}]}``, ``depth`` objects deep."""
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


#: Any JSON-ish value a field might hold instead of what the documentation says.
hostile_values = st.one_of(
    _SCALARS,
    st.lists(st.sampled_from(["keep4o", "", "\x00", RTL, 7, None]), max_size=20),
    st.just([f"tag{i}" for i in range(10_000)]),
    st.just([{"tag": f"t{i}", "$type": "app.bsky.richtext.facet#tag"} for i in range(10_000)]),
    st.builds(deep, st.sampled_from([50, 200, 400])),
    st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def encode(value: Any) -> bytes:
    """JSON bytes; lone surrogates (which orjson refuses to write) as ``\\udXXX`` escapes."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def hostile_frames(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with up to three fields (at any depth) replaced or removed."""
    frame: Any = base
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(frame)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        if draw(st.integers(0, 5)) == 0 and isinstance(path[-1], str):
            target = frame
            for key in path[:-1]:
                target = target[key]
            trimmed = {k: v for k, v in target.items() if k != path[-1]}
            frame = _replace(frame, path[:-1], trimmed) if path[:-1] else trimmed
        else:
            frame = _replace(frame, path, draw(hostile_values))
    return frame


@st.composite
def hostile_bytes(draw: st.DrawFn, frames: st.SearchStrategy[Any]) -> bytes:
    """A frame encoded as JSON, then sometimes damaged as bytes."""
    data = encode(draw(frames))
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "utf8", "nul", "deep", "junk"]))
    if damage == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "utf8":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) \
            + data[at:]
    elif damage == "nul":
        data = data.replace(b"4o", b"4o\x00", 1) or b"\x00"
    elif damage == "deep":
        data = b"[" * 5000 + data + b"]" * 5000
    elif damage == "junk":
        data = draw(st.binary(max_size=64))
    return data


def check_item(item: object, *, allow: Callable[[object], bool] = lambda _: False) -> None:
    """A parser's answer is a sound Post, a rejection with a known reason, or allowed."""
    from monitor.codec import MAX_TEXT_CHARS, encode_post
    from monitor.sources.base import Rejected

    event(type(item).__name__)
    if isinstance(item, Rejected):
        assert item.reason in REJECT_REASONS, item
        event(f"rejected: {item.reason}")
        return
    if isinstance(item, Post):
        assert item.id and item.text.strip() and len(item.text) <= MAX_TEXT_CHARS
        assert 2000 <= item.created_at.year < 2100 and item.created_at.utcoffset() is not None
        encode_post(item)  # what is accepted can be archived
        return
    assert item is None or allow(item), f"unexpected parser answer {item!r:.200}"
