"""`make screenshots`: the status page of `make demo`'s data, as headless Chromium shows it, into a PNG.

python scripts/screenshots.py docs/images/status.png [--width 1200] [--height 1900] [--dark]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path)
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=1950)
    p.add_argument("--dark", action="store_true", help="as Chromium shows it in dark mode")
    p.add_argument("--settle", type=float, default=25, help="seconds of progress before the picture")
    args = p.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is missing: `make test` installs it", file=sys.stderr)
        return 1
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        demo = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "demo.py"),
                "--no-prometheus",
                "--port",
                str(port),
                "--jobs",
                "2",
                "--workdir",
                str(Path(tmp) / "demo"),
                "--duration",
                "600",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until every key has been refreshed once
                try:
                    status = requests.get(f"{url}/status.json", timeout=5).json()
                    states = [k["state"] for pr in status["projects"] for j in pr["jobs"] for k in j["keys"]]
                    if states and "pending" not in states:
                        break
                except (requests.RequestException, ValueError):
                    pass
                if demo.poll() is not None:
                    print(f"the demo exited with {demo.returncode}", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            else:
                print("the demo's keys were not refreshed within 60 s", file=sys.stderr)
                return 1
            time.sleep(args.settle)  # some progress, and a few seconds since the last success
            args.output.parent.mkdir(parents=True, exist_ok=True)
            flags = ["--force-dark-mode"] if args.dark else []
            result = subprocess.run(
                [
                    chromium,
                    *HEADLESS,
                    *flags,
                    "--hide-scrollbars",
                    f"--user-data-dir={Path(tmp) / 'profile'}",
                    f"--window-size={args.width},{args.height}",
                    f"--screenshot={args.output.resolve()}",
                    f"{url}/",
                ],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if result.returncode != 0:
                print(result.stderr.decode()[-2000:], file=sys.stderr)
                return 1
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGTERM)  # the demo stops what it started
            demo.wait(timeout=30)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
