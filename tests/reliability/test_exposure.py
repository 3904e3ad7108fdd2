"""Nothing is exposed beyond this machine unless asked: metrics bind to loopback by default."""

from __future__ import annotations

import argparse

from monitor.commands.run import register, settings_from_args
from monitor.sinks.metrics import Metrics
from monitor.tagging import load_tagger
from tests.support.monitor_process import RULES


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    settings = settings_from_args(parser.parse_args(["run"]))
    assert settings.metrics_addr == "127.0.0.1:9464"

    server = Metrics(load_tagger(RULES).ruleset).serve("127.0.0.1:0")
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
