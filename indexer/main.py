"""The scheduler process: the indexer's jobs on their schedules until SIGTERM or Ctrl-C.

``chatda scheduler`` dispatches here; the schedules and the job runner are
``indexer.scheduler``'s.
"""

from __future__ import annotations

import contextlib
import signal

from indexer.scheduler import build_scheduler


def main() -> None:
    """Run the scheduler until stopped (jobs from CHATDA_JOBS)."""
    sched = build_scheduler()
    # as a container's main process it must stop on SIGTERM, finishing the job in hand
    signal.signal(signal.SIGTERM, lambda *_: sched.shutdown(wait=True))
    names = ", ".join(j.id for j in sched.get_jobs()) or "none (see CHATDA_JOBS)"
    print(f"scheduler: jobs {names}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()
