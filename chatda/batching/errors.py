"""Errors a caller of the batcher must handle; the API maps them to 429 and 504."""


class Overloaded(Exception):
    """The queue is full: shed load now instead of queueing work that would miss its deadline."""

    def __init__(self, queued: int, limit: int, retry_after_s: float) -> None:
        super().__init__(f"encoder queue full ({queued}/{limit} texts waiting)")
        self.retry_after_s = retry_after_s


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed while it was still queued; it was never computed."""


class BatcherClosed(RuntimeError):
    pass
