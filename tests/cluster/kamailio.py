"""The real Kamailio of etc/cluster/kamailio.cfg for a test: on an ephemeral port, in front of the
nodes given, in the foreground."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.integration.daemon import free_port
from tests.integration.peers import require

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "cluster" / "kamailio.cfg"


@contextlib.contextmanager
def kamailio(node_ports: list[int]) -> Iterator[int]:
    """Kamailio dispatching to ``node_ports`` on 127.0.0.1, for the block; its SIP port."""
    require("kamailio")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kamailio-") as workdir:
        here = Path(workdir)
        (here / "dispatcher.list").write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in node_ports))
        config = EXAMPLE.read_text().replace("127.0.0.1:5060", f"127.0.0.1:{port}")
        config = config.replace("/etc/ivrd/cluster/dispatcher.list", str(here / "dispatcher.list"))
        (here / "kamailio.cfg").write_text(config)
        log = (here / "kamailio.log").open("wb")
        proc = subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(here / "kamailio.cfg"), "-P",
                                 str(here / "kamailio.pid"), "-Y", str(here), "-w", str(here)],
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            _await_answer(port, proc, here / "kamailio.log")
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


def _await_answer(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until Kamailio answers an OPTIONS it cannot forward (Max-Forwards 0: 483 from itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.2)
        local = probe.getsockname()[1]
        deadline = time.monotonic() + 15
        while True:
            probe.sendto((f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK"
                          f"probe{time.monotonic_ns()}\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
                          "Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n"
                          ).encode(), ("127.0.0.1", port))  # fmt: skip
            try:
                if probe.recv(4096).startswith(b"SIP/2.0 483"):
                    return
            except TimeoutError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kamailio did not start:\n{log.read_text(errors='replace')[-3000:]}")
