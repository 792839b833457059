"""Whatever a flow file holds, loading it ends in a deployment or a ConfigError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.loader import load_deployment
from flows.schema import STEP_KINDS
from ivrd.yaml_loader import ConfigError

KEYS = [*STEP_KINDS, "next", "choices", "key", "goto", "say", "into", "timeout", "tries", "noinput", "nomatch",
        "fallback", "if", "else", "with", "params", "answers", "default", "steps", "start", "open", "closed",
        "phrases", "pattern", "body", "min_digits", "terminator", "a", "b"]  # fmt: skip
TRICKY = ["{{ x }}", "{{", "a >", "#", "sip:x@y", "08:00-18:00"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 99), st.floats(allow_nan=False, width=16),
                    st.sampled_from(KEYS), st.text(max_size=12), st.sampled_from(TRICKY))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                         max_leaves=25)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(main=documents, other=documents)
def test_any_document_loads_or_is_refused_with_problems(main, other):
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        (directory / "main.yaml").write_text(yaml.safe_dump({"default": True, "steps": main}))
        (directory / "other.yaml").write_text(yaml.safe_dump(other))
        try:
            load_deployment(directory)
        except ConfigError as exc:
            assert exc.problems and all(p.line >= 1 and p.message for p in exc.problems)
