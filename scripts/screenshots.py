"""Screenshots of the desk and the phone for the README (docs/desk.png, docs/phone.png), taken in headless
Chromium against a real daemon: the desk ringing with a caller's context, the phone in the middle of a flow.

    .venv/bin/python scripts/screenshots.py [DIR]     # default: docs/
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.browser import chromium, speech_wav, until
from tests.integration.daemon import daemon_running
from tests.integration.rtp_caller import RtpCaller

FLOW = """description: Main number
answers: ["100"]
default: true
steps:
  welcome:
    say: "Welcome to Example Telecom."
  lookup:
    set: { customer: "'gold'", open_invoice: "'INV-2291, 84.20 EUR, due 12 Dec'" }
  menu:
    menu: "For billing, press 1 or say billing. For support, press 2 or say support."
    choices:
      - { key: 1, say: [billing], goto: billing }
      - { key: 2, say: [support], goto: billing }
    timeout: 8
  billing:
    queue: billing
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""
CONFIG = """routing:
  queues:
    billing: { skills: "billing >= 1", dispositions: [resolved, "call back", escalated] }
  agents:
    "ada": { name: Ada Lovelace, skills: { billing: 4 }, contact: browser, password: "desk-pass-1", logged_in: true }
webrtc:
  addresses: [127.0.0.1]
"""


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ivrd-shots-"))
    (work / "flows").mkdir()
    (work / "flows" / "main.yaml").write_text(FLOW)
    microphone = speech_wav("billing", work / "billing.wav")
    with daemon_running(f"flows:\n  dir: {work / 'flows'}\n" + CONFIG) as daemon, chromium(microphone) as page:
        page.set_window_size(1100, 1000)
        base = f"http://127.0.0.1:{daemon.http_port}"
        page.get(f"{base}/desk")
        page.find_element("id", "agent").send_keys("ada")
        page.find_element("id", "password").send_keys("desk-pass-1")
        page.find_element("css selector", "#sign-in button").click()
        until(lambda: page.find_element("id", "desk").is_displayed(), "the desk")
        earlier = RtpCaller(daemon.port, user="+4930123456")  # an earlier call, given up in the menu
        try:
            earlier.call()
            daemon.wait_for_event("call.flow")
            earlier.bye()
            daemon.records(1)
        finally:
            earlier.close()
        caller = RtpCaller(daemon.port, user="+4930123456")
        try:
            caller.call()
            daemon.wait_for_event("call.flow")
            caller.press_rfc4733(1)
            until(lambda: page.find_element("id", "call").is_displayed(), "the offer")
            until(lambda: page.find_elements("css selector", "#history tbody tr"), "the caller's previous call")
            page.save_screenshot(str(out / "desk.png"))
            page.find_element("id", "decline").click()
            caller.bye()
        finally:
            caller.close()
        page.get(f"{base}/phone")
        until(lambda: page.find_element("id", "phone").is_displayed(), "the phone")
        page.find_element("id", "dial").click()
        until(lambda: "said" in page.find_element("id", "path").text, "the flow hearing billing", timeout=40)
        page.save_screenshot(str(out / "phone.png"))
        page.find_element("id", "hangup").click()
    print(f"wrote {out / 'desk.png'} and {out / 'phone.png'}")


if __name__ == "__main__":
    main()
