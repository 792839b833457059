import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from ivrd.config import (
    AgentConfig,
    CallbackConfig,
    Config,
    ConfigError,
    Listen,
    QueueConfig,
    live_part,
    load_config,
)

ETC = Path(__file__).resolve().parents[1] / "etc" / "ivrd.yaml"


def write(tmp_path, text):
    path = tmp_path / "ivrd.yaml"
    path.write_text(text)
    return path


def the_problem(tmp_path, text):
    """The one problem loading ``text`` finds."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    (problem,) = info.value.problems
    return problem


def test_example_config_loads_and_documents_every_key():
    config = load_config(ETC)
    assert Listen("udp", "0.0.0.0", 5080) in config.sip.listen
    text = ETC.read_text()
    for section in ("sip", "media", "calls", "flows", "asr", "http", "routing", "log"):
        for key in getattr(Config(), section).__dataclass_fields__:
            assert f"{key}:" in text, f"etc/ivrd.yaml does not show {section}.{key}"
    for part in (CallbackConfig, QueueConfig, AgentConfig):
        for key in part.__dataclass_fields__:
            assert f"{key}:" in text, f"etc/ivrd.yaml does not show {part.__name__}'s {key}"


def test_empty_file_is_the_embedded_defaults_with_paths_relative_to_it(tmp_path):
    defaults = Config()
    calls = dataclasses.replace(defaults.calls, recordings_dir=str(tmp_path / "recordings"),
                                records=str(tmp_path / "calls.db"))
    flows = dataclasses.replace(defaults.flows, voicemail_dir=str(tmp_path / "voicemail"))
    assert load_config(write(tmp_path, "")) == dataclasses.replace(defaults, calls=calls, flows=flows)


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "sip:\n  listen:\n    - {transport: sctp}\n  answer_after: yes\n  bogus: 1\n"
                           "media:\n  codecs: [G729]\n  codecs: [PCMU]\n  rtp_port_min: 0755\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = {(p.line, p.message.split(":")[0]) for p in info.value.problems}
    assert found == {(3, "sip.listen[0].transport"), (4, "sip.answer_after"), (5, "sip.bogus"),
                     (7, "media.codecs[0]"), (8, "duplicate key 'codecs' (first at line 7)"),
                     (9, "media.rtp_port_min")}
    assert all(str(p).startswith(f"{path}:") for p in info.value.problems)


def test_cross_field_checks_name_the_section(tmp_path):
    problem = the_problem(tmp_path, "media:\n  rtp_port_min: 30000\n  rtp_port_max: 20000\n")
    assert problem.line == 2 and "rtp_port_min, rtp_port_max" in problem.message


def test_alias_bombs_are_refused(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):  # each level refers ten times to the one below: 10**7 nodes once expanded
        below = "*" + ("b" * (i - 1) if i > 1 else "a")
        lines.append(f"{'b' * i}: &{'b' * i} [{', '.join([below] * 10)}]")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert "more than" in str(info.value)


@pytest.mark.parametrize("text", ["sip: " + "[" * 20000, "sip: " + "{a: " * 20000, "- " * 20000 + "x"])
def test_deeply_nested_yaml_is_one_problem_not_a_crash(tmp_path, text: str):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text + "\n"))
    (problem,) = info.value.problems
    assert problem.line == 1 and ("nest" in problem.message or "more than" in problem.message), problem


def test_cli_refuses_a_bad_config_with_exit_2_and_no_traceback(tmp_path):
    path = write(tmp_path, "sip:\n  listen: 5060\n")
    for args in (["check", str(path)], ["run", "-c", str(path)]):
        proc = subprocess.run([sys.executable, "-m", "ivrd.cli", *args], capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"{path}:2:11: sip.listen: expected a list of a mapping"
        assert "Traceback" not in proc.stderr


def test_spoken_text_without_espeak_is_refused_at_load(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text('default: true\nsteps:\n  hello:\n    say: "hello"\n')
    proc = subprocess.run([sys.executable, "-m", "ivrd.cli", "check", str(flows)], capture_output=True,
                          text=True, timeout=60, check=False, env={"PATH": ""})  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{flows / 'main.yaml'}:4:10: step hello: saying text needs espeak-ng")


def test_run_refuses_broken_flows_before_listening(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text("default: true\nsteps:\n  hello:\n    goto: nowhere\n")
    path = write(tmp_path, f"flows:\n  dir: {flows}\n")
    proc = subprocess.run([sys.executable, "-m", "ivrd.cli", "run", "-c", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2  # the flows are refused before any port is opened
    expected = f"{flows / 'main.yaml'}:4:11: step hello: no step called 'nowhere' in this flow"
    assert proc.stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in proc.stderr


def test_a_reload_keeps_what_needs_a_restart_and_names_it():
    running = Config()
    fresh = dataclasses.replace(
        running, sip=dataclasses.replace(running.sip, t1=1.0),
        http=dataclasses.replace(running.http, port=1, token="x", tls_cert="c.pem", tls_key="k.pem"),
        webrtc=dataclasses.replace(running.webrtc, port_min=40000),
        calls=dataclasses.replace(running.calls, max_concurrent=5, max_duration=60.0))  # fmt: skip
    live, restart = live_part(running, fresh)
    assert restart == ["sip", "webrtc", "http.address/port/tls", "calls.max_concurrent"]
    assert live.sip == running.sip and live.http.port == running.http.port and live.http.token == "x"
    assert live.http.tls_cert is None and live.webrtc == running.webrtc
    assert live.calls.max_concurrent == running.calls.max_concurrent and live.calls.max_duration == 60.0
    assert live_part(running, running) == (running, [])


@pytest.mark.parametrize(("text", "line", "wanted"), [
    ("routing:\n  callback: {gateway: 'sip:pbx.example.com'}\n", 2, "with {number} in it"),
    ("routing:\n  callback:\n    gateway: 'sip:{number}@pbx'\n", 3, "numbers: expected the numbers callbacks"),
    ("routing:\n  queues:\n    q: {callback_key: 1}\n", 2, "q offers callbacks (callback_key), but callback.gateway"),
    ("routing:\n  queues:\n    q: {callback_key: 11}\n", 3, "callback_key: expected a key"),
    ("routing:\n  queues:\n    q:\n      escalations: [{after: 9, leave: true, overflow: r}]\n", 4,
     "a step with `leave: true`"),
])  # fmt: skip
def test_callbacks_and_escalations_are_checked_at_load(tmp_path, text, line, wanted):
    problem = the_problem(tmp_path, text)
    assert problem.line == line and wanted in problem.message, problem


def test_only_numbers_on_the_callback_list_are_called_back():
    callback = CallbackConfig(gateway="sip:{number}@pbx", numbers=("+4930*", "110"))
    assert callback.allows("+49301234") and callback.allows("110")
    # another prefix, a longer number than listed exactly, or anything that is not digits is refused
    for number in ("+49401234", "1100", "+4930123;x", "+4930 12", "sip:+4930", "", "+49301234567890123456789"):
        assert not callback.allows(number), number


def test_the_complete_answer_silence_is_at_most_the_end_silence(tmp_path):
    problem = the_problem(tmp_path, "asr:\n  end_silence_ms: 500\n  complete_silence_ms: 600\n")
    assert problem.line == 3 and "complete_silence_ms: expected 200-500" in problem.message


def test_the_acoustic_chunk_is_the_models_own_or_a_tenth_to_a_whole_second(tmp_path):
    assert load_config(write(tmp_path, "asr:\n  acoustic_chunk_ms: 0\n")).asr.acoustic_chunk_ms == 0
    assert load_config(write(tmp_path, "asr:\n  acoustic_chunk_ms: 500\n")).asr.acoustic_chunk_ms == 500
    problem = the_problem(tmp_path, "asr:\n  language: ko\n  acoustic_chunk_ms: 50\n")
    assert problem.line == 3 and "acoustic_chunk_ms: expected 100-1000" in problem.message


def test_the_cluster_example_nodes_load_and_differ_only_in_their_addresses_and_names():
    a, b = (load_config(ETC.parent / "cluster" / f"{n}.yaml") for n in "ab")
    assert a.routing.shared and a.routing.backend == b.routing.backend
    assert (a.routing.cluster.node, b.routing.cluster.node) == ("a", "b")
    assert dataclasses.replace(a.routing, cluster=b.routing.cluster) == b.routing
    assert a.sip.accounts == b.sip.accounts and a.flows == b.flows
    assert {listen.port for listen in a.sip.listen}.isdisjoint(listen.port for listen in b.sip.listen)
    dispatched = (ETC.parent / "cluster" / "dispatcher.list").read_text()
    for config in (a, b):
        assert f"sip:127.0.0.1:{config.sip.listen[0].port}" in dispatched


def test_a_backend_that_is_not_redis_is_refused_with_where(tmp_path):
    problem = the_problem(tmp_path, "routing:\n  backend: postgres://db\n")
    assert "expected memory or a Redis URL" in problem.message and problem.line == 2


@pytest.mark.parametrize(("text", "line", "wanted"), [
    ("routing:\n  agents:\n    a: {contact: browser}\n", 3, "signs in on /desk with one"),
    ("routing:\n  agents:\n    a: {contact: browser, password: short}\n", 3, "at least 8 characters"),
    ("routing:\n  agents:\n    a: {contact: telepathy}\n", 3, 'expected "registered", "browser" or a sip: URI'),
    ("http:\n  tls_cert: c.pem\n", 2, "expected both (HTTPS) or neither"),
    ("webrtc:\n  port_min: 5000\n  port_max: 4000\n", 2, "port_min < port_max"),
    ("webrtc:\n  codecs: [G729]\n", 2, "codecs"),
    ("webrtc:\n  addresses: [ivrd.example.com]\n", 2, "expected an IPv4 or IPv6 address"),
    ("webrtc:\n  ice_servers: [{urls: ['http://x']}]\n", 2, "stun:, turn: or turns: URLs"),
    ("routing:\n  queues:\n    q: {dispositions: [a], disposition_keys: {'1': b}}\n", 3, "disposition_keys: expected"),
    ("calls:\n  transcribe: true\n", 2, "it needs record: true and records"),
])  # fmt: skip
def test_desk_and_webrtc_settings_are_checked_at_load(tmp_path, text, line, wanted):
    problem = the_problem(tmp_path, text)
    assert problem.line == line and wanted in problem.message, problem


def test_a_browser_agent_needs_no_sip_account_and_tls_paths_are_relative_to_the_file(tmp_path):
    path = tmp_path / "ivrd.yaml"
    path.write_text("http: {tls_cert: tls/c.pem, tls_key: tls/k.pem}\n"
                    "routing:\n  agents:\n    a: {contact: browser, password: long-enough}\n")  # fmt: skip
    config = load_config(path)
    assert config.check() is None and config.routing.agents["a"].contact == "browser"
    assert config.http.tls_cert == str(tmp_path / "tls/c.pem") and config.http.tls
