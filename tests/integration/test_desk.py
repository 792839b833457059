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
import wave
from pathlib import Path
from typing import Any, cast

import aiohttp
import numpy as np
import pytest

from ivrd.media import g711
from ivrd.media.dtmf import parse_event
from tests.audio import tone_level
from tests.integration.baresip import CONFIG_DIR, Baresip
from tests.integration.browser import chromium, self_signed, tone_wav
from tests.integration.daemon import daemon_running, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.polling import until
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value

pytestmark = pytest.mark.peers

AGENT_HZ = 1300  # the agent's microphone: a tone the hold music never plays
HOLD_MUSIC = Path(__file__).resolve().parents[2] / "etc" / "flows" / "prompts" / "hold.wav"
ROUTING = """routing:
  offer_timeout: 20
  queues:
    billing:
      skills: "billing >= 1"
      wrap_up: 30
      dispositions: [resolved, "call back", escalated]
      hold_music: HOLD_MUSIC
  agents:
    "ada": { name: Ada, skills: { billing: 3 }, contact: browser, password: "desk-pass-1", logged_in: true }
    "bob": { name: Bob, skills: { billing: 3 }, contact: browser, password: "desk-pass-2" }
webrtc:
  addresses: [127.0.0.1]
""".replace("HOLD_MUSIC", str(HOLD_MUSIC))
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


def _sine(hz: float, seconds: float) -> np.ndarray:
    return (np.sin(2 * np.pi * hz * np.arange(int(8000 * seconds)) / 8000) * 8000).astype(np.int16)


def _heard(caller: RtpCaller, hz: float, *, music: bool = False) -> float:
    """How much of the next second the caller hears is ``hz`` (``music``: the queue's hold music instead)."""
    if music:
        with wave.open(str(HOLD_MUSIC)) as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return tone_level(samples, 8000, hz)
    start = len(caller.received)
    caller.wait_for_packets(start + 60)
    heard = b"".join(p.payload for p in caller.received[start + 10 :] if p.payload_type == 0)
    return tone_level(g711.decode(heard, "PCMU"), 8000, hz)


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
    microphone = tone_wav(tmp_path / "mic.wav", AGENT_HZ)
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
            samples = scrape(daemon, tls=True)
            assert value(samples, "ivrd_desks_open") == 1
            assert value(samples, "ivrd_browser_legs", state="up") == 1
            assert value(samples, "ivrd_browser_legs", state="ringing") == 0

            # the caller says 1 kHz; the browser's microphone says AGENT_HZ
            talking = threading.Thread(target=caller.stream, args=(_sine(1000, 2.0),))
            talking.start()
            in_page = until(lambda: _tone_heard(page, 1000), "the caller's tone in the page", timeout=10)
            talking.join()
            assert abs(in_page["hz"] - 1000) < 30
            heard = _heard(caller, AGENT_HZ)
            assert heard > 0.5, f"the agent's tone reached the caller at {heard:.2f} of its energy"

            # a key from the desk's keypad reaches the caller as RFC 4733 events
            before = len(caller.received)
            page.find_element("xpath", "//div[@id='keypad']/button[text()='5']").click()
            until(lambda: any(p.payload_type == 101 and parse_event(p.payload).end
                              for p in caller.received[before:]), "the agent's key at the caller")  # fmt: skip
            assert {parse_event(p.payload).event for p in caller.received[before:] if p.payload_type == 101} == {5}
            # on hold the caller hears the queue's music, not the agent; then the agent again
            page.find_element("id", "hold").click()
            daemon.wait_for_event("queue.hold")
            held = _heard(caller, AGENT_HZ)
            page.find_element("id", "hold").click()
            daemon.wait_for_event("queue.hold", 2)
            back = _heard(caller, AGENT_HZ)
            assert held < 0.1 and back > 0.5, (held, back)
            assert _heard(caller, AGENT_HZ, music=True) < 0.1  # (guard: the music itself holds no such tone)

            page.find_element("id", "hangup").click()
            caller.wait_bye()
            until(lambda: page.find_element("id", "wrap-up").is_displayed(), "the wrap-up form")
            countdown = until(lambda: page.find_element("id", "wrap-countdown").text, "the wrap-up countdown")
            assert countdown.endswith(" s left") and 25 <= int(countdown.split()[0]) <= 30  # the queue's wrap_up: 30
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



@pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")
def test_a_baresip_caller_reaches_an_agent_in_the_browser_and_each_hears_the_other(tmp_path):
    """A real softphone as the caller (its microphone a 440 Hz sine), the browser's a 1300 Hz one."""
    require("baresip")
    config = one_flow(tmp_path / "flows", STEPS) + ROUTING
    with daemon_running(config) as daemon, chromium(tone_wav(tmp_path / "mic.wav", AGENT_HZ)) as page:
        _sign_in(page, f"http://127.0.0.1:{daemon.http_port}", "ada", "desk-pass-1")
        until(lambda: page.find_element("id", "agent-state").get_attribute("data-state") == "available", "signed in")
        phone = Baresip(hears=True)
        try:
            phone.command("dial", f"sip:ivr@127.0.0.1:{daemon.port}")
            phone.wait_event("CALL_ESTABLISHED")
            daemon.wait_for_event("call.flow")
            phone.command("sndcode", "1")
            until(lambda: page.find_element("id", "call").is_displayed(), "the offer in the page")
            page.find_element("id", "accept").click()
            daemon.wait_for_event("queue.bridged")
            until(lambda: _tone_heard(page, 440), "the softphone's 440 Hz in the page", timeout=10)
            until(lambda: phone.heard_tone(AGENT_HZ, last=1.5) > 0.5, "the browser's tone, the softphone's last 1.5 s",
                  timeout=10)  # fmt: skip
            page.find_element("id", "hangup").click()
            phone.wait_event("CALL_CLOSED")
        finally:
            phone.close()
