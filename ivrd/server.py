"""Process life: flows loaded, listeners up, READY=1, calls dispatched, reload on SIGHUP, a clean stop
on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import socket
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from routing.agents import Agent
from routing.matcher import ReconfigureError

from . import heap, retention
from .admission import Admission, Load
from .call import BYE_GRACE, Call
from .center.center import ContactCenter, load_hold_music, queue_specs
from .center.dialer import Dialer
from .cluster.link import ClusterLink
from .cluster.share import SharedBinding
from .config import Config, QueueConfig, RoutingConfig, live_part, load_config
from .faults import Faults
from .flowset import FlowSet, FlowSettings
from .http import Desktops, HttpServer
from .http.console import Console
from .http.desk import Desks
from .http.phone import Phones
from .logs import event
from .lookup import Lookups
from .media.clock import FrameClock
from .media.dtmf import Digit
from .media.pacer import Lateness
from .media.ports import PortPool
from .media.rtp_session import MediaSettings, RtpSession
from .media.service import MediaService
from .media.sockets import MediaSockets
from .media.tts import Speaker
from .metrics import AdmissionFigures, BackendFigures, Metrics, udp_errors
from .records import CallRecords
from .scheduling import loop_scheduling
from .sdnotify import notify, watchdog_interval
from .services import CallServices
from .sip.counts import SipCounts
from .sip.events import (
    AuthFailed,
    CallConfirmed,
    CallEnded,
    DtmfInfo,
    IncomingCall,
    MediaChanged,
    MessageRejected,
    ReferAnswered,
    ReferProgress,
    Refused,
    Registered,
    SipEvent,
)
from .sip.leg import CallLeg, LegState
from .sip.settings import UaSettings
from .sip.transaction import Timers
from .sip.ua import UserAgent
from .speech import Speech
from .tasks import TaskSet
from .transcription import Transcription
from .transport import SipTransport, TcpLimits
from .yaml_loader import ConfigError, Problem

log = logging.getLogger("ivrd")
LAG_INTERVAL = 0.5  # seconds between event-loop lag samples
ADMIT_INTERVAL = 0.25  # seconds between admission control's measures
LATE_FRAME = 0.01  # an audio frame leaving later than this counts as late
STRAY_GRACE = 2.0  # seconds the tasks left at the end have to end once cancelled


class Daemon:
    """Owns the SIP transport, the media, the contact center and the running calls."""

    def __init__(self, config: Config, path: Path | None = None) -> None:
        self.config = config
        self.config_path = path  # read again on SIGHUP; None: the embedded defaults, only the flows reload
        self._reloading = asyncio.Lock()
        self.config_reloads = {"ok": 0, "failed": 0}
        self.faults = Faults()
        self.calls: dict[int, Call] = {}
        self._tasks = TaskSet(self.faults, "call")  # the calls
        self._stop = asyncio.Event()
        self._helpers = TaskSet(self.faults, "daemon")  # reloads, the file watcher, the heartbeat, the collector's pace
        self.listeners: list[tuple[str, str, int]] = []  # (transport, address, port) as bound
        self.speech = Speech(config.asr)
        self.flows = FlowSet(flow_settings(config), check_phrases=self.speech.check_phrases)
        self.lookups = Lookups(config.flows.lookup_max_bytes)
        self.metrics = Metrics(config.routing)
        kpi = config.kpi
        self.records = CallRecords(Path(config.calls.records), resolved=frozenset(kpi.resolved),
                                   repeat_window=kpi.repeat_window * 86400,
                                   on_resolution=self.metrics.resolution) if config.calls.records else None  # fmt: skip
        self.transcription = Transcription(self.records, workers=config.calls.transcribe_workers,
                                           model_dir=config.asr.models.get(config.asr.language)) \
            if config.calls.transcribe and self.records is not None else None  # fmt: skip
        self.accepting = True  # False once stopping: /readyz says so
        self.admission = Admission(config.calls.admission.limits(), asyncio.get_running_loop().time())
        self.admission_limited = 0
        self.load = Load(0.0, 0.0, 0.0)  # the last window's, as admission control saw it
        self.disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivrd-disk")  # recordings, in order
        self.speaker = Speaker(voice=config.media.tts_voice)
        media = config.media
        settings = MediaSettings(
            latch=media.latch, inband_dtmf=media.inband_dtmf, idle_silence=media.idle == "silence",
            jitter_min_frames=media.jitter_min_ms // 20, jitter_max_frames=media.jitter_max_ms // 20)  # fmt: skip
        self.frame_clock = FrameClock(on_error=self._media_failed)  # every call's 20 ms tick
        self.media_sockets = MediaSockets(on_error=self._media_failed)  # every call's RTP and RTCP, read together
        self.media = MediaService(settings, PortPool(media.rtp_port_min, media.rtp_port_max), clock=self.frame_clock,
                                  sockets=self.media_sockets, address=media.address,
                                  on_closed=self.metrics.session_closed)  # fmt: skip
        sip = config.sip
        self.sip = SipTransport(
            UserAgent(UaSettings(
                user_agent=sip.user_agent, codecs=config.media.codecs,
                max_calls=config.calls.max_concurrent, max_message_bytes=sip.max_message_bytes,
                timers=Timers(sip.t1, sip.t2, sip.t4), invite_rate=sip.invites_per_second_per_source,
                invite_burst=sip.invite_burst_per_source, trusted_sources=sip.trusted_sources,
                realm=sip.realm, accounts=sip.accounts, digest_algorithms=sip.digest_algorithms)),
            self._on_event, self.faults, max_message_bytes=sip.max_message_bytes,
            tcp=TcpLimits(sip.max_tcp_connections, sip.max_tcp_connections_per_source, sip.tcp_message_timeout,
                          sip.tcp_idle_timeout))  # fmt: skip
        self.sip.ua.gate = self.admission
        self.desktops = Desktops(TaskSet(self.faults, "desktop.push"))
        self.cluster = self._cluster(config.routing) if config.routing.shared else None
        if self.cluster is not None:
            self.desktops.relay, self.cluster.share.deliver = self.cluster.share.push, self.desktops.deliver
        dialer = Dialer(self.sip, self.media, registrar=self.sip.ua.registrar, listeners=self.listeners,
                        speaker=self.speaker, tasks=TaskSet(self.faults, "queue.task"),
                        shared=self.cluster.share.binding if self.cluster else lambda _: None)  # fmt: skip
        self.center = ContactCenter(config.routing, config.http, clock=asyncio.get_running_loop(), dialer=dialer,
                                    metrics=self.metrics, desktops=self.desktops, records=self.records,
                                    hold_music=load_hold_music(config.routing), cluster=self.cluster)  # fmt: skip
        self.services = self._services(config)
        self.desks = Desks(lambda: self.config, self.center, self.desktops, clock=self.frame_clock, media=settings,
                           records=self.records, tasks=TaskSet(self.faults, "desk.task"),
                           on_closed=self.metrics.session_closed)  # fmt: skip
        self.center.use_desks(self.desks)
        phones = Phones(lambda: self.config, self.desks, dialer, self.flows, listeners=self.listeners,
                        clock=self.frame_clock, media=settings, find_call=self._find_sip_call)  # fmt: skip
        console = Console(lambda: self.config, self.center, self.flows, calls=self.calls.values, reload=self.reload,
                          records=self.records, transcription=self.transcription, load=self._load_summary,
                          node=self.cluster.node if self.cluster else socket.gethostname())  # fmt: skip
        self.http = HttpServer(lambda: self.config.http, self.center, desktops=self.desktops, metrics=self.metrics,
                               find_call=self._find_call, readiness=self._readiness, desks=self.desks,
                               phones=phones, console=console, records=self.records)  # fmt: skip
        self.metrics.observe(_State(self))

    def _cluster(self, routing: RoutingConfig) -> ClusterLink:
        """This node's link to the others; its name is unique to this start (a node restarted is a new
        node: the old one's callers died with it)."""
        cluster = routing.cluster
        node = f"{cluster.node or socket.gethostname()}-{secrets.token_hex(3)}"
        return ClusterLink(routing.backend, node, queue_specs(routing), lease=cluster.lease_seconds,
                           prefix=cluster.key_prefix, on_round_trip=self.metrics.backend_rtt.observe)  # fmt: skip

    def _media_failed(self, error: BaseException) -> None:
        """A bug in one call's media (a tick: that call's audio stops; a packet: that packet is lost)."""
        self.faults.count("media")
        log.error("media.error", exc_info=error, extra={"fields": {"error": repr(error)}})

    def _services(self, config: Config) -> CallServices:
        return CallServices(config, self.sip, self.media, self.flows, self.speech, self.speaker, self.lookups,
                            self.records, self.metrics, self.disk, self.center, self.faults,
                            self.transcription)  # fmt: skip

    async def start(self) -> None:
        """Load the flows (a :class:`ConfigError` stops the start), bind the listeners, tell systemd."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.speech.load)  # models first: the flows' phrases are checked against them
        await loop.run_in_executor(None, self.flows.load)
        if self.records is not None:
            await self.records.open()
        for listen in self.config.sip.listen:
            port = await self.sip.listen(listen.transport, listen.address, listen.port)
            self.listeners.append((listen.transport, listen.address, port))
        await self.center.start()
        if self.config.http.port:
            await self.http.start(self.config.http.address, self.config.http.port)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if self.config.flows.watch_seconds > 0 and not self.flows.builtin:
            self._helpers.spawn(self.flows.watch(self.config.flows.watch_seconds))
        self._helpers.spawn(self._heartbeat(watchdog_interval()))
        self._helpers.spawn(self._watch_media())
        self._helpers.spawn(self._admit())
        self.metrics.watch_collector()
        heap.settle()  # the start-up heap frozen, collections paced for the audio
        self._helpers.spawn(heap.pace())
        if self.config.calls.keep_days:
            folders = (Path(self.config.calls.recordings_dir), Path(self.config.flows.voicemail_dir))
            self._helpers.spawn(retention.keep(self.config.calls.keep_days, self.records, folders, self.disk))
        scheduling, inherited = loop_scheduling()
        if inherited:
            event(log, "scheduling.inherited", logging.WARNING, scheduling=scheduling,
                  message="worker threads and child processes get the loop's real-time priority too, and busy "
                          "ones can starve the machine: set CPUSchedulingResetOnFork=yes (systemd) or use chrt -R")
        event(log, "ready", listeners=len(self.listeners), scheduling=scheduling)
        notify("READY=1")  # last: whoever waits for it finds every start-up line already logged

    async def _heartbeat(self, watchdog: float | None) -> None:
        """Measure how late the loop runs a timer, and tell systemd's watchdog the loop still turns:
        a loop stuck in one callback misses its pings and gets the process restarted."""
        loop = asyncio.get_running_loop()
        every = min(LAG_INTERVAL, watchdog) if watchdog else LAG_INTERVAL
        next_ping = loop.time()
        while True:
            due = loop.time() + every
            await asyncio.sleep(every)
            now = loop.time()
            self.metrics.loop_lag.observe(max(0.0, now - due))
            if watchdog and now >= next_ping:
                notify("WATCHDOG=1")
                next_ping = now + watchdog

    async def _admit(self) -> None:
        """Measure the event loop every quarter second and let admission control set how many new calls
        it takes (:mod:`ivrd.admission`)."""
        loop = asyncio.get_running_loop()
        admission, lateness = self.admission, self.frame_clock.lateness
        late_from = bisect_left(lateness.bounds, LATE_FRAME) + 1  # the buckets of frames past LATE_FRAME
        then, cpu = loop.time(), time.thread_time()  # this coroutine runs on the loop's thread: its CPU time
        frames, late = sum(lateness.counts), sum(lateness.counts[late_from:])
        while True:
            due = loop.time() + ADMIT_INTERVAL
            await asyncio.sleep(ADMIT_INTERVAL)
            now, cpu_now = loop.time(), time.thread_time()
            frames_now, late_now = sum(lateness.counts), sum(lateness.counts[late_from:])
            sent = frames_now - frames
            self.load = load = Load(busy=(cpu_now - cpu) / max(now - then, 1e-3), lag=max(0.0, now - due),
                                    late=(late_now - late) / sent if sent else 0.0)  # fmt: skip
            then, cpu, frames, late = now, cpu_now, frames_now, late_now
            settings = self.config.calls.admission
            admission.limits, admission.retry_after = settings.limits(), settings.retry_after
            change = admission.measure(load, now) if settings.enabled else admission.reset()
            if change is True:
                event(log, "admission.open", busy=round(load.busy, 2), lag_ms=round(load.lag * 1000, 1))
            elif change is False:
                self.admission_limited += 1
                event(log, "admission.limited", logging.WARNING, why=admission.why, rate=round(admission.rate or 0, 1),
                      busy=round(load.busy, 2), lag_ms=round(load.lag * 1000, 1), late_frames=round(load.late, 3),
                      calls=len(self.calls))  # fmt: skip

    async def _watch_media(self) -> None:
        """End the calls whose caller has sent nothing for ``media.timeout_seconds`` (on hold: their own
        bound): nothing else would end a call whose BYE was lost, or whose caller vanished."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            media, now = self.config.media, loop.time()
            for call in list(self.calls.values()):
                audio = call.leg.audio
                limit = media.hold_timeout_seconds if audio is not None and audio.on_hold else media.timeout_seconds
                silent = call.silent_for(now)
                if limit and silent > limit:
                    call.media_timed_out(silent)

    def _on_sighup(self) -> None:
        self._helpers.spawn(self.reload("SIGHUP"))

    async def reload(self, reason: str) -> bool:
        """Read the configuration again and take it as a whole, or not at all: the flows (checked
        against the new queues), the queues and agents (callers keep their place, agents their state)
        and the rest that can change while serving. What needs a restart (listeners, media ports,
        speech models) is named in the log and kept as it is. True when the new configuration serves."""
        if self.config_path is None:
            return await self.flows.reload(reason)
        loop = asyncio.get_running_loop()
        async with self._reloading:
            try:
                fresh = await loop.run_in_executor(None, load_config, self.config_path)
                fresh, restart = live_part(self.config, fresh)
                hold_music = await loop.run_in_executor(None, load_hold_music, fresh.routing)
                self.center.router.check_reconfigure(fresh.routing.queues)
            except (ConfigError, ReconfigureError) as exc:
                problems = exc.problems if isinstance(exc, ConfigError) else [Problem(str(self.config_path), 1, 1,
                                                                                      str(exc))]  # fmt: skip
                for problem in problems:
                    event(log, "config.problem", logging.ERROR, where=f"{problem.file}:{problem.line}:{problem.column}",
                          problem=problem.message)  # fmt: skip
                event(log, "config.rejected", logging.ERROR, reason=reason, problems=len(problems))
                self.config_reloads["failed"] += 1
                return False
            if not await self.flows.reload(reason, flow_settings(fresh)):  # its problems are logged by the flows
                event(log, "config.rejected", logging.ERROR, reason=reason, problems="flows")
                self.config_reloads["failed"] += 1
                return False
            self.center.reconfigure(fresh.routing, hold_music, fresh.http)
            self.config = fresh
            self.services = self._services(fresh)
            logging.getLogger().setLevel(fresh.log.level.upper())
            self.config_reloads["ok"] += 1
            event(log, "config.loaded", reason=reason, queues=len(fresh.routing.queues),
                  agents=len(fresh.routing.agents), restart_needed=",".join(restart) or None)  # fmt: skip
            return True

    async def serve(self) -> None:
        await self.start()
        await self._stop.wait()
        await self.shutdown()
        await cancel_strays()

    async def shutdown(self) -> None:
        notify("STOPPING=1")
        self.accepting = False
        self.sip.draining()
        drain = self.config.calls.drain_seconds
        event(log, "stopping", calls=len(self.calls), drain_seconds=drain)
        if self._tasks and drain > 0:  # calls in progress may finish on their own first
            await asyncio.wait(set(self._tasks), timeout=drain)
            if self.calls:
                event(log, "drain.timeout", calls=len(self.calls))
        for call in list(self.calls.values()):
            self.sip.hangup(call.leg)
        if self._tasks:  # each call ends its own way (BYE answered, recording closed), within a bound
            _, pending = await asyncio.wait(set(self._tasks), timeout=BYE_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await asyncio.get_running_loop().run_in_executor(None, self.disk.shutdown, True)  # every recording closed
        if self.transcription is not None:
            await self.transcription.close()
        if self.records is not None:
            await self.records.close()  # every call's record committed
        for helper in self._helpers:
            helper.cancel()
        await self.lookups.close()
        await self.http.close()
        self.speech.shutdown()
        self.center.close()
        if self.cluster is not None:
            await self.cluster.close()  # after the calls: their last entries (hang-ups, agents free) are written
        self.media_sockets.close()
        self.sip.close()
        self.metrics.close()
        event(log, "stopped")

    def _on_event(self, happened: SipEvent) -> None:
        if isinstance(happened, IncomingCall):
            self._start_call(happened.leg)
        elif isinstance(happened, Registered):
            event(log, "sip.registered", user=happened.user, contacts=",".join(happened.contacts) or "none",
                  remote=f"{happened.flow.remote[0]}:{happened.flow.remote[1]}")  # fmt: skip
            if self.cluster is not None:
                self._share_binding(happened.user, self.cluster)
        elif isinstance(happened, AuthFailed):  # one stable line per failure, for fail2ban
            event(log, "security.auth_failed", logging.WARNING, remote=happened.flow.remote[0],
                  port=happened.flow.remote[1], user=happened.user, reason=happened.reason)  # fmt: skip
        elif isinstance(happened, Refused):  # one stable line per forged or misrouted request, for fail2ban
            event(log, "security.refused", logging.WARNING, remote=happened.flow.remote[0],
                  port=happened.flow.remote[1], method=happened.method, call_id=happened.call_id,
                  reason=happened.reason)  # fmt: skip
        elif isinstance(happened, MessageRejected):
            event(log, "sip.rejected", logging.INFO if happened.status else logging.WARNING, status=happened.status,
                  reason=happened.reason, remote=f"{happened.flow.remote[0]}:{happened.flow.remote[1]}",
                  transport=happened.flow.transport)  # fmt: skip
        elif self.center.dialer.owns(happened.leg):
            self.center.dialer.on_event(happened)
        else:
            call = self.calls.get(id(happened.leg))
            if call is not None:
                self._to_call(call, happened)

    def _to_call(self, call: Call, happened: SipEvent) -> None:
        leg = call.leg
        if isinstance(happened, CallEnded):
            call.on_ended(happened.reason)
        elif isinstance(happened, CallConfirmed):
            event(log, "call.confirmed", logging.DEBUG, call_id=leg.call_id)
            call.on_confirmed()
        elif isinstance(happened, DtmfInfo):
            call.on_digit(Digit(happened.digit, happened.duration_ms, "info", asyncio.get_running_loop().time()))
        elif isinstance(happened, MediaChanged):
            event(log, "call.media", call_id=leg.call_id, direction=happened.audio.direction,
                  remote=f"{happened.audio.remote_address}:{happened.audio.remote_port}",
                  codec=happened.audio.codec)  # fmt: skip
            call.on_media_changed(happened.audio)
        elif isinstance(happened, (ReferAnswered, ReferProgress)):
            call.on_transfer(happened.status, final=isinstance(happened, ReferProgress))

    def _start_call(self, leg: CallLeg) -> None:
        call = Call(leg, self.services)
        self.calls[id(leg)] = call
        event(log, "call.incoming", call_id=leg.call_id, caller=leg.caller, callee=leg.callee,
              transport=leg.flow.transport, codec=leg.audio.codec if leg.audio else None)  # fmt: skip
        self._tasks.spawn(call.run()).add_done_callback(lambda _: self._call_done(leg))

    def _share_binding(self, user: str, cluster: ClusterLink) -> None:
        """The user's newest binding here, for the other nodes to ring their phone."""
        now = self.sip.loop.time()
        bindings = self.sip.ua.registrar.contacts(user, now)
        if not bindings or bindings[0].flow is None:
            cluster.share.registered(user, None)
            return
        newest, flow = bindings[0], bindings[0].flow
        cluster.share.registered(user, SharedBinding(newest.contact, newest.path, (flow.transport, *flow.remote),
                                                     time.time() + newest.expires_at - now, cluster.node))  # fmt: skip

    def _call_done(self, leg: CallLeg) -> None:
        """A call's task ended (its failure is logged and counted by the task set)."""
        call = self.calls.pop(id(leg), None)
        if call is not None and call.joined and self.cluster is not None and self.center.booked(call.id) is None:
            self.cluster.share.forget(call.id)  # a callback's context stays until the callback is over
        if leg.state is not LegState.ENDED:  # a call that died of a bug must not leave its caller hanging
            self.sip.hangup(leg)

    def _find_call(self, context_id: str) -> Call | None:
        return next((call for call in self.calls.values() if call.id == context_id), None)

    def _find_sip_call(self, call_id: str) -> Call | None:
        return next((call for call in self.calls.values() if call.call_id == call_id), None)

    def _load_summary(self) -> dict[str, object]:
        """The loop's last measures and admission control's state, for ``ivrd status``."""
        admission, load = self.admission, self.load
        return {"busy": round(load.busy, 3), "lag_ms": round(load.lag * 1000, 1), "late": round(load.late, 4),
                "limiting": admission.limiting, "rate": round(admission.rate, 1) if admission.rate else None,
                "why": admission.why or None}

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether to send calls here: listening, flows loaded and not stopping; and the figures behind it."""
        flows = self.flows.current
        speech = {language: engine.name + (" (built in)" if engine.name == "pocketsphinx" else "")
                  for language, engine in self.speech.engines.items()}  # fmt: skip
        why = [reason for reason, failing in (("stopping", not self.accepting), ("not listening", not self.listeners),
                                              ("no flows loaded", flows is None),
                                              ("routing backend unreachable", self.cluster and not self.cluster.up))
               if failing]  # fmt: skip
        body: dict[str, object] = {
            "ready": not why, "listeners": len(self.listeners), "calls": len(self.calls),
            "flows": flows.version if flows else None, "flows_builtin": self.flows.builtin, "speech": speech,
            "stopping": not self.accepting}  # fmt: skip
        if self.cluster is not None:
            body |= {"node": self.cluster.node, "routing_backend": "up" if self.cluster.up else "unreachable"}
        if why:
            body["reason"] = "; ".join(why)
        return not why, body


class _State:
    """The daemon as the metrics read it at scrape time."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def sip_counts(self) -> SipCounts:
        return self._daemon.sip.ua.counts

    def calls_active(self) -> int:
        return len(self._daemon.calls)

    def desks(self) -> tuple[int, int, int]:
        return self._daemon.desks.figures()

    def transcriptions(self) -> tuple[int, int, int] | None:
        work = self._daemon.transcription
        return None if work is None else (work.backlog, work.done, work.failed)

    def tcp_connections(self) -> tuple[int, Mapping[str, int]]:
        sip = self._daemon.sip
        return sip.tcp_open(), sip.tcp_dropped

    def sip_backlog(self) -> tuple[int, int]:
        sip = self._daemon.sip
        return sip.backlog, sip.backlog_dropped

    def media_sessions(self) -> Iterator[RtpSession]:
        yield from (call.media for call in self._daemon.calls.values() if call.media is not None)
        yield from self._daemon.center.sessions()

    def frame_lateness(self) -> Lateness:
        return self._daemon.frame_clock.lateness

    def records_written(self) -> tuple[int, int] | None:
        records = self._daemon.records
        return None if records is None else (records.written, records.failed)

    def flow_reloads(self) -> tuple[int, int]:
        return self._daemon.flows.reloads, self._daemon.flows.failed_reloads

    def config_reloads(self) -> Mapping[str, int]:
        return self._daemon.config_reloads

    def faults(self) -> Mapping[str, int]:
        return self._daemon.faults.counts

    def queues(self) -> Mapping[str, QueueConfig]:
        return self._daemon.config.routing.queues

    def agents(self) -> Iterable[Agent]:
        return self._daemon.center.router.agents.values()

    def queue_view(self, name: str) -> dict[str, Any]:
        return self._daemon.center.queue_view(name)

    def admission(self) -> AdmissionFigures:
        daemon = self._daemon
        return AdmissionFigures(daemon.admission.rate, daemon.admission_limited, daemon.load.busy)

    def udp_errors(self) -> tuple[int, int] | None:
        return udp_errors()

    def routing_backend(self) -> BackendFigures | None:
        cluster = self._daemon.cluster
        if cluster is None:
            return None
        return BackendFigures(cluster.up, cluster.log.holding, cluster.log.takeovers, cluster.log.stale)


def flow_settings(config: Config) -> FlowSettings:
    return FlowSettings(Path(config.flows.dir) if config.flows.dir else None,
                        transfer_targets=config.flows.transfer_targets, queues=tuple(config.routing.queues))


class StuckTasks(Exception):
    """Tasks that did not end when cancelled at the end (logged): the process exits without them."""


async def cancel_strays() -> None:
    """Cancel what is left running once everything is closed, and say what did not end (a library's
    task that holds on past its cancellation would otherwise keep the process from exiting)."""
    strays = asyncio.all_tasks() - {asyncio.current_task()}
    for task in strays:
        task.cancel()
    _, stuck = await asyncio.wait(strays, timeout=STRAY_GRACE) if strays else (set(), set())
    for task in stuck:
        frames = task.get_stack(limit=3)
        where = " < ".join(f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno}" for f in frames)
        coroutine = getattr(task.get_coro(), "__qualname__", "?")
        event(log, "stop.stuck_task", logging.WARNING, task=task.get_name(), coroutine=coroutine, where=where)
    if stuck:
        raise StuckTasks(len(stuck))
