"""A headless baresip softphone driven over its ctrl_tcp interface (JSON in netstrings)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.audio import tone_level
from tests.integration.daemon import free_port

CONFIG_DIR = Path(__file__).resolve().parents[3] / "shared" / "peers" / "baresip"


class Baresip:
    """baresip with the shared headless config, on free SIP and control ports."""

    def __init__(self, *, speaks: Path | None = None, account: str | None = None, hears: bool = False) -> None:
        """``speaks``: a WAV file the phone sends as its microphone, from the moment a call is up;
        ``account``: the accounts file's line (an address to register, with its password);
        ``hears``: what the phone receives is written to ``dump-*-dec.wav`` in :attr:`dir` (sndfile)."""
        self.dir = Path(tempfile.mkdtemp(prefix="baresip-"))
        self.sip_port = free_port(span=2)  # baresip listens for SIP over TLS on the port above
        self.ctrl_port = free_port()
        while self.ctrl_port in (self.sip_port, self.sip_port + 1):
            self.ctrl_port = free_port()
        config = (CONFIG_DIR / "config").read_text()
        if speaks is not None:
            config = config.replace("ausine,440", f"aufile,{speaks}")
        config = config.replace("127.0.0.1:5062", f"127.0.0.1:{self.sip_port}")
        config = config.replace("127.0.0.1:4444", f"127.0.0.1:{self.ctrl_port}")
        if hears:
            config += f"\nmodule\t\t\tsndfile.so\nsnd_path\t\t{self.dir}\n"
        (self.dir / "config").write_text(config)
        if account is None:
            shutil.copy(CONFIG_DIR / "accounts", self.dir / "accounts")
        else:
            (self.dir / "accounts").write_text(account + "\n")
        self.log = (self.dir / "baresip.log").open("wb")
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir)], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.sock = self._connect()
        self._buffer = b""
        self._token = 0
        self.seen: list[str] = []
        self._unclaimed: list[dict] = []

    def _connect(self, timeout: float = 15.0) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=timeout)
            except ConnectionRefusedError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"baresip control port never opened: {self.output()}") from None
                time.sleep(0.05)  # the port opens once baresip has read its config; nothing to await before

    def command(self, name: str, params: str = "") -> None:
        self._token += 1
        body = json.dumps({"command": name, "params": params, "token": str(self._token)}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def wait_event(self, wanted: str, timeout: float = 20.0) -> dict:
        """The next event of type ``wanted`` not handed out before, whether it came already or comes
        within ``timeout``; every event read is kept, in order, in ``seen``."""
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self._unclaimed):
            if event.get("type") == wanted:
                return self._unclaimed.pop(i)
        while True:
            while b":" in self._buffer:
                length, _, rest = self._buffer.partition(b":")
                size = int(length)
                if len(rest) < size + 1:
                    break
                message, self._buffer = json.loads(rest[:size]), rest[size + 1 :]
                if message.get("event"):
                    self.seen.append(message.get("type", ""))
                    if message.get("type") == wanted:
                        return message
                    self._unclaimed.append(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {wanted} from baresip; events {self.seen}; {self.output()}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"baresip closed its control socket; {self.output()}")
            self._buffer += chunk

    def heard(self) -> tuple[np.ndarray, int]:
        """What the phone has heard on its call so far (``hears``), first channel, and its sample rate.
        Readable while the call is up: the dump's frames reach the file as they come, its header's
        length only at the end, so the data chunk is read to the end of the file."""
        dumps = list(self.dir.glob("dump-*-dec.wav"))
        if not dumps:
            return np.zeros(0, dtype="<i2"), 8000
        (dump,) = dumps
        raw = dump.read_bytes()
        fmt = raw.find(b"fmt ")
        channels, rate = struct.unpack_from("<HI", raw, fmt + 10)
        data = raw.find(b"data", fmt) + 8
        frames = (len(raw) - data) // (2 * channels)
        return np.frombuffer(raw, dtype="<i2", count=frames * channels, offset=data)[::channels], rate

    def heard_tone(self, frequency: float, *, last: float | None = None) -> float:
        """How strongly ``frequency`` stands out in what the phone has heard (``hears``), or in its ``last``
        seconds (0.0 until it has heard that long)."""
        samples, rate = self.heard()
        if last is not None:
            samples = samples[-int(last * rate) :] if len(samples) >= int(last * rate) else samples[:0]
        return tone_level(samples, rate, frequency) if len(samples) else 0.0

    def output(self) -> str:
        self.log.flush()
        return (self.dir / "baresip.log").read_text(errors="replace")[-2000:]

    def close(self) -> None:
        self.sock.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def agent_phone(daemon_port: int, user: str, password: str, *, auto: bool, codecs: str) -> Baresip:
    """An agent's softphone registering with the daemon as ``user`` (digest), answering at once if ``auto``;
    it sends a 440 Hz tone and keeps what it hears."""
    answer = ";answermode=auto" if auto else ""
    return Baresip(hears=True, account=f"<sip:{user}@127.0.0.1:{daemon_port};transport=udp>;auth_pass={password};"
                                       f"regint=600;audio_codecs={codecs}{answer}")  # fmt: skip
