"""CPU cost of one 1000-object page: fetch, decode, validate and merge, in this process.

Run ``python -m benchmarks.page_cpu N`` under ``valgrind --tool=callgrind`` for N = 0 and a larger
N: the difference of the instruction counts over N is the cost of a page, a figure the load of a
shared machine does not disturb (wall and CPU time do). The simulator runs in a child process,
which callgrind does not trace. Without valgrind it prints the CPU time per page.
"""

from __future__ import annotations

import sys
import time

from exporter.base.secrets import Secret
from exporter.drs.auth import AkSkAuth
from exporter.drs.client import DRSClient
from exporter.drs.transport import Transport
from tests.procs import Simulator


def main() -> int:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    sim = Simulator("--jobs", "1", "--objects", "1000", "--types", "table", "--latency-ms", "0")
    try:
        info = sim.info
        auth = AkSkAuth(
            Secret("ak", value=info["access_key"]), Secret("sk", value=info["secret_key"]), info["project_id"]
        )
        client = DRSClient(Transport(), auth, sim.url, info["project_id"])
        job = info["jobs"][0]
        started = time.process_time()
        for _ in range(pages):
            client.progress_data(job, "table", deadline=time.monotonic() + 300)
        if pages:
            print(f"{(time.process_time() - started) / pages * 1000:.2f} ms CPU per page")
        client.close()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
