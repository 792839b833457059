"""What a caller hears from ivrd: the flow's prompts (files and spoken text, in order), hold music looped
while they wait in a queue, announcements over it, and whether they may cut what plays (barge-in)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from flows.interpreter import PlayPrompt

from .logs import event
from .media.player import Clip
from .media.session import MediaSession
from .media.tts import Speaker, TtsError
from .tasks import TaskSet

log = logging.getLogger("ivrd.call")


class Prompting:
    """One call's prompts. ``on_done`` is told when what the flow asked to play has played (not hold music).
    Spoken text is synthesized off the loop; what was stopped or superseded meanwhile is never played."""

    def __init__(self, call_id: str, speaker: Speaker, tasks: TaskSet, on_done: Callable[[], None]) -> None:
        self._call_id = call_id
        self._speaker = speaker
        self._tasks = tasks
        self._on_done = on_done
        self._media: MediaSession | None = None
        self._serial = 0  # counts prompts asked for and stopped: a late synthesis for a stopped one is dropped
        self._interruptible = False  # whether what plays now may be cut short by the caller
        self._hold: Clip | None = None  # looped while the caller waits in a queue
        self._then: Callable[[], None] | None = None  # what comes once a preface has played

    def attach(self, media: MediaSession) -> None:
        """The call's media, once open."""
        self._media = media

    def close(self) -> None:
        """The call is over: nothing more plays, nobody is told (and the call is not held from here)."""
        self._media = None
        self._on_done = _nothing

    def play(self, action: PlayPrompt, clips: Mapping[str, Clip]) -> None:
        """The flow's prompt: ``clips`` are its deployment's prompt files, by the name they were loaded under."""
        self._serial += 1
        self._interruptible = action.barge_in
        if any(sound.text is not None for sound in action.sounds):
            self._tasks.spawn(self._synthesize_and_play(action, clips, self._serial))
        else:
            self._play([clips[sound.file] for sound in action.sounds if sound.file])

    def stop(self) -> None:
        self._serial += 1
        self._interruptible = False
        if self._media is not None:
            self._media.player.stop()

    def barge_in(self, **why: str) -> None:
        """The caller spoke or pressed a key: cut what plays, if it may be cut."""
        if self._media is not None and self._interruptible and self._media.player.stop() is not None:
            event(log, "call.barge_in", call_id=self._call_id, **why)

    def preface(self, text: str, then: Callable[[], None]) -> None:
        """Say ``text`` before anything else (the recording announcement), then ``then()`` (the flow
        starts); a synthesis that fails goes straight on, logged."""

        async def say() -> None:
            try:
                clip = await self._speaker.say(text, None)
            except TtsError as exc:
                event(log, "call.preface_failed", logging.WARNING, call_id=self._call_id, error=str(exc))
                then()
                return
            if self._media is not None:
                self._then = then
                self._media.player.play(clip)

        self._tasks.spawn(say())

    def finished(self) -> None:
        """The player has played all it was given (the media session's ``on_prompt_done``)."""
        if self._then is not None:
            then, self._then = self._then, None
            then()
            return
        if self._hold is not None and self._media is not None:
            self._media.player.play(self._hold)  # hold music loops; the flow waits for the queue, not prompts
            return
        self._on_done()

    def hold(self, music: Clip | None) -> None:
        """Loop ``music`` while the caller waits (None: stop it; silence when the queue has none)."""
        self._serial += 1
        self._hold = music
        if self._media is not None:
            self._media.player.stop()
            if music is not None:
                self._media.player.play(music)

    def announce(self, text: str) -> None:
        """Say ``text`` over the hold music; the music comes back after it."""
        self._serial += 1
        serial = self._serial

        async def say() -> None:
            prompt = await self._say(text, None)
            if prompt is not None and serial == self._serial and self._media is not None and self._hold is not None:
                self._media.player.stop()
                self._media.player.play(prompt)

        self._tasks.spawn(say())

    async def _synthesize_and_play(self, action: PlayPrompt, clips: Mapping[str, Clip], serial: int) -> None:
        prompts: list[Clip] = []
        for sound in action.sounds:
            if sound.file is not None:
                prompts.append(clips[sound.file])
            elif sound.text is not None and (spoken := await self._say(sound.text, sound.voice)) is not None:
                prompts.append(spoken)
        if serial == self._serial:  # not stopped (or superseded) while it was being synthesized
            self._play(prompts)

    async def _say(self, text: str, voice: str | None) -> Clip | None:
        try:
            return await self._speaker.say(text, voice)
        except TtsError as exc:
            event(log, "call.say_failed", logging.WARNING, call_id=self._call_id, error=str(exc))
            return None

    def _play(self, prompts: list[Clip]) -> None:
        if self._media is None:
            return
        if not prompts:
            self._on_done()
        for prompt in prompts:
            self._media.player.play(prompt)


def _nothing() -> None:
    """What a closed call's prompts tell."""
