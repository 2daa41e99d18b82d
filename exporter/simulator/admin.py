"""The ``/_sim/*`` endpoints with which tests inspect and steer the simulator."""

from __future__ import annotations

import json
import re

from .. import __version__
from .base import ApiError, HandlerBase
from .faults import apply_faults
from .scenario import dump, update_job

JOB_ADMIN_PATH = re.compile(r"^/_sim/jobs/([^/]+)$")


class AdminMixin(HandlerBase):
    """Stats, faults, job changes and token tricks."""

    def _admin(self, method: str, path: str, body: bytes) -> None:
        sim = self.server
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise ApiError(400, "SIM.BADJSON", "body is not JSON") from None
        if path == "/" and method == "GET":
            self._json(
                200, {"simulator": "drs-simulator", "version": __version__, "project_id": sim.scenario.project_id}
            )
        elif path == "/_sim/stats" and method == "GET":
            with sim.lock:
                self._json(
                    200,
                    {
                        "requests": dict(sim.stats),
                        "progress_data": dict(sim.key_stats),
                        "comparisons": dict(sim.compare_stats),
                        "health": dict(sim.health_stats),
                        "jobs": dict(sim.job_stats),
                    },
                )
        elif path == "/_sim/stats/reset" and method == "POST":
            with sim.lock:
                sim.stats.clear()
                sim.key_stats.clear()
                sim.compare_stats.clear()
                sim.health_stats.clear()
                sim.job_stats.clear()
            self._json(200, {})
        elif path == "/_sim/jobs" and method == "GET":
            self._send(200, dump(sim.scenario).encode())
        elif path == "/_sim/faults" and method == "POST":
            try:
                sim.scenario.faults = apply_faults(sim.scenario.faults, data)
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "SIM.BADFAULT", str(exc)) from None
            self._json(200, sim.scenario.faults.__dict__)
        elif path == "/_sim/redirected" and method == "GET":
            target = sim.redirect_target()
            with target.lock:
                self._json(200, {"seen": list(target.seen)})
        elif path == "/_sim/order" and method == "GET":
            with sim.lock:
                self._json(200, {"order": list(sim.order)})
        elif path == "/_sim/tokens/revoke" and method == "POST":
            with sim.creds.lock:
                sim.creds.revoked.update(sim.creds.issued)
            self._json(200, {})
        elif path == "/_sim/tokens/expire" and method == "POST":
            with sim.creds.lock:
                for token in sim.creds.issued:
                    sim.creds.issued[token] = 0.0
            self._json(200, {})
        elif (m := JOB_ADMIN_PATH.match(path)) and method == "POST":
            job = sim.scenario.jobs.get(m.group(1))
            if job is None:
                raise ApiError(404, "SIM.NOJOB", "no such job")
            try:
                update_job(job, data, sim.scenario.elapsed())
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "SIM.BADJOB", str(exc)) from None
            self._json(200, {})
        else:
            raise ApiError(404, "SIM.NOTFOUND", f"no admin endpoint {method} {path}")

    # --- API ------------------------------------------------------------------------------
