"""chatda (찾다): the library shared by the query API, ingest workers, indexer and trainer."""

__version__ = "0.1.0"
