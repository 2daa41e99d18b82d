"""The scrape and refresh timings that fit together, shared by the chart, compose and dashboards.

A scrape waits for a due refresh at most for the scrape timeout (minus a margin); a refresh may
take up to ``refresh_timeout``. The rule (README "Timings"):

    refresh_timeout < scrape timeout < scrape interval <= cache_ttl

- ``refresh_timeout`` below the scrape timeout: a slow refresh fails inside the scrape that
  waits for it instead of being cut off and reported as ``up 0`` (``scrape_timeout``).
- scrape timeout below the interval: Prometheus refuses anything else.
- ``cache_ttl`` at least the interval: each scrape finds the result of the previous refresh
  instead of starting a synchronous refresh every time.
- the rules' ``lookback`` (``alerts.rules.Settings``) at least two intervals plus the scrape
  timeout: one missed scrape must not drop a series from the recording rules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds of the scrape interval, scrape timeout, exporter cache_ttl and refresh_timeout."""

    interval: float = 60
    scrape_timeout: float = 55
    cache_ttl: float = 120
    refresh_timeout: float = 50
    lookback: float = 180

    def problems(self) -> list[str]:
        """Why this combination cannot work (empty when it can)."""
        out = []
        if not self.refresh_timeout < self.scrape_timeout:
            out.append(f"refresh_timeout ({self.refresh_timeout:g}s) must be below the scrape timeout")
        if not self.scrape_timeout < self.interval:
            out.append(f"the scrape timeout ({self.scrape_timeout:g}s) must be below the interval")
        if not self.cache_ttl >= self.interval:
            out.append(f"cache_ttl ({self.cache_ttl:g}s) must be at least the interval ({self.interval:g}s)")
        if not self.lookback >= 2 * self.interval + self.scrape_timeout:
            out.append(
                f"the rules' lookback ({self.lookback:g}s) must be at least two intervals plus the scrape timeout "
                f"({2 * self.interval + self.scrape_timeout:g}s)"
            )
        return out


DEFAULT = Timing()
