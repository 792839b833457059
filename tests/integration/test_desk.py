"""The agents' desk in a real browser: an agent signs in on /desk in headless Chromium, a SIP caller is
offered to them with the path through the IVR in the page, they accept, and audio goes both ways over
WebRTC (a tone each way, measured at the other end); they hang up and their wrap-up lands in the record.
Sign-in and the desk's socket refuse what they must."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from typing import Any, cast

import aiohttp
import pytest

from tests.integration.browser import chromium, self_signed, tone_wav, until
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.rtp_caller import RtpCaller

pytestmark = pytest.mark.peers

ROUTING = """routing:
  offer_timeout: 20
  queues:
    billing: { skills: "billing >= 1", wrap_up: 30, dispositions: [resolved, "call back", escalated] }
  agents:
    "ada": { name: Ada, skills: { billing: 3 }, contact: browser, password: "desk-pass-1", logged_in: true }
    "bob": { name: Bob, skills: { billing: 3 }, contact: browser, password: "desk-pass-2" }
webrtc:
  addresses: [127.0.0.1]
"""
STEPS = """  menu:
    menu: "Press 1 for billing."
    choices:
      - { key: 1, goto: billing }
  billing:
    queue: billing
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""


def _tone_heard(page: Any, hz: float) -> dict[str, float] | None:
    """What the agent's page hears now, when its loudest frequency is ``hz``."""
    heard = page.execute_script("return window.desk.heard()")
    return heard if heard and abs(heard["hz"] - hz) < 30 and heard["level"] > -60 else None


def _sign_in(driver, base: str, agent: str, password: str) -> None:
    driver.get(f"{base}/desk")
    driver.find_element("id", "agent").send_keys(agent)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("css selector", "#sign-in button").click()


def test_a_caller_reaches_an_agent_on_the_desk_with_their_path_and_audio_both_ways(tmp_path):
    """Over HTTPS, as agents on other machines than the daemon's need it for the microphone."""
    config = one_flow(tmp_path / "flows", STEPS) + ROUTING
    cert, key = self_signed(tmp_path)
    microphone = tone_wav(tmp_path / "mic.wav", 440)
    with daemon_running(config, http_section=f"  tls_cert: {cert}\n  tls_key: {key}\n") as daemon, \
            chromium(microphone) as page:  # fmt: skip
        base = f"https://127.0.0.1:{daemon.http_port}"
        _sign_in(page, base, "ada", "desk-pass-1")
        until(lambda: page.find_element("id", "agent-state").get_attribute("data-state") == "available", "signed in")

        caller = RtpCaller(daemon.port)
        try:
            caller.call()
            daemon.wait_for_event("call.flow")
            caller.press_rfc4733(1)
            daemon.wait_for_event("desk.ring")
            # the offer rings in the page with who calls and what they did in the IVR
            until(lambda: page.find_element("id", "call").is_displayed(), "the offer in the page")
            assert "tester" in page.find_element("id", "call-caller").text
            cookie = page.get_cookie("ivrd_desk")
            assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
            # another agent, signed in on their own desk, cannot take Ada's call by its leg
            (ring,) = events(daemon.log, "desk.ring")
            refusal = asyncio.run(_try_to_accept(base, "bob", "desk-pass-2", ring["leg"]))
            assert refusal == {"type": "error", "about": "accept",
                               "message": "no such call ringing (it may have stopped)"}  # fmt: skip
            path = page.find_element("id", "call-path").text
            assert "menu: choice key 1" in path and "billing: queue billing" in path
            page.find_element("id", "accept").click()
            daemon.wait_for_event("queue.bridged")
            until(lambda: page.find_element("id", "talking-actions").is_displayed(), "the call up in the page")

            # the caller says 1 kHz; the browser's microphone says 440 Hz
            heard: list[float] = []
            talking = threading.Thread(target=lambda: heard.append(caller.talk_to_agent()))
            talking.start()
            in_page = until(lambda: _tone_heard(page, 1000), "the caller's tone in the page", timeout=10)
            talking.join()
            assert heard[0] > 0.5, f"the agent's 440 Hz reached the caller at {heard[0]:.2f} of its energy"
            assert abs(in_page["hz"] - 1000) < 30

            page.find_element("id", "hangup").click()
            caller.wait_bye()
            until(lambda: page.find_element("id", "wrap-up").is_displayed(), "the wrap-up form")
            options = [o.text for o in page.find_elements("css selector", "#disposition option")]
            assert options == ["resolved", "call back", "escalated"]
            page.find_element("css selector", "#disposition option[value='call back']").click()
            page.find_element("id", "note").send_keys("wants a refund of the March invoice")
            page.find_element("css selector", "#wrap-up button").click()
            daemon.wait_for_event("desk.wrap_up")
            (record,) = until(lambda: [r for r in daemon.records(1) if r["disposition"]], "the wrap-up in the record")
            assert record["agent"] == "ada" and record["disposition"] == "call back"
            assert record["note"] == "wants a refund of the March invoice"
        finally:
            caller.close()


async def _try_to_accept(base: str, agent: str, password: str, leg: str) -> dict[str, Any]:
    """Sign ``agent`` in, open their desk's socket, accept ``leg``: ivrd's reply."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # unsafe: an IP address
        signed = await session.post(f"{base}/desk/signin", json={"agent": agent, "password": password}, ssl=False)
        assert signed.status == 200
        async with session.ws_connect(f"{base}/desk/socket", ssl=False, headers={"Origin": base}) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            await ws.send_json({"type": "accept", "leg": leg, "sdp": "v=0"})
            return cast(dict[str, Any], await ws.receive_json(timeout=10))


def _hello(url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The first message of the desk's socket, opened as its page opens it."""

    async def connect() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
            return cast(dict[str, Any], await ws.receive_json(timeout=10))

    return asyncio.run(connect())


def test_the_desk_refuses_wrong_passwords_other_sites_and_no_session():
    with daemon_running(ROUTING, http_section="  token: api-token-123456\n") as daemon:
        base = f"http://127.0.0.1:{daemon.http_port}"

        def post(path: str, body: dict[str, str]) -> tuple[int, dict[str, str], str]:
            request = urllib.request.Request(f"{base}{path}", json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})  # fmt: skip
            try:
                with urllib.request.urlopen(request) as response:
                    return response.status, dict(response.headers), response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, dict(error.headers), error.read().decode()

        wrong, _, _ = post("/desk/signin", {"agent": "ada", "password": "not-her-password"})
        unknown, _, _ = post("/desk/signin", {"agent": "nobody", "password": "not-her-password"})
        assert wrong == unknown == 401  # the same answer: no way to tell which agents exist
        assert daemon.log.count("security.auth_failed") == 2
        status, headers, _ = post("/desk/signin", {"agent": "ada", "password": "desk-pass-1"})
        assert status == 200
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
        session = cookie.split(";")[0]

        def socket_status(headers: dict[str, str]) -> int:
            request = urllib.request.Request(f"{base}/desk/socket", headers={
                "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers})  # fmt: skip
            try:
                with urllib.request.urlopen(request) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert socket_status({}) == 401  # no session
        assert socket_status({"Cookie": "ivrd_desk=forged"}) == 401
        assert socket_status({"Cookie": session, "Origin": "https://evil.example"}) == 403  # another site's page
        assert _hello(f"{base}/desk/socket", {"Cookie": session, "Origin": base})["agent"]["id"] == "ada"
        # the API keeps its bearer token; the desk's cookie is not one
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{base}/agents", headers={"Cookie": session}))
        assert refused.value.code == 401

