"""Topic settings: the ``[kafka]`` table of the config file, flags over it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from monitor.cli import UsageError, build_parser, main
from monitor.config import ConfigError, load_settings
from monitor.scaleout.options import topics_from
from monitor.scaleout.topics import Topics

CONFIG = """\
[kafka]
posts_topic = "p"
tagged_topic = "t"
flags_topic = "f"
partitions = 12
replication = 3
group = "campaign"
"""


def test_the_kafka_table_sets_the_topics(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path)
    assert topics_from(settings, argparse.Namespace()) == Topics("p", "t", "f", 12, 3)
    assert settings.kafka_group == "campaign"


def test_flags_override_the_table(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    args = build_parser().parse_args(
        ["worker", "--broker", "kafka://k:9092", "--config", str(path),
         "--partitions", "4", "--tagged-topic", "tagged2", "--group", "g"])
    settings = load_settings(path)
    assert topics_from(settings, args) == Topics("p", "tagged2", "f", 4, 3)
    assert settings.kafka_group == "g"


def test_a_typo_in_the_table_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text("[kafka]\npartition = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'partitions'"):
        load_settings(path)


def test_bad_shapes_are_usage_errors() -> None:
    args = argparse.Namespace(partitions=0)
    with pytest.raises(UsageError, match="--partitions"):
        topics_from(load_settings(None), args)


def test_worker_cli_refuses_a_topic_in_the_broker_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--broker", "kafka://k:9092/posts"]) == 2
    assert "--posts-topic" in capsys.readouterr().err


def test_collect_cli_needs_a_topic_in_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--source", "replay:x.jsonl", "--to", "kafka://k:9092"]) == 2
    assert "names no topic" in capsys.readouterr().err


def test_archive_without_an_action_asks_for_one_or_from(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive"]) == 2
    assert "--from kafka://HOST:PORT/tagged" in capsys.readouterr().err


def test_archive_from_refuses_a_session_timeout_of_zero(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "--from", "kafka://k:9092/tagged", "--session-timeout", "0"]) == 2
    assert "--session-timeout must be > 0" in capsys.readouterr().err
