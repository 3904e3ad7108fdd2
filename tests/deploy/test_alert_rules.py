"""The shipped Prometheus rules and Alertmanager config: valid, unit-tested, documented.

promtool and amtool come with the Debian packages prometheus and
prometheus-alertmanager (`make test-deps`); missing is a skip locally and a
failure in CI.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.sinks.metrics import Metrics
from monitor.sinks.mqtt import MqttSink
from monitor.tagging import default_rules_path, load_ruleset
from tests.support.binaries import require_binary
from tests.support.prometheus import DURATION, parse_duration, scale_alertmanager, scale_rules

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "tests" / "alerts.test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
README = DEPLOY / "README.md"
SEVERITIES = {"critical", "warning", "info"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(ALERTS)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary("amtool")


def test_promtool_check_rules(promtool: str) -> None:
    result = _run([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = _run([promtool, "test", "rules", str(ALERT_TESTS)])
    assert result.returncode == 0, (
        f"promtool test rules {ALERT_TESTS.relative_to(ROOT)} failed:\n"
        f"{result.stdout}{result.stderr}")
    assert "SUCCESS" in result.stdout


def test_example_prometheus_config_is_valid_and_loads_the_rules(promtool: str) -> None:
    result = _run([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    config = _load(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["social-monitor"]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    # MonitorDown watches this job by name
    assert all('job="social-monitor"' in rule["expr"]
               for rule in _alerts() if rule["alert"] == "MonitorDown")


def test_amtool_check_config(amtool: str) -> None:
    result = _run([amtool, "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    (["alertname=CsamRiskFlagged", "flag=csam_risk", "severity=critical"], "organizers-critical"),
    (["alertname=SpamFlagSpike", "flag=spam", "severity=warning"], "organizers"),
    (["alertname=OffTopicFlagSpike", "flag=off_topic", "severity=info"], "organizers"),
])
def test_alertmanager_routes_by_severity(amtool: str, labels: list[str], receiver: str) -> None:
    result = _run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                   *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_alertmanager_groups_by_alertname_and_flag_and_resends_critical_soon() -> None:
    route = _load(ALERTMANAGER)["route"]
    assert route["group_by"] == ["alertname", "flag"]
    critical = next(r for r in route["routes"] if r["matchers"] == ['severity="critical"'])
    assert parse_duration(critical["group_wait"]) <= parse_duration("10s")
    assert parse_duration(critical["repeat_interval"]) <= parse_duration("1h")
    hooks = [hook["url"] for receiver in _load(ALERTMANAGER)["receivers"]
             for hook in receiver.get("webhook_configs", [])]
    assert hooks and all(hook["send_resolved"] for receiver in _load(ALERTMANAGER)["receivers"]
                         for hook in receiver["webhook_configs"])


def test_every_alert_has_a_severity_flag_and_annotations_with_numbers() -> None:
    alerts = _alerts()
    assert len(alerts) >= 9
    for rule in alerts:
        name, labels, notes = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in SEVERITIES, f"{name}: severity must be one of {SEVERITIES}"
        assert {"summary", "description", "runbook"} <= notes.keys(), f"{name}: annotations"
        assert "$value" in notes["description"], f"{name}: the description must show $value"
        assert "\n" not in notes["runbook"].strip(), f"{name}: the runbook is one line"
        if "Flag" in name:
            assert "flag" in rule["expr"], f"{name}: a flag alert carries the flag label"


def test_csam_alert_fires_at_once_and_is_critical() -> None:
    (csam,) = [rule for rule in _alerts() if rule["alert"] == "CsamRiskFlagged"]
    assert "for" not in csam
    assert csam["labels"]["severity"] == "critical"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _load(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - firing == set(), "alerts without a firing promtool test"
    assert names - quiet == set(), "alerts without a not-firing promtool test"


def test_rules_read_only_metrics_the_monitor_exports() -> None:
    exported = set()
    registry = Metrics(load_ruleset(default_rules_path())).registry
    MqttSink("mqtt://127.0.0.1:1883/social", registry=registry, author=None)  # --mqtt-publish
    for family in registry.collect():
        exported.add(family.name + "_total" if family.type == "counter" else family.name)
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    for rule in _rules():
        used = set(re.findall(r"(?<![\w:])(social_[a-z_]+)\b(?!:)", rule["expr"]))
        assert used <= exported, f"{rule.get('alert') or rule['record']}: unknown {used - exported}"
        for name in re.findall(r"\b([a-z_]+:[a-z_]+:[a-z0-9_]+)\b", rule["expr"]):
            assert name in recorded, f"{rule.get('alert')}: {name} is not recorded in alerts.yml"


def test_every_alert_is_documented_with_its_runbook() -> None:
    readme = README.read_text(encoding="utf-8")
    for rule in _alerts():
        assert f"`{rule['alert']}`" in readme, f"{rule['alert']} is not in {README.name}"
    assert "http://127.0.0.1:9095/alerts" in readme


def _without_durations(doc: Any) -> Any:
    """The rules with every duration replaced by D: what must not change when scaling."""
    text = yaml.safe_dump(doc, sort_keys=True, width=10_000)
    return re.sub(DURATION, "D", text)


def test_time_scaled_rules_keep_the_shipped_logic(promtool: str, tmp_path: Path) -> None:
    shipped = ALERTS.read_text(encoding="utf-8")
    scaled = scale_rules(shipped, 60)
    assert _without_durations(yaml.safe_load(scaled)) == _without_durations(yaml.safe_load(shipped))
    fors = [(a.get("for"), b.get("for")) for a, b in zip(
        _alerts(), [r for g in yaml.safe_load(scaled)["groups"] for r in g["rules"]
                    if "alert" in r], strict=True)]
    for original, fast in fors:
        if original is not None:
            assert parse_duration(fast) * 60 == parse_duration(original)
    assert "[5s]" in scaled and "[1m] offset 5s" in scaled and "[5m]" not in scaled
    path = tmp_path / "alerts.scaled.yml"
    path.write_text(scaled, encoding="utf-8")
    result = _run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_time_scaled_alertmanager_keeps_the_routing(amtool: str, tmp_path: Path) -> None:
    scaled = scale_alertmanager(ALERTMANAGER.read_text(encoding="utf-8"), 60,
                                "http://127.0.0.1:1/hook")
    doc = yaml.safe_load(scaled)
    assert doc["route"]["group_interval"] == "5s"
    assert {hook["url"] for r in doc["receivers"] for hook in r["webhook_configs"]} == {
        "http://127.0.0.1:1/hook"}
    path = tmp_path / "alertmanager.yml"
    path.write_text(scaled, encoding="utf-8")
    result = _run([amtool, "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
