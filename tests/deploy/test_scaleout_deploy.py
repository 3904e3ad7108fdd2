"""The scale-out deployment files: they parse, their commands are ones the monitor
accepts, what they mount exists, and Prometheus accepts its config.

The compose file and the manifests cannot run here (no Docker, no cluster);
this checks everything that can be checked without them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import build_parser
from monitor.config import load_settings
from monitor.scaleout.options import topics_from
from tests.support.binaries import require_binary

ROOT = Path(__file__).parents[2]
SCALEOUT = ROOT / "deploy" / "scaleout"
COMPOSE = SCALEOUT / "compose.yaml"
KUBERNETES = SCALEOUT / "kubernetes"
MONITOR_COMMANDS = {"collector": "collect", "worker": "worker", "archiver": "archive"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(KUBERNETES.glob("*.yaml"))
            if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def parses(argv: list[str]) -> None:
    """The monitor's own parser accepts the command line (argparse exits otherwise)."""
    build_parser().parse_args(argv)


def test_compose_has_every_service_with_kafka_in_kraft_mode() -> None:
    services = compose()["services"]
    assert set(services) >= {"kafka", "collector", "worker", "archiver", "prometheus",
                             "alertmanager", "grafana"}
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in kafka
    assert services["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("service", sorted(MONITOR_COMMANDS))
def test_compose_monitor_commands_are_valid(service: str) -> None:
    command = compose()["services"][service]["command"]
    assert command[0] == MONITOR_COMMANDS[service]
    parses(command)
    assert "MONITOR_PSEUDONYM_KEY" in compose()["services"][service]["environment"]


def test_compose_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (SCALEOUT / source).exists(), f"{name}: {source} does not exist"
    build = compose()["x-monitor"]["build"]
    assert (SCALEOUT / build["context"] / build["dockerfile"]).is_file()


def test_the_compose_config_loads() -> None:
    settings = load_settings(SCALEOUT / "monitor.toml")
    topics = topics_from(settings, argparse.Namespace())
    assert topics.names == ("posts", "tagged", "flags")
    assert settings.sources


def test_manifests_have_their_shape() -> None:
    docs = manifests()
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in docs}
    assert {("Deployment", "monitor-worker"), ("HorizontalPodAutoscaler", "monitor-worker"),
            ("StatefulSet", "monitor-collector"), ("StatefulSet", "monitor-archiver"),
            ("ConfigMap", "monitor-config")} <= kinds
    for path, doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"], path
        if doc["kind"] in ("Deployment", "StatefulSet"):
            spec = doc["spec"]
            selector = spec["selector"]["matchLabels"]
            assert selector.items() <= spec["template"]["metadata"]["labels"].items(), path
            for container in spec["template"]["spec"]["containers"]:
                parses(container["args"])
                mounts = {m["name"] for m in container.get("volumeMounts", [])}
                declared = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
                declared |= {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
                assert mounts <= declared, f"{path}: undeclared volumes {mounts - declared}"


def test_workers_scale_by_replicas_up_to_the_partitions(tmp_path: Path) -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in manifests()}
    config = tmp_path / "monitor.toml"
    config.write_text(docs[("ConfigMap", "monitor-config")]["data"]["monitor.toml"],
                      encoding="utf-8")
    partitions = topics_from(load_settings(config), argparse.Namespace()).partitions
    hpa = docs[("HorizontalPodAutoscaler", "monitor-worker")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "monitor-worker"
    assert docs[("Deployment", "monitor-worker")]["spec"]["replicas"] <= hpa["maxReplicas"]
    assert hpa["maxReplicas"] <= partitions, "replicas beyond the partitions would idle"


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == files


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    shutil.copy(SCALEOUT / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job_name: social-monitor" in (SCALEOUT / "prometheus.yml").read_text()
