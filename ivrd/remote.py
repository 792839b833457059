"""The running daemon from a terminal, through its HTTP API: ``ivrd status`` (80 columns), and the
commands that change it (an agent's state, a hang-up, a reload)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import HttpConfig

TIMEOUT = 5.0
WIDTH = 80
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


class RemoteError(Exception):
    """The daemon could not be reached, or refused what was asked (the message says which, for people)."""


@dataclass(frozen=True, slots=True)
class Daemon:
    """Where the daemon's API is, and how to be let in."""

    url: str
    token: str | None = None
    context: ssl.SSLContext | None = None

    @classmethod
    def of(cls, http: HttpConfig) -> Daemon:
        """The daemon a configuration describes; over HTTPS its own certificate is trusted (it may be
        self-signed, and name another host than the address it listens on)."""
        host = WILDCARDS.get(http.address, http.address)
        host = f"[{host}]" if ":" in host else host
        if not http.tls:
            return cls(f"http://{host}:{http.port}", http.token)
        context = ssl.create_default_context()
        assert http.tls_cert is not None
        context.load_verify_locations(http.tls_cert)
        context.check_hostname = False
        return cls(f"https://{host}:{http.port}", http.token, context)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer to ``method path`` (None for an empty one); RemoteError with the daemon's reason."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as answer:
                text = answer.read()
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"{method} {path}: {exc.code} {_reason(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise RemoteError(f"cannot reach the daemon at {self.url}: {why}") from None
        return json.loads(text) if text else None


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError):
        return str(error.reason)


# ---- ivrd status ---------------------------------------------------------------------------------


def status_text(status: dict[str, Any]) -> str:
    """The status document (``GET /status``) for a terminal: calls, queues, agents; 80 columns."""
    now = float(status["time"])
    calls, queues, agents = status["calls"], status["queues"], status["agents"]
    clock = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
    head = f"ivrd {status['node']}  flows {status['flows'] or '-'}  {clock}"
    lines = [_fit(f"{head}{len(calls):>{WIDTH - len(head) - 6}} calls")]
    load = status.get("load")
    if load:
        taking = (f"LIMITING new calls to {load['rate']:g}/s ({load['why']})" if load["limiting"]
                  else "taking every call")  # fmt: skip
        lines.append(_fit(f"loop busy {load['busy'] * 100:.0f}%  lag {load['lag_ms']:g} ms  {taking}"))
    transcripts = status.get("transcription")
    if transcripts:
        lines.append(f"transcripts: {transcripts['waiting']} waiting, {transcripts['done']} done, "
                     f"{transcripts['failed']} failed")  # fmt: skip
    lines += ["", _fit(f"{'CALLER':<16} {'FLOW.STEP':<24} {'STATE':<6} {'TIME':>6} {'QUEUE':<12} {'AGENT':<10}")]
    for call in calls:
        where = f"{call['flow']}.{call['step']}" if call["flow"] else "-"
        lines.append(_fit(f"{_cut(call['caller'], 16):<16} {_cut(where, 24):<24} {call['state']:<6} "
                          f"{_duration(call['seconds']):>6} {_cut(call['queue'] or '-', 12):<12} "
                          f"{_cut(call['agent'] or '-', 10):<10}"))  # fmt: skip
    if not calls:
        lines.append("(no calls)")
    today = "today" if status.get("records") else "no records"  # the day's figures come from them
    lines += ["", _fit(f"{'QUEUE':<14} {'WAIT':>4} {'OLDEST':>6} {'AVAIL':>5} {'BUSY':>4} {'WRAP':>4} {'AWAY':>4} "
                       f"{'OFFERED':>7} {'SL':>4} {'ABAND':>5}  {today}")]  # fmt: skip
    for queue in queues:
        by_state, day = queue["agents"], queue["today"] or {}
        lines.append(_fit(f"{_cut(queue['name'], 14):<14} {queue['waiting']:>4} {_duration(queue['oldest_wait']):>6} "
                          f"{by_state['available']:>5} {by_state['offered'] + by_state['busy']:>4} "
                          f"{by_state['wrap_up']:>4} {by_state['away']:>4} {day.get('offered', '-'):>7} "
                          f"{_share(day.get('service_level')):>4} {_share(day.get('abandonment')):>5}"))  # fmt: skip
    lines += ["", _fit(f"{'AGENT':<10} {'NAME':<20} {'STATE':<10} {'FOR':>6} {'CALLS':>5}  REASON")]
    for agent in agents:
        lines.append(_fit(f"{_cut(agent['id'], 10):<10} {_cut(agent['name'] or '-', 20):<20} "
                          f"{agent['state']:<10} {_duration(agent['seconds_in_state']):>6} {agent['calls']:>5}  "
                          f"{agent['reason'] or ''}"))  # fmt: skip
    if not agents:
        lines.append("(no agents)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _cut(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "~"


def _fit(line: str) -> str:
    return line[:WIDTH].rstrip()


def watch(daemon: Daemon, every: float, show: Any) -> None:
    """The status again every ``every`` seconds until interrupted, the screen cleared between."""
    while True:
        try:
            text = status_text(daemon.call("GET", "/status"))
        except RemoteError as exc:
            text = f"ivrd: {exc}"
        show("\x1b[H\x1b[2J" + text + f"\n\n(every {every:g} s; Ctrl-C to stop)")
        time.sleep(every)
