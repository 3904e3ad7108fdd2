"""monitor.tagging.regexscan: Hyperscan over mapped bytes answers exactly as RE2 does."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pytest

from monitor.bench.synth import synthetic_posts
from monitor.tagging import load_tagger, regexscan
from monitor.tagging.compiler import _regex_options
from monitor.tagging.regexscan import RegexScan, hyperscan_pattern

needs_hyperscan = pytest.mark.skipif(
    regexscan.hyperscan is None and os.environ.get("CI") != "true",
    reason="the hyperscan wheel exists for x86-64 Linux only; RE2 alone answers elsewhere")

SAMPLES = Path(__file__).parents[2] / "samples" / "stream.jsonl"
#: no run-time check against RE2: it would hide a disagreement by answering with RE2
_NEVER = 10**9

#: constructs where the engines could part: each must either agree or stay in RE2
TRICKY = [
    r"\bniñas?\b",                       # a cased non-ASCII letter: Ñ folds to ñ
    r"gpt[-‑ ]?4o",                       # a non-ASCII member of a class
    r"\b(i|me)\b[^.!?]{0,5}4o",           # a gap counting code points
    r"女子高生[^。.!?\n]{0,3}(画像|裏)",  # CJK literals and a CJK member of a negated class
    r"[à-ÿ]{2}x",                         # a range over code points: RE2's alone
    r"[\\-é]z",                           # a range from an escaped backslash
    r"[\-é]z",                            # an escaped hyphen: no range
    r"end$",                              # '$' is the end, not before a final newline
    r"(^|\s)start",                       # a leading anchor
    r"(^|[^#\w])open\b|(^|\s)close",      # leading in each alternative
    r"x\s*(^|y)z",                        # an embedded anchor: RE2's alone
    r"a\sb",                              # RE2's \s has no vertical tab
    r"a[[:space:]]b",                     # POSIX space has it
    r"\bkelvin\b",                        # U+212A folds onto k in RE2
    r"\bsix\b",                           # U+017F folds onto s
    r"\bit\b",                            # U+0131 does not fold onto i
    r"\x41\x42",                          # ASCII hex escapes
    r"\pL{3}\d",                          # Unicode classes: RE2's alone
    r"(?i)caps",                          # inline flags: RE2's alone
    r"a{,3}b",                            # a literal '{,3}' in RE2
    r"💰\s*\d+",                          # an emoji
    r"σίγμα",                             # Greek: Σ, σ and ς fold together
    r"(x|y)?",                            # matches the empty text: Hyperscan refuses it
    r"\W\W4o",                            # non-word: any non-ASCII character
]
PIECES = ["4o", " ", "I", "me", "\u212a", "ſ", "ı", "İ", "\x0b", "🔥", "💰 5", "é", "É", "’",
          "\n", ".", "!", "#keep4o", "GPT‑4o", "gpt-4o", "niñas", "ÑIÑAS", "女子高生", "。",
          "画像", "ΣΊΓΜΑΣ", "σίγμας", "ςίγμα", "\u00a0", "à", "ÿx", "\\z", "éz", "-z", "end", "end\n",
          "start", "open", "close", "xyz", "x y", "a b", "a\x0bb", "AB", "abc1", "caps", "a{,3}b",
          "KELVIN", "kelvin", "\u212aelvin", "six", "\u017fix", "ıt", "it"]


def _texts() -> list[str]:
    real = [orjson.loads(line)["text"] for line in SAMPLES.open("rb")]
    texts = real + [p["text"] for p in synthetic_posts(3_000)]
    rng = random.Random(20261202)
    for _ in range(12_000):
        words = rng.choice(texts).split(" ")
        for _ in range(rng.randint(1, 8)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(PIECES))
        texts.append(rng.choice((" ", "")).join(words))
    return texts


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts()


def _batched(scan: RegexScan, texts: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(texts), 256):
        out += scan.match_batch(texts[start:start + 256])
    return out


@needs_hyperscan
def test_the_shipped_rules_match_as_in_re2_with_most_patterns_in_one_pass(
        texts: list[str]) -> None:
    patterns = load_tagger().compiled.regex_set.patterns
    fast = RegexScan(patterns, _regex_options(), check_every=_NEVER)
    reference = RegexScan(patterns, _regex_options(), use_hyperscan=False)

    assert fast.hyperscan_patterns >= 0.85 * len(patterns)
    assert _batched(fast, texts) == _batched(reference, texts)


@needs_hyperscan
def test_tricky_constructs_match_as_in_re2(texts: list[str]) -> None:
    rng = random.Random(7)
    mixed = [rng.choice(PIECES) + " " + rng.choice(PIECES) + rng.choice(PIECES)
             for _ in range(20_000)] + texts[:2_000]
    fast = RegexScan(TRICKY, _regex_options(), check_every=_NEVER)
    reference = RegexScan(TRICKY, _regex_options(), use_hyperscan=False)

    assert _batched(fast, mixed) == _batched(reference, mixed)
    assert fast.hyperscan_patterns >= 14
    matched = {i for hits in _batched(reference, mixed) for i in hits}
    assert matched == set(range(len(TRICKY)))  # every construct met a text it matches


def test_patterns_are_translated_only_where_both_engines_agree() -> None:
    codes = {"ñ": 0x81, "Ñ": 0x81, "‑": 0x82}

    assert hyperscan_pattern(r"\bniñas?\b", codes) == rb"\bni\x81as?\b"
    assert hyperscan_pattern(r"gpt[-‑ ]?4o", codes) == rb"gpt[-\x82 ]?4o"
    assert hyperscan_pattern(r"the end$", codes) == rb"the end\z"
    assert hyperscan_pattern(r"(^|\s)a|^b|(?:x|^)c", codes) == rb"(^|\s)a|^b|(?:x|^)c"
    for unsafe in (r"x(^|y)", r"(^|\s)(^|x)", r"a\vb", r"\pL", r"(?i)a", r"a{,3}", r"[[:space:]]",
                   r"[a-ñ]", r"\x{41}", r"\x80", "été"):
        assert hyperscan_pattern(unsafe, codes) is None, unsafe


@needs_hyperscan
def test_a_compiled_database_is_reused_from_disk_and_a_damaged_one_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    patterns = [r"\bkeep\s*4o\b", r"gpt[-‑ ]?4o", r"\b(i|me)\b[^.!?]{0,40}miss"]
    texts = ["I really miss GPT‑4o", "#keep4o", "keep 4o", "nothing"]
    expected = RegexScan(patterns, _regex_options(), use_hyperscan=False).match_batch(texts)

    first = RegexScan(patterns, _regex_options())
    (cached,) = (tmp_path / "hyperscan").glob("*.hsdb")
    written = cached.stat().st_mtime_ns
    second = RegexScan(patterns, _regex_options())
    assert cached.stat().st_mtime_ns == written  # read, not compiled and written again
    damaged = cached.read_bytes()[:-100] + b"\xff" * 100
    cached.write_bytes(damaged)
    third = RegexScan(patterns, _regex_options())
    assert cached.read_bytes() != damaged

    assert expected == [[1, 2], [0], [0], []]
    assert first.hyperscan_patterns == second.hyperscan_patterns == third.hyperscan_patterns == 3
    assert first.match_batch(texts) == second.match_batch(texts) == third.match_batch(texts) \
        == expected


@needs_hyperscan
def test_a_checked_post_on_which_the_engines_disagree_sends_every_post_to_re2(
        caplog: pytest.LogCaptureFixture) -> None:
    scan = RegexScan([r"\bcafé", r"#keep4o\b"], _regex_options(), check_every=3)
    assert scan.hyperscan_patterns == 2
    scan._table[ord("é")] = 0x80  # a fault: 'é' no longer maps to its pattern's byte

    answers = scan.match_batch(["un café #keep4o"] * 5)

    assert answers == [[1], [1], [0, 1], [0, 1], [0, 1]]  # wrong until the third is checked
    assert scan.disagreements == 1 and scan.hyperscan_patterns == 2
    assert "hyperscan and RE2 disagree on regexes [0]" in caplog.text
    assert scan.match_batch(["café"]) == [[0]]


@needs_hyperscan
def test_a_third_copy_of_every_pattern_is_built_only_for_a_text_hyperscan_cannot_read() -> None:
    compiled = load_tagger().compiled
    patterns = compiled.regex_set.patterns
    scan = RegexScan(patterns, _regex_options(), check_every=2,
                     compiled=[regex for regex, _ in compiled.regexes])
    reference = RegexScan(patterns, _regex_options(), use_hyperscan=False)
    texts = ["I really miss GPT-4o #keep4o", "bring back 4o, please", "nothing here"] * 4
    folded = ["I really mi\u017f\u017f GPT-4o #keep4o", "\u212aeep 4o"]

    assert scan.match_batch(texts) == reference.match_batch(texts)  # six texts checked
    assert scan._all is None and scan.disagreements == 0
    assert scan.match_batch(folded) == reference.match_batch(folded)
    assert scan._all is not None
