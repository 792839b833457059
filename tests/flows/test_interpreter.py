"""The interpreter as a pure machine: events and a fake clock in, actions out."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.interpreter import (
    AgentConnected,
    AgentDone,
    CallInfo,
    EndCall,
    Fetch,
    FlowRun,
    JoinQueue,
    KeyPressed,
    LookupDone,
    Notice,
    PlayPrompt,
    PromptDone,
    QueueLeft,
    RecordingDone,
    SetRecording,
    Sound,
    SpeechHeard,
    SpeechStarted,
    StartListening,
    StartRecording,
    StopListening,
    StopPrompt,
    StopRecording,
    TransferCall,
    TransferFailed,
    Transferred,
    summary,
)
from flows.loader import Deployment, load_deployment

T0 = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC).timestamp()  # a Tuesday, 10:00 in New York


def deploy(tmp_path: Path, **files: str) -> Deployment:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_deployment(tmp_path)


def start(deployment: Deployment, now: float = T0, dialed: str = "100", caller: str = "+15550001") -> FlowRun:
    run = FlowRun(deployment, CallInfo("call-1", caller, "Ada", dialed))
    run.start(now)
    return run


def said(text: str) -> PlayPrompt:
    return PlayPrompt((Sound(text=text),), True)


def events(run: FlowRun) -> list[tuple[str, str]]:
    return [(entry["step"], entry["event"]) for entry in run.path]


MENU = """\
    default: true
    steps:
      menu:
        menu: "Press 1 for billing"
        choices:
          - {key: 1, say: [billing, invoices], goto: billing}
        timeout: 5
        tries: 3
        noinput: ["I did not hear you.", "Still nothing."]
        nomatch: ["Not a choice."]
        fallback: operator
      billing:
        say: "Billing"
        next: bye
      operator:
        say: "Operator"
      bye:
        hangup: true
    """


def test_a_key_picks_a_menu_choice_and_the_prompts_run_in_order(tmp_path):
    run = start(deploy(tmp_path, main=MENU))
    assert run.take_actions() == [said("Press 1 for billing"), StartListening(("billing", "invoices"), None, 10.0)]
    run.feed(PromptDone(), T0 + 2)
    assert run.deadline == T0 + 7  # the no-input timeout runs from the prompt's end
    run.feed(KeyPressed("1"), T0 + 3)
    assert run.take_actions() == [StopListening(), said("Billing")]
    run.feed(PromptDone(), T0 + 4)
    assert run.take_actions() == [EndCall()] and run.finished
    assert events(run) == [("menu", "menu"), ("menu", "choice"), ("billing", "say"), ("bye", "hangup")]
    assert run.variables["menu"] == "1"


def test_no_input_and_no_match_reprompt_per_count_then_fall_back(tmp_path):
    run = start(deploy(tmp_path, main=MENU.replace("tries: 3", "tries: 5")))
    run.take_actions()
    run.feed(PromptDone(), T0 + 2)
    run.on_timer(T0 + 6.9)  # not yet
    assert run.take_actions() == []
    run.on_timer(T0 + 7)
    assert run.take_actions() == [StopListening(), PlayPrompt((Sound(text="I did not hear you."),
                                  Sound(text="Press 1 for billing")), True), StartListening(("billing", "invoices"),
                                  None, 10.0)]  # fmt: skip
    run.feed(KeyPressed("7"), T0 + 8)  # barges in: a wrong key
    assert run.take_actions()[:2] == [StopPrompt(), StopListening()]
    assert run.path[-1] == {"at": 8.0, "flow": "main", "step": "menu", "event": "nomatch", "count": 1, "key": "7"}
    run.feed(PromptDone(), T0 + 10)
    run.on_timer(T0 + 15)  # the second no-input: the second message
    actions = run.take_actions()
    assert actions[1] == PlayPrompt((Sound(text="Still nothing."), Sound(text="Press 1 for billing")), True)
    run.feed(PromptDone(), T0 + 17)
    run.feed(PromptDone(), T0 + 17)
    run.on_timer(T0 + 22)  # the third no-input: the last message again
    assert run.take_actions()[1] == PlayPrompt((Sound(text="Still nothing."), Sound(text="Press 1 for billing")), True)
    run.feed(KeyPressed("8"), T0 + 23)  # the fifth failure: out of tries
    assert said("Operator") in run.take_actions()
    assert [e["event"] for e in run.path if e["step"] == "menu"] == ["menu", "noinput", "nomatch", "noinput",
                                                                      "noinput", "nomatch", "fallback"]


def test_without_a_fallback_the_call_ends_after_the_last_try(tmp_path):
    menu = MENU.replace("        fallback: operator\n", "").replace("tries: 3", "tries: 1")
    menu = menu.replace("goto: billing}", "goto: billing}\n          - {key: 0, goto: operator}")
    run = start(deploy(tmp_path, main=menu))
    run.take_actions()
    run.feed(KeyPressed("5"), T0 + 1)
    assert run.take_actions()[-1] == EndCall()
    assert run.path[-1]["reason"] == "no match"


def test_keys_during_a_prompt_that_cannot_be_interrupted_are_dropped(tmp_path):
    run = start(deploy(tmp_path, main=MENU.replace("timeout: 5", "timeout: 5\n        barge_in: false")))
    assert run.take_actions()[0].barge_in is False
    run.feed(KeyPressed("1"), T0 + 1)
    assert run.take_actions() == [] and run.step == "menu"
    run.feed(PromptDone(), T0 + 2)
    run.feed(KeyPressed("1"), T0 + 3)
    assert run.step == "billing"


def test_keys_pressed_during_a_greeting_answer_the_next_menu_at_once(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          hello:
            say: "Welcome"
          menu:
            menu: "Press 1"
            choices: [{key: 1, goto: one}]
          one:
            hangup: true
        """))
    assert run.take_actions() == [said("Welcome")]
    run.feed(KeyPressed("1"), T0 + 1)
    assert run.take_actions() == [StopPrompt(), EndCall()]  # the menu prompt is never played
    assert events(run) == [("hello", "say"), ("menu", "menu"), ("menu", "choice"), ("one", "hangup")]


def test_a_spoken_choice_needs_its_confidence(tmp_path):
    run = start(deploy(tmp_path, main=MENU))
    run.take_actions()
    run.feed(SpeechStarted(), T0 + 1)
    assert run.take_actions() == [StopPrompt()]
    run.feed(SpeechHeard("Invoices!", 0.3), T0 + 2)  # below the default 0.5
    assert run.path[-1]["event"] == "nomatch"
    run.take_actions()
    run.feed(SpeechHeard("invoices", 0.9, (("billing", 0.08),)), T0 + 3)
    assert run.step == "billing"
    assert run.variables["speech"] == {"text": "invoices", "confidence": 0.9,
                                       "alternatives": [{"text": "billing", "confidence": 0.08}]}  # fmt: skip
    assert run.variables["menu"] == "billing"
    choice = next(entry for entry in run.path if entry["event"] == "choice")
    assert (choice["event"], choice["said"], choice["alternatives"]) == ("choice", "invoices", ["billing"])


COLLECT = """\
    default: true
    steps:
      pin:
        collect: "Your PIN, then hash"
        into: pin
        min_digits: 4
        max_digits: 6
        digit_timeout: 3
        pattern: "[0-9]+"
        tries: 2
      thanks:
        say: "Thanks {{ pin }}"
    """


def test_collect_ends_on_the_terminator_and_stores_the_digits(tmp_path):
    run = start(deploy(tmp_path, main=COLLECT))
    run.take_actions()
    for key in "1234#":
        run.feed(KeyPressed(key), T0 + 1)
    assert run.take_actions() == [StopPrompt(), said("Thanks 1234")]
    assert run.variables["pin"] == run.variables["digits"] == "1234"


def test_collect_ends_at_the_longest_length_and_on_the_digit_timeout(tmp_path):
    run = start(deploy(tmp_path, main=COLLECT))
    for key in "123456":
        run.feed(KeyPressed(key), T0 + 1)
    assert run.variables["pin"] == "123456"
    run = start(deploy(tmp_path / ".." / tmp_path.name, main=COLLECT))
    run.feed(PromptDone(), T0 + 1)
    for key in "98765":
        run.feed(KeyPressed(key), T0 + 2)
    assert run.deadline == T0 + 5
    run.on_timer(T0 + 5)
    assert run.variables["pin"] == "98765"


def test_too_few_digits_or_the_wrong_pattern_is_a_no_match(tmp_path):
    run = start(deploy(tmp_path, main=COLLECT))
    for key in "12#":
        run.feed(KeyPressed(key), T0 + 1)
    assert run.path[-1] == {"at": 1.0, "flow": "main", "step": "pin", "event": "nomatch", "count": 1,
                            "digits": "12"}  # fmt: skip
    for key in "*123#":
        run.feed(KeyPressed(key), T0 + 2)
    assert run.path[-2]["event"] == "fallback" and run.finished  # two tries, no fallback: goodbye


def test_free_speech_into_a_variable(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          ask:
            listen: "Tell me why you call"
            into: reason
            confidence: 0.6
          echo:
            say: "You said {{ reason }}"
        """))
    assert StartListening((), None, 15.0) in run.take_actions()
    run.feed(PromptDone(), T0 + 2)
    run.feed(SpeechHeard("my router is broken", 0.8), T0 + 4)
    assert run.take_actions()[-1] == said("You said my router is broken")
    assert run.path[-2]["said"] == "my router is broken"


def test_set_branch_and_expression_errors(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          count:
            set: {n: "2 * 21", label: "'x' + n"}
          decide:
            branch:
              - {if: "n > 40 and len(caller.number) > 3", goto: big}
            else: small
          small:
            hangup: true
          big:
            say: "{{ n }} {{ label }}"
        """))
    actions = run.take_actions()
    assert isinstance(actions[0], Notice) and "main.yaml:4:" in actions[0].message
    assert run.variables["n"] == 42 and run.variables["label"] is None
    assert actions[-1] == said("42 ")


def test_sub_flows_take_parameters_and_come_back(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          verify:
            subflow: pin_check
            with: {tries_left: "2"}
          after:
            say: "Back with {{ verified }}"
          end:
            flow: goodbye
        """, pin_check="""\
        params: [tries_left]
        steps:
          mark:
            set: {verified: "tries_left == 2"}
          done:
            return: true
        """, goodbye="""\
        steps:
          bye:
            hangup: "Goodbye"
        """))
    assert run.take_actions() == [said("Back with yes")]
    run.feed(PromptDone(), T0 + 1)
    assert run.take_actions() == [PlayPrompt((Sound(text="Goodbye"),), False)]
    assert run.flow.name == "goodbye"
    assert [(e["flow"], e["event"]) for e in run.path] == [
        ("main", "subflow"), ("pin_check", "set"), ("pin_check", "return"), ("main", "say"), ("main", "flow"),
        ("goodbye", "goodbye")]  # fmt: skip


def test_a_lookup_escapes_values_into_the_url_and_handles_failure(tmp_path):
    deployment = deploy(tmp_path, main="""\
        default: true
        steps:
          find:
            lookup: "http://127.0.0.1:9/accounts?number={{ caller.number }}&x={{ 'a b&c' }}"
            into: account
            on_failure: sorry
          tell:
            say: "Balance {{ account.balance }}"
            next: bye
          sorry:
            say: "Sorry"
          bye:
            hangup: true
        """)
    run = start(deployment)
    assert run.take_actions() == [Fetch("GET", "http://127.0.0.1:9/accounts?number=%2B15550001&x=a%20b%26c", None,
                                        3.0)]  # fmt: skip
    run.feed(LookupDone({"balance": 12.0}), T0 + 1)
    assert run.take_actions() == [said("Balance 12")]
    run = start(deployment)
    run.take_actions()
    run.feed(LookupDone(error="HTTP 500"), T0 + 1)
    assert run.take_actions() == [said("Sorry")]
    assert run.path[-2] == {"at": 1.0, "flow": "main", "step": "find", "event": "lookup_result", "ok": False,
                            "error": "HTTP 500"}  # fmt: skip


CALENDAR = """\
    office:
      timezone: America/New_York
      open: {mon-fri: "08:00-18:00"}
      holidays: {"2026-12-25": closed, "2026-12-24": "08:00-12:00"}
    """
HOURS = """\
    default: true
    steps:
      when:
        hours: office
        open: opened
        closed: closed
        holiday: holiday
      opened:
        hangup: "open"
      closed:
        hangup: "closed"
      holiday:
        hangup: "holiday"
    """


def test_business_hours_and_holidays_in_the_calendars_time_zone(tmp_path):
    deployment = deploy(tmp_path, main=HOURS, calendars=CALENDAR)

    def state_at(year: int, month: int, day: int, hour: int, minute: int = 0) -> str:
        local = dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC) + dt.timedelta(hours=5)  # EST is UTC-5
        run = start(deployment, now=local.timestamp())
        (play,) = run.take_actions()
        return str(play.sounds[0].text)

    assert state_at(2026, 11, 24, 10) == "open"
    assert state_at(2026, 11, 24, 7, 59) == "closed"
    assert state_at(2026, 11, 24, 18) == "closed"  # the span ends at 18:00
    assert state_at(2026, 11, 28, 10) == "closed"  # a Saturday
    assert state_at(2026, 12, 25, 10) == "holiday"
    assert state_at(2026, 12, 24, 11) == "open"  # a short day
    assert state_at(2026, 12, 24, 13) == "holiday"
    summer = dt.datetime(2026, 7, 1, 12, 30, tzinfo=dt.UTC).timestamp()  # 08:30 EDT (UTC-4), 07:30 in EST
    run = start(deployment, now=summer)
    assert run.take_actions()[0].sounds[0].text == "open"


def test_a_message_is_recorded_until_a_key_and_its_file_kept(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          message:
            record: "Leave a message"
            into: voicemail
            max_seconds: 60
          thanks:
            hangup: true
        """))
    assert run.take_actions() == [PlayPrompt((Sound(text="Leave a message"),), False)]
    run.feed(PromptDone(), T0 + 2)
    assert run.take_actions() == [StartRecording(60.0, 5.0, True)]
    assert run.asks_caller
    run.feed(KeyPressed("#"), T0 + 9)
    assert run.take_actions() == [StopRecording()]
    run.feed(RecordingDone("/var/voicemail/x.wav", 7.0), T0 + 9.1)
    assert run.take_actions() == [EndCall()]
    assert run.variables["voicemail"] == "/var/voicemail/x.wav"


def test_a_queue_that_lets_the_caller_go_continues_the_flow(tmp_path):
    run = start(deploy(tmp_path, main="default: true\nsteps:\n  q:\n    queue: sales\n  full:\n    hangup: busy\n"))
    assert run.take_actions() == [JoinQueue("sales")]
    run.feed(QueueLeft("no agents"), T0 + 1)
    assert run.take_actions() == [PlayPrompt((Sound(text="busy"),), False)]


def test_a_queue_gets_priority_and_skills_from_variables_and_an_agent_ends_the_flows_part(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          s:
            set: {tier: "4", vip: "True"}
          q:
            queue: billing
            priority: "vip and 10 or 0"
            skills: "billing >= {{ tier }}"
          full:
            hangup: busy
        """))
    assert run.take_actions() == [JoinQueue("billing", 10, "billing >= 4")]
    run.feed(AgentConnected("2001", 12.5), T0 + 13)
    assert run.take_actions() == [] and not run.finished  # talking to the agent until either hangs up
    run.feed(QueueLeft("max_wait"), T0 + 14)  # nothing is awaited any more
    assert run.take_actions() == [] and run.path[-1]["event"] == "agent" and run.path[-1]["agent"] == "2001"


def test_a_priority_that_is_not_a_number_is_a_notice_and_zero(tmp_path):
    run = start(deploy(tmp_path, main="default: true\nsteps:\n  q:\n    queue: b\n    priority: \"'high'\"\n"
                                      "  z:\n    hangup: true\n"))
    actions = run.take_actions()
    assert isinstance(actions[0], Notice) and "not a number" in actions[0].message
    assert actions[1:] == [JoinQueue("b", 0, None)]


def test_a_loop_that_never_waits_at_run_time_ends_the_call(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          a:
            branch:
              - {if: "n == None or n < 1000", goto: b}
            else: c
          b:
            set: {n: "0"}
            next: a
          c:
            hangup: true
        """))
    actions = run.take_actions()
    assert isinstance(actions[0], Notice) and "more than 200 steps" in actions[0].message
    assert actions[-1] == EndCall() and run.finished


def test_the_flow_is_picked_by_dialed_number_and_caller(tmp_path):
    deployment = deploy(tmp_path, main="default: true\nsteps:\n  a:\n    hangup: main\n",
                        sales='answers: ["200", "0800*"]\nsteps:\n  a:\n    hangup: sales\n',
                        vip='answers: ["0800*"]\ncallers: ["+4930*"]\nsteps:\n  a:\n    hangup: vip\n',
                        exact='answers: ["08001"]\nsteps:\n  a:\n    hangup: exact\n')  # fmt: skip
    picks = {(dialed, caller): deployment.flow_for(dialed, caller).name
             for dialed, caller in [("100", "1"), ("200", "1"), ("0800555", "1"), ("0800555", "+49301"),
                                    ("08001", "+49301")]}  # fmt: skip
    assert picks == {("100", "1"): "main", ("200", "1"): "sales", ("0800555", "1"): "sales",
                     ("0800555", "+49301"): "vip", ("08001", "+49301"): "exact"}  # fmt: skip


def test_a_call_keeps_the_version_it_started_with_across_a_reload(tmp_path):
    first = deploy(tmp_path, main="default: true\nsteps:\n  a:\n    say: one\n  b:\n    say: again one\n")
    run = start(first)
    assert run.take_actions() == [said("one")]
    second = deploy(tmp_path, main="default: true\nsteps:\n  a:\n    say: two\n  b:\n    say: again two\n")
    assert second.version != first.version
    run.feed(PromptDone(), T0 + 1)
    assert run.take_actions() == [said("again one")]  # the running call: still the old set
    assert start(second).take_actions() == [said("two")]  # a new call: the new set
    assert summary(run)["version"] == first.version


def test_a_caller_who_hangs_up_ends_the_run_and_the_path(tmp_path):
    run = start(deploy(tmp_path, main=MENU))
    run.hung_up(T0 + 3, "bye")
    run.feed(KeyPressed("1"), T0 + 4)
    assert run.take_actions()[-1] != EndCall() and run.step == "menu"
    assert run.path[-1] == {"at": 3.0, "flow": "main", "step": "menu", "event": "hangup", "by": "caller",
                            "reason": "bye"}  # fmt: skip


def test_a_transfer_ends_the_run_or_goes_on_when_it_fails(tmp_path):
    deployment = deploy(tmp_path, main="""\
        default: true
        steps:
          out:
            transfer: sip:desk@pbx.example.com
          sorry:
            hangup: "The desk is busy"
        """)
    run = start(deployment)
    assert run.take_actions() == [TransferCall("sip:desk@pbx.example.com")]
    run.feed(Transferred(), T0 + 5)
    assert run.take_actions() == [EndCall()] and run.path[-2]["event"] == "transferred"
    run = start(deployment)
    run.take_actions()
    run.feed(TransferFailed("the transfer target answered 486"), T0 + 5)
    assert run.take_actions() == [PlayPrompt((Sound(text="The desk is busy"),), False)]
    assert run.path[-2] == {"at": 5.0, "flow": "main", "step": "out", "event": "transfer_failed",
                            "reason": "the transfer target answered 486"}  # fmt: skip


EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "flows"
happenings = st.lists(st.one_of(
    st.builds(KeyPressed, st.sampled_from("0123456789*#")), st.just(PromptDone()), st.just(SpeechStarted()),
    st.builds(SpeechHeard, st.sampled_from(["billing", "support", "", "what"]), st.floats(0, 1)),
    st.builds(LookupDone, st.one_of(st.none(), st.just({"name": "A", "balance": 3}), st.just([1]))),
    st.builds(LookupDone, st.none(), st.just("HTTP 500")), st.builds(RecordingDone, st.just("/x.wav"), st.just(2.0)),
    st.just(QueueLeft("none")), st.just(TransferFailed("busy")), st.just(Transferred()), st.just("timer"),
), max_size=40)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(script=happenings, hour=st.integers(0, 23))
def test_any_sequence_of_happenings_keeps_the_run_consistent(script, hour):
    deployment = load_deployment(EXAMPLE)
    now = T0 + hour * 3600
    run = start(deployment, now=now)
    for happening in script:
        now += 1
        if happening == "timer":
            if run.deadline is not None:
                now = max(now, run.deadline)
            run.on_timer(now)
        else:
            run.feed(happening, now)
        actions = run.take_actions()
        assert actions.count(EndCall()) <= 1
        if run.finished:
            run.feed(KeyPressed("1"), now + 1)
            assert run.take_actions() == []
    assert all(entry["at"] >= 0 for entry in run.path)


def test_prompt_files_play_in_order_and_a_wait_keeps_keys_for_the_next_question(tmp_path, monkeypatch):
    (tmp_path / "hello.wav").write_bytes(b"")  # only its path matters here: no prompt loader
    deployment = deploy(tmp_path, main="""\
        default: true
        steps:
          hello:
            play: [hello.wav, hello.wav]
            barge_in: false
          pause:
            wait: 2
          ask:
            menu: "Press 5"
            choices: [{key: 5, goto: done}]
          done:
            hangup: true
        """)
    def no_file_system(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the interpreter looked at the file system: {args}")

    with monkeypatch.context() as patched:  # it plays what was loaded with the flows, by the name loaded
        patched.setattr(os, "stat", no_file_system)
        patched.setattr(os, "lstat", no_file_system)
        run = start(deployment)
        actions = run.take_actions()
    file = str(tmp_path / "hello.wav")
    assert actions == [PlayPrompt((Sound(file=file), Sound(file=file)), False)]
    assert list(deployment.prompts) == [file]
    run.feed(KeyPressed("5"), T0 + 1)  # cannot interrupt this one: kept for later
    assert run.take_actions() == [] and run.step == "hello"
    run.feed(PromptDone(), T0 + 3)
    assert run.deadline == T0 + 5 and not run.asks_caller
    run.on_timer(T0 + 5)
    assert run.take_actions() == [EndCall()]  # the 5 answered the menu without its prompt
    assert [e["event"] for e in run.path] == ["play", "wait", "menu", "choice", "hangup"]
    assert run.path[0]["heard"] == ["hello.wav", "hello.wav"]


def test_a_queue_step_goes_on_at_the_step_named_for_the_reason_the_caller_left(tmp_path):
    flow = """\
        default: true
        steps:
          q:
            queue: sales
            callback_number: "{{ caller.number }}9"
            left: {callback: booked, escalated: voicemail}
            next: sorry
          sorry:
            hangup: sorry
          booked:
            hangup: booked
          voicemail:
            hangup: voicemail
        """
    for reason, said in (("callback", "booked"), ("escalated", "voicemail"), ("max_wait", "sorry")):
        (tmp_path / reason).mkdir()
        run = start(deploy(tmp_path / reason, main=flow))
        assert run.take_actions() == [JoinQueue("sales", 0, None, "+155500019")]
        run.feed(QueueLeft(reason, "+15550100" if reason == "callback" else None), T0 + 1)
        assert run.take_actions() == [PlayPrompt((Sound(text=said),), False)]
        left = next(entry for entry in run.path if entry["event"] == "queue_left")
        assert left["reason"] == reason and left.get("callback") == ("+15550100" if reason == "callback" else None)


def test_once_the_agent_hangs_up_the_queue_steps_survey_runs_or_the_call_ends(tmp_path):
    deployment = deploy(tmp_path, main="""\
        default: true
        steps:
          q:
            queue: billing
            survey: survey
          plain:
            queue: billing
        """, survey="""\
        steps:
          ask:
            menu: "How did we do, from 1 to 5?"
            choices:
              - { key: 1, goto: score }
              - { key: 5, goto: score }
          score:
            set: { csat: "menu" }
          done:
            hangup: "{{ survey.agent }} thanks you."
        """)  # fmt: skip
    run = start(deployment)
    run.take_actions()
    run.feed(AgentDone("2001", "billing"), T0 + 5)  # before an agent answered: not awaited
    assert run.take_actions() == [] and not run.finished
    run.feed(AgentConnected("2001", 4.0), T0 + 5)
    run.feed(AgentDone("2001", "billing"), T0 + 60)
    (ask,) = run.take_actions()
    assert isinstance(ask, PlayPrompt) and ask.sounds[0].text == "How did we do, from 1 to 5?"
    assert run.path[-1]["event"] == "menu" and run.path[-2] == {"at": 60.0, "flow": "main", "step": "q",
                                                                 "event": "survey", "to": "survey", "agent": "2001"}
    assert run.variables["survey"] == {"agent": "2001", "queue": "billing", "call": "call-1"}
    run.feed(PromptDone(), T0 + 62)
    run.feed(KeyPressed("5"), T0 + 63)
    assert run.variables["csat"] == "5"
    assert run.take_actions()[-1] == PlayPrompt((Sound(text="2001 thanks you."),), False)


def test_without_a_survey_the_agents_hang_up_ends_the_flow(tmp_path):
    run = start(deploy(tmp_path, main="default: true\nsteps:\n  q:\n    queue: billing\n"))
    run.take_actions()
    run.feed(AgentConnected("2001", 1.0), T0 + 1)
    run.feed(AgentDone("2001", "billing"), T0 + 30)
    assert run.take_actions() == [EndCall()] and run.finished and run.path[-1]["reason"] == "agent"


def test_a_recording_step_pauses_and_resumes_the_calls_recording(tmp_path):
    run = start(deploy(tmp_path, main="""\
        default: true
        steps:
          hush:
            recording: pause
          card:
            collect: "Your card number, please."
            into: card
            max_digits: 4
          talk:
            recording: resume
          bye:
            hangup: true
        """))  # fmt: skip
    assert run.take_actions()[0] == SetRecording(paused=True)
    run.feed(PromptDone(), T0 + 3)
    for key in "4242":
        run.feed(KeyPressed(key), T0 + 4)
    actions = run.take_actions()
    assert SetRecording(paused=False) in actions and actions[-1] == EndCall()
    assert [e["paused"] for e in run.path if e["event"] == "recording"] == [True, False]
