"""The query ids this process issued lately, so feedback can be told apart from noise.

Bounded (least recently issued ids fall out) and per process: with several replicas, feedback
for a query another replica answered is flagged unknown, which is why unknown ids are accepted
and only flagged. Used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID


class RecentQueries:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._queries: OrderedDict[UUID, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, query_id: UUID, normalized: str) -> None:
        self._queries[query_id] = normalized
        self._queries.move_to_end(query_id)
        while len(self._queries) > self.capacity:
            self._queries.popitem(last=False)

    def get(self, query_id: UUID) -> str | None:
        """The normalised query text behind ``query_id``, or None if unknown or forgotten."""
        return self._queries.get(query_id)
