"""Errors a caller of the batcher must handle; the API maps them to 429 and 504."""


class Overloaded(Exception):
    """The queue is full, or the work queued ahead means this request's deadline cannot be met:
    shed load now (429 with Retry-After) instead of queueing work that would miss it."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed before the encoder answered; the caller is told at the
    deadline, and a request still queued then is never computed."""


class BatcherClosed(RuntimeError):
    pass
