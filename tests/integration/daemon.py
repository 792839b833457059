"""Start the real daemon for a test and stop it cleanly, waiting on its sd_notify READY=1."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivrd.records import Query, connect, find
from tests.integration.logfmt import events, parse_line

READY_TIMEOUT = 30.0


PROMPT = Path(__file__).resolve().parents[2] / "etc" / "flows" / "prompts" / "welcome.wav"


def one_flow(directory: Path, steps: str) -> str:
    """A flows directory holding one default flow with ``steps`` (YAML, indented under ``steps:``);
    the configuration snippet that serves it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.yaml").write_text(f"default: true\nsteps:\n{steps}")
    return f"flows:\n  dir: {directory}\n"


def free_port(span: int = 1) -> int:
    """A port free for UDP and TCP on both 127.0.0.1 and ::1, and so are the ``span - 1`` ports above it."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:  # bound only: no TIME_WAIT once closed
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        if port + span <= 65536 and all(_bindable(port + offset) for offset in range(span)):
            return port


def _bindable(port: int) -> bool:
    """Whether UDP and TCP on 127.0.0.1 and ::1 can each bind ``port`` now."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    return False
    return True


@dataclass
class RunningDaemon:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path
    http_port: int
    notify: socket.socket | None = None  # the NOTIFY_SOCKET listener, when the test reads it past READY=1

    final_log: str = ""  # the whole log, kept once the daemon has stopped and its folder is gone

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else self.final_log

    def wait_for_event(self, name: str, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until the log holds ``count`` events called ``name`` (the daemon's only report of some
        things, such as digits, until call records exist)."""
        deadline = time.monotonic() + timeout
        while len(events(self.log, name)) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"fewer than {count} {name} events:\n{self.log[-3000:]}")
            time.sleep(0.05)

    def records(self, count: int = 0, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The call records the daemon has committed, newest first; waits until there are ``count``."""
        deadline = time.monotonic() + timeout
        while True:
            found = list(find(connect(self.workdir / "calls.db", readonly=True), Query(limit=100000)))
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} call records, not {count}")
            time.sleep(0.05)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A request to the daemon's HTTP API; its JSON answer."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not stop within {timeout}s:\n{self.log[-3000:]}") from None


def start_daemon(
    extra_yaml: str = "", *, sip_section: str = "", http_section: str = "", media_section: str = "",
    rtp_ports: tuple[int, int] | None = None, env: dict[str, str] | None = None, keep_notify: bool = False,
    wrapper: tuple[str, ...] = (),
) -> RunningDaemon:
    """``wrapper`` runs the daemon through a command that then executes it (``chrt -R -r 20``)."""
    workdir = Path(tempfile.mkdtemp(prefix="ivrd-"))
    port, http_port = free_port(), free_port()
    rtp = random.randrange(20000, 60000, 1000)
    first, last = rtp_ports or (rtp, rtp + 998)
    config = workdir / "ivrd.yaml"
    config.write_text(
        "sip:\n"
        "  listen:\n"
        f"    - {{transport: udp, address: 127.0.0.1, port: {port}}}\n"
        f"    - {{transport: tcp, address: 127.0.0.1, port: {port}}}\n"
        f"    - {{transport: udp, address: '::1', port: {port}}}\n"
        f"    - {{transport: tcp, address: '::1', port: {port}}}\n"
        f"{sip_section}"
        f"media:\n  rtp_port_min: {first}\n  rtp_port_max: {last}\n{media_section}"
        f"http:\n  port: {http_port}\n{http_section}"
        f"{extra_yaml}"
    )
    notify_path = workdir / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.2)
    log_path = workdir / "daemon.log"
    environment = {**os.environ, "NOTIFY_SOCKET": str(notify_path), **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*wrapper, sys.executable, "-m", "ivrd.cli", "run", "-c", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, env=environment, cwd=workdir)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while True:
            try:
                if b"READY=1" in notify.recv(4096).split(b"\n"):
                    break
            except TimeoutError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"daemon not ready (exit {proc.poll()}):\n{log_path.read_text()}") from None
    finally:
        if not keep_notify or proc.poll() is not None:
            notify.close()
    return RunningDaemon(proc, port, workdir, log_path, http_port, notify if keep_notify else None)


@contextlib.contextmanager
def daemon_running(extra_yaml: str = "", *, sip_section: str = "", http_section: str = "",
                   expected_errors: tuple[str, ...] = (), env: dict[str, str] | None = None,
                   keep_notify: bool = False, wrapper: tuple[str, ...] = (), media_section: str = ""):  # fmt: skip
    """A daemon for the block; on leaving, SIGTERM must end it with exit code 0, and its log must hold no
    error but the events named in ``expected_errors``."""
    daemon = start_daemon(extra_yaml, sip_section=sip_section, http_section=http_section, env=env,
                          keep_notify=keep_notify, wrapper=wrapper, media_section=media_section)  # fmt: skip
    try:
        yield daemon
    finally:
        code = daemon.stop()
        if daemon.notify is not None:
            daemon.notify.close()
        log = daemon.final_log = daemon.log
        shutil.rmtree(daemon.workdir, ignore_errors=True)
    assert code == 0, f"daemon exited with {code}:\n{log[-3000:]}"
    errors = [e for e in log.splitlines() if "level=error" in e and parse_line(e).get("event") not in expected_errors]
    assert not errors, "\n".join(errors[:20])
