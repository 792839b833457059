"""What the SIP core sent and received, as plain counters the metrics module reads at scrape time.

Method names come from peers, so anything outside the methods ivrd knows is counted as ``other``:
a peer cannot grow the label set.
"""

from __future__ import annotations

from collections import Counter

KNOWN_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY",
                           "SUBSCRIBE", "MESSAGE", "UPDATE", "PRACK", "PUBLISH"})  # fmt: skip


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class SipCounts:
    """Messages by direction (``in``/``out``) and method, responses also by status class (``2xx``)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.responses: Counter[tuple[str, str, str]] = Counter()
        self.timeouts: Counter[str] = Counter()  # transactions that ended on a timer (B, F, H), by method
        self.refused: Counter[str] = Counter()  # new calls refused (503), by why: overload, draining, ...
        self.unparsable = 0

    def request(self, direction: str, method: str) -> None:
        self.requests[direction, method_label(method)] += 1

    def response(self, direction: str, method: str, status: int) -> None:
        self.responses[direction, method_label(method), f"{status // 100}xx"] += 1

    def timeout(self, method: str) -> None:
        self.timeouts[method_label(method)] += 1
