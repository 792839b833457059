"""Text to speech with espeak-ng: run as a subprocess (never on the event loop), cached by text and voice."""

from __future__ import annotations

import asyncio
import io
import re
from collections import OrderedDict
from concurrent.futures import Executor

from .player import Clip, PromptError, decode_wav

MAX_TEXT = 1000
_VOICE = re.compile(r"[A-Za-z0-9+_-]{1,40}\Z")


class TtsError(Exception):
    """Text that could not be spoken (bad voice, synthesizer failure, too long)."""


class Speaker:
    """Turns text into prompts. The same (text, voice) is synthesized once: later requests reuse the
    cached prompt, and requests made while it is being synthesized wait for that one run."""

    def __init__(self, executor: Executor | None = None, *, voice: str = "en-us", max_entries: int = 512,
                 timeout: float = 10.0, command: str = "espeak-ng") -> None:  # fmt: skip
        self.voice = voice
        self.timeout = timeout
        self.command = command
        self.max_entries = max_entries
        self.synthesized = 0
        self._executor = executor
        self._cache: OrderedDict[tuple[str, str], Clip] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Future[Clip]] = {}

    async def say(self, text: str, voice: str | None = None) -> Clip:
        voice = voice or self.voice
        if not _VOICE.match(voice):
            raise TtsError(f"bad voice name {voice[:40]!r}")
        if len(text) > MAX_TEXT:
            raise TtsError(f"text longer than {MAX_TEXT} characters")
        key = (text, voice)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Clip] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            prompt = await self._synthesize(text, voice)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, TtsError) else TtsError(repr(exc)))
            future.exception()  # retrieved here: waiters get it through their own await
            raise
        finally:
            del self._running[key]
        future.set_result(prompt)
        self._cache[key] = prompt
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return prompt

    async def _synthesize(self, text: str, voice: str) -> Clip:
        process = await asyncio.create_subprocess_exec(
            self.command, "-v", voice, "--stdout", "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
        try:
            wav, err = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            raise TtsError(f"{self.command} took longer than {self.timeout} s") from None
        finally:
            if process.returncode is None:  # timed out or cancelled: do not leave it running
                process.kill()
                await process.wait()
        if process.returncode != 0 or not wav:
            raise TtsError(f"{self.command} failed: {err.decode(errors='replace').strip()[:200]}")
        self.synthesized += 1
        try:  # decoding and resampling are CPU work: off the loop too
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, decode_wav, io.BytesIO(wav), f"say:{voice}", f"{self.command} output")
        except PromptError as exc:
            raise TtsError(str(exc)) from None
