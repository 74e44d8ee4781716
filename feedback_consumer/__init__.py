"""The feedback consumer service: search events from the Kafka events topic into the SQL store.

``feedback_consumer.consume`` is the loop, ``feedback_consumer.main`` the process around it;
decoding and storing are the library's (``chatda.feedback.persist``). Run it with ``chatda
feedback-consumer``.
"""
