"""Flow lookups: one HTTP request, a JSON answer, bounded in time and size, never an exception."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from flows.interpreter import Fetch, LookupDone

from . import __version__


class Lookups:
    """The daemon's HTTP client for flow lookups (one connection pool for every call)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, request: Fetch) -> LookupDone:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": f"ivrd/{__version__}"})
        timeout = aiohttp.ClientTimeout(total=request.timeout)
        try:
            async with self._session.request(request.method, request.url, json=request.body, timeout=timeout,
                                             allow_redirects=False) as response:  # fmt: skip
                body = await self._body(response)
                if response.status >= 300:
                    return LookupDone(error=f"HTTP {response.status}")
        except TimeoutError:
            return LookupDone(error=f"no answer within {request.timeout:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return LookupDone(error=f"{type(exc).__name__}: {exc}"[:200])
        if len(body) > self.max_bytes:
            return LookupDone(error=f"answer larger than {self.max_bytes} bytes")
        try:
            return LookupDone(result=json.loads(body) if body.strip() else None)
        except (ValueError, RecursionError) as exc:
            return LookupDone(error=f"not JSON: {exc}"[:200])

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, or its first ``max_bytes`` + 1 (a read returns what has come so far: a service
        that trickles its answer is read to its end, or to the request's deadline)."""
        body = bytearray()
        while len(body) <= self.max_bytes:
            chunk = await response.content.read(self.max_bytes + 1 - len(body))
            if not chunk:
                break
            body += chunk
        return bytes(body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # lets the connector close its sockets before the loop stops
