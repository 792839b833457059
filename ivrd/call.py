"""One call, one task: ring, answer with a media session, run the flow, and wait for the end.

This is where the SIP leg, the media session and the flow run meet: the run's actions become
prompts, recordings, lookups and a hang-up; what the caller does goes back to the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asr.base import Result
from flows.interpreter import (
    AgentConnected,
    AgentDone,
    CallInfo,
    EndCall,
    Fetch,
    FlowEvent,
    FlowRun,
    JoinQueue,
    KeyPressed,
    Notice,
    PlayPrompt,
    PromptDone,
    QueueLeft,
    RecordingDone,
    SetRecording,
    SpeechHeard,
    SpeechStarted,
    StartListening,
    StartRecording,
    StopListening,
    StopPrompt,
    StopRecording,
    TransferCall,
    TransferFailed,
    Transferred,
    carry_out,
    summary,
)

from .logs import event
from .media.capture import Capture
from .media.dtmf import Digit, DigitStream
from .media.player import BEEP, Clip
from .media.ports import BoundPorts
from .media.recorder import Recorder, recording_path
from .media.rtp_session import RtpSession
from .media.session import MediaSession
from .metrics import STEP_RESULTS
from .prompting import Prompting
from .records import CallRecord, as_json
from .services import CallServices
from .sip.leg import CallLeg, LegState
from .sip.sdp import AudioSession
from .speech import SpeechStream
from .tasks import TaskSet

log = logging.getLogger("ivrd.call")
# How long a BYE of ours may take to complete (Timer F is 64*T1 = 32 s by default).
BYE_GRACE = 40.0
TRANSFER_TIMEOUT = 60.0  # seconds for the transferee to report how the call to the target went
LOCAL_ZONE = datetime.now().astimezone().tzinfo or UTC  # for the flows' now.hour and friends


class Call:
    """The life of one incoming call, driven by :meth:`run` in its own task. To the contact center it
    is a :class:`~ivrd.center.model.Caller`."""

    def __init__(self, leg: CallLeg, services: CallServices) -> None:
        self.id = secrets.token_urlsafe(9)  # in the context link agents get: short, and not guessable
        self.started = time.time()
        self.leg = leg
        self.services = services
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._ended_by: str | None = None  # why we hung up, when not the flow: media-timeout, operator
        self.digits = DigitStream()
        self.media: MediaSession | None = None
        self._ports: BoundPorts | None = None  # bound at answer (the media session's once it opens)
        self._background = TaskSet(services.faults, "call.task")
        self.flow_run: FlowRun | None = None
        self.prompting = Prompting(leg.call_id, services.speaker, self._background,
                                   on_done=lambda: self._feed(PromptDone()))  # fmt: skip
        self._inbox: deque[FlowEvent] = deque()  # what happened while the run's actions were being carried out
        self._driving = False
        self._flow_timer: asyncio.TimerHandle | None = None
        self._capture: Capture | None = None
        self._transfer_timer: asyncio.TimerHandle | None = None  # a REFER whose outcome has not come
        self._speech: SpeechStream | None = None
        self._path_counted = 0  # path entries already counted in the metrics
        self.queue: str | None = None  # the queue the caller waits in now
        self.joined: str | None = None  # the last queue they joined
        self.waited: float | None = None  # seconds in the queue before an agent answered
        self.agent: str | None = None
        self.handled: tuple[float, float, float] | None = None  # talk, hold, wrap-up once the agent's call ended
        self.outcome: str | None = None  # set when the call ended before it was answered
        self.callback: str | None = None  # the number to call back, when the caller asked for it

    # ---- who it is, to the contact center ----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    @property
    def number(self) -> str:
        return self.leg.caller_number

    @property
    def name(self) -> str:
        return self.leg.caller_name

    @property
    def dialed(self) -> str:
        return self.leg.dialed_number

    # ---- events from the SIP core and the media session ---------------------------------------------

    def on_ended(self, reason: str) -> None:
        self.end_reason = self._ended_by or reason  # not how our BYE fared
        self.ended.set()
        if self.queue is not None:
            self.services.center.caller_gone(self)

    def silent_for(self, now: float) -> float:
        """Seconds since the caller last sent RTP or RTCP (0 before the media starts)."""
        return now - self.media.heard_at if self.media is not None else 0.0

    def media_timed_out(self, silent: float) -> None:
        """The caller has sent nothing for ``silent`` seconds: they are gone; end the call."""
        if self._ended_by is not None or self.ended.is_set():
            return
        self._ended_by = "media-timeout"
        event(log, "call.media_timeout", logging.WARNING, call_id=self.leg.call_id, silent=round(silent, 1))
        self.services.sip.hangup(self.leg)

    def dismiss(self) -> None:
        """Ops end the call (``ivrd hangup``, ``DELETE /calls/{id}``); the record says so."""
        if self._ended_by is not None or self.ended.is_set():
            return
        self._ended_by = "operator"
        event(log, "call.dismissed", logging.WARNING, call_id=self.leg.call_id)
        self.services.sip.hangup(self.leg)

    def summary(self, now: float) -> dict[str, object]:
        """A line of the console: who, where in the flows, how long, queue and agent."""
        run, leg = self.flow_run, self.leg
        state = ("agent" if self.agent is not None and self.handled is None else "queue" if self.queue is not None
                 else "ivr" if run is not None and not run.finished else leg.state.value)  # fmt: skip
        return {"id": self.id, "call_id": leg.call_id, "caller": leg.caller_number, "dialed": leg.dialed_number,
                "flow": run.flow.name if run else None, "step": run.step if run else None, "state": state,
                "seconds": round(now - self.started, 1), "queue": self.queue or self.joined, "agent": self.agent}

    def on_confirmed(self) -> None:
        if self.media is None and self.leg.audio is not None and self._ports is not None:
            self._start_media(self.leg.audio)  # an offerless INVITE: the ACK carried the answer

    def on_media_changed(self, audio: AudioSession) -> None:
        if self.media is not None:
            self.media.update(audio)

    def on_digit_start(self, digit: str) -> None:
        """A key went down: cut an interruptible prompt now, before the key is over (the run decides the rest)."""
        self.prompting.barge_in(digit=digit)

    def on_digit(self, digit: Digit) -> None:
        if digit.source == "info" and self.media is not None and self.media.bridged_to is not None:
            self.media.bridged_to.send_digit(digit.digit, digit.duration_ms)  # RFC 4733 ones: the media relays
        if digit.source != "rfc4733":
            self.on_digit_start(digit.digit)
        if self.digits.add(digit):
            event(log, "call.dtmf", call_id=self.leg.call_id, digit=digit.digit, source=digit.source,
                  duration_ms=digit.duration_ms)  # fmt: skip
            if self.queue is None or not self.services.center.key(self, digit.digit):
                self._feed(KeyPressed(digit.digit))

    # ---- the call's life --------------------------------------------------------------------------

    async def _wait_end(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # no task of its own, as wait_for would make
                await self.ended.wait()
        return self.ended.is_set()

    async def run(self) -> None:
        sip = self.services.sip
        config = self.services.config
        metrics = self.services.metrics
        leg = self.leg
        try:
            if config.sip.answer_after:  # a call answered at once is not told it rings first
                sip.ring(leg)
                await self._wait_end(config.sip.answer_after)
            if self.ended.is_set():
                metrics.setups["cancelled"].inc()
                self.outcome = "cancelled"
                return
            bound = self.services.media.bind(leg.flow.local[0])
            if bound is None:
                event(log, "call.no_media_port", logging.WARNING, call_id=leg.call_id)
                sip.reject(leg, 503, reason="no-media-port")
                metrics.setups["rejected"].inc()
                self.outcome = "rejected"
                return
            address, self._ports = bound
            sip.answer(leg, media_address=address, media_port=self._ports.port)
            metrics.setups["answered"].inc()
            if leg.audio is not None and leg.awaiting_answer is None:
                self._start_media(leg.audio)
            if not await self._wait_end(config.calls.max_duration):
                event(log, "call.max_duration", call_id=leg.call_id, seconds=config.calls.max_duration)
                await self.hangup()
        except asyncio.CancelledError:
            if leg.state is not LegState.ENDED:
                sip.hangup(leg)
            raise
        finally:
            media = self.media.summary() if self.media else {}
            recorder = self.media.recorder if self.media else None
            flow: dict[str, Any] = {}
            try:  # whatever fails in here, the call still ends: its record is written below
                self._close_media()
                flow = self._end_flow()
            except Exception:
                self.services.faults.count("call.end")
                log.exception("call.end_error", extra={"fields": {"call_id": leg.call_id}})
            record = self._record(flow, media, recorder)
            try:
                if recorder is not None:
                    await recorder.close()  # on the disk thread; the daemon waits for that thread at exit too
                    if self.services.transcription is not None:
                        self.services.transcription.submit(self.id, recorder.path, recorder.paused_spans)
                if self._capture is not None:
                    await self._capture.recorder.close()
            finally:
                event(log, "call.end", call_id=leg.call_id, reason=record.end_reason, outcome=record.outcome,
                      digits=self.digits.text, recording=record.recording, **media, flow=record.flow,
                      flow_version=record.flow_version, path=record.path, variables=record.variables)  # fmt: skip
                self._count_survey(record)
                if self.services.records is not None:
                    self.services.records.add(record)

    async def hangup(self) -> None:
        """End the call from our side and wait (bounded) for the BYE to complete."""
        self.services.sip.hangup(self.leg)
        await self._wait_end(BYE_GRACE)

    # ---- media ------------------------------------------------------------------------------------

    def _start_media(self, audio: AudioSession) -> None:
        assert self._ports is not None
        media = self.services.media.open(audio, self._ports, on_digit=self.on_digit, on_digit_start=self.on_digit_start,
                                         on_prompt_done=self.prompting.finished,
                                         signalling_host=self.leg.flow.remote[0])  # fmt: skip
        calls = self.services.config.calls
        if calls.record:
            path = recording_path(Path(calls.recordings_dir), self.leg.call_id, time.time())
            media.record(Recorder(path, self.services.disk, channels=2))
        self.media = media
        self.prompting.attach(media)
        if calls.record and calls.record_announcement:  # the caller is told before anything else
            self.prompting.preface(calls.record_announcement, self._start_flow)
        else:
            self._start_flow()  # first: a prompt it plays at once starts with the first frame
        media.start()

    def set_recording(self, action: SetRecording) -> None:
        """The flow pauses the recording (a card number comes next) or resumes it."""
        self.pause_recording(action.paused)

    def pause_recording(self, paused: bool) -> bool:
        """Silence in the recording from now on (a card number being read out), or the audio again; False
        when the call is not recorded or already was so."""
        recorder = self.media.recorder if self.media is not None else None
        if recorder is None or not recorder.pause(paused):
            return False
        event(log, "call.recording", call_id=self.leg.call_id, paused=paused, at=recorder.seconds)
        return True

    # ---- the flow ---------------------------------------------------------------------------------

    def _start_flow(self) -> None:
        leg = self.leg
        deployment = self.services.flows.current
        assert deployment is not None
        info = CallInfo(leg.call_id, leg.caller_number, leg.caller_name, leg.dialed_number)
        self.flow_run = FlowRun(deployment, info, zone=LOCAL_ZONE)
        self.flow_run.start(time.time())
        event(log, "call.flow", call_id=leg.call_id, flow=self.flow_run.flow.name, version=deployment.version,
              context=self.id)  # fmt: skip
        self.services.metrics.flow_calls.labels(self.flow_run.flow.name, deployment.version).inc()
        self._drive()

    def _feed(self, happened: FlowEvent) -> None:
        """Tell the run what happened. Something that happens while the run's actions are being carried
        out (a prompt with nothing to play, a queue that refuses the caller) waits in the inbox until they
        are: the run is never re-entered."""
        if self.flow_run is None or self.ended.is_set():
            return
        self._inbox.append(happened)
        if not self._driving:
            self._drive()

    def _drive(self) -> None:
        """Carry out what the run asks for, and what it asks after each event that comes meanwhile; then
        wait for its next deadline."""
        run = self.flow_run
        assert run is not None
        self._driving = True
        try:
            while True:
                self._count_answers(run)
                while actions := run.take_actions():
                    for action in actions:
                        carry_out(action, self)
                if not self._inbox:
                    break
                happened = self._inbox.popleft()
                if not self.ended.is_set():
                    run.feed(happened, time.time())
        finally:
            self._driving = False
        if self._flow_timer is not None:
            self._flow_timer.cancel()
            self._flow_timer = None
        if run.deadline is not None and not run.finished:
            self._flow_timer = asyncio.get_running_loop().call_later(max(0.0, run.deadline - time.time()),
                                                                     self._flow_deadline)  # fmt: skip

    def _count_answers(self, run: FlowRun) -> None:
        """Count the questions answered since the last look (the path is the record of them)."""
        metrics = self.services.metrics
        for entry in run.path[self._path_counted:]:
            result = STEP_RESULTS.get(entry["event"])
            if result is None:
                continue
            metrics.step_results.labels(entry["flow"], entry["step"], result).inc()
            if result == "noinput" and self._speech is not None:  # listened and heard nobody
                metrics.speech_results.labels(self._speech.language, result).inc()
        self._path_counted = len(run.path)

    def _flow_deadline(self) -> None:
        self._flow_timer = None
        if self.flow_run is not None and not self.ended.is_set():
            self.flow_run.on_timer(time.time())
            self._drive()

    # ---- the run's actions (a flows.interpreter.ActionHandler) -----------------------------------------

    def play_prompt(self, action: PlayPrompt) -> None:
        assert self.flow_run is not None
        self.prompting.play(action, self.flow_run.deployment.prompts)

    def stop_prompt(self, action: StopPrompt) -> None:
        self.prompting.stop()

    def start_listening(self, action: StartListening) -> None:
        self._listen(action)

    def stop_listening(self, action: StopListening) -> None:
        self._stop_listening()

    def fetch(self, action: Fetch) -> None:
        self._background.spawn(self._fetch(action))

    def start_recording(self, action: StartRecording) -> None:
        self._start_capture(action)

    def stop_recording(self, action: StopRecording) -> None:
        if self._capture is not None:
            self._capture.stop("key")

    def transfer(self, action: TransferCall) -> None:
        self._transfer(action.uri)

    def join_queue(self, action: JoinQueue) -> None:
        self.queue = self.joined = action.queue
        self.services.center.join(self, action)

    def end_call(self, action: EndCall) -> None:
        self._background.spawn(self.hangup())

    def notice(self, action: Notice) -> None:
        """Something ops should know, from the flow (or the queue it joined)."""
        event(log, "flow.notice", logging.WARNING, call_id=self.leg.call_id, message=action.message)

    def _transfer(self, uri: str) -> None:
        event(log, "call.transfer", call_id=self.leg.call_id, to=uri)
        if not self.services.sip.refer(self.leg, uri):
            self._feed(TransferFailed("the call is not up"))
            return
        self._transfer_timer = asyncio.get_running_loop().call_later(
            TRANSFER_TIMEOUT, self._transfer_result, 408, "no result from the transfer")  # fmt: skip

    def on_transfer(self, status: int, *, final: bool) -> None:
        """The REFER's answer (``final`` False) or the transfer's outcome from a NOTIFY (``final`` True)."""
        if self._transfer_timer is None:
            return  # no transfer waiting (a late or repeated NOTIFY)
        if not final and 200 <= status < 300:
            return  # accepted: the outcome comes in a NOTIFY
        reason = f"the transfer target answered {status}" if final else f"the REFER was answered {status}"
        self._transfer_result(status, reason)

    def _transfer_result(self, status: int, reason: str) -> None:
        if self._transfer_timer is not None:
            self._transfer_timer.cancel()
            self._transfer_timer = None
        event(log, "call.transfer_result", call_id=self.leg.call_id, status=status,
              ok=200 <= status < 300)  # fmt: skip
        self._feed(Transferred() if 200 <= status < 300 else TransferFailed(reason))

    def _listen(self, action: StartListening) -> None:
        self._stop_listening()
        speech = self.services.speech
        engine = speech.engine_for(action.language)
        if engine is None or self.media is None:
            return  # no model for the language (refused at load unless the model failed): keys still work

        def heard(result: Result, latency: float) -> None:
            self._speech_heard(stream, result, latency)

        def partial(text: str) -> None:
            event(log, "call.speech_partial", logging.DEBUG, call_id=self.leg.call_id, text=text,
                  complete=stream.complete)  # fmt: skip

        asr = speech.config
        stream = SpeechStream(engine, action.phrases, speech.executor, end_silence=asr.end_silence_ms / 1000,
                              complete_silence=asr.complete_silence_ms / 1000, max_speech=action.max_speech,
                              on_start=self._speech_started, on_result=heard, on_partial=partial,
                              min_confidence=asr.min_confidence.get(engine.name, 0.0))  # fmt: skip
        self._speech = stream
        self.media.listen(stream.feed)
        event(log, "call.listening", logging.DEBUG, call_id=self.leg.call_id, engine=engine.name,
              language=engine.language, phrases=len(action.phrases))  # fmt: skip

    def _stop_listening(self) -> None:
        if self._speech is not None:
            self._speech.close()
            self._speech = None
        if self.media is not None:
            self.media.listen(None)

    def _speech_started(self) -> None:
        self.prompting.barge_in(by="speech")
        self._feed(SpeechStarted())

    def _speech_heard(self, stream: SpeechStream, result: Result, latency: float) -> None:
        if stream is not self._speech:
            return
        self._stop_listening()
        event(log, "call.speech", call_id=self.leg.call_id, text=result.text, confidence=round(result.confidence, 3),
              refused=stream.refused or None, latency_ms=round(latency * 1000), ended_by=stream.ended_by,
              silence_ms=round(stream.trailing_silence * 1000) if stream.ended_by != "max" else None,
              dropped=stream.dropped or None)  # fmt: skip
        metrics, language = self.services.metrics, stream.language
        if result.text:
            metrics.speech_confidence.labels(language).observe(result.confidence)
            metrics.speech_latency.labels(language).observe(latency)
        run = self.flow_run
        answered_at = len(run.path) if run is not None else 0
        self._feed(SpeechHeard(result.text, result.confidence,
                               tuple((a.text, a.confidence) for a in result.alternatives)))
        if run is not None:  # what the flow made of it: accepted, refused (low confidence, not a choice), nobody
            events = {entry["event"] for entry in run.path[answered_at:]}
            outcome = "match" if events & {"choice", "speech"} else "noinput" if "noinput" in events else "nomatch"
            metrics.speech_results.labels(language, outcome).inc()

    # ---- in a queue (driven by the contact center) -----------------------------------------------------

    def hold(self, music: Clip | None) -> None:
        """Loop ``music`` while the caller waits (None: stop it)."""
        self.prompting.hold(music)

    def announce(self, text: str) -> None:
        """Say ``text`` over the hold music."""
        self.prompting.announce(text)

    def queue_event(self, happened: QueueLeft | AgentConnected) -> None:
        if isinstance(happened, AgentConnected):
            self.agent = happened.agent
            self.waited = happened.waited
        else:
            self.queue = None
            self.callback = happened.callback
        self._feed(happened)

    def bridge(self, media: RtpSession) -> MediaSession | None:
        """The caller hears the agent's ``media`` and the agent the caller, from now on."""
        if self.media is None:
            return None
        self.media.player.stop()
        self.media.bridge(media)
        return self.media

    def agent_gone(self, talk: float, hold: float, wrap_up: float) -> None:
        """The agent's call ended (their hang-up, or ours): the flow's queue step goes on to its survey,
        or the call is over for the caller too."""
        self.handled = (talk, hold, wrap_up)
        queue, self.queue = self.queue or self.joined, None
        if self.flow_run is None or self.flow_run.finished or self.agent is None or self.ended.is_set():
            self._background.spawn(self.hangup())
        else:
            self._feed(AgentDone(self.agent, queue or ""))

    def context(self) -> dict[str, object]:
        """What the agent should know: who calls, what they did in the IVR, what the lookups found."""
        leg, run = self.leg, self.flow_run
        return {"id": self.id, "call_id": leg.call_id, "caller": {"number": leg.caller_number, "name": leg.caller_name},
                "dialed": leg.dialed_number, "started": self.started, "queue": self.queue or self.joined,
                "agent": self.agent, "callback": self.callback,
                "digits": self.digits.text, "state": "ended" if self.ended.is_set() else leg.state.value,
                "flow": run.flow.name if run else None, "flow_version": run.deployment.version if run else None,
                "path": run.path if run else [], "variables": run.variables if run else {}}  # fmt: skip

    async def _fetch(self, request: Fetch) -> None:
        started = time.monotonic()
        done = await self.services.lookups.fetch(request)
        seconds = time.monotonic() - started
        event(log, "flow.lookup", call_id=self.leg.call_id, url=request.url, ok=done.error is None,
              error=done.error, seconds=round(seconds, 3))  # fmt: skip
        flow = self.flow_run.flow.name if self.flow_run is not None else ""
        self.services.metrics.lookup_seconds.labels(flow).observe(seconds)
        if done.error is not None:
            self.services.metrics.lookup_failures.labels(flow).inc()
        self._feed(done)

    def _start_capture(self, action: StartRecording) -> None:
        media = self.media
        if media is None:
            self._feed(RecordingDone(None, 0.0))
            return
        path = recording_path(Path(self.services.config.flows.voicemail_dir), self.leg.call_id, time.time())
        recorder = Recorder(path, self.services.disk)

        def ended(reason: str) -> None:
            self._background.spawn(self._capture_done(capture, reason))

        capture = Capture(recorder, max_seconds=action.max_seconds, silence_seconds=action.silence_seconds,
                          on_end=ended)  # fmt: skip
        self._capture = capture
        media.capture_message(capture)
        event(log, "call.recording_message", call_id=self.leg.call_id, file=str(path))
        if action.beep:
            media.player.play(BEEP)

    async def _capture_done(self, capture: Capture, reason: str) -> None:
        if self.media is not None and self.media.capture is capture:
            self.media.capture_message(None)
        await capture.recorder.close()
        event(log, "call.message", call_id=self.leg.call_id, file=str(capture.recorder.path),
              seconds=round(capture.seconds, 2), ended_by=reason)  # fmt: skip
        self._feed(RecordingDone(str(capture.recorder.path), capture.seconds))

    def _end_flow(self) -> dict[str, Any]:
        """Stop the run; what it did (empty when no flow ran)."""
        self._stop_listening()
        for timer in (self._flow_timer, self._transfer_timer):
            if timer is not None:
                timer.cancel()
        self._flow_timer = self._transfer_timer = None
        run = self.flow_run
        if run is None:
            return {}
        run.hung_up(time.time(), self.end_reason or self.leg.state.value)
        return dict(summary(run))

    def _record(self, flow: dict[str, Any], media: dict[str, object], recorder: Recorder | None) -> CallRecord:
        """The call record: who called, what they did in the flows, the queue and the agent, the audio."""
        leg = self.leg
        path: list[dict[str, Any]] = flow.get("path", [])
        happened = {entry["event"] for entry in path}
        outcome = self.outcome or (
            "agent" if self.agent is not None else "callback" if self.callback is not None
            else "transferred" if "transferred" in happened
            else "abandoned" if self.queue is not None
            else "completed" if any(e["event"] == "hangup" and e.get("by") == "flow" for e in path)
            else "caller_hung_up")  # fmt: skip
        talk = hold = wrap_up = None
        if self.handled is not None:
            talk, hold, wrap_up = self.handled
        elif self.agent is not None:  # the caller hung up first: the agent's call is ending now
            talk, hold, wrap_up = self.services.center.handled_so_far(self)
        transcript = " | ".join(str(entry["said"]) for entry in path if "said" in entry)
        csat = survey_answer(flow.get("variables", {})) if "survey" in happened else None
        return CallRecord(
            id=self.id, call_id=leg.call_id, started=self.started, ended=time.time(), caller=leg.caller_number,
            caller_name=leg.caller_name, dialed=leg.dialed_number, outcome=outcome,
            end_reason=self.end_reason or leg.state.value, flow=flow.get("flow"), flow_version=flow.get("version"),
            digits=self.digits.text, transcript=transcript, path=as_json(path),
            variables=as_json(flow.get("variables", {})),
            queue=self.joined, wait=self.waited, agent=self.agent, talk=talk, hold=hold, wrap_up=wrap_up,
            recording=str(recorder.path) if recorder else None,
            recording_paused=as_json(recorder.paused_spans) if recorder and recorder.paused_spans else None,
            message=str(self._capture.recorder.path) if self._capture else None, rtp=as_json(media),
            csat=csat)  # fmt: skip

    def _count_survey(self, record: CallRecord) -> None:
        if record.csat is None:
            return
        metrics, queue = self.services.metrics, record.queue or ""
        metrics.csat.labels(queue, record.csat).inc()
        if record.csat != "none":
            metrics.csat_points.labels(queue, record.agent or "").inc(int(record.csat))
            metrics.csat_scored.labels(queue, record.agent or "").inc()

    def _close_media(self) -> None:
        self.prompting.close()
        if self._ports is not None:
            self.services.media.close(self.media, self._ports)
        self.media = None  # counted in the totals now, not among the live sessions
        self._ports = None


def survey_answer(variables: Mapping[str, Any]) -> str:
    """The caller's score from the survey's ``csat`` variable: "1"-"5", or "none" (hung up, or no score)."""
    score = variables.get("csat")
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    return str(score) if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5 else "none"
