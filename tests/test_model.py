"""The data model: tags cross the tagging process's pipe pickled, and come back whole."""

from __future__ import annotations

import pickle
import pickletools

import pytest

from monitor.model import Flag, LabelScore, Tags

TAGS = Tags(
    lang="en",
    themes=(LabelScore("retirement", 5.0, ("ret.weak", "ret.retire_model")),
            LabelScore("distinctive_value", 4.0, ("dv.quality_words",))),
    claim=LabelScore("open_source", 2.5, ("os.release",)),
    reasons=(LabelScore("substitution_failure", 6.0, ("sf.core",)),),
    flags=(Flag("spam", "medium", "spam.link", "getgpt4o.app", {"domain": "getgpt4o.app"}),
           Flag("nsfw", "low", "nsfw.words")),
    relevance=0.7,
    shadow=(LabelScore("grief", 1.0, ("gr.words",)),),
    rule_hits=("ret.weak", "ret.retire_model", "sf.core"),
)


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_tags_come_back_from_a_pickle_equal_and_still_frozen_where_they_were(
        protocol: int) -> None:
    back = pickle.loads(pickle.dumps([TAGS, Tags("ja")], protocol=protocol))

    assert back == [TAGS, Tags("ja")]
    with pytest.raises(AttributeError):
        back[0].themes[0].score = 9.0  # type: ignore[misc]


def test_a_pickled_batch_is_loaded_by_constructor_calls_not_field_by_field_setstate() -> None:
    """dataclasses' own __setstate__ (a Python loop per object) made unpickling a batch
    of tags cost the event loop's process ~17 us a post."""
    payload = pickle.dumps([TAGS, Tags("de")], protocol=pickle.HIGHEST_PROTOCOL)

    opcodes = {op.name for op, _, _ in pickletools.genops(payload)}
    assert "BUILD" not in opcodes  # BUILD is what calls __setstate__
    assert "REDUCE" in opcodes
    assert pickle.loads(payload) == [TAGS, Tags("de")]
