"""The ``ivrd`` command's commands, one module each group, imported only when run (``ivrd status`` need
not load the daemon's media and speech stacks)."""

from __future__ import annotations

import sys

from ..yaml_loader import ConfigError

EXIT_CONFIG = 2  # the configuration, the flows or a file named on the command line is wrong


def report(exc: ConfigError) -> int:
    """Each problem on standard error, one line each; the exit code for them."""
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_CONFIG
