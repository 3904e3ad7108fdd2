"""monitor.codec: the one strict JSON form of posts and tagged posts.

Every source and sink goes through these functions, so the tests pin down
what a good record becomes, every reason a bad one is refused for, and that
what is written reads back unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.codec import (
    MAX_LIST_ITEMS,
    MAX_RECORD_BYTES,
    MAX_TEXT_CHARS,
    REJECT_REASONS,
    DecodeError,
    decode_post,
    decode_tagged,
    encode_post,
    encode_tagged,
    format_time,
    parse_time,
    post_from_mapping,
    tagged_to_dict,
)
from monitor.model import Flag, LabelScore, Post, TaggedPost, Tags

NOON = datetime(2025, 8, 8, 12, 0, tzinfo=UTC)


def record(**fields: object) -> bytes:
    """A valid post record with some fields replaced (None removes a field)."""
    base: dict[str, object] = {
        "id": "bluesky:at://did:plc:abc/app.bsky.feed.post/3kx",
        "text": "I miss 4o every single day #keep4o",
        "created_at": "2025-08-08T12:00:00Z",
    }
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def reason_of(data: bytes | str) -> str:
    with pytest.raises(DecodeError) as info:
        decode_post(data)
    return info.value.reason


# -- decoding a good record ------------------------------------------------------


def test_decode_post_reads_every_field() -> None:
    data = orjson.dumps({
        "id": "bluesky:at://did:plc:abc/app.bsky.feed.post/3kx",
        "source": "bluesky",
        "text": "I miss 4o every single day #keep4o",
        "created_at": "2025-08-08T12:00:00Z",
        "author": "did:plc:abc",
        "lang": "en",
        "url": "https://bsky.app/profile/did:plc:abc/post/3kx",
        "hashtags": ["keep4o"],
        "links": ["https://change.org/p/keep4o"],
        "reply_to": "bluesky:at://did:plc:xyz/app.bsky.feed.post/1",
        "quote_of": None,
        "repost_of": None,
        "engagement": {"likes": 12, "reposts": 3},
        "collector": "jetstream",
        "source_url": "wss://jetstream2.us-east.bsky.network/subscribe",
        "retrieved_at": "2025-08-08T12:00:05+00:00",
        "raw": {"kind": "commit"},
    })

    post = decode_post(data)

    assert post == Post(
        id="bluesky:at://did:plc:abc/app.bsky.feed.post/3kx",
        source="bluesky",
        text="I miss 4o every single day #keep4o",
        created_at=NOON,
        author="did:plc:abc",
        lang="en",
        url="https://bsky.app/profile/did:plc:abc/post/3kx",
        hashtags=("keep4o",),
        links=("https://change.org/p/keep4o",),
        reply_to="bluesky:at://did:plc:xyz/app.bsky.feed.post/1",
        engagement={"likes": 12, "reposts": 3},
        collector="jetstream",
        source_url="wss://jetstream2.us-east.bsky.network/subscribe",
        retrieved_at=NOON + timedelta(seconds=5),
        raw=None,  # dropped unless keep_raw
    )


def test_decode_post_defaults_source_and_keeps_raw_on_request() -> None:
    data = record(raw={"kind": "commit"})

    assert decode_post(data).source == "replay"
    assert decode_post(data, default_source="mastodon").source == "mastodon"
    assert decode_post(data).raw is None
    assert decode_post(data, keep_raw=True).raw == {"kind": "commit"}


def test_decode_post_accepts_numeric_ids_and_authors_as_text() -> None:
    post = decode_post(record(id=1823456789012345678, author=42))

    assert (post.id, post.author) == ("1823456789012345678", "42")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2025-08-08T12:00:00Z", NOON),
        ("2025-08-08T14:00:00+02:00", NOON),
        ("2025-08-08T07:00:00-05:00", NOON),
        ("2025-08-08T12:00:00", NOON),  # naive: taken as UTC
        ("2025-08-08T12:00:00.250Z", NOON + timedelta(milliseconds=250)),
        ("  2025-08-08T12:00:00Z ", NOON),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),
        ("2099-12-31T23:59:59Z", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
    ids=["Z", "plus-offset", "minus-offset", "naive", "millis", "padded", "year-2000",
         "year-2099"],
)
def test_timestamps_become_utc(stamp: str, expected: datetime) -> None:
    created = decode_post(record(created_at=stamp)).created_at

    assert created == expected
    assert created.tzinfo is UTC


def test_format_time_writes_utc_with_z() -> None:
    assert format_time(datetime(2025, 8, 8, 14, 0, tzinfo=timezone(timedelta(hours=2)))) \
        == "2025-08-08T12:00:00Z"
    assert parse_time(format_time(NOON)) == NOON


def test_limits_are_inclusive() -> None:
    assert len(decode_post(record(text="x" * MAX_TEXT_CHARS)).text) == MAX_TEXT_CHARS
    tags = [f"t{i}" for i in range(MAX_LIST_ITEMS)]
    assert len(decode_post(record(hashtags=tags)).hashtags) == MAX_LIST_ITEMS


# -- rejecting a bad record ------------------------------------------------------


def _padded_record() -> bytes:
    data = record(raw="x" * MAX_RECORD_BYTES)
    assert len(data) > MAX_RECORD_BYTES
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"id": "1", "text": ', "invalid_json"),
        (b"", "invalid_json"),
        (b"{'id': '1'}", "invalid_json"),
        (b'{"id": "1", "text": "caf\xe9", "created_at": "2025-08-08T12:00:00Z"}', "invalid_utf8"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'["I miss 4o"]', "not_object"),
        (b'"I miss 4o"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
        (_padded_record(), "too_large"),
        (record(id=None), "missing_field:id"),
        (record(id=""), "missing_field:id"),
        (record(text=None), "missing_field:text"),
        (record(text=""), "missing_field:text"),
        (record(created_at=None), "missing_field:created_at"),
        (record(text=["I", "miss", "4o"]), "bad_type:text"),
        (record(text=4), "bad_type:text"),
        (record(id=True), "bad_type:id"),
        (record(author=["a", "b"]), "bad_type:author"),
        (record(lang=1), "bad_type:lang"),
        (record(hashtags="keep4o"), "bad_type:hashtags"),
        (record(links=[1, 2]), "bad_type:links"),
        (record(engagement={"likes": "many"}), "bad_type:engagement"),
        (record(engagement=[1]), "bad_type:engagement"),
        (record(created_at="yesterday"), "bad_timestamp"),
        (record(created_at=1723118400), "bad_timestamp"),
        (record(created_at="1900-01-01T00:00:00Z"), "bad_timestamp"),
        (record(created_at="2200-01-01T00:00:00Z"), "bad_timestamp"),
        (record(created_at="2100-01-01T00:00:00Z"), "bad_timestamp"),
        (record(created_at="2099-12-31T23:00:00-05:00"), "bad_timestamp"),  # 2100 in UTC
        (record(retrieved_at="soon"), "bad_timestamp"),
        (record(text="   \n\t "), "empty_text"),
        (record(text="x" * (MAX_TEXT_CHARS + 1)), "text_too_long"),
        (record(hashtags=[f"t{i}" for i in range(MAX_LIST_ITEMS + 1)]), "too_many:hashtags"),
        (record(links=[f"https://e.com/{i}" for i in range(MAX_LIST_ITEMS + 1)]),
         "too_many:links"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_reject_reason(data: bytes, reason: str) -> None:
    assert reason in REJECT_REASONS
    assert reason_of(data) == reason


def test_decode_error_is_a_value_error_with_detail() -> None:
    with pytest.raises(ValueError, match=r"^text_too_long: 50001 characters, at most 50000$"):
        decode_post(record(text="x" * (MAX_TEXT_CHARS + 1)))


def test_invalid_utf8_in_a_str_record() -> None:
    assert reason_of('{"id": "1", "text": "\ud800", "created_at": "2025-08-08T12:00:00Z"}') \
        == "invalid_utf8"


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_timestamp_that_overflows_in_utc_is_bad_timestamp(stamp: str) -> None:
    assert reason_of(record(created_at=stamp)) == "bad_timestamp"


def test_too_large_counts_bytes_for_str_records() -> None:
    data = record(text="€" * 40_000, author="€" * 50_000)
    assert len(data) > MAX_RECORD_BYTES >= len(data.decode())
    assert reason_of(data) == "too_large"

    assert reason_of(data.decode()) == "too_large"


# -- property: decoding never fails any other way --------------------------------

_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
_offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                         max_value=timedelta(hours=23, minutes=59)).map(
    lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1))))
# Years 1900..2200 straddle the accepted 2000..2099; the ends of datetime's
# range (year 1 and 9999 with an offset) have their own test above.
_stamps = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                 timezones=st.none() | _offsets).map(datetime.isoformat),
    st.text(max_size=30),
)
_in_range = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30),
                         timezones=st.none() | _offsets).map(datetime.isoformat)
_plausible = {
    "id": st.text(max_size=20) | st.integers(0, 2**63 - 1),
    "text": st.text(max_size=40) | st.just("x" * (MAX_TEXT_CHARS + 1)),
    "created_at": _stamps,
    "retrieved_at": _stamps,
    "author": st.text(max_size=10),
    "hashtags": st.lists(st.text(max_size=8), max_size=4),
    "links": st.lists(st.text(max_size=8), max_size=4),
    "engagement": st.dictionaries(st.text(max_size=5), st.integers(0, 10**6), max_size=3),
}
_FIELDS = ("id", "text", "created_at", "source", "author", "lang", "url", "hashtags", "links",
           "reply_to", "quote_of", "repost_of", "engagement", "collector", "source_url",
           "retrieved_at", "raw")
_optional = {name: _plausible.get(name, st.text(max_size=12)) | _json for name in _FIELDS}
_records = st.one_of(
    # mostly well-formed: the required fields present, the rest anything
    st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=20) | st.integers(0, 2**63 - 1),
         "text": st.text(min_size=1, max_size=40),
         "created_at": _in_range | _stamps},
        optional={k: v for k, v in _optional.items() if k not in ("id", "text", "created_at")}),
    # anything at all
    st.fixed_dictionaries({}, optional=_optional),
)

_PROPERTY = settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _check_decodes_or_rejects(decode: object, data: object) -> Post | None:
    try:
        post = decode(data)  # type: ignore[operator]
    except DecodeError as exc:
        assert exc.reason in REJECT_REASONS
        return None
    assert isinstance(post, Post)
    assert post.created_at.tzinfo is UTC and 2000 <= post.created_at.year < 2100
    assert post.text.strip() and len(post.text) <= MAX_TEXT_CHARS
    assert post.id
    return post


@_PROPERTY
@given(_records)
def test_any_mapping_is_a_post_or_a_counted_rejection(data: dict) -> None:
    _check_decodes_or_rejects(post_from_mapping, data)


@_PROPERTY
@given(_records)
def test_any_json_record_is_a_post_or_a_counted_rejection(data: dict) -> None:
    post = _check_decodes_or_rejects(lambda b: decode_post(b, keep_raw=True), orjson.dumps(data))
    if post is not None:  # and what is accepted is written back unchanged
        assert decode_post(encode_post(post), keep_raw=True) == post


@_PROPERTY
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_are_a_post_or_a_counted_rejection(data: bytes | str) -> None:
    _check_decodes_or_rejects(decode_post, data)


# -- encoding: posts -------------------------------------------------------------


def test_post_round_trip(make_post) -> None:
    post = make_post(
        "Day 30 without 4o. #keep4o https://change.org/p/keep4o",
        id="mastodon:https://mastodon.social/@a/1",
        source="mastodon",
        author="a@mastodon.social",
        lang="en",
        url="https://mastodon.social/@a/1",
        hashtags=("keep4o",),
        links=("https://change.org/p/keep4o",),
        quote_of="mastodon:https://mastodon.social/@b/2",
        engagement={"favourites": 3},
        collector="mastodon-hashtag",
        source_url="https://mastodon.social/api/v1/timelines/tag/keep4o",
        retrieved_at=NOON + timedelta(minutes=1),
        raw={"visibility": "public"},
    )

    data = encode_post(post)

    assert b"\n" not in data
    assert decode_post(data, keep_raw=True) == post


def test_encode_post_leaves_out_empty_optional_fields(make_post) -> None:
    assert orjson.loads(encode_post(make_post("hi"))) == {
        "id": "test:1", "source": "test", "created_at": "2025-08-08T12:00:00Z", "text": "hi",
        "author": None, "lang": None, "url": None,
    }


# -- encoding: tagged posts ------------------------------------------------------


@pytest.fixture
def tagged(make_post) -> TaggedPost:
    post = make_post(
        "I miss 4o. Claim your airdrop now #keep4o",
        author="alice.bsky.social",
        lang="en-US",
        hashtags=("keep4o",),
        collector="jetstream",
        source_url="wss://jetstream2.us-east.bsky.network/subscribe",
        retrieved_at=NOON,
        raw={"kind": "commit"},
    )
    tags = Tags(
        lang="en",
        themes=(LabelScore("grief", 2.0, ("grief.miss",)),),
        claim=LabelScore("access", 3.0, ("access.paid_for", "access.afford")),
        reasons=(LabelScore("fairness", 2.0, ("fair.unfair",)),),
        flags=(Flag("spam", "high", "spam.airdrop", "airdrop"),),
        relevance=0.7,
        shadow=(LabelScore("anger", 2.0, ("anger.furious",)),),
        rule_hits=("grief.miss", "access.paid_for", "access.afford", "fair.unfair",
                   "spam.airdrop", "anger.furious"),
    )
    flood = Flag("spam", "medium", "flood.near_duplicate", detail={"copies": 40})
    return TaggedPost(post, tags, "demo", "9f40aa9cb5def65c", "0.1.0", flags=(flood,))


ARCHIVE_KEYS = {"id", "source", "created_at", "lang", "text", "author", "url", "themes", "claim",
                "reasons", "flags", "ruleset", "processor_version", "collector", "source_url",
                "retrieved_at"}


def test_tagged_record_has_the_archive_fields(tagged: TaggedPost) -> None:
    out = tagged_to_dict(tagged)

    assert out.keys() >= ARCHIVE_KEYS
    assert out["lang"] == "en" and out["platform_lang"] == "en-US"
    assert out["themes"] == ["grief"]
    assert out["claim"] == "access"
    assert out["reasons"] == ["fairness"]
    assert out["flags"] == [
        {"kind": "spam", "severity": "high", "rule": "spam.airdrop", "evidence": "airdrop"},
        {"kind": "spam", "severity": "medium", "rule": "flood.near_duplicate",
         "detail": {"copies": 40}},
    ]
    assert out["ruleset"] == {"name": "demo", "hash": "9f40aa9cb5def65c"}
    assert out["processor_version"] == "0.1.0"
    assert out["relevance"] == 0.7
    assert out["why"] == {
        "themes": {"grief": {"score": 2.0, "rules": ["grief.miss"]}},
        "claim": {"access": {"score": 3.0, "rules": ["access.paid_for", "access.afford"]}},
        "reasons": {"fairness": {"score": 2.0, "rules": ["fair.unfair"]}},
        "shadow": {"anger": {"score": 2.0, "rules": ["anger.furious"]}},
        "rule_hits": list(tagged.tags.rule_hits),
    }


def test_tagged_record_has_provenance_keys_even_when_unknown(make_post) -> None:
    out = tagged_to_dict(TaggedPost(make_post(), Tags(lang="other"), "demo", "h", "0.1.0"))

    assert out.keys() >= ARCHIVE_KEYS
    assert (out["collector"], out["source_url"], out["retrieved_at"]) == (None, None, None)
    assert (out["themes"], out["claim"], out["reasons"], out["flags"]) == ([], None, [], [])


def test_author_callable_pseudonymizes(tagged: TaggedPost) -> None:
    seen: list[str] = []

    def pseudonym(handle: str) -> str:
        seen.append(handle)
        return {"alice.bsky.social": "u_7f3a9c"}[handle]

    assert tagged_to_dict(tagged, author=pseudonym)["author"] == "u_7f3a9c"
    assert seen == ["alice.bsky.social"]
    assert tagged_to_dict(tagged)["author"] == "alice.bsky.social"


def test_author_callable_is_not_called_without_an_author(make_post) -> None:
    def refuse(handle: str) -> str:
        raise AssertionError("called for a post without author")

    anonymous = TaggedPost(make_post(author=None), Tags(lang="en"), "demo", "h", "0.1.0")
    assert tagged_to_dict(anonymous, author=refuse)["author"] is None


def test_raw_is_dropped_unless_kept(tagged: TaggedPost) -> None:
    assert "raw" not in tagged_to_dict(tagged)
    assert "raw" not in orjson.loads(encode_tagged(tagged))
    assert tagged_to_dict(tagged, keep_raw=True)["raw"] == {"kind": "commit"}


def test_tagged_round_trip(tagged: TaggedPost) -> None:
    data = encode_tagged(tagged, keep_raw=True)

    back = decode_tagged(data)

    assert back.post == tagged.post
    assert back.ruleset == "demo" and back.ruleset_hash == "9f40aa9cb5def65c"
    assert back.processor_version == "0.1.0"
    assert back.tags.lang == "en"
    assert back.tags.themes == tagged.tags.themes
    assert back.tags.claim == tagged.tags.claim
    assert back.tags.reasons == tagged.tags.reasons
    assert back.tags.shadow == tagged.tags.shadow
    assert back.tags.rule_hits == tagged.tags.rule_hits
    assert back.tags.relevance == 0.7
    assert back.all_flags == tagged.all_flags
    assert encode_tagged(back, keep_raw=True) == data


def test_tagged_round_trip_keeps_the_pseudonym(tagged: TaggedPost) -> None:
    data = encode_tagged(tagged, author=lambda handle: "u_1234")

    back = decode_tagged(data)

    assert back.post.author == "u_1234"
    assert back.post.raw is None
    assert encode_tagged(back) == data


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"flags": [{"kind": "scam", "severity": "low", "rule": "r"}]}, "bad_field"),
        ({"flags": [{"kind": "spam", "severity": "urgent", "rule": "r"}]}, "bad_field"),
        ({"why": {"themes": {"grief": {"score": 2}}}}, "bad_field"),
        ({"why": "themes"}, "bad_field"),
        ({"ruleset": "demo"}, "bad_field"),
        ({"text": ""}, "missing_field:text"),
    ],
)
def test_decode_tagged_rejects_bad_records(tagged: TaggedPost, change: dict, reason: str) -> None:
    data = orjson.dumps({**tagged_to_dict(tagged), **change})

    with pytest.raises(DecodeError) as info:
        decode_tagged(data)

    assert info.value.reason == reason
