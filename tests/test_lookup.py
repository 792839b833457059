"""Flow lookups against a real HTTP server: every way a web service can fail becomes a failed lookup."""

from __future__ import annotations

import asyncio

from aiohttp import web

from flows.interpreter import Fetch, LookupDone
from ivrd.lookup import Lookups
from tests.integration.daemon import free_port


async def _serve_and_fetch(requests: list[Fetch], max_bytes: int = 1000) -> list[LookupDone]:
    async def answer(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if kind == "slow":
            await asyncio.sleep(1)
        if kind.startswith("trickle"):  # the answer's head at once, then its body a piece at a time
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for piece in ('{"name": ', '"Ada", ', '"balance": ', "42.5}"):
                await response.write(piece.encode())
                await asyncio.sleep(0.05 if kind == "trickle" else 0.3)
            return response
        if kind == "echo":
            return web.json_response({"method": request.method, "body": await request.json(),
                                      "q": request.query.get("q")})  # fmt: skip
        bodies = {"missing": ("nope", 404), "text": ("<html>", 200), "big": ("[" + "1," * 600 + "1]", 200),
                  "empty": ("", 200)}  # fmt: skip
        text, status = bodies[kind]
        return web.Response(text=text, status=status)

    app = web.Application()
    app.router.add_route("*", "/{kind}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    lookups = Lookups(max_bytes)
    try:
        return [await lookups.fetch(Fetch(r.method, r.url.format(port=port), r.body, r.timeout)) for r in requests]
    finally:
        await lookups.close()
        await runner.cleanup()


def test_answers_and_failures():
    base = "http://127.0.0.1:{port}"
    done = asyncio.run(_serve_and_fetch([
        Fetch("POST", base + "/echo?q=a%20b", {"number": "+1555"}, 2.0),
        Fetch("GET", base + "/missing", None, 2.0),
        Fetch("GET", base + "/text", None, 2.0),
        Fetch("GET", base + "/big", None, 2.0),
        Fetch("GET", base + "/slow", None, 0.3),
        Fetch("GET", base + "/empty", None, 2.0),
        Fetch("GET", f"http://127.0.0.1:{free_port()}/nobody", None, 2.0),
    ]))  # fmt: skip
    assert done[0] == LookupDone({"method": "POST", "body": {"number": "+1555"}, "q": "a b"})
    assert done[1] == LookupDone(error="HTTP 404")
    assert done[2].error is not None and done[2].error.startswith("not JSON")
    assert done[3] == LookupDone(error="answer larger than 1000 bytes")
    assert done[4] == LookupDone(error="no answer within 0.3 s")
    assert done[5] == LookupDone(result=None)
    assert done[6].error is not None and "Connect" in done[6].error


def test_an_answer_that_comes_in_pieces_is_read_whole_or_fails_on_its_deadline():
    base = "http://127.0.0.1:{port}"
    done = asyncio.run(_serve_and_fetch([
        Fetch("GET", base + "/trickle", None, 2.0),  # whole in 0.2 s
        Fetch("GET", base + "/trickle-slow", None, 0.5),  # would be whole after 1.2 s
    ]))  # fmt: skip
    assert done[0] == LookupDone({"name": "Ada", "balance": 42.5})
    assert done[1] == LookupDone(error="no answer within 0.5 s")
