"""Articles on the wire: the message contract, publishing to Kafka, and waiting for the index.

Publishers (the HTTP API, ``chatda publish``, other services) and the ingest worker meet only
through these messages, so everything both sides must agree on lives here.
"""
