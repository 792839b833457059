"""Every Prometheus metric ivrd exports, in one place.

Two kinds: metrics observed when something happens at call pace (a call set up, a menu answered,
a caller answered by an agent), kept by prometheus-client; and figures the hot paths already count
in plain integers (SIP messages, RTP packets, frame lateness) or that describe the present (agents by
state, callers waiting), read from the daemon at scrape time by :class:`_Snapshot`, so nothing on the
audio path takes a lock or builds a label. Labels are bounded by the configuration (queues, flows,
steps, languages): never a caller's number or a Call-ID.

Wait-time buckets include every queue's service-level target and short-abandon threshold, so
``ivrd_queue_wait_seconds_bucket{le="20"}`` is an exact count and service level needs no interpolation.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from operator import add
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from flows.schema import OVERFLOW_REASONS
from routing.agents import Agent, AgentState
from routing.estimate import expected_wait

from .config import QueueConfig, RoutingConfig
from .media.pacer import Lateness
from .media.rtp_session import PacketCounts, RtpSession
from .records import Resolution
from .sip.counts import SipCounts

WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0,
                3600.0)  # fmt: skip
HANDLE_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
JITTER_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
GC_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
BACKEND_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
LOOKUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The flow path's events, as a question's result.
STEP_RESULTS = {"choice": "match", "digits": "match", "speech": "match", "nomatch": "nomatch", "noinput": "noinput"}
CALLBACK_RESULTS = ("requested", "connected", "no_answer", "failed")
# What each of a media session's packet counts means, as ``ivrd_rtp_packets_<name>_total``.
_RTP_COUNTERS: dict[str, str] = {
    "received": "RTP packets received from the latched source",
    "sent": "RTP packets sent",
    "skipped": "RTP packets never sent because the event loop was held up past their time by a whole frame or more "
               "(a garbage collection, the machine): a gap in the audio, the RTP clock carried over it",
    "lost": "RTP packets that never came in time to be played (concealed with silence)",
    "late": "RTP packets that came after their playout time and were dropped",
    "foreign": "RTP packets dropped because they came from a source other than the latched one",
    "malformed": "RTP packets dropped as malformed or of a payload type not negotiated",
}  # fmt: skip


def _le(bound: float) -> str:
    """A bucket bound as the exposition writes it (``20.0``, ``+Inf``): what the ``le`` label holds."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def wait_buckets(routing: RoutingConfig) -> tuple[float, ...]:
    """The wait-time bucket bounds: the usual ones, plus each queue's targets so they come out exact."""
    targets = {q.service_level for q in routing.queues.values()} | {q.short_abandon for q in routing.queues.values()}
    return tuple(sorted(set(WAIT_BUCKETS) | targets))


class DaemonState(Protocol):
    """What the daemon shows at scrape time: the present, and the counts its hot paths keep."""

    def sip_counts(self) -> SipCounts: ...

    def calls_active(self) -> int: ...

    def tcp_connections(self) -> tuple[int, Mapping[str, int]]:
        """SIP's TCP connections open, and those refused or closed by us, by reason."""

    def sip_backlog(self) -> tuple[int, int]:
        """SIP messages waiting for their turn of the loop, and those dropped as too many waited."""

    def media_sessions(self) -> Iterable[RtpSession]:
        """The live calls' media, incoming and placed."""

    def frame_lateness(self) -> Lateness: ...

    def records_written(self) -> tuple[int, int] | None:
        """Call records written and failed; None when records are off."""

    def flow_reloads(self) -> tuple[int, int]:
        """Flow-set reloads that served, and that failed."""

    def config_reloads(self) -> Mapping[str, int]: ...

    def faults(self) -> Mapping[str, int]:
        """Faults caught, by where (:class:`~ivrd.faults.Faults`)."""

    def queues(self) -> Mapping[str, QueueConfig]: ...

    def agents(self) -> Iterable[Agent]: ...

    def queue_view(self, name: str) -> dict[str, Any]: ...

    def routing_backend(self) -> BackendFigures | None:
        """The shared routing backend's figures; None with the in-memory one."""

    def admission(self) -> AdmissionFigures: ...

    def udp_errors(self) -> tuple[int, int] | None:
        """The kernel's UDP receive errors and buffer overflows (None: not readable here)."""

    def desks(self) -> tuple[int, int, int]:
        """Agents with a desk open, browser legs ringing, and browser legs up (/desk)."""

    def transcriptions(self) -> tuple[int, int, int] | None:
        """Recordings waiting to be transcribed (or being), transcribed, failed; None: transcription off."""


class AdmissionFigures(NamedTuple):
    rate: float | None  # calls/s admitted while limiting; None: not limiting
    limited: int  # times it began limiting
    busy: float  # the event loop's busy share in the last window


class BackendFigures(NamedTuple):
    up: bool
    holding: bool  # this node holds the lease (folds the shared log)
    takeovers: int
    stale: int  # entries the shared state no longer allowed when folded: races lost (counted by the holder)


class Metrics:
    """The daemon's registry; :meth:`exposition` is what ``GET /metrics`` answers, once :meth:`observe`
    has been given the daemon's state."""

    def __init__(self, routing: RoutingConfig) -> None:
        self.registry = registry = CollectorRegistry()
        self.media_closed = _MediaTotals()
        call_setups = Counter("ivrd_call_setups", "Incoming calls by how their setup ended: answered, "
                              "rejected (by ivrd), cancelled (the caller gave up first)", ["result"],
                              registry=registry)  # fmt: skip
        # each result's child made once (a labels() lookup a call costs more than the count) and shown from 0
        self.setups = {result: call_setups.labels(result) for result in ("answered", "rejected", "cancelled")}
        self.rtp_jitter = Histogram("ivrd_rtp_jitter_seconds", "Interarrival jitter (RFC 3550) of each call's "
                                    "received audio, at the call's end", buckets=JITTER_BUCKETS,
                                    registry=registry)  # fmt: skip
        self.loop_lag = Histogram("ivrd_event_loop_lag_seconds", "How late the event loop ran a timer due now",
                                  buckets=LAG_BUCKETS, registry=registry)  # fmt: skip
        ProcessCollector(registry=registry)  # CPU, memory, open descriptors (two per call) against their limit
        GCCollector(registry=registry)
        pauses = Histogram("ivrd_gc_pause_seconds", "Garbage-collector pauses by generation: the event loop, and so "
                           "every call's audio, waits them out (generation 2, a full collection, is the long one)",
                           ["generation"], buckets=GC_BUCKETS, registry=registry)  # fmt: skip
        self._gc_pauses = [pauses.labels(str(generation)) for generation in range(3)]
        self._gc_started = 0.0
        self.speech_results = Counter("ivrd_speech_recognitions", "Speech questions by result: match, nomatch "
                                      "(heard, not understood or not accepted), noinput", ["language", "result"],
                                      registry=registry)  # fmt: skip
        self.speech_confidence = Histogram("ivrd_speech_confidence", "Confidence (0-1) of each recognition",
                                           ["language"], buckets=CONFIDENCE_BUCKETS, registry=registry)
        self.speech_latency = Histogram("ivrd_speech_result_latency_seconds", "From the end of the caller's "
                                        "speech to the recognizer's result", ["language"], buckets=LATENCY_BUCKETS,
                                        registry=registry)  # fmt: skip
        self.flow_calls = Counter("ivrd_flow_calls", "Calls started in a flow, by flow and flow-set version",
                                  ["flow", "version"], registry=registry)  # fmt: skip
        self.step_results = Counter("ivrd_flow_step_results", "Answers to menu, collect and listen steps: match, "
                                    "nomatch, noinput", ["flow", "step", "result"], registry=registry)  # fmt: skip
        self.lookup_seconds = Histogram("ivrd_lookup_duration_seconds", "Data lookups' durations, by flow",
                                        ["flow"], buckets=LOOKUP_BUCKETS, registry=registry)  # fmt: skip
        self.lookup_failures = Counter("ivrd_lookup_failures", "Data lookups that failed (error, timeout, bad "
                                       "answer), by flow", ["flow"], registry=registry)  # fmt: skip
        self.queue_offered = Counter("ivrd_queue_offered", "Callers who entered a queue", ["queue"],
                                     registry=registry)  # fmt: skip
        self.queue_answered = Counter("ivrd_queue_answered", "Callers answered by an agent", ["queue"],
                                      registry=registry)  # fmt: skip
        self.queue_abandoned = Counter("ivrd_queue_abandoned", "Callers who hung up while waiting", ["queue"],
                                       registry=registry)  # fmt: skip
        self.queue_overflowed = Counter("ivrd_queue_overflowed", "Callers who left a queue without an agent, "
                                        "back to their flow: max_wait, full, no_agents, escalated, callback",
                                        ["queue", "reason"], registry=registry)  # fmt: skip
        self.queue_callbacks = Counter("ivrd_queue_callbacks", "Callbacks: requested (the caller hung up keeping "
                                       "their place), connected, no_answer (one call back not answered), failed "
                                       "(given up)", ["queue", "result"], registry=registry)  # fmt: skip
        self.queue_wait = self._wait_histogram(wait_buckets(routing))
        self.handle_seconds = Histogram("ivrd_queue_handle_seconds", "Agent handle time per call, by phase: talk, "
                                        "hold, wrap_up", ["queue", "phase"], buckets=HANDLE_BUCKETS,
                                        registry=registry)  # fmt: skip
        self.csat = Counter("ivrd_csat_responses", "Post-call surveys by queue and score: 1-5, or none (the caller "
                            "hung up or gave no score)", ["queue", "score"], registry=registry)  # fmt: skip
        self.csat_points = Counter("ivrd_csat_points", "The scores of the surveys answered, summed, by queue and "
                                   "agent (over ivrd_csat_scored_total: the mean)", ["queue", "agent"],
                                   registry=registry)  # fmt: skip
        self.csat_scored = Counter("ivrd_csat_scored", "Surveys answered with a score, by queue and agent",
                                   ["queue", "agent"], registry=registry)  # fmt: skip
        self.fcr_dispositions = Counter("ivrd_fcr_dispositions", "Calls agents gave a disposition (their first), "
                                        "by queue, agent and whether it says resolved (kpi.resolved)",
                                        ["queue", "agent", "resolved"], registry=registry)  # fmt: skip
        self.fcr_repeats = Counter("ivrd_fcr_repeats", "Calls disposed resolved whose caller called again within "
                                   "kpi.repeat_window: not resolved on the first call after all",
                                   ["queue", "agent"], registry=registry)  # fmt: skip
        self.agent_offers = Counter("ivrd_agent_offers", "Calls offered to agents' phones, by result: answered, "
                                    "missed, failed (unreachable)", ["queue", "result"], registry=registry)
        self.backend_rtt = Histogram("ivrd_routing_backend_rtt_seconds", "Round trip of each write of this node's "
                                     "routing entries to the shared backend (Redis)", buckets=BACKEND_BUCKETS,
                                     registry=registry)  # fmt: skip
        self.queues_changed(routing)

    def observe(self, state: DaemonState) -> None:
        """Read ``state`` at every scrape from now on."""
        self.registry.register(_Snapshot(state, self.media_closed))

    def watch_collector(self) -> None:
        """Time the garbage collector's pauses from now until :meth:`close`."""
        gc.callbacks.append(self._on_collection)

    def close(self) -> None:
        """Stop timing the collector's pauses (at shutdown)."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_pauses[info["generation"]].observe(time.perf_counter() - self._gc_started)

    def queues_changed(self, routing: RoutingConfig) -> None:
        """Make the new queues' series; new service-level targets need new wait-time buckets, and so a
        new histogram (Prometheus sees a counter reset, which increase() and rate() handle)."""
        buckets = wait_buckets(routing)
        if buckets != self._wait_bounds:
            self.registry.unregister(self.queue_wait)
            self.queue_wait = self._wait_histogram(buckets)
        # Every series a queue will have exists from the start, at zero: a series born at 1 would lose
        # that first increment in Prometheus's increase() and rate().
        for name in routing.queues:
            for counter in (self.queue_offered, self.queue_answered, self.queue_abandoned):
                counter.labels(name)
            for outcome in ("answered", "abandoned", "overflowed"):
                self.queue_wait.labels(name, outcome)
            for phase in ("talk", "hold", "wrap_up"):
                self.handle_seconds.labels(name, phase)
            for result in ("answered", "missed", "failed"):
                self.agent_offers.labels(name, result)
            for reason in OVERFLOW_REASONS:
                self.queue_overflowed.labels(name, reason)
            for result in CALLBACK_RESULTS:
                self.queue_callbacks.labels(name, result)

    def _wait_histogram(self, buckets: tuple[float, ...]) -> Histogram:
        self._wait_bounds = buckets
        return Histogram("ivrd_queue_wait_seconds", "Time in queue, by outcome: answered, abandoned, overflowed",
                         ["queue", "outcome"], buckets=buckets, registry=self.registry)  # fmt: skip

    def resolution(self, counted: Resolution) -> None:
        """A first disposition, or a repeat call unsettling a resolved one (counted as the records are written)."""
        queue, agent = counted.queue or "", counted.agent or ""
        if counted.disposition is None:
            self.fcr_repeats.labels(queue, agent).inc()
        else:
            self.fcr_dispositions.labels(queue, agent, "yes" if counted.resolved else "no").inc()

    def session_closed(self, media: RtpSession) -> None:
        """A media session ends: its counts move into the totals, its jitter into the histogram."""
        self.media_closed.add(media)
        if media.stats.received:
            self.rtp_jitter.observe(media.stats.jitter_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def udp_errors(snmp: Path = Path("/proc/net/snmp"), snmp6: Path = Path("/proc/net/snmp6")) -> tuple[int, int] | None:
    """The kernel's UDP receive errors and receive-buffer overflows, IPv4 and IPv6 (None: no /proc here)."""
    try:
        header, values = (line.split()[1:] for line in snmp.read_text().splitlines() if line.startswith("Udp:"))
        udp = dict(zip(header, map(int, values), strict=True))
        six = dict(line.split() for line in snmp6.read_text().splitlines() if line.startswith("Udp6"))
        return (udp["InErrors"] + int(six.get("Udp6InErrors", 0)),
                udp["RcvbufErrors"] + int(six.get("Udp6RcvbufErrors", 0)))  # fmt: skip
    except (OSError, ValueError, KeyError):
        return None


class _MediaTotals:
    """What the closed media sessions counted."""

    def __init__(self) -> None:
        self.counts = PacketCounts(*[0] * len(PacketCounts._fields))

    def add(self, media: RtpSession) -> None:
        self.counts = PacketCounts(*map(add, self.counts, media.packet_counts()))


class _Snapshot(Collector):
    """The figures read off the daemon's state at scrape time."""

    def __init__(self, state: DaemonState, closed: _MediaTotals) -> None:
        self.state = state
        self.closed = closed

    def collect(self) -> Iterator[Metric]:
        yield from self._sip()
        yield from self._media()
        yield from self._flows()
        yield from self._records()
        yield from self._routing()
        faults = CounterMetricFamily("ivrd_internal_errors", "Faults caught that cost one message, event or task "
                                     "and never the daemon (each logged with its traceback), by where",
                                     labels=["where"])  # fmt: skip
        for where, count in sorted(self.state.faults().items()):
            faults.add_metric([where], count)
        yield faults

    def _sip(self) -> Iterator[Metric]:
        counts = self.state.sip_counts()
        requests = CounterMetricFamily("ivrd_sip_requests", "SIP requests, by direction (in, out) and method",
                                       labels=["direction", "method"])  # fmt: skip
        for (direction, method), value in sorted(counts.requests.items()):
            requests.add_metric([direction, method], value)
        responses = CounterMetricFamily("ivrd_sip_responses", "SIP responses, by direction, method and status "
                                        "class", labels=["direction", "method", "class"])  # fmt: skip
        for (direction, method, kind), value in sorted(counts.responses.items()):
            responses.add_metric([direction, method, kind], value)
        timeouts = CounterMetricFamily("ivrd_sip_transactions_timed_out", "SIP transactions ended by a timer "
                                       "(B, F, H: no answer, no ACK)", labels=["method"])  # fmt: skip
        for method, value in sorted(counts.timeouts.items()):
            timeouts.add_metric([method], value)
        yield requests
        yield responses
        yield timeouts
        yield CounterMetricFamily("ivrd_sip_messages_unparsable", "SIP messages that could not be parsed "
                                  "(answered 400 when they could be routed, dropped otherwise)",
                                  value=counts.unparsable)  # fmt: skip
        refused = CounterMetricFamily("ivrd_calls_refused", "New calls answered 503, by why: overload (admission "
                                      "control, to spare the calls in progress), max_calls, draining, rate_limit "
                                      "(one source sending too many INVITEs)", labels=["reason"])  # fmt: skip
        for reason in ("overload", "max_calls", "draining", "rate_limit"):
            refused.add_metric([reason], counts.refused.get(reason, 0))
        yield refused
        admission = self.state.admission()
        yield GaugeMetricFamily("ivrd_admission_limiting", "1 while admission control limits new calls to spare "
                                "those in progress (see ivrd_event_loop_busy_ratio, ivrd_event_loop_lag_seconds)",
                                value=int(admission.rate is not None))  # fmt: skip
        yield GaugeMetricFamily("ivrd_admission_rate", "New calls/s admitted while limited (0 when not limited)",
                                value=admission.rate or 0.0)  # fmt: skip
        yield CounterMetricFamily("ivrd_admission_limited", "Times admission control began limiting new calls",
                                  value=admission.limited)  # fmt: skip
        yield GaugeMetricFamily("ivrd_event_loop_busy_ratio", "Share of the last quarter second the event loop's "
                                "thread spent on the CPU (admission control refuses calls above its bound)",
                                value=admission.busy)  # fmt: skip
        udp = self.state.udp_errors()
        if udp is not None:
            yield CounterMetricFamily("ivrd_udp_receive_errors", "UDP datagrams the kernel dropped on the way in "
                                      "(its InErrors: full receive buffers, bad checksums), for the whole host "
                                      "or network namespace, IPv4 and IPv6", value=udp[0])  # fmt: skip
            yield CounterMetricFamily("ivrd_udp_receive_buffer_errors", "Of those, datagrams dropped because a "
                                      "socket's receive buffer was full (RcvbufErrors)", value=udp[1])  # fmt: skip
        yield GaugeMetricFamily("ivrd_calls_active", "Incoming calls in progress", value=self.state.calls_active())
        desks, ringing, up = self.state.desks()
        yield GaugeMetricFamily("ivrd_desks_open", "Agents with the desk (/desk) open in a browser", value=desks)
        legs = GaugeMetricFamily("ivrd_browser_legs", "Calls to agents' browsers, by state: ringing (offered on "
                                 "the desk) or up (talking over WebRTC)", labels=["state"])  # fmt: skip
        legs.add_metric(["ringing"], ringing)
        legs.add_metric(["up"], up)
        yield legs
        transcribing = self.state.transcriptions()
        if transcribing is not None:
            backlog, done, failed = transcribing
            yield GaugeMetricFamily("ivrd_transcription_backlog", "Recorded calls waiting to be transcribed (or "
                                    "being): a busy day grows it, live calls never wait for it", value=backlog)
            counted = CounterMetricFamily("ivrd_transcriptions", "Recorded calls transcribed, by result",
                                          labels=["result"])  # fmt: skip
            counted.add_metric(["done"], done)
            counted.add_metric(["failed"], failed)
            yield counted
        open_now, dropped = self.state.tcp_connections()
        yield GaugeMetricFamily("ivrd_sip_tcp_connections", "SIP TCP connections open", value=open_now)
        closed = CounterMetricFamily("ivrd_sip_tcp_dropped", "SIP TCP connections refused or closed by ivrd, by "
                                     "reason: limit, source_limit (too many in all, from one address), slow (a "
                                     "message not whole in time), idle, framing", labels=["reason"])  # fmt: skip
        for reason in ("limit", "source_limit", "slow", "idle", "framing"):
            closed.add_metric([reason], dropped.get(reason, 0))
        yield closed
        waiting, overflowed = self.state.sip_backlog()
        yield GaugeMetricFamily("ivrd_sip_backlog", "SIP messages received and waiting for their turn: a burst "
                                "is taken a few milliseconds of work at a time, so audio frames go out between",
                                value=waiting)  # fmt: skip
        yield CounterMetricFamily("ivrd_sip_backlog_dropped", "SIP messages dropped because too many were "
                                  "waiting (their senders retransmit)", value=overflowed)  # fmt: skip

    def _media(self) -> Iterator[Metric]:
        # One pass over the live sessions, column sums in C: at 1,000 calls a scrape holds the loop up
        # that much less.
        counts = [self.closed.counts, *(media.packet_counts() for media in self.state.media_sessions())]
        for name, column in zip(PacketCounts._fields, zip(*counts, strict=True), strict=True):
            yield CounterMetricFamily(f"ivrd_rtp_packets_{name}", _RTP_COUNTERS[name], value=sum(column))
        lateness = self.state.frame_lateness()
        buckets, running = [], 0
        for bound, count in zip((*lateness.bounds, math.inf), lateness.counts, strict=True):
            running += count
            buckets.append((_le(bound), running))
        yield HistogramMetricFamily("ivrd_rtp_send_lateness_seconds", "How late each 20 ms frame left, after "
                                    "its absolute deadline", buckets=buckets, sum_value=lateness.sum)  # fmt: skip

    def _records(self) -> Iterator[Metric]:
        records = self.state.records_written()
        if records is not None:
            yield CounterMetricFamily("ivrd_call_records_written", "Call records committed to the database",
                                      value=records[0])  # fmt: skip
            yield CounterMetricFamily("ivrd_call_records_failed", "Call records that could not be written "
                                      "(the call.end log line still holds them)", value=records[1])  # fmt: skip

    def _flows(self) -> Iterator[Metric]:
        ok, failed = self.state.flow_reloads()
        reloads = CounterMetricFamily("ivrd_flow_reloads", "Flow-set reloads, by result (a failed one keeps the "
                                      "old set serving)", labels=["result"])  # fmt: skip
        reloads.add_metric(["ok"], ok)
        reloads.add_metric(["failed"], failed)
        yield reloads
        config = CounterMetricFamily("ivrd_config_reloads", "Configuration reloads (SIGHUP), by result (a failed "
                                     "one changes nothing)", labels=["result"])  # fmt: skip
        for result, count in self.state.config_reloads().items():
            config.add_metric([result], count)
        yield config

    def _routing(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("ivrd_queue_info", "Each queue's targets, as the ivrd_queue_wait_seconds bucket "
                                 "bounds (le) they are counted at", labels=["queue", "service_level_le",
                                                                            "short_abandon_le"])  # fmt: skip
        queues = self.state.queues()
        for name, queue in queues.items():
            info.add_metric([name, _le(queue.service_level), _le(queue.short_abandon)], 1)
        yield info
        agents = GaugeMetricFamily("ivrd_agents", "Agents by state", labels=["state"])
        by_state = dict.fromkeys(AgentState, 0)
        for agent in self.state.agents():
            by_state[agent.state] += 1
        for state, count in by_state.items():
            agents.add_metric([state.value], count)
        yield agents
        waiting = GaugeMetricFamily("ivrd_queue_callers_waiting", "Callers waiting in a queue whose calls this "
                                    "node holds (several nodes: sum them)", labels=["queue"])  # fmt: skip
        oldest = GaugeMetricFamily("ivrd_queue_oldest_wait_seconds", "How long the longest-waiting caller has "
                                   "waited", labels=["queue"])  # fmt: skip
        estimate = GaugeMetricFamily("ivrd_queue_estimated_wait_seconds", "Expected wait for a caller joining "
                                     "now (+Inf: no agent staffed)", labels=["queue"])  # fmt: skip
        staffed = GaugeMetricFamily("ivrd_queue_agents_staffed", "Agents logged in who can take the queue's "
                                    "callers", labels=["queue"])  # fmt: skip
        for name in queues:
            view = self.state.queue_view(name)
            waiting.add_metric([name], view["waiting_here"])
            oldest.add_metric([name], view["oldest_wait"])
            estimate.add_metric([name], expected_wait(view["waiting"] + 1, view["handle_seconds"], view["staffed"]))
            staffed.add_metric([name], view["staffed"])
        yield from (waiting, oldest, estimate, staffed)
        backend = self.state.routing_backend()
        if backend is not None:
            yield GaugeMetricFamily("ivrd_routing_backend_up", "1 while the shared routing backend (Redis) answers",
                                    value=int(backend.up))  # fmt: skip
            yield GaugeMetricFamily("ivrd_routing_lease_held", "1 while this node holds the lease: it runs the "
                                    "router for every node", value=int(backend.holding))  # fmt: skip
            yield CounterMetricFamily("ivrd_routing_lease_takeovers", "Times this node took the router's lease "
                                      "(at start, or from a node that died or lost Redis)",
                                      value=backend.takeovers)  # fmt: skip
            yield CounterMetricFamily("ivrd_routing_claims_stale", "Routing entries the shared state no longer "
                                      "allowed when the lease holder folded them (a race lost between nodes; "
                                      "changed nothing)", value=backend.stale)  # fmt: skip
