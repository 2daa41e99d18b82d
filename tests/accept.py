"""Accept headers of real clients, and every variant prometheus_client negotiates."""

from __future__ import annotations

from prometheus_client.openmetrics.exposition import ALLOWUTF8, DOTS, UNDERSCORES, VALUES

PROMETHEUS2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ESCAPINGS = [ALLOWUTF8, UNDERSCORES, DOTS, VALUES]  # every escaping scheme prometheus_client knows
# None: no Accept header at all.
ACCEPTS: dict[str, str | None] = {
    "prometheus2": PROMETHEUS2,
    "prometheus3": PROMETHEUS3,
    "any": "*/*",
    "none": None,
    "browser": BROWSER,
    "text-0.0.4": "text/plain;version=0.0.4",
    "openmetrics-no-version": "application/openmetrics-text",
    **{f"openmetrics-1.0.0-{e}": f"application/openmetrics-text;version=1.0.0;escaping={e}" for e in ESCAPINGS},
    **{f"openmetrics-2.0.0-{e}": f"application/openmetrics-text;version=2.0.0;escaping={e}" for e in ESCAPINGS},
    **{f"text-1.0.0-{e}": f"text/plain;version=1.0.0;escaping={e}" for e in ESCAPINGS},
    "unknown-escaping": "application/openmetrics-text;version=1.0.0;escaping=no-such-scheme",
}
