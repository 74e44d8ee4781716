"""Waiting until everything published so far is searchable.

The worker commits an offset only after Milvus acknowledged the write of that record, so a
committed lag of zero means every record produced before the call is in the index (or in the
dead-letter topic). Tests, benchmarks and the eval command use this instead of sleeping.
"""

from __future__ import annotations

import time

from chatda.broker.kafka import committed_lag


def wait_until_indexed(
    bootstrap: str,
    group_id: str,
    topic: str,
    timeout_s: float = 120.0,
    poll_s: float = 0.25,
) -> None:
    """Block until ``group_id`` has committed every record of ``topic``; TimeoutError if not."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = committed_lag(bootstrap, group_id, topic)
        if lag == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{lag} records of {topic!r} not indexed by group {group_id!r} "
                f"after {timeout_s:.0f}s"
            )
        time.sleep(poll_s)
