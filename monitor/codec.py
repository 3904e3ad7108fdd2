"""The one strict JSON codec for posts and tagged posts.

Every source, topic, archive and test goes through these functions, so a
post means the same thing everywhere. Bad input raises :class:`DecodeError`
whose ``reason`` is short, machine-readable and bounded (it becomes a
metric label): ``invalid_json``, ``missing_field:text``, ``bad_timestamp``,
``too_large`` and the rest of :data:`REJECT_REASONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from monitor.model import FLAG_KINDS, SEVERITIES, Flag, LabelScore, Post, TaggedPost, Tags

__all__ = [
    "MAX_RECORD_BYTES",
    "MAX_TEXT_CHARS",
    "REJECT_REASONS",
    "DecodeError",
    "decode_post",
    "decode_tagged",
    "encode_post",
    "encode_tagged",
    "format_time",
    "parse_time",
    "post_from_mapping",
    "tagged_to_dict",
]

#: A record larger than this is refused before it is parsed (``too_large``).
MAX_RECORD_BYTES = 256 * 1024
#: Longest text kept; Reddit self-posts reach 40,000 characters.
MAX_TEXT_CHARS = 50_000
#: Most hashtags or links one post may carry (``too_many:hashtags``).
MAX_LIST_ITEMS = 512
#: Timestamps outside these years are typos or attacks, not posts.
_MIN_YEAR, _MAX_YEAR = 2000, 2100

_REQUIRED = ("id", "text", "created_at")
_FIELDS = (
    "id", "text", "created_at", "source", "author", "lang", "url", "hashtags",
    "links", "reply_to", "quote_of", "repost_of", "engagement", "collector",
    "source_url", "retrieved_at", "raw",
)

#: Every reason a decoder may give: a bounded set, safe as a metric label.
REJECT_REASONS: tuple[str, ...] = (
    "invalid_json",
    "invalid_utf8",
    "invalid_csv",
    "not_object",
    "too_large",
    "text_too_long",
    "empty_text",
    "bad_timestamp",
    "bad_field",
    *(f"missing_field:{name}" for name in _REQUIRED),
    *(f"bad_type:{name}" for name in _FIELDS),
    "too_many:hashtags",
    "too_many:links",
)


class DecodeError(ValueError):
    """A record that cannot become a Post; ``reason`` is in REJECT_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def parse_time(value: object, field_name: str = "created_at") -> datetime:
    """ISO 8601 to an aware UTC datetime; a naive time is taken as UTC."""
    if not isinstance(value, str):
        raise DecodeError("bad_timestamp", f"{field_name} must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DecodeError("bad_timestamp", f"{field_name}={value[:40]!r} is not ISO 8601") from None
    # range-check the local year first: year 1 or 9999 with an offset overflows in UTC
    if _MIN_YEAR <= when.year < _MAX_YEAR:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if _MIN_YEAR <= when.year < _MAX_YEAR:
            return when
    raise DecodeError("bad_timestamp", f"{field_name}={value[:40]!r} is out of range")


def format_time(when: datetime) -> str:
    """UTC ISO 8601 with a ``Z``: the one timestamp form we write."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool) and name in ("id", "author"):
        return str(value)
    raise DecodeError(f"bad_type:{name}", f"{name} must be a string")


def _str_list(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise DecodeError(f"bad_type:{name}", f"{name} must be a list of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise DecodeError(f"too_many:{name}", f"{len(value)} {name}, at most {MAX_LIST_ITEMS}")
    return tuple(value)


def post_from_mapping(
    data: Mapping[str, Any], *, default_source: str = "replay", keep_raw: bool = False
) -> Post:
    """Validate a decoded record into a Post; the shared path for JSON and CSV."""
    for name in _REQUIRED:
        if data.get(name) in (None, ""):
            raise DecodeError(f"missing_field:{name}")
    post_id = _opt_str(data, "id")
    text = data["text"]
    if not isinstance(text, str):
        raise DecodeError("bad_type:text", "text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise DecodeError("text_too_long", f"{len(text)} characters, at most {MAX_TEXT_CHARS}")
    if not text.strip():
        raise DecodeError("empty_text")
    engagement = data.get("engagement")
    if engagement is not None and not (
        isinstance(engagement, dict)
        and all(isinstance(k, str) and isinstance(v, int) for k, v in engagement.items())
    ):
        raise DecodeError("bad_type:engagement", "engagement must map names to integers")
    retrieved = data.get("retrieved_at")
    return Post(
        id=post_id or "",
        source=_opt_str(data, "source") or default_source,
        text=text,
        created_at=parse_time(data["created_at"]),
        author=_opt_str(data, "author"),
        lang=_opt_str(data, "lang"),
        url=_opt_str(data, "url"),
        hashtags=_str_list(data, "hashtags"),
        links=_str_list(data, "links"),
        reply_to=_opt_str(data, "reply_to"),
        quote_of=_opt_str(data, "quote_of"),
        repost_of=_opt_str(data, "repost_of"),
        engagement=engagement,
        collector=_opt_str(data, "collector"),
        source_url=_opt_str(data, "source_url"),
        retrieved_at=None if retrieved is None else parse_time(retrieved, "retrieved_at"),
        raw=_storable_raw(data.get("raw")) if keep_raw else None,
    )


def _storable_raw(raw: Any) -> Any:
    """The platform's payload, if it can be written back: orjson reads JSON nested 1024
    deep but writes only 254, so a deeper payload would stop the archive, not this post."""
    if raw is not None:
        try:
            orjson.dumps(raw)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            raise DecodeError("bad_field", "raw payload nested too deeply to be stored") from None
    return raw


def _loads(data: bytes | str) -> Any:
    size = len(data)
    if isinstance(data, str) and size * 4 > MAX_RECORD_BYTES:  # a character is up to 4 bytes
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise DecodeError("too_large", f"{size} bytes, at most {MAX_RECORD_BYTES}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = "invalid_utf8" if "utf-8" in str(exc).lower() else "invalid_json"
        raise DecodeError(reason, str(exc)[:120]) from None


def decode_post(data: bytes | str, *, default_source: str = "replay", keep_raw: bool = False) -> Post:
    """One JSON record to a Post, or DecodeError with a counted reason."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        raise DecodeError("not_object", "a post is a JSON object")
    return post_from_mapping(obj, default_source=default_source, keep_raw=keep_raw)


def _post_dict(post: Post) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": post.id,
        "source": post.source,
        "created_at": format_time(post.created_at),
        "text": post.text,
        "author": post.author,
        "lang": post.lang,
        "url": post.url,
    }
    for name in ("hashtags", "links"):
        if value := getattr(post, name):
            out[name] = list(value)
    for name in ("reply_to", "quote_of", "repost_of", "engagement", "collector", "source_url"):
        if (value := getattr(post, name)) is not None:
            out[name] = value
    if post.retrieved_at is not None:
        out["retrieved_at"] = format_time(post.retrieved_at)
    if post.raw is not None:
        out["raw"] = post.raw
    return out


def encode_post(post: Post) -> bytes:
    """A Post as one JSON line body (no newline): the posts topic's format."""
    return orjson.dumps(_post_dict(post))


def _score_dict(scores: tuple[LabelScore, ...]) -> dict[str, Any]:
    return {s.label: {"score": round(s.score, 4), "rules": list(s.rules)} for s in scores}


def tagged_to_dict(
    tagged: TaggedPost,
    *,
    author: Callable[[str], str] | None = None,
    keep_raw: bool = False,
) -> dict[str, Any]:
    """The archive's record: the Post's fields, the tags, and provenance.

    ``author`` maps the raw handle to what is stored (a keyed pseudonym);
    without it the handle is stored as it came.
    """
    post, tags = tagged.post, tagged.tags
    out = _post_dict(post)
    if not keep_raw:
        out.pop("raw", None)
    if post.author is not None and author is not None:
        out["author"] = author(post.author)
    out["platform_lang"] = post.lang
    out["lang"] = tags.lang
    out["themes"] = [s.label for s in tags.themes]
    out["claim"] = tags.claim.label if tags.claim else None
    out["reasons"] = [s.label for s in tags.reasons]
    out["flags"] = [_flag_dict(f) for f in tagged.all_flags]
    out["relevance"] = round(tags.relevance, 4)
    out["why"] = {
        "themes": _score_dict(tags.themes),
        "claim": _score_dict((tags.claim,) if tags.claim else ()),
        "reasons": _score_dict(tags.reasons),
        "shadow": _score_dict(tags.shadow),
        "rule_hits": list(tags.rule_hits),
    }
    out["ruleset"] = {"name": tagged.ruleset, "hash": tagged.ruleset_hash}
    out["processor_version"] = tagged.processor_version
    out.setdefault("collector", None)
    out.setdefault("source_url", None)
    out.setdefault("retrieved_at", None)
    return out


def _flag_dict(flag: Flag) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": flag.kind, "severity": flag.severity, "rule": flag.rule}
    if flag.evidence:
        out["evidence"] = flag.evidence
    if flag.detail:
        out["detail"] = flag.detail
    return out


def encode_tagged(
    tagged: TaggedPost,
    *,
    author: Callable[[str], str] | None = None,
    keep_raw: bool = False,
) -> bytes:
    """A TaggedPost as one JSON line body (no newline)."""
    return orjson.dumps(tagged_to_dict(tagged, author=author, keep_raw=keep_raw))


def _scores(obj: Any, where: str) -> tuple[LabelScore, ...]:
    if not isinstance(obj, dict):
        raise DecodeError("bad_field", f"{where} must be an object")
    try:
        return tuple(
            LabelScore(label, float(v["score"]), tuple(v["rules"])) for label, v in obj.items()
        )
    except (KeyError, TypeError, ValueError):
        raise DecodeError("bad_field", f"{where} entries need score and rules") from None


def decode_tagged(data: bytes | str) -> TaggedPost:
    """An archived or published tagged record back into a TaggedPost."""
    obj = _loads(data)
    if not isinstance(obj, dict):
        raise DecodeError("not_object", "a tagged post is a JSON object")
    lang = obj.get("lang")
    platform_lang = obj.get("platform_lang")
    post = post_from_mapping({**obj, "lang": platform_lang}, keep_raw=True)
    why = obj.get("why") or {}
    if not isinstance(why, dict):
        raise DecodeError("bad_field", "why must be an object")
    flags = []
    for item in obj.get("flags") or ():
        if not isinstance(item, dict) or item.get("kind") not in FLAG_KINDS:
            raise DecodeError("bad_field", "each flag needs a known kind")
        if item.get("severity") not in SEVERITIES or not isinstance(item.get("rule"), str):
            raise DecodeError("bad_field", "each flag needs a severity and a rule")
        flags.append(Flag(item["kind"], item["severity"], item["rule"],
                          item.get("evidence", ""), item.get("detail")))
    claims = _scores(why.get("claim", {}), "why.claim")
    ruleset = obj.get("ruleset")
    if not isinstance(ruleset, dict) or not isinstance(lang, str):
        raise DecodeError("bad_field", "ruleset must be {name, hash} and lang a string")
    tags = Tags(
        lang=lang,
        themes=_scores(why.get("themes", {}), "why.themes"),
        claim=claims[0] if claims else None,
        reasons=_scores(why.get("reasons", {}), "why.reasons"),
        flags=tuple(flags),
        relevance=float(obj.get("relevance") or 0.0),
        shadow=_scores(why.get("shadow", {}), "why.shadow"),
        rule_hits=tuple(why.get("rule_hits") or ()),
    )
    return TaggedPost(
        post=post,
        tags=tags,
        ruleset=str(ruleset.get("name", "")),
        ruleset_hash=str(ruleset.get("hash", "")),
        processor_version=str(obj.get("processor_version", "")),
    )
