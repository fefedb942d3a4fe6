"""The fake SendGrid of tests/fake_sendgrid.py in its own process, counting instead of keeping.

Run by bench/dispatch.py: ``python bench/fake_server.py [--latency SECONDS]``. Prints
the server's URL on the first line of stdout, then answers each ``counts`` line on stdin
with one JSON line; it stops when stdin closes. It validates every request like the test
fake does, but keeps only the accepted addresses' hashes (not every
personalization and request body, which for a million recipients would take
gigabytes; nor the addresses, 170 MB at a million: two distinct addresses share a 64-bit
hash once in some 10^7 runs of a million).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fake_sendgrid import FakeSendGrid, Faults, _message_id

API_KEY = "SG.bench-key"
# The fake checks one request body in this many in full (the tests check every one): its
# checks cost more than our sender's own work on a batch, and would bound the figure.
VALIDATE_EVERY = 50
YOUNG_GC = 100_000  # new objects before the collector's youngest pass (default 700)


class _Tally:
    """Stands in for ``FakeSendGrid.requests``: counts appended bodies, keeps none."""

    def __init__(self) -> None:
        self.count = 0

    def append(self, _body: object) -> None:
        self.count += 1

    def __len__(self) -> int:
        return self.count


class CountingFake(FakeSendGrid):
    """Records each accepted address once, and how often an address came again."""

    def __init__(self, faults: Faults) -> None:
        super().__init__(api_key=API_KEY, faults=faults)
        self.validate_every = VALIDATE_EVERY
        self.tally = _Tally()
        self.requests = self.tally  # type: ignore[assignment]
        # The hash of each address, lower case: a dict's keys, not a set, since a dict of
        # ints is one the cycle collector never walks (a set of a million: 90 ms a pass).
        self.addresses: dict[int, None] = {}
        self.personalizations = 0
        self.duplicates = 0
        self.accepted_requests = 0

    def _accept(self, body: dict[str, Any], number: int) -> str:
        found = [
            hash(entry["email"].lower())
            for p in body["personalizations"]
            for kind in ("to", "cc", "bcc")
            for entry in p.get(kind, [])
        ]
        with self._lock:
            self.accepted_requests += 1
            self.personalizations += len(body["personalizations"])
            before = len(self.addresses)
            self.addresses.update(dict.fromkeys(found))
            self.duplicates += len(found) - (len(self.addresses) - before)
        return _message_id()

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.tally.count,
                "accepted_requests": self.accepted_requests,
                "personalizations": self.personalizations,
                "distinct": len(self.addresses),
                "duplicates": self.duplicates,
                "errors": list(self._errors[:5]),
            }


def quiet_collector() -> None:
    """Keep the cycle collector out of the fake's way, on the cores the sender needs. A
    request's parsed body is some 7,000 dicts and lists dying by their reference counts;
    at the default thresholds they set off collections every few requests, and the full
    ones walked the set of every address accepted so far (90-115 ms a pass at a million;
    the addresses are a dict's keys now, which it never walks). A million recipients,
    the fake's CPU: 13.8 s (set, default thresholds), 10.7-11.0 (dict), 9.5-10.0 (dict,
    these thresholds); its answers had stalled 100-370 ms every few tenths of a second."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC, 50, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    fake = CountingFake(Faults(latency=args.latency))
    quiet_collector()
    fake.start()
    print(fake.url, flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "counts":
                print(json.dumps(fake.counts()), flush=True)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
