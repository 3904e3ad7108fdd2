"""Typed settings: defaults here, once; a TOML file over them; flags over that.

Secrets never live in the file: tokens and keys come from the environment
(see README, "Configuration"). Paths in a config file are relative to it.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "Settings", "load_settings"]

_SECRET_WORDS = ("token", "secret", "password", "api_key", "bearer")


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the fix."""


@dataclass(slots=True)
class Settings:
    """Everything ``monitor run`` can be told; each field is also a flag."""

    sources: list[str] = field(default_factory=list)
    rules: Path | None = None
    exit_when_done: bool = False
    #: cursors (where each source resumes) and the generated pseudonym key live here
    state_dir: Path = Path("state")
    # processor
    batch_size: int = 256
    batch_wait: float = 0.05
    queue_size: int = 10_000
    dedup_window: int = 100_000
    #: tag in a second process: True, False, or None ("auto": when two or more CPUs are
    #: usable; monitor/runtime/tagger_process.py, wanted())
    tagger_process: bool | None = None
    # metrics
    metrics_addr: str = "127.0.0.1:9464"
    # archive
    archive_dir: Path = Path("archive")
    archive: bool = True
    pseudonymize: bool = True
    key_file: Path = Path("state/pseudonym.key")
    keep_raw: bool = False
    # mqtt output (credentials: MONITOR_MQTT_USERNAME / MONITOR_MQTT_PASSWORD)
    mqtt_publish: str | None = None
    mqtt_buffer: int = 10_000
    # display
    progress: str = "auto"
    # scale-out (monitor collect|worker|archive --from): topics and their shape
    kafka_posts_topic: str = "posts"
    kafka_tagged_topic: str = "tagged"
    kafka_flags_topic: str = "flags"
    kafka_partitions: int = 8
    kafka_replication: int = 1
    kafka_group: str = "monitor"


#: TOML table -> {key in the table: Settings field}
_TABLES: dict[str, dict[str, str]] = {
    "": {"sources": "sources", "rules": "rules", "exit_when_done": "exit_when_done",
         "state_dir": "state_dir"},
    "processor": {"batch_size": "batch_size", "batch_wait": "batch_wait",
                  "queue_size": "queue_size", "dedup_window": "dedup_window",
                  "tagger_process": "tagger_process"},
    "metrics": {"addr": "metrics_addr"},
    "archive": {"dir": "archive_dir", "enabled": "archive", "pseudonymize": "pseudonymize",
                "key_file": "key_file", "keep_raw": "keep_raw"},
    "mqtt": {"publish": "mqtt_publish", "buffer": "mqtt_buffer"},
    "display": {"progress": "progress"},
    "kafka": {"posts_topic": "kafka_posts_topic", "tagged_topic": "kafka_tagged_topic",
              "flags_topic": "kafka_flags_topic", "partitions": "kafka_partitions",
              "replication": "kafka_replication", "group": "kafka_group"},
}
_PATHS = {"rules", "archive_dir", "key_file", "state_dir"}
_PROGRESS = ("auto", "tty", "log", "off")


def _relative_replay(config: Path, uri: str) -> str:
    """``replay:posts.jsonl`` in a config file means next to the config file."""
    if not uri.startswith("replay:"):
        return uri
    rest = uri[len("replay:"):]
    file, sep, query = rest.partition("?")
    if not file or Path(file).is_absolute():
        return uri
    return f"replay:{config.parent / file}{sep}{query}"


def _check_type(path: Path, where: str, name: str, value: Any, default: Any) -> Any:
    if name == "tagger_process":
        if value == "auto" or isinstance(value, bool):
            return None if value == "auto" else value
        raise ConfigError(f'{path}: {where} = {value!r}; use true, false or "auto"')
    expected = type(default) if default is not None else str
    if name == "sources":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {where} must be a list of source URIs, "
                              'e.g. sources = ["replay:posts.jsonl"]')
        return [_relative_replay(path, uri) for uri in value]
    if name == "progress" and value not in _PROGRESS:
        raise ConfigError(f"{path}: {where} = {value!r}; use one of {', '.join(_PROGRESS)}")
    if name in _PATHS:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {where} must be a path in quotes")
        resolved = Path(value)
        return resolved if resolved.is_absolute() else path.parent / resolved
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: {where} must be {expected.__name__}, not {value!r}")
    return value


def load_settings(path: Path | None, base: Settings | None = None) -> Settings:
    """Defaults, then the TOML file at ``path`` (if any)."""
    settings = base or Settings()
    if path is None:
        return settings
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    defaults = {f.name: getattr(Settings(), f.name) for f in fields(Settings)}
    for key, value in data.items():
        table = key if isinstance(value, dict) else ""
        items = value.items() if isinstance(value, dict) else [(key, value)]
        if table not in _TABLES:
            close = difflib.get_close_matches(key, [t for t in _TABLES if t], 1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            raise ConfigError(f"{path}: unknown key or table '{key}'{hint}")
        for name, item in items:
            where = f"[{table}] {name}" if table else name
            if any(word in name.lower() for word in _SECRET_WORDS):
                raise ConfigError(f"{path}: {where} looks like a secret; secrets are read from "
                                  "the environment only (see README, Configuration)")
            target = _TABLES[table].get(name)
            if target is None:
                close = difflib.get_close_matches(name, list(_TABLES[table]), 1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"known: {', '.join(_TABLES[table])}"
                raise ConfigError(f"{path}: unknown key {where}; {hint}")
            setattr(settings, target, _check_type(path, where, target, item, defaults[target]))
    return settings
