"""Waiting until everything published so far is searchable.

The worker commits an offset only after Milvus acknowledged the write of that record, so a
committed lag of zero means every record produced before the call is in the index (or in the
dead-letter topic). The group that counts is the one feeding the collection the alias serves
(``chatda.storage.index_models.ingest_group``), resolved again on every check, so a wait that
spans a re-index swap follows it. Tests, benchmarks and the eval command use this instead of
sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymilvus import MilvusClient

from chatda.broker.kafka import committed_lag
from chatda.storage.articles_schema import alias_target
from chatda.storage.index_models import ingest_group


def serving_lag(
    bootstrap: str, client: MilvusClient, base_group: str, alias: str, topic: str
) -> int | None:
    """Records of ``topic`` not yet in the collection ``alias`` serves; None without an alias."""
    target = alias_target(client, alias)
    if target is None:
        return None
    return committed_lag(bootstrap, ingest_group(base_group, target), topic)


def wait_until_indexed(
    bootstrap: str,
    client: MilvusClient,
    base_group: str,
    alias: str,
    topic: str,
    timeout_s: float = 120.0,
    poll_s: float = 0.25,
    on_lag: Callable[[int | None], None] | None = None,
) -> None:
    """Block until the serving collection's group has committed every record of ``topic``.

    An alias that does not exist yet counts as "not indexed" (the first worker creates it).
    ``on_lag`` sees every lag measured (None: no alias yet), for progress; it may raise to
    give up early. TimeoutError if the lag is not zero in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        lag = serving_lag(bootstrap, client, base_group, alias, topic)
        if on_lag is not None:
            on_lag(lag)
        if lag == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{'all' if lag is None else lag} records of {topic!r} not indexed behind "
                f"alias {alias!r} (groups {base_group}.*) after {timeout_s:.0f}s"
            )
        time.sleep(poll_s)
