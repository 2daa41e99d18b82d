"""One deadline per scrape or refresh, handed down to every wait on its path."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` time after which the work it bounds is abandoned."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds)

    @classmethod
    def of(cls, value: Deadline | float) -> Deadline:
        """``value`` as a deadline (a bare float is a monotonic time)."""
        return value if isinstance(value, Deadline) else cls(float(value))

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.at

    def bound(self, seconds: float) -> float:
        """``seconds``, shortened to what is left."""
        return min(seconds, self.remaining())

    def earlier(self, seconds: float) -> Deadline:
        """This deadline or the one ``seconds`` from now, whichever comes first."""
        return Deadline(min(self.at, time.monotonic() + seconds))
