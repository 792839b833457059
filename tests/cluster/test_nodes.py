"""Several ivrd nodes as one contact center, with the real engines: redis-server, Kamailio from
etc/cluster/kamailio.cfg in front, baresip agents registering through Kamailio, scripted callers.

One Redis, one Kamailio and nodes a and b serve the first tests; the tests that kill, drain or cut
Redis start what they break themselves."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cluster.kamailio import kamailio
from tests.cluster.redis_server import RedisServer, redis_server
from tests.integration.baresip import CONFIG_DIR, Baresip, agent_phone
from tests.integration.daemon import RunningDaemon, daemon_running, free_port, one_flow
from tests.integration.logfmt import events
from tests.integration.peers import require
from tests.integration.rtp_caller import RtpCaller
from tests.integration.scrape import scrape, value
from tests.integration.test_callbacks import NUMBER, callback_steps, customer

pytestmark = [pytest.mark.peers, pytest.mark.skipif(not CONFIG_DIR.exists(), reason=f"no {CONFIG_DIR}")]

ACCOUNTS = '  accounts: {"2001": "pw-one", "2002": "pw-two"}\n  digest_algorithms: [MD5]\n'
STEPS = """  wait:
    queue: help
    next: nobody
  nobody:
    hangup: "Nobody is there."
"""
LEASE = 1.0


def routing(url: str, node: str, gateway: int | None = None) -> str:
    """Two agents for the help queue; with a callback ``gateway``, key 1 books a callback to it."""
    callback = f"""  callback: {{ gateway: "sip:{{number}}@127.0.0.1:{gateway}", numbers: ["+1555*"] }}
""" if gateway else ""  # fmt: skip
    return f"""routing:
  offer_timeout: 10
  backend: {url}
  cluster: {{ node: {node}, lease_seconds: {LEASE} }}
{callback}  queues:
    help: {{ wrap_up: 1, join_empty: true, max_misses: 100{", callback_key: 1" if gateway else ""} }}
  agents:
    "2001": {{ skills: {{ help: 1 }}, contact: registered }}
    "2002": {{ skills: {{ help: 1 }}, contact: registered }}
"""


@contextlib.contextmanager
def node(tmp_path, url: str, name: str, *, expected_errors: tuple[str, ...] = (), extra: str = "",
         gateway: int | None = None) -> Iterator[RunningDaemon]:  # fmt: skip
    steps = callback_steps("help") if gateway else STEPS
    config = one_flow(tmp_path / f"flows-{name}", steps) + routing(url, name, gateway) + extra
    with daemon_running(config, sip_section=ACCOUNTS, expected_errors=expected_errors) as daemon:
        yield daemon


@dataclass
class Center:
    redis: RedisServer
    edge: int  # Kamailio's SIP port
    a: RunningDaemon
    b: RunningDaemon

    def agent(self, user: str = "2001", password: str = "pw-one", *, auto: bool = True) -> tuple[Baresip, str]:
        """An agent's phone registered through Kamailio, logged in; and the node its REGISTER reached."""
        before = {n: len(events(d.log, "sip.registered")) for n, d in (("a", self.a), ("b", self.b))}
        phone = agent_phone(self.edge, user, password, auto=auto, codecs="PCMU")
        nodes = (("a", self.a), ("b", self.b))
        until(lambda: any(len(events(d.log, "sip.registered")) > before[n] for n, d in nodes), what="REGISTER")
        return phone, next(n for n, d in nodes if len(events(d.log, "sip.registered")) > before[n])

    def node(self, name: str) -> RunningDaemon:
        return self.a if name == "a" else self.b

    def other(self, name: str) -> RunningDaemon:
        return self.b if name == "a" else self.a


@pytest.fixture(scope="module")
def center(tmp_path_factory) -> Iterator[Center]:
    require("kamailio", "baresip", "redis-server", "espeak-ng")
    tmp = tmp_path_factory.mktemp("center")
    with redis_server(tmp) as server, node(tmp, server.url, "a") as a, node(tmp, server.url, "b") as b, \
            kamailio([a.port, b.port]) as edge:  # fmt: skip
        yield Center(server, edge, a, b)


def state(daemon: RunningDaemon, agent: str) -> str:
    return next(a["state"] for a in daemon.api("GET", "/agents") if a["id"] == agent)


def available(daemon: RunningDaemon, agent: str) -> None:
    assert daemon.api("POST", f"/agents/{agent}/state", {"state": "available"})["state"] == "available"


def until(condition, timeout: float = 15.0, what: str = "") -> None:
    """Poll a condition that only a process outside the test can make true (another node, Redis)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def test_a_caller_on_one_node_is_bridged_to_an_agent_registered_through_the_other(center):
    phone, registered_on = center.agent()
    holder = center.other(registered_on)  # the caller's node: not the one the agent's phone registered with
    caller = RtpCaller(holder.port)
    try:
        available(holder, "2001")  # the API of either node changes the one agent
        until(lambda: state(center.node(registered_on), "2001") == "available", what="the other node's mirror")
        caller.call()
        holder.wait_for_event("queue.bridged")
        phone.wait_event("CALL_ESTABLISHED")
        assert caller.talk_to_agent() > 0.5  # the agent's voice reached the caller, and the caller's the agent
        context_id = events(holder.log, "queue.offer")[-1]["context"]
        # the other node answers for the call's context too (as of the last event pushed to the agent)
        context = center.node(registered_on).api("GET", f"/calls/{context_id}")
        assert context["id"] == context_id and context["queue"] == "help" and context["flow"] == "main"
        assert state(center.node(registered_on), "2001") == "busy"
        assert caller.bye() == 200
        phone.wait_event("CALL_CLOSED")
        assert phone.heard_tone(1000) > 0.3  # the caller's tone reached the agent's phone, through Kamailio
    finally:
        caller.close()
        phone.close()
    assert not events(center.node(registered_on).log, "queue.offer")  # one node made the one offer
    samples = [scrape(daemon) for daemon in (center.a, center.b)]
    assert [value(s, "ivrd_routing_backend_up") for s in samples] == [1, 1]
    assert sum(value(s, "ivrd_routing_lease_held") for s in samples) == 1  # one node routes for both
    assert sum(value(s, "ivrd_routing_lease_takeovers_total") for s in samples) >= 1
    assert all(value(s, "ivrd_routing_backend_rtt_seconds_count") > 0 for s in samples)
    assert sum(value(s, "ivrd_queue_answered_total", queue="help") for s in samples) == 1  # counted once


def test_callers_on_both_nodes_are_answered_in_the_order_they_joined_one_offer_at_a_time(center):
    phone, _ = center.agent()
    callers: list[RtpCaller] = []
    try:
        for i in range(10):  # alternately on a and b, each one joining after the one before
            daemon = center.a if i % 2 == 0 else center.b
            caller = RtpCaller(daemon.port, user=f"caller{i}")
            callers.append(caller)
            joined = len(events(daemon.log, "queue.join"))
            caller.call()
            daemon.wait_for_event("queue.join", joined + 1)
        available(center.b, "2001")
        for i, caller in enumerate(callers):
            answered = phone.wait_event("CALL_ESTABLISHED", timeout=30)  # auto-answered
            assert f"caller{i}@" in answered["peeruri"], (i, answered)
            assert caller.bye() == 200
            phone.wait_event("CALL_CLOSED")
    finally:
        for caller in callers:
            caller.close()
        phone.close()
    # the phone never had two calls at once: each call closed before the next one came
    calls = [e for e in phone.seen if e in ("CALL_ESTABLISHED", "CALL_CLOSED")]
    assert calls == ["CALL_ESTABLISHED", "CALL_CLOSED"] * 10, calls


def test_a_draining_node_answers_the_probe_503_and_new_calls_go_to_the_other(tmp_path):
    require("kamailio", "redis-server")
    draining = "calls:\n  drain_seconds: 60\n"
    with redis_server(tmp_path) as server, node(tmp_path, server.url, "a", extra=draining) as a, \
            node(tmp_path, server.url, "b") as b, kamailio([a.port, b.port]) as edge:  # fmt: skip
        held = RtpCaller(a.port)
        try:
            held.call()  # a call in progress on a: it waits in the queue (nobody logged in)
            a.wait_for_event("queue.join")
            a.proc.send_signal(signal.SIGTERM)
            a.wait_for_event("stopping")
            assert options(a.port) == 503  # what Kamailio's probe hears from now on
            answered_by_b = len(events(b.log, "call.incoming"))
            for _ in range(6):  # Call-IDs that hash to a and to b alike: all go to b
                caller = RtpCaller(edge)
                try:
                    caller.call()
                    assert caller.bye() == 200
                finally:
                    caller.close()
            assert len(events(b.log, "call.incoming")) == answered_by_b + 6
            assert a.proc.poll() is None  # still draining: its call goes on
            assert held.bye() == 200
            assert a.proc.wait(30) == 0
        finally:
            held.close()
    assert len(events(a.log, "call.incoming")) == 1


def test_a_node_killed_lets_its_callers_and_agent_go_and_the_others_keep_their_places(tmp_path):
    with redis_server(tmp_path) as server, node(tmp_path, server.url, "a") as a:
        doomed = node(tmp_path, server.url, "k")
        k = doomed.__enter__()
        phone = agent_phone(a.port, "2001", "pw-one", auto=True, codecs="PCMU")
        callers = [RtpCaller(k.port, user="k-talking"), RtpCaller(k.port, user="k-waiting"),
                   RtpCaller(a.port, user="a-waiting")]  # fmt: skip
        try:
            a.wait_for_event("sip.registered")
            available(a, "2001")
            until(lambda: state(k, "2001") == "available", what="k's mirror")
            callers[0].call()
            k.wait_for_event("queue.bridged")  # the agent talks to k's first caller
            assert "k-talking@" in phone.wait_event("CALL_ESTABLISHED")["peeruri"]
            for caller, daemon in zip(callers[1:], (k, a), strict=True):
                caller.call()
                daemon.wait_for_event("queue.join", 2 if daemon is k else 1)
            k.proc.send_signal(signal.SIGKILL)
            k.proc.wait(5)
            phone.command("hangup")  # the agent notices the silence and hangs up
            # k's waiting caller joined first, but died with k: a's caller is next, after the wrap-up
            answered = phone.wait_event("CALL_ESTABLISHED", timeout=15)
            assert "a-waiting@" in answered["peeruri"], answered
            a.wait_for_event("queue.bridged")
            # a's caller answered, k's gone with k: the line is empty
            until(lambda: a.api("GET", "/queues")[0]["waiting"] == 0, what="an empty line")
            assert callers[2].bye() == 200
        finally:
            for caller in callers:
                caller.close()
            phone.close()
            with contextlib.suppress(AssertionError):
                doomed.__exit__(None, None, None)  # k's folder goes; it exited by SIGKILL
    (gone,) = events(a.log, "cluster.node_gone")  # a holds the lease (it started first) and buried k
    assert gone["node"].startswith("k-")


def test_a_callback_booked_on_a_node_killed_is_made_by_the_other_node(tmp_path):
    require("sipp")
    gateway = free_port()
    record = "calls:\n  record: true\n"
    with redis_server(tmp_path) as server, node(tmp_path, server.url, "a", gateway=gateway, extra=record) as a:
        doomed = node(tmp_path, server.url, "k", gateway=gateway, extra=record)
        k = doomed.__enter__()
        phone = agent_phone(a.port, "2001", "pw-one", auto=True, codecs="PCMU")
        caller = RtpCaller(k.port, user="asks-back")
        customer_phone = None
        try:
            a.wait_for_event("sip.registered")
            caller.call()  # nobody is logged in: the caller waits on k, asks for a callback and hangs up
            k.wait_for_event("queue.join")
            caller.press_rfc4733(1)
            k.wait_for_event("queue.callback_booked")
            caller.wait_bye()
            (original,) = k.records(1)
            booked = a.api("GET", f"/calls/{original['id']}")  # any node has the context of k's call
            k.proc.send_signal(signal.SIGKILL)
            k.proc.wait(5)
            a.wait_for_event("queue.callback_adopted")
            adopted = a.api("GET", f"/calls/{original['id']}")  # a holds it now
            customer_phone = customer(gateway, ["-sn", "uas", "-rtp_echo"], tmp_path)
            available(a, "2001")  # the agent's phone rings first, then a calls the caller back
            a.wait_for_event("queue.callback_connected")
            phone.command("hangup")
            out, _ = customer_phone.communicate(timeout=30)
            assert customer_phone.returncode == 0, out[-2000:]
            (record,) = a.records(1)
        finally:
            caller.close()
            phone.close()
            if customer_phone is not None and customer_phone.poll() is None:
                customer_phone.kill()
            with contextlib.suppress(AssertionError):
                doomed.__exit__(None, None, None)
    assert booked["callback"] == NUMBER and booked["id"] == original["id"]
    assert adopted == booked  # what the agent should know came through the node's death
    (taken,) = events(a.log, "queue.callback_adopted")
    assert taken["call_id"] == original["call_id"] and taken["number"] == NUMBER
    assert events(a.log, "queue.offer")[0]["context"] == original["id"]
    assert (record["outcome"], record["caller"], record["agent"]) == ("agent", NUMBER, "2001")
    assert record["variables"] == {"callback_for": original["id"], "attempt": 1}


def test_redis_away_the_ivr_goes_on_a_queue_step_takes_no_agents_and_routing_resumes(tmp_path):
    with redis_server(tmp_path, persist=True) as server, node(tmp_path, server.url, "a") as a:
        phone = agent_phone(a.port, "2001", "pw-one", auto=True, codecs="PCMU")
        try:
            a.wait_for_event("sip.registered")
            available(a, "2001")
            server.stop()
            until(lambda: ready(a) == 503, what="/readyz 503")
            assert "routing backend unreachable" in readyz(a)["reason"]
            assert value(scrape(a), "ivrd_routing_backend_up") == 0
            caller = RtpCaller(a.port)
            try:
                caller.call()  # the IVR answers; its queue step leaves at once: the flow says nobody is there
                caller.wait_bye()
            finally:
                caller.close()
            left = events(a.log, "queue.left")
            assert left and left[-1]["reason"] == "no_agents"
            server.start()
            until(lambda: ready(a) == 200, what="/readyz 200")
            caller = RtpCaller(a.port)
            try:
                caller.call()
                phone.wait_event("CALL_ESTABLISHED")  # the agent kept their state through Redis's restart
                assert caller.bye() == 200
            finally:
                caller.close()
        finally:
            phone.close()
    assert events(a.log, "cluster.unreachable") and events(a.log, "cluster.reachable")
    assert "Traceback" not in a.final_log


def options(port: int) -> int:
    caller = RtpCaller(port)
    try:
        caller.sip.sendto(caller.request("OPTIONS"), ("127.0.0.1", port))
        return caller._final().status
    finally:
        caller.close()


def readyz(daemon: RunningDaemon) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/readyz", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def ready(daemon: RunningDaemon) -> int:
    return 200 if readyz(daemon)["ready"] else 503


def test_redis_restarted_empty_the_node_puts_its_waiting_callers_back_in_line(tmp_path):
    with redis_server(tmp_path) as server, node(tmp_path, server.url, "a") as a:  # no persistence: a restart loses all
        phone = agent_phone(a.port, "2001", "pw-one", auto=True, codecs="PCMU")
        caller = RtpCaller(a.port, user="kept")
        try:
            a.wait_for_event("sip.registered")
            caller.call()
            a.wait_for_event("queue.join")  # nobody logged in: the caller waits
            server.stop()
            until(lambda: ready(a) == 503, what="/readyz 503")
            server.start()
            until(lambda: ready(a) == 200, what="/readyz 200")
            available(a, "2001")
            answered = phone.wait_event("CALL_ESTABLISHED", timeout=15)  # the caller was put back in line
            assert "kept@" in answered["peeruri"], answered
            assert caller.bye() == 200
        finally:
            caller.close()
            phone.close()
