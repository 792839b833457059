"""ivrd fetch-model: a Vosk model downloaded, verified and unpacked."""

from __future__ import annotations

import argparse
import sys

from ..models import FetchError, fetch_model


def fetch(args: argparse.Namespace) -> int:
    try:
        model = fetch_model(args.url, args.sha256, args.to)
    except FetchError as exc:
        print(f"ivrd: {exc}", file=sys.stderr)
        return 1
    print(f"{model}: a Vosk model; use it with, in ivrd.yaml:  asr: {{models: {{LANGUAGE: {model.resolve()}}}}}")
    return 0
