"""The browser phone in a real browser: staff sign in on /phone in headless Chromium and call a flow; the
caller's spoken "billing" (espeak-ng, the browser's microphone) takes the flow's billing branch, the page
shows the path as it unfolds, and the flow's queue bridges the browser to a baresip agent, who hears it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integration.baresip import CONFIG_DIR, agent_phone
from tests.integration.browser import chromium, speech_wav
from tests.integration.daemon import daemon_running
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.polling import until

MICROPHONE_CYCLE = 3.7  # seconds: the WAV Chromium loops (1 s of silence, "billing", 2 s of silence)
pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

ACCOUNTS = '  accounts: {"2001": "pw-one"}\n  digest_algorithms: [MD5]\n'
CONFIG = """routing:
  queues:
    billing: { skills: "billing >= 1", wrap_up: 1 }
  agents:
    "2001": { skills: { billing: 4 } }
    "ops": { contact: browser, password: "ops-pass-123" }
webrtc:
  addresses: [127.0.0.1]
"""
FLOW = """description: Billing line
answers: ["200"]
default: true
steps:
  menu:
    menu: "Say billing or sales."
    choices:
      - { key: 1, say: [billing], goto: billing }
      - { key: 2, say: [sales], goto: sales }
    timeout: 6
    tries: 4
    fallback: sales
  billing:
    queue: billing
    next: nobody
  sales:
    hangup: "Sales is closed."
  nobody:
    hangup: "Nobody is there."
"""


def test_a_browser_caller_says_billing_and_reaches_a_baresip_agent_with_the_path_in_the_page(tmp_path):
    require("baresip", "espeak-ng")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(FLOW)
    microphone = speech_wav("billing", tmp_path / "billing.wav", before=1.0, after=2.0)
    with daemon_running(f"flows:\n  dir: {flows}\n" + CONFIG, sip_section=ACCOUNTS) as daemon, \
            chromium(microphone) as page:  # fmt: skip
        ada = agent_phone(daemon.port, "2001", "pw-one", auto=True, codecs="PCMU")
        try:
            daemon.wait_for_event("sip.registered")
            daemon.api("POST", "/agents/2001/state", {"state": "available"})
            page.get(f"http://127.0.0.1:{daemon.http_port}/phone")
            until(lambda: page.find_element("id", "sign-in").is_displayed(), "the sign-in form")
            page.find_element("id", "agent").send_keys("ops")
            page.find_element("id", "password").send_keys("ops-pass-123")
            page.find_element("css selector", "#sign-in button").click()
            until(lambda: page.find_element("id", "phone").is_displayed(), "the phone")
            choices = [o.text for o in page.find_elements("css selector", "#number option")]
            assert choices == ["200: main (Billing line)"]
            page.find_element("id", "dial").click()
            daemon.wait_for_event("queue.bridged", timeout=60)
            path = until(lambda: "billing: queue billing" in (text := page.find_element("id", "path").text) and text,
                         "the path in the page")  # fmt: skip
            assert 'menu: choice said "billing"' in path
            (call,) = events(daemon.log, "phone.call")
            (bridged,) = events(daemon.log, "queue.bridged")
            assert bridged["agent"] == "2001" and bridged["call_id"] == call["call_id"]
            ada.wait_event("CALL_ESTABLISHED")
            # the browser's microphone says "billing" again, to the agent now: the agent hears the voice
            until(lambda: np.abs(ada.heard()[0]).max(initial=0) > 3000, "the browser's voice at the agent",
                  timeout=4 * MICROPHONE_CYCLE)  # fmt: skip
            page.find_element("id", "hangup").click()
            ada.wait_event("CALL_CLOSED")
            until(lambda: "Call ended" in page.find_element("id", "status").text, "the end in the page")
        finally:
            ada.close()
