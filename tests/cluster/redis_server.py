"""A real redis-server for a test, in the foreground on an ephemeral port; stopped and started again on
the same port and directory when a test needs Redis to go away and come back."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.integration.daemon import free_port
from tests.integration.peers import require


class RedisServer:
    """``persist``: an append-only file in ``workdir``, as etc/cluster/redis.conf sets it."""

    def __init__(self, workdir: Path, *, persist: bool = False) -> None:
        require("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "yes" if persist else "no", "--appendfsync", "always", "--dir", str(workdir)]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)  # its port opens once started; nothing to await before

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None


@contextlib.contextmanager
def redis_server(workdir: Path, *, persist: bool = False) -> Iterator[RedisServer]:
    """A fresh redis-server, for the block."""
    server = RedisServer(workdir, persist=persist)
    server.start()
    try:
        yield server
    finally:
        server.stop()
