"""A long API fuzzing campaign against the apiserver run as its own process; prints what happened.

The same generator and invariants as ``tests/test_api_fuzz.py`` (``tests/support/apifuzz.py``), for
10,000 requests or more: requests sent, answers by status code, 5xx answers (goal 0), rejected
requests that changed the store's revision (goal 0), and every other violation. The store's
revision is read through the API (a one-item list reports it), so the server is a real process
that could die - and the campaign would say so.

    .venv/bin/python benchmarks/bench_fuzz.py --requests 10000 [--seed random] [--store memory]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def start_apiserver(store: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "labkit.controlplane.apiserver", "--port", "0", "--store", store,
                             "--compact-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready on" not in line:
        proc.kill()
        raise SystemExit(f"the apiserver did not start: {line!r}")
    return proc, line.split("ready on ", 1)[1].split()[0]


def main() -> int:
    from support.apifuzz import Campaign, run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", choices=("fixed", "random"), default="fixed",
                        help="fixed: the same requests every run; random: new ones")
    parser.add_argument("--store", default="memory", help="the apiserver's --store (memory, sqlite:PATH ...)")
    args = parser.parse_args()
    proc, url = start_apiserver(args.store)
    try:
        session = requests.Session()

        def revision() -> int:
            r = session.get(url + "/api/v1/namespaces", params={"limit": "1"}, timeout=10)
            return int(r.json()["metadata"]["resourceVersion"])

        def alive() -> bool:
            try:
                return proc.poll() is None and session.get(url + "/healthz", timeout=10).text == "ok"
            except requests.RequestException:
                return False

        campaign = Campaign(url, revision, alive, strict=False)
        campaign.setup()
        started = time.monotonic()
        run(campaign, args.requests, derandomize=args.seed == "fixed")
        seconds = time.monotonic() - started
        codes = {str(k): v for k, v in sorted(campaign.codes.items(), key=lambda kv: str(kv[0]))}
        server_errors = sum(v for k, v in campaign.codes.items() if isinstance(k, int) and k >= 500)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        print(f"requests sent:              {campaign.sent} in {seconds:.0f} s ({campaign.sent / seconds:.0f}/s)")
        print(f"statuses by code:           {codes}")
        print(f"5xx answers:                {server_errors}")
        print(f"store-unchanged violations: {campaign.unchanged_violations}")
        print(f"other violations:           {len(campaign.violations) - server_errors - campaign.unchanged_violations}")
        print(f"server alive at the end:    {alive()}")
        for v in campaign.violations[:20]:
            print("  ", v[:400])
        return 1 if campaign.violations else 0
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
