"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import settings

from exporter.render import exposition

from .procs import Exporter

# Hypothesis's per-example deadline is a timed assertion: on a loaded CI machine it fails examples
# that are merely slow. Speed is the benchmarks' business; the property tests check correctness.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start ``drs-exporter`` processes (config, extra flags, env); all are stopped after the test."""
    started: list[Exporter] = []

    def run(
        config: dict[str, Any] | str, *args: str, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> Exporter:
        workdir = tmp_path / f"exporter{len(started)}"
        workdir.mkdir()
        exp = Exporter(config, workdir, *args, env=env, open_files=open_files)
        started.append(exp)
        return exp

    yield run
    for exp in started:
        exp.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority for test certificates (one per test module)."""
    return trustme.CA()


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every values-only rebuild of a key's lines (``exposition._with_values``), as they happen."""
    counts: list[int] = []
    original = exposition._with_values

    def counting(encoded: bytes, progress: Sequence[float]) -> bytes:
        counts.append(len(progress))
        return original(encoded, progress)

    monkeypatch.setattr(exposition, "_with_values", counting)
    return counts
