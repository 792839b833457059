"""Pictures for the README, taken against real daemons: the desk ringing with a caller's context and the phone
in the middle of a flow (docs/desk.png, docs/phone.png, in headless Chromium); `ivrd status --watch` with
callers in a menu, waiting and talking to baresip agents (docs/status.png, its text drawn as a terminal would);
the example deployment's main flow drawn by `ivrd graph` (docs/graph.png).

    .venv/bin/python scripts/screenshots.py [DIR] [desk|status|graph ...]     # default: docs/, all
"""

from __future__ import annotations

import html
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.baresip import agent_phone
from tests.integration.browser import chromium, speech_wav
from tests.integration.daemon import daemon_running
from tests.integration.polling import until
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


CONSOLE_FLOW = """description: Main number
default: true
steps:
  welcome:
    say: "Welcome to Example Telecom."
  menu:
    menu: "For billing, press 1. For support, press 2."
    choices:
      - { key: 1, goto: billing }
      - { key: 2, goto: support }
    timeout: 30
  billing:
    queue: billing
    next: nobody
  support:
    queue: support
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""
CONSOLE_CONFIG = """routing:
  queues:
    billing: { skills: "billing >= 1", wrap_up: 1 }
    support: { skills: "support >= 1", wrap_up: 1 }
  agents:
    "2001": { name: Ada Lovelace, skills: { billing: 4, support: 2 } }
    "2002": { name: Grace Hopper, skills: { billing: 2 } }
    "2003": { name: Linus Torvalds, skills: { support: 5 } }
calls:
  record: true
"""
CONSOLE_ACCOUNTS = '  accounts: {"2001": "pw-1", "2002": "pw-2", "2003": "pw-3"}\n  digest_algorithms: [MD5]\n'
TERMINAL = """<!doctype html><body style="margin:0;background:#1e1e1e"><pre id="screen" style="margin:0;
padding:14px 16px;display:inline-block;background:#1e1e1e;color:#d4d4d4;font:15px/1.35 'DejaVu Sans Mono',monospace">
{text}</pre>"""


def console(out: Path, work: Path) -> None:
    """``ivrd status --watch`` as it looks with callers in the menu, waiting, and talking to agents."""
    (work / "console").mkdir()
    (work / "console" / "main.yaml").write_text(CONSOLE_FLOW)
    config = f"flows:\n  dir: {work / 'console'}\n" + CONSOLE_CONFIG
    with daemon_running(config, sip_section=CONSOLE_ACCOUNTS) as daemon, chromium() as page:
        phones = [agent_phone(daemon.port, "2001", "pw-1", auto=True, codecs="PCMU"),
                  agent_phone(daemon.port, "2003", "pw-3", auto=False, codecs="PCMU")]
        callers = [RtpCaller(daemon.port, user=number) for number in
                   ("+4930123456", "+4940555012", "+4989700123", "+4922110044", "+4969300777")]
        try:
            daemon.wait_for_event("sip.registered", 2)
            cli = [sys.executable, "-m", "ivrd.cli"]
            for agent in ("2001", "2003"):
                subprocess.run([*cli, "agent", agent, "available", "--url", f"http://127.0.0.1:{daemon.http_port}"],
                               check=True, capture_output=True)  # fmt: skip
            subprocess.run([*cli, "agent", "2002", "away", "--reason", "training", "--url",
                            f"http://127.0.0.1:{daemon.http_port}"], check=True, capture_output=True)  # fmt: skip
            earlier = callers.pop()  # a call answered and over: today's figures have one
            earlier.call()
            daemon.wait_for_event("call.flow")
            earlier.press_rfc4733(1)
            daemon.wait_for_event("queue.bridged")
            earlier.bye()
            earlier.close()
            daemon.records(1)
            for count, (caller, key) in enumerate(zip(callers, (1, 2, 1, None), strict=True), start=2):
                caller.call()
                daemon.wait_for_event("call.flow", count)
                if key is not None:
                    caller.press_rfc4733(key)
            daemon.wait_for_event("queue.bridged", 2)  # Ada talks to the first; Linus's phone rings for the second
            daemon.wait_for_event("queue.offer", 3)
            time.sleep(8)  # times in the picture that read like a call's, not 0:00 (an offer rings 15 s)
            status = subprocess.run([*cli, "status", "--url", f"http://127.0.0.1:{daemon.http_port}"], check=True,
                                    capture_output=True, text=True).stdout  # fmt: skip
            screen = work / "status.html"
            screen.write_text(TERMINAL.format(text=html.escape(status + "\n\n(every 2 s; Ctrl-C to stop)")))
            page.set_window_size(900, 700)
            page.get(screen.as_uri())
            page.find_element("id", "screen").screenshot(str(out / "status.png"))
        finally:
            for caller in callers:
                caller.close()
            for phone in phones:
                phone.close()


def desk_and_phone(out: Path, work: Path) -> None:
    """The desk ringing with a caller's context; the phone in the middle of a flow."""
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


def graph(out: Path, _: Path) -> None:
    """The example deployment's main flow, as `ivrd graph` draws it."""
    flows = Path(__file__).resolve().parents[1] / "etc" / "flows"
    subprocess.run([sys.executable, "-m", "ivrd.cli", "graph", "main", "--flows", str(flows), "-o",
                    str(out / "graph.png")], check=True)  # fmt: skip


SHOTS = {"desk": desk_and_phone, "status": console, "graph": graph}


def main() -> None:
    """scripts/screenshots.py [DIR] [desk|status|graph ...] (default: docs/, all of them)."""
    args = sys.argv[1:]
    out = Path(args.pop(0) if args and args[0] not in SHOTS else "docs").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ivrd-shots-"))
    for name in args or SHOTS:
        SHOTS[name](out, work)
        print(f"{name}: done")


if __name__ == "__main__":
    main()
