"""Which shard owns a DRS job: ``crc32(job_id as UTF-8) mod total_shards``.

CRC-32 (zlib's, the IEEE polynomial) is stable across processes, Python versions and languages,
unlike Python's salted ``hash()``: every shard of a release, and anyone checking by hand
(``python3 -c 'import zlib; print(zlib.crc32(b"<job_id>") % 3)'``), agrees on the owner.
At the bottom because the configuration, the index and the command line all need it.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# A StatefulSet's pods are named <statefulset name>-<ordinal>.
_ORDINAL = re.compile(r".+-(0|[1-9][0-9]*)")


def shard_of(job_id: str, total_shards: int) -> int:
    """The shard that owns ``job_id`` among ``total_shards``."""
    return zlib.crc32(job_id.encode("utf-8")) % total_shards


@dataclass(frozen=True)
class Shard:
    """This process's share of the jobs: shard ``index`` of ``total`` (0 of 1: every job)."""

    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"total shards must be at least 1, got {self.total}")
        if not 0 <= self.index < self.total:
            raise ValueError(
                f"shard must be between 0 and {self.total - 1} (total shards {self.total}), got {self.index}"
            )

    def owns(self, job_id: str) -> bool:
        """Whether this shard reads, caches and exports ``job_id``."""
        return self.total == 1 or shard_of(job_id, self.total) == self.index


def pod_ordinal(pod: str) -> int:
    """The ordinal of a StatefulSet pod from its name (``drs-exporter-2`` -> 2); ValueError if it has none."""
    found = _ORDINAL.fullmatch(pod)
    if found is None:
        raise ValueError(f"cannot read a StatefulSet ordinal from pod name {pod!r} (expected <name>-<ordinal>)")
    return int(found.group(1))
