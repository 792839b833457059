"""Real SIPp callers against the real daemon, over UDP and TCP (and IPv6), judged by SIPp's counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.daemon import daemon_running, free_port
from tests.integration.peers import SCENARIOS, require, sipp

pytestmark = pytest.mark.peers
TRANSPORTS = {"udp": "u1", "tcp": "t1"}


@pytest.fixture(autouse=True)
def _sipp_installed():
    require("sipp")


def caller(daemon, tmp_path, transport, *args, host="127.0.0.1", source=None):
    """SIPp calling the daemon at ``host`` from ``source`` (default: the same address)."""
    target = f"[{host}]:{daemon.port}" if ":" in host else f"{host}:{daemon.port}"
    return sipp(target, "-t", TRANSPORTS[transport], "-i", source or host, "-p", str(free_port()), *args,
                cwd=tmp_path)  # fmt: skip


def assert_all_ok(result, calls):
    assert (result.code, result.successful, result.failed) == (0, calls, 0), result.output[-2500:]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uac_calls(tmp_path, transport):
    with daemon_running() as daemon:
        result = caller(daemon, tmp_path, transport, "-sn", "uac", "-m", "20", "-r", "10", "-d", "200")
    assert_all_ok(result, 20)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uac_pcap_plays_audio_into_the_call(tmp_path, transport):
    (tmp_path / "pcap").symlink_to("/usr/share/sip-tester")
    with daemon_running() as daemon:
        result = caller(daemon, tmp_path, transport, "-sn", "uac_pcap", "-mi", "127.0.0.1", "-m", "1")
    assert_all_ok(result, 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uac_over_ipv6(tmp_path, transport):
    with daemon_running() as daemon:
        result = caller(daemon, tmp_path, transport, "-sn", "uac", "-m", "5", "-d", "100", host="::1")
    assert_all_ok(result, 5)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_before_answer(tmp_path, transport):
    with daemon_running(sip_section="  answer_after: 30\n") as daemon:
        result = caller(daemon, tmp_path, transport, "-sf", str(SCENARIOS / "cancel.xml"), "-m", "3")
    assert_all_ok(result, 3)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bye_from_the_daemon(tmp_path, transport):
    with daemon_running("calls:\n  max_duration: 1\n") as daemon:
        result = caller(daemon, tmp_path, transport, "-sf", str(SCENARIOS / "daemon_bye.xml"), "-m", "3", "-l", "3")
    assert_all_ok(result, 3)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reinvite_hold_resume_info_and_options_in_dialog(tmp_path, transport):
    with daemon_running() as daemon:
        result = caller(daemon, tmp_path, transport, "-sf", str(SCENARIOS / "reinvite_info.xml"), "-m", "2")
    assert_all_ok(result, 2)


def test_options_probe(tmp_path):
    with daemon_running() as daemon:
        result = caller(daemon, tmp_path, "udp", "-sf", str(SCENARIOS / "options.xml"), "-m", "3")
    assert_all_ok(result, 3)


def test_call_limit_answers_503_and_keeps_serving(tmp_path):
    with daemon_running("calls:\n  max_concurrent: 2\n") as daemon:
        over = caller(daemon, tmp_path, "udp", "-sn", "uac", "-m", "6", "-l", "6", "-r", "50", "-d", "2000")
        after = caller(daemon, tmp_path, "udp", "-sn", "uac", "-m", "2", "-d", "100")
    assert over.code == 1 and over.successful == 2 and over.failed == 4, over.output[-2500:]
    assert_all_ok(after, 2)


def test_a_flood_from_one_address_does_not_starve_another(tmp_path):
    limits = "  invites_per_second_per_source: 5\n  invite_burst_per_source: 5\n  trusted_sources: []\n"
    with daemon_running(sip_section=limits) as daemon, ThreadPoolExecutor(2) as pool:
        flood = pool.submit(caller, daemon, tmp_path, "udp", "-sn", "uac", "-m", "100", "-r", "50", "-d", "100",
                            source="127.0.0.2")  # fmt: skip
        normal = pool.submit(caller, daemon, tmp_path, "udp", "-sn", "uac", "-m", "6", "-r", "1", "-d", "100",
                             source="127.0.0.3")  # fmt: skip
        flood_result, normal_result = flood.result(), normal.result()
    assert flood_result.code == 1 and flood_result.failed >= 50, flood_result.output[-2000:]
    assert_all_ok(normal_result, 6)
