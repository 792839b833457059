"""``ivrd test``: the example deployment's flow tests, and what a broken flow or a missing test shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.loader import load_deployment
from ivrd.flowtests import run_suite
from ivrd.flowtests.cases import load_cases
from ivrd.yaml_loader import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "etc" / "flows"


def ivrd_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivrd.cli", "test", *args], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip



def test_the_example_deployment_passes_its_tests_and_they_reach_every_step():
    done = ivrd_test(str(EXAMPLE), "--min-coverage", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout and "FAIL" not in done.stdout
    assert "coverage: 100% of steps" in done.stdout


def test_billing_sent_to_the_sales_department_fails_with_the_test_line_and_both_sides(example_flows: Path):
    main = example_flows / "main.yaml"
    text = main.read_text()
    assert "set: { department: \"'billing'\" }" in text
    main.write_text(text.replace("set: { department: \"'billing'\" }", "set: { department: \"'sales'\" }"))
    done = ivrd_test(str(example_flows))
    assert done.returncode == 1
    tests = (example_flows / "tests" / "main.yaml").read_text().splitlines()
    end_line = next(i for i, line in enumerate(tests, 1) if 'skills: "billing >= 1", priority: 0' in line)
    lines = done.stdout.splitlines()
    failure = lines.index(f"  {example_flows}/tests/main.yaml:{end_line}: billing_by_key: end")
    assert lines[failure + 1].strip() == 'expected: queue "general", skills "billing >= 1", priority 0'
    assert lines[failure + 2].strip() == 'actual:   queue "general", skills "sales >= 1", priority 0'
    assert f"FAIL {example_flows}/tests/main.yaml:22 billing_by_voice" in lines
    variable = lines.index(f"  {example_flows}/tests/main.yaml:{end_line - 1}: billing_by_key: variables: department")
    assert lines[variable + 1: variable + 3] == ['      expected: "billing"', '      actual:   "sales"']
    assert "20 tests: 17 passed, 3 failed" in lines


def test_coverage_drops_when_a_test_goes_and_names_the_step_nobody_reaches(example_flows: Path):
    tests = example_flows / "tests" / "main.yaml"
    text = tests.read_text()
    start = text.index("  christmas_is_a_holiday:")
    tests.write_text(text[:start])
    done = ivrd_test(str(example_flows), "--min-coverage", "100")
    assert done.returncode == 1
    holiday = next(i for i, line in enumerate((example_flows / "main.yaml").read_text().splitlines(), 1)
                   if line.startswith("  holiday:"))  # fmt: skip
    assert f"  {example_flows}/main.yaml:{holiday} holiday" in done.stdout.splitlines()
    assert "main 12/13" in done.stdout and "is under --min-coverage 100%" in done.stdout
    assert ivrd_test(str(example_flows)).returncode == 0  # every test still passes: only the coverage dropped


def test_a_script_that_does_not_fit_the_call_fails_at_its_line(tmp_path: Path, example_flows: Path):
    (example_flows / "tests" / "main.yaml").write_text("""at: "2026-12-07T10:00-05:00"
tests:
  agent_before_queue:
    script:
      - agent: "1001"
  too_long:
    script:
      - press: 0
      - press: 1
""")
    deployment = load_deployment(example_flows)
    suite = run_suite(deployment, load_cases([example_flows / "tests" / "main.yaml"], deployment.flows))
    first, second = (r.failures for r in suite.results)
    assert str(first[0]).startswith(f"{example_flows}/tests/main.yaml:5: agent_before_queue: script: agent: "
                                    "the flow waits at main.main_menu, not in a queue")  # fmt: skip
    assert str(second[0]).startswith(f"{example_flows}/tests/main.yaml:9: too_long: script: the call was over "
                                     "(at main.operator) before this script line")  # fmt: skip


def test_mistakes_in_a_test_file_are_all_reported_with_their_place(example_flows: Path):
    (example_flows / "tests" / "main.yaml").write_text("""tests:
  one:
    flow: nowhere
    at: next monday
    script:
      - press: 12x
      - dance: waltz
      - say: hello
        confidence: 3
    expect:
      end: { queue: general, transfer: "sip:x@y" }
      color: blue
""")
    done = ivrd_test(str(example_flows))
    assert done.returncode == 2
    where = f"{example_flows}/tests/main.yaml"
    for expected in (f"{where}:3:11: tests.one.flow: no flow 'nowhere'",
                     f"{where}:4:9: tests.one.at: expected a time like 2026-12-07T10:00-05:00, got 'next monday'",
                     f"{where}:6:16: tests.one.script[0].press: expected keys (0-9 * # A-D), got '12x'",
                     f"{where}:7:9: tests.one.script[1]: expected one of press: KEYS",
                     f"{where}:9:9: tests.one.script[2].confidence: only with say, a number from 0 to 1",
                     f"{where}:11:30: tests.one.expect.end.transfer: one end only (queue is given)",
                     f"{where}:12:7: tests.one.expect.color: unknown key"):  # fmt: skip
        assert expected in done.stderr, done.stderr


def test_no_tests_is_said_rather_than_passed(tmp_path: Path, example_flows: Path):
    shutil.rmtree(example_flows / "tests")
    done = ivrd_test(str(example_flows))
    assert done.returncode == 1 and f"no flow tests in {example_flows}/tests" in done.stderr


def test_a_test_of_a_flow_that_is_gone_is_refused_before_anything_runs(example_flows: Path):
    (example_flows / "tests" / "main.yaml").write_text("tests:\n  one:\n    flow: survey\n")
    with pytest.raises(ConfigError) as raised:
        load_cases([example_flows / "tests" / "main.yaml"], {"main", "balance"})
    assert [str(p) for p in raised.value.problems] == [
        f"{example_flows}/tests/main.yaml:3:11: tests.one.flow: no flow 'survey' (flows: balance, main)"]
