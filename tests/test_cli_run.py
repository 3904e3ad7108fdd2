"""``monitor run``: what a user types and what they get back (exit codes, messages, archive).

Most cases call the console entry point :func:`monitor.cli.main` in this
process; one runs the real ``monitor`` process to prove the exit code reaches
the shell. Full runs with signals and a live /metrics are in tests/e2e/.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.resource_tracker
import multiprocessing.spawn
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from monitor.archive_export import iter_day
from monitor.cli import main

TESTS = Path(__file__).parent
RULES = TESTS / "runtime" / "rules"
BAD_RULES = TESTS / "tagging" / "rulesets" / "bad_patterns"  # loads, does not compile
POSTS = TESTS / "sources" / "data" / "posts.jsonl"  # four posts, 2025-08-12 and -13


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where ./archive and ./state may be created."""
    monkeypatch.chdir(tmp_path)


def run(*argv: str) -> int:
    return main(["run", "--rules", str(RULES), "--metrics-addr", "127.0.0.1:0",
                 "--progress", "off", *argv])


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run, expect exit code 2, return the one-line message."""
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("monitor run: "), err
    return err


# -- usage errors: exit code 2 and what to do ----------------------------------------


@pytest.mark.parametrize(("uri", "message"), [
    ("replay:{posts}?speed=fast", "speed='fast': use max, realtime or a factor such as 10x"),
    ("replay:{posts}?speed=0x", "speed='0x': use max, realtime or a factor such as 10x"),
    ("replay:{posts}?sped=max", "unknown option(s) sped; use speed="),
    ("replay:{posts}.missing", "no such file {posts}.missing"),
    ("replay:{posts}?format=xml", "format='xml': use jsonl or csv"),
    ("nope:firehose", "unknown source 'nope:firehose'; use one of replay:"),
])
def test_a_bad_source_is_a_usage_error(capsys: pytest.CaptureFixture[str], uri: str,
                                       message: str) -> None:
    err = usage_error(capsys, "--source", uri.format(posts=POSTS), "--exit-when-done")
    assert message.format(posts=POSTS) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("where", [("--no-tagger-process",), ("--tagger-process",)],
                         ids=["here", "tagger-process"])
def test_rules_that_do_not_compile_are_a_usage_error_with_file_and_line(
        capsys: pytest.CaptureFixture[str], where: tuple[str, ...]) -> None:
    # with --tagger-process the child compiles them: its problems are the message
    err = usage_error(capsys, "--rules", str(BAD_RULES), "--source", f"replay:{POSTS}",
                      "--exit-when-done", *where)
    assert "the ruleset has 4 problem(s)" in err
    assert "rules.yaml:14: rule 'grief.lookbehind': regex '(?<=i )miss 4o' does not compile" \
        in err
    assert "run 'monitor rules check' after fixing them" in err and "Traceback" not in err


def imported_by(*argv: str) -> set[str]:
    """The top-level packages ``python -m monitor ARGV`` imports (``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor", *argv],
                          capture_output=True, text=True, timeout=60, check=True)
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_monitor_run_does_not_import_the_other_commands_libraries() -> None:
    # with --tagger-process, spaCy is imported only where the rules are compiled
    heavy = {"spacy", "faust", "aiokafka", "pyarrow"}
    assert heavy <= imported_by("--help")  # the whole command line needs them all
    assert imported_by("run", "--help") & heavy == set()


@pytest.mark.parametrize("flag", ["--batch-size", "--queue-size"])
def test_sizes_below_one_are_refused(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    err = usage_error(capsys, "--source", f"replay:{POSTS}", flag, "0")
    assert "--batch-size and --queue-size must be at least 1" in err


def test_a_metrics_port_in_use_says_to_pick_another(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = usage_error(capsys, "--source", f"replay:{POSTS}",
                          "--metrics-addr", f"127.0.0.1:{port}")
    assert f"metrics address 127.0.0.1:{port} is in use; pass --metrics-addr" in err


def test_a_bad_metrics_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "--source", f"replay:{POSTS}", "--metrics-addr", "localhost:http")
    assert "use HOST:PORT, e.g. 127.0.0.1:9464" in err


def test_a_config_mistake_names_the_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text("[processor]\nbatchsize = 8\n", encoding="utf-8")
    err = usage_error(capsys, "--config", str(config))
    assert f"{config}: unknown key [processor] batchsize; did you mean 'batch_size'?" in err


def test_a_bad_progress_mode_in_the_config_names_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[display]\nprogress = "fancy"\n', encoding="utf-8")
    code = main(["run", "--config", str(config), "--rules", str(RULES), "--source",
                 f"replay:{POSTS}", "--exit-when-done", "--metrics-addr", "127.0.0.1:0"])
    assert code == 2
    assert str(config) in capsys.readouterr().err


def test_the_exit_code_reaches_the_shell(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--source", f"replay:{tmp_path}/nope.jsonl",
         "--rules", str(RULES), "--metrics-addr", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"monitor run: replay:{tmp_path}/nope.jsonl: no such file {tmp_path}/nope.jsonl")


@pytest.fixture
def no_python_to_spawn() -> Iterator[None]:
    """Child processes spawn ``/bin/false``: a tagging process exits at once (code 1)."""
    multiprocessing.resource_tracker.ensure_running()  # its own helper keeps real Python
    spawn = multiprocessing.get_context("spawn")
    python = multiprocessing.spawn.get_executable()
    spawn.set_executable("/bin/false")
    yield
    spawn.set_executable(python)


def test_a_tagging_process_asked_for_that_cannot_start_is_a_usage_error(
        capsys: pytest.CaptureFixture[str], no_python_to_spawn: None) -> None:
    err = usage_error(capsys, "--source", f"replay:{POSTS}", "--exit-when-done",
                      "--tagger-process")
    assert "--tagger-process: the tagging process exited at start (code 1); " \
        "--no-tagger-process tags in this process" in err


def test_without_a_tagging_process_by_default_this_one_tags(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, no_python_to_spawn: None) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    archive = tmp_path / "archive"
    assert run("--source", f"replay:{POSTS}?speed=max", "--exit-when-done",
               "--archive-dir", str(archive), "--key-file", str(tmp_path / "pseudonym.key")) == 0

    assert "the tagging process exited at start (code 1): tagging in this process" \
        in caplog.text
    assert sum(1 for _ in iter_day(archive / "2025-08-13")) > 0


# -- runs that work ---------------------------------------------------------------------


def test_a_replay_run_archives_with_pseudonyms_and_verifies(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert run("--source", f"replay:{POSTS}?speed=max", "--exit-when-done",
               "--archive-dir", str(archive), "--key-file", str(tmp_path / "pseudonym.key")) == 0

    days = sorted(p.name for p in archive.iterdir() if p.is_dir())
    assert days == ["2025-08-12", "2025-08-13"]
    posts = [t.post for day in days for t in iter_day(archive / day)]
    assert sorted(p.id for p in posts) == ["4004", "bluesky:3lm2stmke5ikt", "mastodon:112233",
                                           "replay-3"]
    authors = {p.author for p in posts} - {None}
    assert len(authors) == 3
    assert all(len(a) == 32 and int(a, 16) >= 0 for a in authors)  # keyed pseudonyms, not handles
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    assert main(["archive", "verify", str(archive)]) == 0


def test_no_pseudonymize_keeps_handles(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert run("--source", f"replay:{POSTS}", "--exit-when-done", "--archive-dir", str(archive),
               "--no-pseudonymize") == 0
    [post] = [t.post for t in iter_day(archive / "2025-08-12")]
    assert post.author == "@lena@mastodon.social"
    assert not (tmp_path / "state").exists()  # no key needed, none made


def test_no_archive_writes_nothing(tmp_path: Path) -> None:
    assert run("--source", f"replay:{POSTS}", "--exit-when-done", "--no-archive") == 0
    assert list(tmp_path.iterdir()) == []


def test_a_config_file_runs_like_flags(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "monitor.toml"
    config.parent.mkdir()
    config.write_text(f"""\
sources = ["replay:{POSTS}?speed=max"]
rules = "{RULES}"
exit_when_done = true
[metrics]
addr = "127.0.0.1:0"
[archive]
dir = "out/archive"
key_file = "out/pseudonym.key"
[display]
progress = "off"
""", encoding="utf-8")
    assert main(["run", "--config", str(config)]) == 0
    manifest = orjson.loads((config.parent / "out/archive/2025-08-13/manifest.json").read_bytes())
    assert manifest["posts"] == 3
    assert manifest["ruleset"]["name"] == "runtime_fixture"


def test_without_a_source_and_without_network_the_live_default_says_so_and_points_to_the_sample(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from monitor.commands import run as run_command

    with socket.socket() as closed:  # a port nobody listens on: "the network is unreachable"
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(run_command, "_LIVE_PROBES", (("127.0.0.1", port),))
    code = main(["run", "--archive-dir", str(tmp_path / "a"), "--key-file", str(tmp_path / "k"),
                 "--state-dir", str(tmp_path / "s"), "--metrics-addr", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "none of their servers can be reached" in err
    assert "make run" in err
    assert "Traceback" not in err
