"""The site's cap on automatic turns: "Keep taking my turns" trains when the ring
says it is this site's turn, so a hostile server could otherwise make the site
train (and publish) as often as it likes, e.g. to probe its data with crafted
weights. At most ``per_hour`` automatic turns start in any sliding hour."""

from __future__ import annotations

from collections import deque

HOUR_S = 3600.0


class AutoTurnBudget:
    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._starts: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._starts and now - self._starts[0] >= HOUR_S:
            self._starts.popleft()

    def allow(self, now: float) -> bool:
        self._forget(now)
        return len(self._starts) < self.per_hour

    def record(self, now: float) -> None:
        self._starts.append(now)

    def why_not(self, now: float) -> str:
        self._forget(now)
        if self.per_hour <= 0:
            return "Automatic turns are switched off in this site's settings (0 per hour)."
        wait = HOUR_S - (now - self._starts[0]) if self._starts else 0.0
        return (
            f"This site already took {len(self._starts)} automatic turns in the last hour (its cap is "
            f"{self.per_hour}); the next one may start in {wait / 60:.0f} min."
        )
