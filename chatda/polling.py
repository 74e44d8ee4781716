"""One background loop for the API's followers: run a check, sleep, repeat, until closed.

The intent catalog, the suggestion index and the query model each follow state that lives
outside the process (the catalog table; article titles and popularity; the index alias). They
need the same loop: start with the app, stop with it, and outlive a failed round. A database
or Milvus hiccup is logged and the next round retries, because a follower whose task died
would leave the process serving stale state until it restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Poller:
    """Runs ``tick`` now and then every ``interval_s`` seconds on the running event loop.

    ``what`` names the round in the log line of a failure ("catalog refresh"); ``on_failure``
    is called with the exception first (e.g. to count it in a metric). A round never overlaps
    the next: the sleep starts when a round ends.
    """

    def __init__(
        self,
        what: str,
        tick: Callable[[], Awaitable[object]],
        interval_s: float,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.what = what
        self.tick = tick
        self.interval_s = interval_s
        self.on_failure = on_failure
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop on the running event loop; starting a running poller is an error."""
        if self.running:
            raise RuntimeError(f"{self.what} poller already running")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.what)

    async def close(self) -> None:
        """Cancel the loop and wait until it has stopped; a no-op when it never started."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the next round retries; a dead loop would never
                if self.on_failure is not None:
                    self.on_failure(exc)
                log.exception("%s failed; retrying in %.1fs", self.what, self.interval_s)
            await asyncio.sleep(self.interval_s)
