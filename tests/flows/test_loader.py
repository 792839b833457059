"""Flow validation: every problem at once, each at its file:line:column, in words for ops."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from flows.loader import load_deployment
from ivrd.media.player import load_wav
from ivrd.yaml_loader import ConfigError

ETC_FLOWS = Path(__file__).resolve().parents[2] / "etc" / "flows"


def problems_in(tmp_path: Path, **files: str) -> list[str]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_deployment(tmp_path, load_wav)
    return [f"{Path(p.file).name}:{p.line}:{p.column}: {p.message}" for p in info.value.problems]


def test_the_example_deployment_is_valid_and_versioned_by_content(tmp_path):
    deployment = load_deployment(ETC_FLOWS, load_wav)
    assert set(deployment.flows) == {"main", "balance", "survey", "voicemail"}
    assert deployment.default.name == "main"
    copy = tmp_path / "flows"
    shutil.copytree(ETC_FLOWS, copy)
    assert load_deployment(copy, load_wav).version == deployment.version
    (copy / "main.yaml").write_text((copy / "main.yaml").read_text().replace("tries: 3", "tries: 4"))
    assert load_deployment(copy, load_wav).version != deployment.version


def test_unknown_step_kind_key_and_wrong_type(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          hello:
            sya: "Hello"
          menu:
            menu: "Press 1"
            choices: [{key: 1, goto: hello}]
            timeout: soon
            colour: blue
        """)
    assert found == [
        "main.yaml:4:5: step hello: expected exactly one kind of step (play, say, menu, collect, listen, set, "
        "branch, goto, flow, subflow, return, lookup, hours, record, transfer, queue, wait, hangup, recording); "
        "found none (did you mean say?)",
        "main.yaml:8:14: step menu.timeout: expected a number, got 'soon'",
        "main.yaml:9:5: step menu.colour: unknown key (expected one of timeout, tries, noinput, nomatch, fallback, "
        "barge_in, menu, choices, confidence, language)",
    ]


def test_goto_to_a_missing_step_and_a_choice_without_a_target(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          menu:
            menu: "Press 1 or 2"
            choices:
              - {key: 1, goto: billing}
              - {key: 2}
          billing:
            menu: "Press 1"
            choices: [{key: 1, goto: menu}]
            fallback: operatr
        """)
    assert found == [
        "main.yaml:7:9: step menu.choices[1]: missing goto",
        "main.yaml:11:15: step billing: no step called 'operatr' in this flow",
    ]


def test_unreachable_steps_are_named(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          hello:
            say: "Hello"
            next: bye
          forgotten:
            say: "Nobody hears this"
          bye:
            hangup: true
        """)
    assert found == ["main.yaml:6:3: step forgotten: unreachable (no step leads here)"]


def test_a_prompt_file_that_does_not_exist(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          hello:
            play: [welcome.wav]
        """)
    looked = tmp_path / "welcome.wav"
    assert found == [f"main.yaml:4:12: step hello: no prompt file 'welcome.wav' (looked for {looked})"]


def test_a_prompt_file_that_is_not_audio(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    found = problems_in(tmp_path, main="default: true\nsteps:\n  hello:\n    play: notes.wav\n")
    assert len(found) == 1 and found[0].startswith("main.yaml:4:11: step hello: ")
    assert "not a readable PCM WAV file" in found[0]


def test_a_menu_loop_with_no_way_out(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          ask:
            menu: "Press 1 to hear this again"
            choices: [{key: 1, goto: again}]
            fallback: again
          again:
            goto: ask
        """)
    assert found == ["main.yaml:3:3: steps ask, again: a loop with no way out that waits for the caller again and "
                     "again (give it a fallback, a choice or a condition that leaves)"]


def test_a_loop_that_never_waits_but_hold_music_may_loop(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          count:
            set: {n: "n + 1"}
            next: count
        """)
    assert found == ["main.yaml:3:3: steps count: a loop with no way out that runs forever without waiting for "
                     "anything (give it a fallback, a choice or a condition that leaves)"]
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "main.yaml").write_text("default: true\nsteps:\n  music:\n    say: la la la\n    next: music\n")
    assert load_deployment(hold).flows["main"].start == "music"


def test_expressions_are_checked_at_load_with_their_column(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          check:
            branch:
              - {if: "caller.number.__class__", goto: bye}
              - {if: "digits >", goto: bye}
          hello:
            say: "Your balance is {{ account.balance + }}"
          bye:
            hangup: true
        """)
    assert found[0] == "main.yaml:5:15: step check.branch[0].if: no such field '__class__'"
    assert found[1].startswith("main.yaml:6:") and "not a valid expression" in found[1]
    assert found[2].startswith("main.yaml:8:") and "not a valid expression" in found[2]


def test_flows_sub_flows_parameters_calendars_and_defaults_across_files(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        answers: ["100"]
        steps:
          hours:
            hours: offce
            open: pin
            closed: bye
          pin:
            subflow: check_pin
            with: {acount: "'42'"}
          bye:
            flow: nowhere
        """, other="""\
        default: true
        answers: ["100"]
        steps:
          bye:
            hangup: true
        """, check_pin="""\
        params: [account]
        steps:
          again:
            subflow: check_pin
            with: {account: account}
        """)
    assert found == [
        "check_pin.yaml:1:1: sub-flows call each other in a circle: check_pin -> check_pin",
        "main.yaml:5:12: step hours: no calendar 'offce' (known: none: write them in calendars.yaml)",
        "main.yaml:8:3: step pin: flow check_pin has no parameter 'acount' (its parameters: account)",
        "main.yaml:8:3: step pin: flow check_pin needs account (give them under with:)",
        "main.yaml:12:11: step bye: no flow called 'nowhere'",
        f"other.yaml:1:1: default: true here and in {tmp_path / 'main.yaml'} too; only one flow can be the default",
        "other.yaml:2:11: answers: '100' is answered by flow main too",
    ]


def test_calendar_problems(tmp_path):
    found = problems_in(tmp_path, main="default: true\nsteps:\n  bye:\n    hangup: true\n", calendars="""\
        office:
          timezone: Mars/Olympus
          open: {mon-fri: "08:00-18:00"}
        shop:
          timezone: Europe/Paris
          open:
            weekdays: "09:00-17:00"
            sat: "13:00-09:00"
          holidays:
            "25 December": closed
        """)
    assert found == [
        "calendars.yaml:2:3: calendars.office.timezone: unknown time zone 'Mars/Olympus' (expected a name such as "
        "Europe/Paris)",
        "calendars.yaml:7:5: calendars.shop.open: expected days such as mon-fri, sat or mon,wed; got 'weekdays'",
        "calendars.yaml:8:10: calendars.shop.open.sat: '13:00-09:00' is not a span within one day (start before "
        "end, at most 24:00)",
        "calendars.yaml:10:5: calendars.shop.holidays: expected a date like 2026-12-25, got '25 December'",
    ]


def test_yaml_traps_duplicates_and_syntax_are_reported_with_the_rest(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          ask:
            collect: "Your PIN"
            into: pin
            terminator: #
          ask:
            hangup: true
        """, broken="steps: [unclosed\n")
    assert "broken.yaml:2:1: YAML syntax" in found[0]
    assert found[1:] == ["main.yaml:6:17: terminator: nothing before the comment; a # key is written in quotes: '#'",
                         "main.yaml:7:3: duplicate key 'ask' (first at line 3)"]


def test_a_directory_without_flows(tmp_path):
    assert problems_in(tmp_path) == [f"{tmp_path.name}:1:1: no flows here (expected *.yaml files)"]


def test_a_queue_step_names_a_configured_queue(tmp_path):
    (tmp_path / "main.yaml").write_text("default: true\nsteps:\n  q:\n    queue: biling\n  z:\n    hangup: true\n")
    with pytest.raises(ConfigError) as info:
        load_deployment(tmp_path, load_wav, queues=["billing", "sales"])
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (4, 12)
    assert problem.message == "step q: no agent queue 'biling' in routing.queues (billing, sales)"
    assert load_deployment(tmp_path, load_wav, queues=None).flows  # the queues unknown: not checked


def test_a_queue_steps_exits_name_known_reasons_and_steps(tmp_path):
    found = problems_in(tmp_path, main="""\
        default: true
        steps:
          q:
            queue: sales
            left: {callback: booked, bored: q}
          after:
            queue: sales
            left: {max_wait: nowhere}
          booked:
            hangup: bye
        """)
    assert found == [
        "main.yaml:5:5: step q.left: bored: expected reasons among max_wait, full, no_agents, escalated, callback",
        "main.yaml:8:22: step after: no step called 'nowhere' in this flow",
    ]


def test_a_survey_must_name_a_flow_of_the_deployment(tmp_path):
    (tmp_path / "main.yaml").write_text("default: true\nsteps:\n  q:\n    queue: billing\n    survey: nope\n")
    with pytest.raises(ConfigError) as refused:
        load_deployment(tmp_path, load_wav)
    assert "main.yaml:5:13: step q: no flow called 'nope' for the survey" in str(refused.value)
