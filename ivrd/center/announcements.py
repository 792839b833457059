"""What callers hear while they wait: every ``announce_every`` seconds, their place in line and the
expected wait, and how to be called back when the queue offers it."""

from __future__ import annotations

import logging
import math

from ..logs import event
from .line import Line, wait_phrase
from .model import Waiting

log = logging.getLogger("ivrd.queue")


class Announcer:
    """See the module docstring."""

    def __init__(self, line: Line) -> None:
        self._line = line

    def start(self, place: Waiting) -> None:
        every = self._line.config.queues[place.queue].announce_every
        if every:
            place.announcer = self._line.clock.call_later(every, self._announce, place)

    @staticmethod
    def stop(place: Waiting) -> None:
        if place.announcer is not None:
            place.announcer.cancel()
            place.announcer = None

    def _announce(self, place: Waiting) -> None:
        line = self._line
        if line.waiting.get(place.caller.id) is not place or place.offer is not None or place.callback is not None:
            return
        position = line.position(place)
        wait = line.expected_wait(place.queue, position)
        key = line.config.queues[place.queue].callback_key
        offer = f" To be called back without losing your place, press {key.key}." if key else ""
        event(log, "queue.announce", call_id=place.caller.call_id, queue=place.queue, position=position,
              expected_wait=None if math.isinf(wait) else round(wait))  # fmt: skip
        place.caller.announce(f"You are number {position} in line. The expected wait is {wait_phrase(wait)}.{offer}")
        self.start(place)
