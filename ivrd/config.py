"""The daemon's configuration: frozen dataclasses built from ``etc/ivrd.yaml``.

Every key is optional; the defaults below are the embedded configuration ``ivrd run`` uses
without ``-c``. A wrong key or value is reported as ``file:line:column: what was expected``,
all problems at once.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .media.player import PromptError, load_wav
from .yaml_loader import ConfigError, Problem, compose_file, scalar, where


@dataclass(frozen=True, slots=True)
class Listen:
    transport: Literal["udp", "tcp"] = "udp"
    address: str = "0.0.0.0"
    port: int = 5060

    def check(self) -> str | None:
        if not 0 < self.port < 65536:
            return "port: expected 1-65535"
        return _check_ip(self.address, "address")


@dataclass(frozen=True, slots=True)
class SipConfig:
    listen: tuple[Listen, ...] = (Listen("udp"), Listen("tcp"))
    user_agent: str = "ivrd"
    answer_after: float = 0.0
    max_message_bytes: int = 65535
    max_tcp_connections: int = 1024
    invites_per_second_per_source: float = 50.0
    invite_burst_per_source: int = 100
    trusted_sources: tuple[str, ...] = ("127.0.0.1", "::1")
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def check(self) -> str | None:
        if not self.listen:
            return "listen: expected at least one listener"
        if len(set(self.listen)) != len(self.listen):
            return "listen: the same listener is given twice"
        if not 0 <= self.answer_after <= 60:
            return "answer_after: expected 0-60 seconds"
        if not 1024 <= self.max_message_bytes <= 65535:
            return "max_message_bytes: expected 1024-65535"
        if not 0 < self.t1 <= self.t2:
            return "t1, t2: expected 0 < t1 <= t2"
        if self.invites_per_second_per_source < 0 or self.invite_burst_per_source < 1:
            return "invites_per_second_per_source, invite_burst_per_source: expected >= 0 and >= 1"
        for source in self.trusted_sources:
            try:
                ipaddress.ip_network(source, strict=False)
            except ValueError:
                return f"trusted_sources: expected addresses or networks, got {source!r}"
        return None


@dataclass(frozen=True, slots=True)
class MediaConfig:
    address: str | None = None
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    codecs: tuple[Literal["PCMU", "PCMA"], ...] = ("PCMU", "PCMA")
    tts_voice: str = "en-us"
    latch: Literal["first", "sdp"] = "first"
    inband_dtmf: Literal["auto", "always", "never"] = "auto"
    idle: Literal["silence", "nothing"] = "silence"
    jitter_min_ms: int = 20
    jitter_max_ms: int = 200

    def check(self) -> str | None:
        if not 1024 <= self.rtp_port_min < self.rtp_port_max <= 65535:
            return "rtp_port_min, rtp_port_max: expected 1024 <= min < max <= 65535"
        if not self.codecs:
            return "codecs: expected at least one of PCMU, PCMA"
        if not 20 <= self.jitter_min_ms <= self.jitter_max_ms <= 1000:
            return "jitter_min_ms, jitter_max_ms: expected 20 <= min <= max <= 1000"
        return _check_ip(self.address, "address") if self.address is not None else None


@dataclass(frozen=True, slots=True)
class CallsConfig:
    max_concurrent: int = 1000
    max_duration: float = 3600.0
    answer_prompt: str | None = None
    answer_say: str | None = None
    record: bool = False
    recordings_dir: str = "recordings"

    def check(self) -> str | None:
        if self.max_concurrent < 1:
            return "max_concurrent: expected at least 1"
        if self.max_duration <= 0:
            return "max_duration: expected a positive number of seconds"
        return None


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Config:
    sip: SipConfig = field(default_factory=SipConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    log: LogConfig = field(default_factory=LogConfig)


def _check_ip(text: str, key: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"{key}: expected an IPv4 or IPv6 address, got {text!r}"
    return None


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise :class:`ConfigError` listing every problem."""
    problems: list[Problem] = []
    node = compose_file(path, problems)
    config = _bind(Config, node, str(path), problems, "") if node is not None else Config()
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    prompt = config.calls.answer_prompt
    if prompt is not None:
        resolved = path.parent / prompt
        try:
            load_wav(resolved)
        except PromptError as exc:
            value = _find(node, "calls", "answer_prompt") if node is not None else None
            problem = f"calls.answer_prompt: {exc}"
            located = where(value, str(path), problem) if value else Problem(str(path), 1, 1, problem)
            raise ConfigError([located]) from None
        config = dataclasses.replace(config, calls=dataclasses.replace(config.calls, answer_prompt=str(resolved)))
    if config.calls.answer_say is not None and shutil.which("espeak-ng") is None:
        value = _find(node, "calls", "answer_say") if node is not None else None
        problem = "calls.answer_say: speaking text needs espeak-ng, which is not installed (apt-get install espeak-ng)"
        raise ConfigError([where(value, str(path), problem) if value else Problem(str(path), 1, 1, problem)])
    recordings = path.parent / config.calls.recordings_dir
    return dataclasses.replace(config, calls=dataclasses.replace(config.calls, recordings_dir=str(recordings)))


def _find(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The value node at ``keys`` in a tree of mappings."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = [value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
        if not found:
            return None
        node = found[0]
    return node


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "nothing (null)"}.get(tp, str(tp))  # fmt: skip


def _bind(tp: Any, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Any:
    """Build a value of type ``tp`` from ``node``; append problems and return None when it cannot."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _bind_dataclass(tp, node, file, problems, path)
    if origin is tuple:
        if not isinstance(node, yaml.SequenceNode):
            problems.append(where(node, file, f"{path}: expected {_describe(tp)}"))
            return None
        item_type = typing.get_args(tp)[0]
        items = [_bind(item_type, item, file, problems, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return tuple(items)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(tp):
            attempt: list[Problem] = []
            value = _bind(option, node, file, attempt, path)
            if not attempt:
                return value
        problems.append(where(node, file, f"{path}: expected {_describe(tp)}"))
        return None
    if not isinstance(node, yaml.ScalarNode):
        problems.append(where(node, file, f"{path}: expected {_describe(tp)}"))
        return None
    value = scalar(node)
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}:
            return value
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif tp is type(None) and value is None:
        return None
    elif type(value) is tp:
        return value
    problems.append(where(node, file, f"{path}: expected {_describe(tp)}, got {node.value!r}"))
    return None


def _bind_dataclass(tp: type, node: yaml.Node, file: str, problems: list[Problem], path: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        problems.append(where(node, file, f"{path or 'top level'}: expected a mapping"))
        return None
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    values: dict[str, Any] = {}
    before = len(problems)
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in fields:
            known = ", ".join(fields)
            where_key = f"{path + '.' if path else ''}{key}"
            problems.append(where(key_node, file, f"{where_key}: unknown key (expected one of {known})"))
            continue
        values[key] = _bind(hints[key], value_node, file, problems, f"{path + '.' if path else ''}{key}")
    if len(problems) != before:
        return None
    instance = tp(**values)
    check = getattr(instance, "check", None)
    message = check() if check is not None else None
    if message:
        problems.append(where(node, file, f"{path + '.' if path else ''}{message}"))
        return None
    return instance


__all__ = ["CallsConfig", "Config", "ConfigError", "Listen", "LogConfig", "MediaConfig", "SipConfig", "load_config"]
