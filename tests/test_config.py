"""``monitor.toml``: defaults, then the file, then flags; every mistake names the file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor.cli import UsageError, build_parser
from monitor.commands.run import settings_from_args
from monitor.config import ConfigError, Settings, load_settings
from monitor.runtime.tagger_process import wanted
from monitor.sources import open_source

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    """The ```toml block of README "Configuration"."""
    return README.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]


def write(tmp_path: Path, text: str, name: str = "monitor.toml") -> Path:
    path = tmp_path / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_settings(*argv: str) -> Settings:
    """What ``monitor run ARGV`` would run with."""
    return settings_from_args(build_parser().parse_args(["run", *argv]))


def test_without_a_file_the_defaults_apply() -> None:
    assert load_settings(None) == Settings()
    assert Settings().metrics_addr == "127.0.0.1:9464"  # loopback unless told otherwise


def test_the_readme_example_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, readme_example())
    settings = load_settings(path)
    example = tomllib.loads(readme_example())
    folder = path.parent
    # a replay path in a config file is relative to the file, like every other path
    assert settings.sources == [f"replay:{folder / uri.removeprefix('replay:')}"
                                for uri in example["sources"]]
    assert settings.rules == folder / example["rules"]
    assert settings.archive_dir == folder / example["archive"]["dir"]
    assert settings.key_file == folder / example["archive"]["key_file"]
    assert settings.batch_size == example["processor"]["batch_size"]
    assert settings.dedup_window == example["processor"]["dedup_window"]
    assert settings.metrics_addr == example["metrics"]["addr"]


def test_every_table_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """\
sources = ["replay:a.jsonl", "replay:b.csv"]
exit_when_done = true
[processor]
batch_size = 8
batch_wait = 1          # an integer where a float is expected is fine
queue_size = 64
dedup_window = 1000
tagger_process = true
[metrics]
addr = ":0"
[archive]
enabled = false
pseudonymize = false
keep_raw = true
[display]
progress = "log"
""")
    settings = load_settings(path)
    folder = path.parent
    assert (settings.sources, settings.exit_when_done) == (
        [f"replay:{folder / 'a.jsonl'}", f"replay:{folder / 'b.csv'}"], True)
    assert (settings.batch_size, settings.batch_wait, settings.queue_size,
            settings.dedup_window, settings.tagger_process) == (8, 1.0, 64, 1000, True)
    assert isinstance(settings.batch_wait, float)
    assert settings.metrics_addr == ":0"
    assert (settings.archive, settings.pseudonymize, settings.keep_raw) == (False, False, True)
    assert settings.progress == "log"


def test_paths_are_relative_to_the_file_and_absolute_paths_stay(tmp_path: Path) -> None:
    elsewhere = tmp_path / "data" / "archive"
    path = write(tmp_path, f'rules = "../my rules"\n[archive]\ndir = "{elsewhere}"\n'
                           'key_file = "keys/pseudonym.key"\n')
    settings = load_settings(path)
    assert settings.rules == path.parent / "../my rules"
    assert settings.archive_dir == elsewhere
    assert settings.key_file == path.parent / "keys" / "pseudonym.key"


def test_a_replay_path_in_sources_is_relative_to_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, 'sources = ["replay:posts.jsonl?speed=max"]\n')
    (path.parent / "posts.jsonl").write_text(
        '{"id": "a", "text": "hi", "created_at": "2025-08-13T10:00:00Z"}\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    [uri] = load_settings(path).sources
    assert open_source(uri).path.resolve() == (path.parent / "posts.jsonl").resolve()  # type: ignore[attr-defined]


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, """\
sources = ["replay:from-file.jsonl"]
[processor]
batch_size = 8
queue_size = 64
[metrics]
addr = "127.0.0.1:9100"
[archive]
dir = "file-archive"
""")
    settings = run_settings("--config", str(path), "--source", "replay:from-flag.jsonl",
                            "--batch-size", "32", "--metrics-addr", "127.0.0.1:0",
                            "--no-archive", "--exit-when-done", "--progress", "off",
                            "--tagger-process")
    assert settings.sources == ["replay:from-flag.jsonl"]
    assert settings.tagger_process is True
    assert (settings.batch_size, settings.queue_size) == (32, 64)  # untouched flags keep the file
    assert settings.metrics_addr == "127.0.0.1:0"
    assert settings.archive is False
    assert settings.archive_dir == path.parent / "file-archive"
    assert (settings.exit_when_done, settings.progress) == (True, "off")


def test_flag_paths_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    path = write(tmp_path, '[archive]\ndir = "file-archive"\n')
    settings = run_settings("--config", str(path), "--archive-dir", "flag-archive")
    assert settings.archive_dir == Path("flag-archive")


# -- mistakes ----------------------------------------------------------------------

MISTAKES = [
    pytest.param("[processor]\nbatchsize = 8\n",
                 "unknown key [processor] batchsize; did you mean 'batch_size'?", id="key typo"),
    pytest.param("[proccessor]\nbatch_size = 8\n",
                 "unknown key or table 'proccessor'; did you mean [processor]?", id="table typo"),
    pytest.param("source = ['replay:x.jsonl']\n",
                 "unknown key source; did you mean 'sources'?", id="top-level typo"),
    pytest.param("[metrics]\nport = 9464\n",
                 "unknown key [metrics] port; known: addr", id="unknown key, no close match"),
    pytest.param("[archive]\napi_key = 'abc'\n",
                 "[archive] api_key looks like a secret; secrets are read from the environment",
                 id="api_key"),
    pytest.param("bluesky_password = 'hunter2'\n",
                 "bluesky_password looks like a secret", id="password"),
    pytest.param("[processor]\nauth_token = 'hunter2'\n",
                 "[processor] auth_token looks like a secret", id="token"),
    pytest.param("[processor]\nbatch_size = '256'\n",
                 "[processor] batch_size must be int, not '256'", id="string for int"),
    pytest.param("[processor]\nqueue_size = 1.5\n",
                 "[processor] queue_size must be int, not 1.5", id="float for int"),
    pytest.param("[processor]\nbatch_size = true\n",
                 "[processor] batch_size must be int, not True", id="bool for int"),
    pytest.param("exit_when_done = 'yes'\n", "exit_when_done must be bool, not 'yes'",
                 id="string for bool"),
    pytest.param("[metrics]\naddr = 9464\n", "[metrics] addr must be str, not 9464",
                 id="int for str"),
    pytest.param("sources = 'replay:x.jsonl'\n", "sources must be a list of source URIs",
                 id="string for list"),
    pytest.param("sources = [1, 2]\n", "sources must be a list of source URIs",
                 id="list of numbers"),
    pytest.param("rules = 7\n", "rules must be a path in quotes", id="number for path"),
    pytest.param("[processor\n", "invalid TOML", id="invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), MISTAKES)
def test_a_mistake_names_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_a_secret_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[archive]\nsecret = 'correct-horse-battery-staple'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "correct-horse" not in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read the config file"):
        load_settings(path)


def test_the_cli_turns_a_config_mistake_into_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[processor]\nbatchsize = 8\n")
    with pytest.raises(UsageError, match=rf"^{path}: unknown key \[processor\] batchsize"):
        run_settings("--config", str(path))


@pytest.mark.parametrize(("line", "flags", "expected"), [
    ("", (), None),  # auto
    ('tagger_process = "auto"', (), None),
    ("tagger_process = false", (), False),
    ("tagger_process = true", ("--no-tagger-process",), False),
    ("tagger_process = false", ("--tagger-process",), True),
])
def test_the_tagging_process_is_auto_unless_the_file_or_a_flag_says(
        tmp_path: Path, line: str, flags: tuple[str, ...], expected: bool | None) -> None:
    path = write(tmp_path, f"[processor]\n{line}\n")
    assert run_settings("--config", str(path), *flags).tagger_process is expected


def test_a_tagging_process_setting_must_be_true_false_or_auto(tmp_path: Path) -> None:
    path = write(tmp_path, '[processor]\ntagger_process = "yes"\n')
    with pytest.raises(ConfigError, match=r"\[processor\] tagger_process = 'yes'; use true, "
                                          r'false or "auto"'):
        load_settings(path)


@pytest.mark.parametrize(("setting", "cpus", "expected"), [
    (None, 1, False), (None, 2, True), (None, 8, True),  # auto: a second core to use
    (True, 1, True), (False, 8, False),  # as set
])
def test_auto_tags_in_a_second_process_with_two_usable_cpus(
        setting: bool | None, cpus: int, expected: bool) -> None:
    assert wanted(setting, cpus) is expected


def test_a_process_pinned_to_one_cpu_tags_in_itself() -> None:
    # what 'taskset -c 0 monitor run' or a one-CPU container gets
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from monitor.runtime.tagger_process import usable_cpus, wanted; "
            "print(usable_cpus(), wanted(None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["1", "False"]
