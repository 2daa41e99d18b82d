"""Reloading the configuration, the web configuration and the secrets they name, while serving."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from . import config
from .app import Exporter
from .base.deadline import Deadline
from .base.secrets import scrub
from .web import webconfig
from .web.server import WebApp

log = logging.getLogger(__name__)

# How long a replaced exporter lives on at most: scrapes that began with it finish with it, and
# refreshes its successor took over end in it. It is closed as soon as none are left.
RETIRE_SECONDS = 15.0
RETIRE_POLL_SECONDS = 0.2
# Replaced exporters alive at once: a burst of reloads closes older ones at once (a scrape still
# running with one answers with what it has), so that they do not pile up with their threads.
MAX_RETIRING = 2


class Reloader:
    """Reads both files again and puts them in place together; a bad file changes nothing.

    A new :class:`Exporter` is built from the new configuration with the running one, whose
    snapshots of unchanged jobs it keeps; the web configuration goes to ``apply_web_config``
    (new requests use its users, new connections its certificates). The outcome is logged
    and exported (``huaweicloud_drs_config_last_reload_successful``).
    """

    def __init__(
        self,
        app: WebApp,
        apply_web_config: Callable[[webconfig.WebConfig], None],
        config_file: str,
        web_config_file: str | None,
        overrides: Mapping[str, object] | None = None,
    ) -> None:
        self.app = app
        self.apply_web_config = apply_web_config
        self.config_file = config_file
        self.web_config_file = web_config_file
        self.overrides = dict(overrides or {})  # the flags' shard: a reload keeps it whatever the file says
        self._lock = threading.Lock()  # one reload at a time (SIGHUP and POST /-/reload)
        self._retiring: list[Exporter] = []  # replaced, not yet closed; oldest first

    def reload(self) -> str | None:
        """Reload; None when it worked, else why not (the running configuration stays)."""
        with self._lock:
            failure = self._reload()
            self.app.exporter.reloads.record(failure is None)
            if failure is not None:
                log.error("reloading the configuration failed, the running one stays in use: %s", failure)
            return failure

    def _reload(self) -> str | None:
        try:
            cfg = config.load(self.config_file, self.overrides)
        except (ValueError, config.ConfigError) as exc:
            return f"invalid configuration: {_in(self.config_file, exc)}"
        try:
            web = webconfig.load(self.web_config_file) if self.web_config_file else webconfig.WebConfig()
        except config.ConfigError as exc:
            return f"invalid web configuration: {_in(self.web_config_file, exc)}"
        old = self.app.exporter
        try:
            new = Exporter(cfg, previous=old)
        except Exception as exc:  # whatever it is, the running exporter must go on
            log.debug("building the exporter failed", exc_info=True)
            return scrub(f"cannot use the configuration: {_in(self.config_file, f'{exc.__class__.__name__}: {exc}')}")
        try:
            self.apply_web_config(web)
        except Exception as exc:
            new.close()
            return scrub(f"cannot use the web configuration: {_in(self.web_config_file, exc)}")
        self.app.use(new)
        self._retire(old)
        log.info(
            "configuration reloaded: %d projects, %d jobs, %d keys; %d basic auth users%s",
            len(cfg.projects),
            len(cfg.jobs),
            len(cfg.keys),
            len(web.basic_auth_users),
            ", TLS" if web.tls else "",
        )
        return None

    def _retire(self, old: Exporter) -> None:
        """Close ``old`` once idle (RETIRE_SECONDS at most), and at once the oldest beyond MAX_RETIRING."""
        self._retiring.append(old)  # under the reload lock
        surplus, self._retiring = self._retiring[:-MAX_RETIRING], self._retiring[-MAX_RETIRING:]
        for core in surplus:
            core.close()
        threading.Thread(target=self._close_when_idle, args=(old,), name="retire", daemon=True).start()

    def _close_when_idle(self, old: Exporter) -> None:
        deadline = Deadline.after(RETIRE_SECONDS)
        while old in self._retiring and not old.idle() and deadline.remaining() > 0:
            time.sleep(min(RETIRE_POLL_SECONDS, deadline.remaining()))
        with self._lock:
            if old not in self._retiring:
                return  # closed already, as one too many
            self._retiring.remove(old)
        old.close()


def _in(file: str | None, problem: object) -> str:
    """``problem``, said to be in ``file`` unless it names the file already."""
    text = str(problem)
    return text if file is None or file in text else f"{file}: {text}"
