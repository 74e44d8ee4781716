"""Errors a caller of the batcher must handle; the API maps them to 429, 413 and 504."""


class Overloaded(Exception):
    """The queue is full, or the work queued ahead means this request's deadline cannot be met:
    shed load now (429 with Retry-After) instead of queueing work that would miss it."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooLarge(Exception):
    """The request alone needs more encoder time than its deadline allows, even on an idle
    encoder: no retry can succeed, so it is refused at once (413) with what it asks for, the
    budget and how much would fit, instead of a 429 that invites the same request again or an
    admission that holds the encoder for a caller who is told 504."""

    def __init__(self, message: str, needed_s: float, budget_s: float) -> None:
        super().__init__(message)
        self.needed_s = needed_s
        self.budget_s = budget_s


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed before the encoder answered; the caller is told at the
    deadline, and a request still queued then is never computed."""


class BatcherClosed(RuntimeError):
    pass
