"""Reading the daemon's /metrics the way Prometheus does (prometheus-client's own parser)."""

from __future__ import annotations

import ssl
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(daemon, token: str | None = None, *, tls: bool = False) -> Samples:
    """``tls``: the daemon serves HTTPS, with the tests' self-signed certificate (not checked)."""
    scheme = "https" if tls else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{daemon.http_port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl._create_unverified_context() if tls else None
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(daemon, name: str, at_least: float, timeout: float = 30.0, **labels: str) -> Samples:
    """Scrape until ``name{labels}`` reaches ``at_least``; the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(daemon)
        if value(samples, name, **labels) >= at_least:
            return samples
        if time.monotonic() > deadline or daemon.proc.poll() is not None:
            raise AssertionError(f"{name}{labels} stayed at {value(samples, name, **labels)} < {at_least}")
        time.sleep(0.1)
