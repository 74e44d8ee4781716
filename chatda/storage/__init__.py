"""Vector storage: Milvus connections, the local milvus-lite server, articles, filters."""
