"""The daemon's configuration: frozen dataclasses built from ``etc/ivrd.yaml``.

Every key is optional; the defaults below are the embedded configuration ``ivrd run`` uses
without ``-c``. A wrong key or value is reported as ``file:line:column: what was expected``,
all problems at once.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flows.expressions import ExpressionError
from flows.schema import Key
from routing.matcher import Escalation, Requirement

from .admission import Limits
from .yaml_loader import ConfigError, Problem, bind, compose_file


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
    max_tcp_connections_per_source: int = 32
    tcp_message_timeout: float = 10.0
    tcp_idle_timeout: float = 900.0
    invites_per_second_per_source: float = 50.0
    invite_burst_per_source: int = 100
    trusted_sources: tuple[str, ...] = ("127.0.0.1", "::1")
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    realm: str = "ivrd"
    accounts: dict[str, str] = field(default_factory=dict)
    digest_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = ("SHA-256", "MD5")

    def check(self) -> str | None:
        if not self.listen:
            return "listen: expected at least one listener"
        if not self.digest_algorithms or len(set(self.digest_algorithms)) != len(self.digest_algorithms):
            return "digest_algorithms: expected SHA-256 and/or MD5, each once"
        if len(set(self.listen)) != len(self.listen):
            return "listen: the same listener is given twice"
        if not 0 <= self.answer_after <= 60:
            return "answer_after: expected 0-60 seconds"
        if not 1024 <= self.max_message_bytes <= 65535:
            return "max_message_bytes: expected 1024-65535"
        if not 1 <= self.max_tcp_connections_per_source <= self.max_tcp_connections:
            return "max_tcp_connections_per_source: expected 1 to max_tcp_connections"
        if not 1 <= self.tcp_message_timeout <= 120 or not 30 <= self.tcp_idle_timeout <= 86400:
            return "tcp_message_timeout, tcp_idle_timeout: expected 1-120 s and 30-86400 s"
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
    latch: Literal["first", "any", "sdp"] = "first"
    inband_dtmf: Literal["auto", "always", "never"] = "auto"
    idle: Literal["silence", "nothing"] = "silence"
    jitter_min_ms: int = 20
    jitter_max_ms: int = 200
    timeout_seconds: float = 30.0  # a caller who sends no RTP or RTCP this long is gone: BYE (0: never)
    hold_timeout_seconds: float = 600.0  # the same while the caller holds the call (0: never)

    def check(self) -> str | None:
        for name in ("timeout_seconds", "hold_timeout_seconds"):
            if not (getattr(self, name) == 0 or 1 <= getattr(self, name) <= 86400):
                return f"{name}: expected 1-86400 seconds, or 0 for never"
        if not 1024 <= self.rtp_port_min < self.rtp_port_max <= 65535:
            return "rtp_port_min, rtp_port_max: expected 1024 <= min < max <= 65535"
        if not self.codecs:
            return "codecs: expected at least one of PCMU, PCMA"
        if not 20 <= self.jitter_min_ms <= self.jitter_max_ms <= 1000:
            return "jitter_min_ms, jitter_max_ms: expected 20 <= min <= max <= 1000"
        return _check_ip(self.address, "address") if self.address is not None else None


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """When new calls are refused (see :mod:`ivrd.admission`)."""

    enabled: bool = True
    busy: float = 0.85  # share of one core the event loop's thread may use
    loop_lag_ms: float = 20.0
    late_frames: float = 0.01  # share of audio frames that may leave more than 10 ms late
    recover: float = 0.75  # every measure under this share of its bound ...
    calm_seconds: float = 2.0  # ... for this long, and calls are taken again
    retry_after: int = 5  # seconds, told to callers refused
    busy_seconds: float = 2.0  # busy past its bound this long counts (a burst of call setups does not)

    def check(self) -> str | None:
        if not 0.1 <= self.busy <= 1 or not 0 < self.late_frames <= 1 or not 1 <= self.loop_lag_ms <= 1000:
            return "busy, late_frames, loop_lag_ms: expected 0.1-1, 0-1, 1-1000"
        if not 0.1 <= self.recover < 1 or not 0 <= self.calm_seconds <= 60 or not 1 <= self.retry_after <= 3600:
            return "recover, calm_seconds, retry_after: expected 0.1-0.99, 0-60 s, 1-3600 s"
        if not 0 <= self.busy_seconds <= 60:
            return "busy_seconds: expected 0-60 s"
        return None

    def limits(self) -> Limits:
        return Limits(self.busy, self.loop_lag_ms / 1000, self.late_frames, self.recover, self.calm_seconds,
                      self.busy_seconds)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallsConfig:
    max_concurrent: int = 1000
    max_duration: float = 3600.0
    drain_seconds: float = 0.0
    record: bool = False
    record_announcement: str | None = None  # said to each caller before anything else when calls are recorded
    recordings_dir: str = "recordings"
    records: str = "calls.db"  # the call-record database (SQLite); "" keeps none
    keep_days: float = 0.0  # records, recordings and messages older than this are deleted (0: kept)
    transcribe: bool = False  # recorded calls to text once over, searchable (needs record and records)
    transcribe_workers: int = 1  # processes transcribing, at the lowest priority
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)

    def check(self) -> str | None:
        if not 0 <= self.keep_days <= 36500:
            return "keep_days: expected 0 (keep everything) to 36500 days"
        if self.transcribe and (not self.record or not self.records):
            return "transcribe: the calls' recordings are transcribed: it needs record: true and records"
        if not 1 <= self.transcribe_workers <= 64:
            return "transcribe_workers: expected 1-64"
        if self.max_concurrent < 1:
            return "max_concurrent: expected at least 1"
        if self.max_duration <= 0:
            return "max_duration: expected a positive number of seconds"
        if not 0 <= self.drain_seconds <= 86400:
            return "drain_seconds: expected 0-86400"
        return None


@dataclass(frozen=True, slots=True)
class FlowsConfig:
    dir: str | None = None
    watch_seconds: float = 2.0
    voicemail_dir: str = "voicemail"
    lookup_max_bytes: int = 65536
    transfer_targets: tuple[str, ...] = ()

    def check(self) -> str | None:
        if not 0 <= self.watch_seconds <= 3600:
            return "watch_seconds: expected 0-3600 (0: reload on SIGHUP only)"
        return None if 1024 <= self.lookup_max_bytes <= 16 << 20 else "lookup_max_bytes: expected 1024-16777216"


MIN_CONFIDENCE = {"pocketsphinx": 0.5, "vosk": 0.5}  # from bench/asr_accuracy.py (etc/ivrd.yaml says what)


@dataclass(frozen=True, slots=True)
class AsrConfig:
    language: str = "en"
    models: dict[str, str] = field(default_factory=dict)
    threads: int = 2
    end_silence_ms: int = 700
    complete_silence_ms: int = 400  # when what was said so far is a whole answer (needs partial results)
    alternatives: int = 0  # Vosk: readings after the best one kept with each result (n-best)
    acoustic_chunk_ms: int = 0  # Vosk: audio its network evaluates at a time (0: the model's own setting)
    # per engine: a result less sure than this is a no-match (bench/asr_accuracy.py measures it)
    min_confidence: dict[str, float] = field(default_factory=lambda: dict(MIN_CONFIDENCE))

    def check(self) -> str | None:
        unknown = sorted(set(self.min_confidence) - set(MIN_CONFIDENCE))
        if unknown or not all(0 <= v <= 1 for v in self.min_confidence.values()):
            return f"min_confidence: expected {' and '.join(MIN_CONFIDENCE)}, each 0-1"
        if not 1 <= self.threads <= 64:
            return "threads: expected 1-64"
        if not 0 <= self.alternatives <= 10:
            return "alternatives: expected 0-10"
        if not 200 <= self.end_silence_ms <= 5000:
            return "end_silence_ms: expected 200-5000"
        if not 200 <= self.complete_silence_ms <= self.end_silence_ms:
            return f"complete_silence_ms: expected 200-{self.end_silence_ms} (at most end_silence_ms)"
        if self.acoustic_chunk_ms and not 100 <= self.acoustic_chunk_ms <= 1000:
            return "acoustic_chunk_ms: expected 100-1000, or 0 for the model's own setting"
        return None


@dataclass(frozen=True, slots=True)
class HttpConfig:
    address: str = "127.0.0.1"
    port: int = 9460
    token: str | None = None  # when set, the API asks for "Authorization: Bearer <token>"
    tls_cert: str | None = None  # PEM files (relative to the configuration): HTTPS instead of HTTP
    tls_key: str | None = None
    desk_session_hours: float = 12.0  # an agent's sign-in on /desk lasts this long

    def check(self) -> str | None:
        if not 0 <= self.port < 65536:
            return "port: expected 1-65535, or 0 for no HTTP server"
        if (self.tls_cert is None) != (self.tls_key is None):
            return "tls_cert, tls_key: expected both (HTTPS) or neither (HTTP)"
        if not 0.1 <= self.desk_session_hours <= 168:
            return "desk_session_hours: expected 0.1-168"
        return _check_ip(self.address, "address")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server the pages hand their browser (RTCIceServer)."""

    urls: tuple[str, ...] = ()
    username: str | None = None
    credential: str | None = None

    def check(self) -> str | None:
        if not self.urls or not all(url.startswith(("stun:", "turn:", "turns:")) for url in self.urls):
            return "urls: expected stun:, turn: or turns: URLs"
        return None


@dataclass(frozen=True, slots=True)
class WebRtcConfig:
    """Browser legs (agents on /desk): where their media goes, in what codecs."""

    addresses: tuple[str, ...] = ()  # host candidates; empty: every address of the machine
    port_min: int = 30000
    port_max: int = 30999
    codecs: tuple[Literal["PCMU", "PCMA", "opus"], ...] = ("PCMU", "PCMA", "opus")
    ice_servers: tuple[IceServer, ...] = ()

    def check(self) -> str | None:
        if not 1024 <= self.port_min < self.port_max < 65536:
            return "port_min, port_max: expected 1024 <= port_min < port_max <= 65535"
        if not self.codecs:
            return "codecs: expected at least one of PCMU, PCMA, opus"
        for address in self.addresses:
            if problem := _check_ip(address, "addresses"):
                return problem
        return None


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One agent queue (the matcher's :class:`~routing.matcher.QueueSpec`, plus what the caller hears)."""

    skills: str = "True"
    strategy: Literal["longest_idle", "most_skilled", "round_robin", "fewest_calls"] = "longest_idle"
    rank_skill: str | None = None
    escalations: tuple[Escalation, ...] = ()
    max_waiting: int = 1000
    max_wait: float = 3600.0
    join_empty: bool = False
    leave_when_empty: bool = False
    wrap_up: float = 10.0
    max_misses: int = 3
    hold_music: str | None = None  # a WAV file, looped while the caller waits
    callback_key: Key | None = None  # pressed while waiting: called back instead, keeping the place in line
    announce_every: float = 0.0  # seconds between position and expected-wait announcements (0: none)
    service_level: float = 20.0  # seconds: answered within it counts as served in time
    short_abandon: float = 5.0  # seconds: a caller who hangs up sooner is not counted against the service level
    dispositions: tuple[str, ...] = ()  # what an agent may say of a call at wrap-up (on /desk)
    disposition_keys: dict[str, str] = field(default_factory=dict)  # on a desk phone: * then the key -> disposition

    def check(self) -> str | None:
        for key, disposition in self.disposition_keys.items():
            if key not in "0123456789#" or len(key) != 1 or disposition not in self.dispositions:
                return (f"disposition_keys: expected single keys (0-9, #) for dispositions of this queue's list, "
                        f"got {key!r}: {disposition!r}")
        for text in (self.skills, *(e.skills for e in self.escalations if e.skills)):
            try:
                Requirement(text)
            except ExpressionError as exc:
                return f"skills: {text!r} is not a skills expression ({exc})"
        if self.max_waiting < 1 or self.max_wait <= 0 or self.wrap_up < 0 or self.max_misses < 1:
            return "max_waiting, max_wait, wrap_up, max_misses: expected >= 1, > 0, >= 0, >= 1"
        if self.service_level <= 0 or self.short_abandon < 0:
            return "service_level, short_abandon: expected > 0 and >= 0 seconds"
        if [e.after for e in self.escalations] != sorted(e.after for e in self.escalations):
            return "escalations: expected in order of their `after` seconds"
        if any(e.leave and (e.skills or e.overflow) for e in self.escalations):
            return "escalations: a step with `leave: true` takes the caller out of the line: no skills or overflow"
        if self.announce_every and self.announce_every < 10:
            return "announce_every: expected 0 (none) or at least 10 seconds"
        return None


@dataclass(frozen=True, slots=True)
class AgentConfig:
    name: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    # "registered": the phones registered for the account of the same name (sip.accounts); "browser": the
    # agent's desk (/desk) in a browser tab; or a SIP URI
    contact: str = "registered"
    logged_in: bool = False  # at start; agents log in and out through the HTTP API
    password: str | None = None  # signs the agent in on /desk (None: no desk)

    def check(self) -> str | None:
        if any(not 0 <= level <= 5 for level in self.skills.values()):
            return "skills: expected proficiencies 0-5"
        if self.contact not in ("registered", "browser") and not self.contact.startswith(("sip:", "sips:")):
            return f"contact: expected \"registered\", \"browser\" or a sip: URI, got {self.contact!r}"
        if self.contact == "browser" and not self.password:
            return "password: an agent whose contact is the browser signs in on /desk with one"
        if self.password is not None and len(self.password) < 8:
            return "password: expected at least 8 characters"
        return None


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    """Where and how callers who asked to be called back are called (agent first, then the caller)."""

    gateway: str | None = None  # a SIP URI with {number}: "sip:{number}@pbx.example.com"
    numbers: tuple[str, ...] = ()  # the numbers that may be called back ("+4930*": a prefix)
    attempts: int = 3  # calls to the caller before the callback is given up
    retry_after: float = 120.0  # seconds between them (the caller keeps their place meanwhile)
    ring_timeout: float = 30.0  # seconds the caller's phone rings

    def check(self) -> str | None:
        if self.gateway is not None and (not self.gateway.startswith(("sip:", "sips:"))
                                         or "{number}" not in self.gateway):  # fmt: skip
            return f"gateway: expected a sip: URI with {{number}} in it, got {self.gateway!r}"
        if self.gateway is not None and not self.numbers:
            return "numbers: expected the numbers callbacks may go to, e.g. [\"+4930*\"] (no others are ever called)"
        if not 1 <= self.attempts <= 10 or not 10 <= self.retry_after <= 86400 or not 5 <= self.ring_timeout <= 120:
            return "attempts, retry_after, ring_timeout: expected 1-10, 10-86400 s, 5-120 s"
        return None

    def allows(self, number: str) -> bool:
        """Whether ``number`` (digits, a leading + at most) may be called back."""
        return bool(CALLBACK_NUMBER.fullmatch(number)) and any(
            number.startswith(p[:-1]) if p.endswith("*") else number == p for p in self.numbers)  # fmt: skip


CALLBACK_NUMBER = re.compile(r"\+?[0-9]{3,20}")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """This node, when several share one contact center (``routing.backend`` a Redis URL)."""

    node: str = ""  # its name in logs and in Redis (default: the host's name); each start adds a suffix
    lease_seconds: float = 3.0  # a dead node, or a dead lease holder, is noticed within this
    key_prefix: str = "ivrd"  # the Redis keys' prefix: one per contact center sharing a Redis

    def check(self) -> str | None:
        if not 0.5 <= self.lease_seconds <= 60:
            return "lease_seconds: expected 0.5-60"
        if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", self.node) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}",
                                                                                   self.key_prefix):  # fmt: skip
            return "node, key_prefix: expected letters, digits, '.', '_' or '-' (at most 64)"
        return None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    offer_timeout: float = 20.0  # seconds an agent's phone rings before the offer counts as missed
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    context_url: str | None = None  # where agents fetch a call's context (default: this daemon's HTTP server)
    callback: CallbackConfig = field(default_factory=CallbackConfig)
    backend: str = "memory"  # or a Redis URL (redis://host:port/db): several nodes, one contact center
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @property
    def shared(self) -> bool:
        return self.backend != "memory"

    def check(self) -> str | None:
        if not 1 <= self.offer_timeout <= 300:
            return "offer_timeout: expected 1-300 seconds"
        if self.shared and not self.backend.startswith(("redis://", "rediss://", "unix://")):
            return f"backend: expected memory or a Redis URL (redis://host:port/db), got {self.backend!r}"
        for name, queue in self.queues.items():
            for step in queue.escalations:
                if step.overflow is not None and step.overflow not in self.queues:
                    return f"queues: {name} overflows to {step.overflow!r}, which is not a queue here"
            if queue.callback_key is not None and self.callback.gateway is None:
                return f"queues: {name} offers callbacks (callback_key), but callback.gateway is not set"
        return None


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """How the center's numbers are counted beyond the queues' own (first-call resolution)."""

    repeat_window: float = 7.0  # days: a caller who calls again within this unsettles their last resolved call
    resolved: tuple[str, ...] = ("resolved",)  # the dispositions that say the caller's matter was settled

    def check(self) -> str | None:
        if not 0 < self.repeat_window <= 90:
            return "repeat_window: expected 0-90 days"
        return None


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Config:
    sip: SipConfig = field(default_factory=SipConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    webrtc: WebRtcConfig = field(default_factory=WebRtcConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def check(self) -> str | None:
        for agent_id, agent in self.routing.agents.items():
            if agent.contact == "registered" and agent_id not in self.sip.accounts:
                return (f"routing.agents.{agent_id}: its phone registers, but sip.accounts has no account "
                        f"{agent_id!r} (or give the agent a contact: sip:... or browser)")
        return None


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
    config = bind(Config, node, str(path), problems, "") if node is not None else Config()
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    here = path.parent
    calls = dataclasses.replace(config.calls, recordings_dir=str(here / config.calls.recordings_dir),
                                records=str(here / config.calls.records) if config.calls.records else "")
    flows = dataclasses.replace(config.flows, dir=str(here / config.flows.dir) if config.flows.dir else None,
                                voicemail_dir=str(here / config.flows.voicemail_dir))  # fmt: skip
    asr = dataclasses.replace(config.asr, models={k: str(here / v) for k, v in config.asr.models.items()})
    queues = {name: dataclasses.replace(q, hold_music=str(here / q.hold_music) if q.hold_music else None)
              for name, q in config.routing.queues.items()}  # fmt: skip
    routing = dataclasses.replace(config.routing, queues=queues)
    http = dataclasses.replace(config.http, tls_cert=str(here / config.http.tls_cert) if config.http.tls_cert else None,
                               tls_key=str(here / config.http.tls_key) if config.http.tls_key else None)  # fmt: skip
    return dataclasses.replace(config, calls=calls, flows=flows, asr=asr, routing=routing, http=http)


def live_part(running: Config, fresh: Config) -> tuple[Config, list[str]]:
    """``fresh`` with what cannot change while serving (listeners, media ports and settings, speech
    models, the HTTP listener, the call limit, the file watch) kept from ``running``; and the names
    of the settings that differ there, which take a restart."""
    restart = [name for name in ("sip", "media", "asr", "webrtc", "kpi")
               if getattr(fresh, name) != getattr(running, name)]  # fmt: skip
    routing = dataclasses.replace(fresh.routing, backend=running.routing.backend, cluster=running.routing.cluster)
    if routing != fresh.routing:
        restart.append("routing.backend/cluster")
    http = dataclasses.replace(fresh.http, address=running.http.address, port=running.http.port,
                               tls_cert=running.http.tls_cert, tls_key=running.http.tls_key)  # fmt: skip
    limit = dataclasses.replace(fresh.calls, max_concurrent=running.calls.max_concurrent)
    calls = dataclasses.replace(limit, keep_days=running.calls.keep_days)
    flows = dataclasses.replace(fresh.flows, watch_seconds=running.flows.watch_seconds)
    for name, value, given in (("http.address/port/tls", http, fresh.http),
                               ("calls.max_concurrent", limit, fresh.calls),
                               ("calls.keep_days", calls, limit),
                               ("flows.watch_seconds", flows, fresh.flows)):  # fmt: skip
        if value != given:
            restart.append(name)
    return dataclasses.replace(fresh, sip=running.sip, media=running.media, asr=running.asr, webrtc=running.webrtc,
                               kpi=running.kpi,
                               http=http, calls=calls,
                               flows=flows, routing=routing), restart


__all__ = ["AdmissionConfig", "AgentConfig", "AsrConfig", "CallsConfig", "ClusterConfig", "Config", "ConfigError",
           "FlowsConfig", "HttpConfig", "Listen", "LogConfig", "MediaConfig", "QueueConfig", "RoutingConfig",
           "SipConfig", "WebRtcConfig", "live_part", "load_config"]
