"""One call, one task: ring, answer with a media session, then wait for the end (BYE, CANCEL, time limit)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING

from .logs import event
from .media.dtmf import Digit, DigitStream
from .media.recorder import Recorder, recording_path
from .media.session import MediaSession
from .media.tts import TtsError
from .sip.sdp import AudioSession
from .sip.ua import CallLeg, LegState

if TYPE_CHECKING:
    from .server import Daemon

log = logging.getLogger("ivrd.call")
# How long a BYE of ours may take to complete (Timer F is 64*T1 = 32 s by default).
BYE_GRACE = 40.0


class Call:
    """The life of one incoming call, driven by :meth:`run` in its own task."""

    def __init__(self, leg: CallLeg, daemon: Daemon) -> None:
        self.leg = leg
        self.daemon = daemon
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.digits = DigitStream()
        self.media: MediaSession | None = None
        self._sock: socket.socket | None = None
        self._rtcp_sock: socket.socket | None = None
        self._background: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
        self._port: int | None = None

    # ---- events from the SIP core and the media session ---------------------------------------------

    def on_ended(self, reason: str) -> None:
        self.end_reason = reason
        self.ended.set()

    def on_confirmed(self) -> None:
        if self.media is None and self.leg.audio is not None and self._sock is not None:
            self._start_media(self.leg.audio)  # an offerless INVITE: the ACK carried the answer

    def on_media_changed(self, audio: AudioSession) -> None:
        if self.media is not None:
            self.media.update(audio)

    def on_digit_start(self, digit: str) -> None:
        if self.media is not None and self.media.player.stop() is not None:  # barge-in
            event(log, "call.barge_in", call_id=self.leg.call_id, digit=digit)

    def on_digit(self, digit: Digit) -> None:
        if digit.source != "rfc4733":
            self.on_digit_start(digit.digit)
        if self.digits.add(digit):
            event(log, "call.dtmf", call_id=self.leg.call_id, digit=digit.digit, source=digit.source,
                  duration_ms=digit.duration_ms)  # fmt: skip

    # ---- the call's life --------------------------------------------------------------------------

    async def _wait_end(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), timeout)
        return self.ended.is_set()

    async def run(self) -> None:
        sip = self.daemon.sip
        config = self.daemon.config
        leg = self.leg
        loop = asyncio.get_running_loop()
        try:
            sip.ua.ring(leg, loop.time())
            sip.flush()
            if config.sip.answer_after and await self._wait_end(config.sip.answer_after):
                return
            if self.ended.is_set():
                return
            address = config.media.address or leg.flow.local[0]
            port = self._bind_media(address)
            if port is None:
                event(log, "call.no_media_port", logging.WARNING, call_id=leg.call_id)
                sip.ua.reject(leg, 503, loop.time(), reason="no-media-port")
                sip.flush()
                return
            sip.ua.answer(leg, media_address=address, media_port=port, now=loop.time())
            sip.flush()
            if leg.audio is not None and leg.awaiting_answer is None:
                self._start_media(leg.audio)
            if not await self._wait_end(config.calls.max_duration):
                event(log, "call.max_duration", call_id=leg.call_id, seconds=config.calls.max_duration)
                await self.hangup()
        except asyncio.CancelledError:
            if leg.state is not LegState.ENDED:
                sip.ua.hangup(leg, loop.time())
                sip.flush()
            raise
        finally:
            summary = self.media.summary() if self.media else {}
            recorder = self.media.recorder if self.media else None
            self._close_media()
            try:
                if recorder is not None:
                    await recorder.close()  # on the disk thread; the daemon waits for that thread at exit too
            finally:
                event(log, "call.end", call_id=leg.call_id, reason=self.end_reason or leg.state.value,
                      digits=self.digits.text, recording=recorder.path if recorder else None, **summary)  # fmt: skip

    async def hangup(self) -> None:
        """End the call from our side and wait (bounded) for the BYE to complete."""
        self.daemon.sip.ua.hangup(self.leg, asyncio.get_running_loop().time())
        self.daemon.sip.flush()
        await self._wait_end(BYE_GRACE)

    # ---- media ------------------------------------------------------------------------------------

    def _bind_media(self, address: str) -> int | None:
        """Take a port pair from the pool (RTP even, RTCP the odd one above) and bind both, skipping
        pairs something else holds."""
        pool = self.daemon.ports
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
        for _ in range(16):
            port = pool.acquire()
            if port is None:
                return None
            pair = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(2)]
            try:
                for offset, sock in enumerate(pair):
                    sock.bind((wildcard, port + offset))
                    sock.setblocking(False)
            except OSError:
                for sock in pair:
                    sock.close()
                pool.release(port)
                continue
            (self._sock, self._rtcp_sock), self._port = pair, port
            return port
        return None

    def _start_media(self, audio: AudioSession) -> None:
        assert self._sock is not None
        media = MediaSession(audio, self.daemon.media_settings, on_digit=self.on_digit,
                             on_digit_start=self.on_digit_start)  # fmt: skip
        calls = self.daemon.config.calls
        if calls.record:
            path = recording_path(Path(calls.recordings_dir), self.leg.call_id, time.time())
            media.recorder = Recorder(path, self.daemon.disk)
        self.media = media
        sock, self._sock = self._sock, None
        rtcp_sock, self._rtcp_sock = self._rtcp_sock, None
        if audio.rtcp_mux and rtcp_sock is not None:  # RTCP comes on the RTP port: the odd one is not needed
            rtcp_sock.close()
            rtcp_sock = None
        task = self._spawn(media.open(sock, rtcp_sock))
        task.add_done_callback(lambda done: self._media_opened(media, done))

    def _media_opened(self, media: MediaSession, opening: asyncio.Task[None]) -> None:
        error = None if opening.cancelled() else opening.exception()
        if error is not None:
            event(log, "call.media_failed", logging.WARNING, call_id=self.leg.call_id, error=repr(error))
        if error is not None or self.media is not media or self.ended.is_set():
            media.close()
            return
        if self.daemon.answer_prompt is not None:
            media.player.play(self.daemon.answer_prompt)
        media.start()
        text = self.daemon.config.calls.answer_say
        if text is not None:
            self._spawn(self._say(media, text))

    async def _say(self, media: MediaSession, text: str) -> None:
        """Speak ``text`` after what is queued (synthesized once for every call that says it)."""
        try:
            prompt = await self.daemon.speaker.say(text)
        except TtsError as exc:
            event(log, "call.say_failed", logging.WARNING, call_id=self.leg.call_id, error=str(exc))
            return
        if self.media is media and not self.ended.is_set():
            media.player.play(prompt)

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _close_media(self) -> None:
        if self.media is not None:
            self.media.close()
        for sock in (self._sock, self._rtcp_sock):
            if sock is not None:
                sock.close()
        self._sock = self._rtcp_sock = None
        if self._port is not None:
            self.daemon.ports.release(self._port)
            self._port = None
