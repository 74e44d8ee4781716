"""What one API process serves now: the intent catalog's version and size, the query model,
and the article collection the index alias points at.

Set from the process's state on every scrape (``/metrics``), so they are never older than the
scrape and need no hook in the catalog service or the model follower. The collection and
model are labels of an info-style gauge (always 1): a re-index changes them, and the previous
label set is dropped, so only the one served is exported.
"""

from __future__ import annotations

from prometheus_client import Gauge

from query.state import ApiState

CATALOG_VERSION = Gauge(
    "chatda_catalog_version", "Version of the intent catalog snapshot serving (0: not loaded)"
)
CATALOG_INTENTS = Gauge("chatda_catalog_intents", "Intents in the catalog snapshot serving")
CATALOG_READY = Gauge("chatda_catalog_ready", "1 once the intent catalog is loaded and embedded")
SERVED_INDEX = Gauge(
    "chatda_served_index_info",
    "1 for the collection the articles alias serves and the query model (none: not known yet)",
    ["alias", "collection", "model"],
)


def refresh(state: ApiState) -> None:
    """Set the gauges from ``state``; call right before exporting."""
    catalog = state.catalog
    CATALOG_READY.set(1 if catalog.ready else 0)
    CATALOG_VERSION.set(catalog.snapshot.version if catalog.ready else 0)
    CATALOG_INTENTS.set(catalog.snapshot.size if catalog.ready else 0)
    served = state.search.follower.served
    SERVED_INDEX.clear()
    SERVED_INDEX.labels(
        alias=state.search.articles.alias,
        collection=served.collection if served else "none",
        model=state.encoder.ref,
    ).set(1)
