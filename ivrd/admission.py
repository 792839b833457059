"""Admission control, sans-IO: how many new calls the daemon takes, from what it measures of itself.

Every call in progress shares one event loop; a call taken past the loop's capacity costs every other
call its audio (frames sent late or never) and its keys (packets the kernel drops while the loop cannot
read them). So every quarter second the daemon measures its loop:

- ``busy``: the share of the window the event loop's thread spent on the CPU;
- ``lag``: how late the loop ran a timer due at the window's end;
- ``late``: the share of audio frames that left later than the frame bound (none sent: 0).

Lag and lateness are harm already done; being busy is a warning only, as a burst of call setups keeps
the loop busy for a second or two and costs the calls in progress nothing (their frames still leave on
time). So busy counts once it has lasted ``busy_seconds``, the others once they pass their bounds in
two windows in a row. Then new calls are admitted at a limited rate
(the rest get 503 with Retry-After, and OPTIONS answers 503 for a load balancer in front): 70% of the
rate the daemon was taking calls at, cut again at most once a second while the strain lasts. While
every measure stays under ``recover`` times its bound, the rate grows by 5% a window; once it has
grown past what callers offer and the loop has stayed calm for ``calm_seconds``, the limit is lifted.
So the daemon takes as many calls as it can serve fully, and no more (additive increase,
multiplicative decrease, as congestion control does), rather than refusing everyone for a while.
"""

from __future__ import annotations

from dataclasses import dataclass

DECREASE = 0.7  # the rate kept when strained
INCREASE = 0.05  # growth per calm window
FLOOR = 1.0  # calls/s: the least a limited daemon admits (it learns it is calm again from them)
CUT_EVERY = 1.0  # seconds between cuts: a cut's effect shows only once the calls in progress ease off


@dataclass(frozen=True, slots=True)
class Load:
    """One window's measures (see the module docstring)."""

    busy: float
    lag: float
    late: float


@dataclass(frozen=True, slots=True)
class Limits:
    busy: float = 0.85
    lag: float = 0.02
    late: float = 0.01
    recover: float = 0.75
    calm_seconds: float = 2.0
    busy_seconds: float = 2.0

    def over(self, load: Load, scale: float = 1.0) -> list[str]:
        """The measures of ``load`` above ``scale`` times their bound."""
        return [name for name, value, bound in (("busy", load.busy, self.busy), ("lag", load.lag, self.lag),
                                                ("late", load.late, self.late)) if value > bound * scale]  # fmt: skip


class Admission:
    """See the module docstring. :meth:`admit` is asked at every new call; :meth:`measure` at every
    window, and says when limiting starts (False) or stops (True)."""

    def __init__(self, limits: Limits, now: float = 0.0) -> None:
        self.limits = limits
        self.rate: float | None = None  # calls/s admitted while limiting; None: every call
        self.why = ""  # the measures that started the limiting
        self._strained = False  # the last window passed a bound
        self._busy_since: float | None = None  # the start of the windows busy in a row
        self._calm_since: float | None = None
        self._cut_at = -CUT_EVERY
        self._tokens = 0.0
        self._refilled = now
        self._window = now
        self._offered = 0
        self._admitted = 0
        self._taking = 0.0  # calls/s admitted lately (a moving average over windows)
        self.retry_after = 5  # seconds, told to the callers refused

    @property
    def limiting(self) -> bool:
        return self.rate is not None

    def admit(self, now: float) -> bool:
        """Whether to take a new call arriving at ``now``."""
        self._offered += 1
        if self.rate is not None:
            self._tokens = min(max(1.0, self.rate / 4), self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
        self._admitted += 1
        return True

    def measure(self, load: Load, now: float) -> bool | None:
        """Take one window's measures at ``now``: False when limiting starts, True when it stops, else None."""
        seconds = max(now - self._window, 1e-3)
        offered = self._offered / seconds
        self._taking = 0.7 * self._taking + 0.3 * self._admitted / seconds
        self._window, self._offered, self._admitted = now, 0, 0
        limits = self.limits
        over = limits.over(load)
        if "busy" not in over:
            self._busy_since = None
        else:
            self._busy_since = self._busy_since if self._busy_since is not None else now - seconds
            if now - self._busy_since < limits.busy_seconds:
                over.remove("busy")
        strained, self._strained = bool(over) and self._strained, bool(over)
        if strained:
            self._calm_since = None
            if now - self._cut_at < CUT_EVERY:
                return None
            started = self.rate is None
            taking = self._taking if self.rate is None else min(self.rate, self._taking)
            self.rate = max(FLOOR, DECREASE * taking)
            self._cut_at, self._tokens, self._refilled = now, 0.0, now
            if started:
                self.why = ",".join(over)
                return False
            return None
        if self.rate is None or limits.over(load, limits.recover):
            self._calm_since = None
            return None
        self.rate *= 1 + INCREASE
        self._calm_since = now if self._calm_since is None else self._calm_since
        if now - self._calm_since >= limits.calm_seconds and offered < self.rate:
            return self.reset()
        return None

    def reset(self) -> bool | None:
        """Lift the limit at once (calm again, or admission control turned off): True when there was one."""
        was = self.rate is not None
        self.rate, self.why, self._strained, self._calm_since, self._busy_since = None, "", False, None, None
        return True if was else None
